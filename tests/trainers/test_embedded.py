"""The embedded model's recipe pieces: short traces, the base checkpoint, the presets and the export."""

import json
from pathlib import Path

import pytest

from regionreasoner.core.citations import render_bbox
from regionreasoner.core.errors import ConfigError, InputError
from regionreasoner.core.frames import frame_from_spec
from regionreasoner.core.protocol import parse_action
from regionreasoner.trainers.config import GRPORunConfig, SFTRunConfig, load_config
from regionreasoner.trainers.data.synthetic import build_synthetic
from regionreasoner.trainers.rewards import score_region_reasoner

FRAME = frame_from_spec("norm:100")


def test_short_traces_cite_the_reference_and_score_full_marks() -> None:
    dialogues = build_synthetic(12, 3, FRAME, rounds=(3, 5), style="short", language="any")
    cited = 0
    for dialogue in dialogues:
        for rnd in dialogue.rounds:
            assert rnd.trace is not None
            action = parse_action(rnd.trace)
            assert action.ok, action.problems
            sections = action.sections
            assert sections.scene and sections.scene.split(":")[0].endswith(("shape", "shapes"))
            if rnd.reference is not None:
                cited += 1
                ref = render_bbox(rnd.reference)
                assert ref in rnd.question and ref in (sections.think or "")
                assert sections.focus and sections.focus.startswith("inside: ")
            scores = score_region_reasoner(rnd.question, rnd.trace, rnd.solution())
            assert scores["accuracy"] == 3.0 and scores["answer_format"] == 2.0, (rnd.question, rnd.trace, scores)
    assert cited >= 10


def test_short_traces_are_english_whatever_the_question_language() -> None:
    zh = build_synthetic(4, 5, FRAME, rounds=(2, 3), style="short", language="zh")
    en = build_synthetic(4, 5, FRAME, rounds=(2, 3), style="short", language="en")
    for a, b in zip(zh, en, strict=True):
        assert [r.trace for r in a.rounds] == [r.trace for r in b.rounds]  # same targets, same English reasoning
        assert all(q.question != e.question for q, e in zip(a.rounds, b.rounds, strict=True))


def test_synthetic_sizes_are_cycled() -> None:
    dialogues = build_synthetic(3, 1, FRAME, size=[(320, 240), (240, 320)], rounds=(1, 1), style="short")
    assert [d.original_size for d in dialogues] == [(320, 240), (240, 320), (320, 240)]


def test_embedded_presets_load_and_validate() -> None:
    sft = load_config(SFTRunConfig, "embedded-sft")
    grpo = load_config(GRPORunConfig, "embedded-grpo")
    for cfg in (sft, grpo):
        assert cfg.frame == "norm:100" and cfg.prompt_template == "regionreasoner-short"  # the question first
        assert cfg.synthetic_style == "short" and cfg.synthetic_language == "any" and cfg.rounds() == (1, 5)
    assert grpo.seed != sft.seed  # GRPO's dialogues are not the SFT ones
    with pytest.raises(ConfigError, match="synthetic_rounds"):
        load_config(SFTRunConfig, "embedded-sft", synthetic_rounds="5-1")
    with pytest.raises(ConfigError, match="synthetic_language"):
        load_config(SFTRunConfig, "embedded-sft", synthetic_language="de")
    with pytest.raises(ConfigError, match="synthetic_sizes"):
        load_config(SFTRunConfig, "embedded-sft", synthetic_sizes="320by240")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from regionreasoner.trainers.embedded import build_base

    return build_base(tmp_path_factory.mktemp("embedded") / "base")


def test_base_checkpoint_declares_its_frame_and_template(base: Path) -> None:
    from regionreasoner.policies.families import derive_frame

    declared = json.loads((base / "regionreasoner.json").read_text())
    assert declared["frame"] == "norm:100" and declared["prompt_template"] == "regionreasoner-short"
    assert derive_frame(base).spec == "norm:100"
    assert (base / "model.safetensors").stat().st_size < 25 * 2**20


def test_base_cli_writes_the_rotary_knobs_into_the_config(tmp_path: Path) -> None:
    """``embedded-base --rope-theta --mrope-section --max-image-tokens`` build the probes' variants (docs)."""
    from regionreasoner.trainers.cli import main

    out = tmp_path / "b"
    args = ["embedded-base", "--out", str(out), "--rope-theta", "10", "--mrope-section", "2,15,15"]
    assert main([*args, "--max-image-tokens", "30"]) == 0
    config = json.loads((out / "config.json").read_text())
    rope = config["text_config"]["rope_parameters"]
    assert rope["rope_theta"] == 10.0 and rope["mrope_section"] == [2, 15, 15]
    assert json.loads((out / "preprocessor_config.json").read_text())["size"]["longest_edge"] == 28 * 28 * 30
    assert json.loads((out / "regionreasoner.json").read_text())["spec"]["mrope_section"] == [2, 15, 15]
    # a bad value is one line naming the flag and its form, exit status 2, nothing written
    assert main(["embedded-base", "--out", str(tmp_path / "c"), "--mrope-section", "2,15"]) == 2
    assert main(["embedded-base", "--out", str(tmp_path / "d"), "--mrope-section", "8,12,13"]) == 2
    assert not (tmp_path / "c").exists() and not (tmp_path / "d" / "config.json").exists()


def test_embedded_spec_refuses_rotary_splits_that_do_not_fit() -> None:
    from regionreasoner.trainers.embedded import EmbeddedSpec

    with pytest.raises(ConfigError, match="sum to 32"):
        EmbeddedSpec(mrope_section=(8, 12, 13))
    with pytest.raises(ConfigError, match="rope_theta"):
        EmbeddedSpec(rope_theta=1.0)
    assert EmbeddedSpec(mrope_section=None, rope_theta=1e4).config().text_config.rope_parameters["mrope_section"] == [
        1,
        4,
        27,
    ]


def test_default_rotary_split_lets_width_turn_and_keeps_text_slow_pairs() -> None:
    """Width's fastest pair turns >= 0.15 rad per column (one shape is localised: docs), text keeps pairs under 1e-3."""
    from regionreasoner.trainers.embedded import EmbeddedSpec

    spec = EmbeddedSpec()
    rope = spec.config().text_config.rope_parameters
    t, h, w = rope["mrope_section"]
    half = t + h + w
    freq = [rope["rope_theta"] ** (-i / half) for i in range(half)]
    assert freq[t + h] >= 0.15 and min(freq[t : t + h]) >= freq[t + h]  # width's fastest; height's are faster
    assert freq[-1] < 1e-3  # the slowest pair, which text (all three positions equal) matches words with


def test_training_and_agent_prompts_put_the_question_before_the_image(base: Path) -> None:
    """The embedded template leads with the question; a training row and the agent's user message agree on it."""
    from regionreasoner.agent.nodes import _user_parts
    from regionreasoner.core.prompts import get_prompt
    from regionreasoner.policies.base import ImageSlot
    from regionreasoner.trainers.data.feeding import build_records
    from regionreasoner.trainers.embedded import EMBEDDED_TEMPLATE
    from regionreasoner.trainers.processing import load_processor

    tpl = get_prompt(EMBEDDED_TEMPLATE)
    processor = load_processor(base)
    records = build_records(
        build_synthetic(2, 4, FRAME, rounds=(2, 2), style="short", language="any"), "official", template=tpl
    )
    assert any(r.reference is not None for r in records)
    for record in records:
        user = record.prompt[-1].to_dict()
        parts = _user_parts(tpl.render(record.problem), EMBEDDED_TEMPLATE)
        agent = [{"type": "image"} if isinstance(p, ImageSlot) else {"type": "text", "text": p} for p in parts]
        assert user["content"] == agent and agent[0]["type"] == "text" and agent[-1] == {"type": "image"}
        text = processor.apply_chat_template(
            [m.to_dict() for m in record.prompt], add_generation_prompt=True, tokenize=False
        )
        assert text.index(tpl.normalise_question(record.problem)) < text.index("<|vision_start|>")


def test_base_tokenizer_has_one_token_per_coordinate_and_covers_six_scripts(base: Path) -> None:
    from transformers import AutoTokenizer

    from regionreasoner.core.world.languages import LANGUAGES, vocabulary

    tok = AutoTokenizer.from_pretrained(base)
    for n in range(101):
        assert len(tok(f"[{n},", add_special_tokens=False)["input_ids"]) == 3, n  # "[", "57", ","
    for language in LANGUAGES:
        for category, words in vocabulary(language).items():
            for word in words.values():
                text = word.replace("…", "").strip()
                ids = tok(text, add_special_tokens=False)["input_ids"]
                assert tok.decode(ids) == text  # byte-level: every script encodes and decodes exactly
                if category in ("colour", "kind"):  # the words of nearly every question: a few tokens each
                    assert len(ids) <= 8 * len(text.split()), (language, text, len(ids))


def test_export_refuses_incomplete_folders(tmp_path: Path, base: Path) -> None:
    from regionreasoner.trainers.cli_embedded import export_checkpoint

    with pytest.raises(InputError, match="lacks"):
        export_checkpoint(tmp_path, tmp_path / "out", "card")
    out = export_checkpoint(base, tmp_path / "shipped", "# card\n")
    assert (out / "README.md").read_text() == "# card\n" and (out / "model.safetensors").is_file()


def test_dense_labels_follow_the_scene_ground_truth() -> None:
    """Every shape's box centre marks exactly one patch, with its box; covered patches carry its attributes."""
    from regionreasoner.core.world import make_scene
    from regionreasoner.trainers.embedded_vision import dense_labels

    scene = make_scene((5, 1), size=(320, 240), n_objects=(4, 6))
    labels = dense_labels(scene, 7, 10)
    assert labels.classes.shape == (70, 4) and labels.place.shape == (70, 2)
    assert int(labels.centre.sum()) <= len(scene.objects)  # two centres may share a patch
    colours = ("red", "green", "blue", "yellow", "purple", "orange", "pink")
    for obj in scene.objects:
        cx, cy = (obj.box.x1 + obj.box.x2) / 2 / 320, (obj.box.y1 + obj.box.y2) / 2 / 240
        k = min(6, int(cy * 7)) * 10 + min(9, int(cx * 10))
        assert labels.centre[k] == 1.0
        assert abs(labels.place[k][0] - cx) <= 0.05 + 1e-6 and abs(labels.place[k][1] - cy) <= 1 / 14 + 1e-6
        if int(labels.centre.sum()) == len(scene.objects):  # no shared patch: the box is this shape's
            want = [obj.box.x1 / 320, obj.box.y1 / 240, obj.box.x2 / 320, obj.box.y2 / 240]
            assert labels.box[k] == pytest.approx(want)
    labelled = {colours[c - 1] for c in labels.classes[:, 0] if c}
    assert labelled <= {o.colour for o in scene.objects} and labelled
    # cell edges are whole pixels (240 / 7 rows is not), so places are within a pixel of the ideal grid
    assert labels.place[0] == pytest.approx([0.05, 1 / 14], abs=3e-3)
    assert labels.place[-1] == pytest.approx([0.95, 13 / 14], abs=3e-3)


def test_vision_pretraining_changes_only_the_tower_and_runs_once(tmp_path: Path, base: Path) -> None:
    """``embedded-vision`` trains model.visual in place, leaves the language model as it was, and is not redone."""
    import shutil

    from safetensors.torch import load_file

    from regionreasoner.trainers.cli import main

    folder = tmp_path / "b"
    shutil.copytree(base, folder)
    before = load_file(str(folder / "model.safetensors"))
    args = ["embedded-vision", "--base", str(folder), "--steps", "3", "--batch", "2", "--threads", "1"]
    assert main(args) == 0
    after = load_file(str(folder / "model.safetensors"))
    assert set(after) == set(before)
    changed = {k for k in before if not bool((before[k] == after[k]).all())}
    assert changed and all(".visual." in k or k.startswith("visual.") for k in changed), sorted(changed)[:5]
    log = [json.loads(line) for line in (folder / "vision-metrics.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 3 and log[-1]["loss"] > 0
    stamp = (folder / "vision-pretrain.json").read_text()
    assert main(args) == 0 and (folder / "vision-pretrain.json").read_text() == stamp  # not trained twice
    assert load_file(str(folder / "model.safetensors"))["lm_head.weight"].equal(before["lm_head.weight"])
    assert main(["embedded-vision", "--base", str(tmp_path / "missing")]) == 2
    other = tmp_path / "q3"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "qwen3_vl"}))
    assert main(["embedded-vision", "--base", str(other)]) == 2  # one line naming the fix, no traceback
    from regionreasoner.trainers.embedded import build_base

    build_base(folder)  # new random weights: the stamp goes, so make model pretrains the new tower
    assert not (folder / "vision-pretrain.json").exists()
