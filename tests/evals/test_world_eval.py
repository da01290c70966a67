"""The synthetic-world evaluation: per-round and per-language scoring, goals, and `regionreasoner-eval synthetic`."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from PIL import Image

from regionreasoner.agent.api import RegionAgent
from regionreasoner.core.citations import render_bbox
from regionreasoner.core.errors import ConfigError, InputError
from regionreasoner.core.geometry import Box
from regionreasoner.core.protocol import AnswerObject, format_action
from regionreasoner.evals.cli import main
from regionreasoner.evals.regiondial import BenchDialogue, load_regiondial
from regionreasoner.evals.results import read_results
from regionreasoner.evals.runner import run_benchmark
from regionreasoner.evals.synthetic import generate_benchmark, load_languages
from regionreasoner.evals.world_report import report_world, world_markdown
from regionreasoner.evals.world_scoring import (
    JudgedTurn,
    WorldGoals,
    WorldObject,
    WorldSummary,
    check_goals,
    cites_reference,
    load_scenes,
    scene_is_precise,
    scene_mentions,
    score_world,
    summarise_world,
)
from regionreasoner.policies.scripted import ScriptedPolicy

# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-dialogue benchmark folder (seed 3, 3..5 rounds, English)."""
    out = tmp_path_factory.mktemp("world")
    return generate_benchmark(out, 6, 3, rounds=(3, 5)).parent


Answer = Callable[[BenchDialogue, int], list[Box]]
"""The boxes a scripted turn answers (original pixels, answer order)."""


def gt_answer(item: BenchDialogue, t: int) -> list[Box]:
    return [item.turns[t].gt_box]


def scene_text(objects: Sequence[WorldObject]) -> str:
    """Every object of the image, named with all its words."""
    return "; ".join(f"a {o.size} {o.colour} {o.texture} {o.kind}" for o in objects[:3])


def absent_object(objects: Sequence[WorldObject]) -> str:
    """Words naming an object the image does not hold (a colour and kind no object has together)."""
    from regionreasoner.core.world import COLOURS as WORLD_COLOURS
    from regionreasoner.core.world import KINDS as WORLD_KINDS

    for kind in WORLD_KINDS:
        for colour in WORLD_COLOURS:
            if not any(o.kind == kind and o.colour == colour for o in objects):
                return f"a {colour} {kind}"
    raise AssertionError("every colour and kind is present")


def scripts(
    bench: Path,
    *,
    answer: Answer = gt_answer,
    scene: Callable[[Sequence[WorldObject]], str] = scene_text,
    cite: Callable[[Box], str] = render_bbox,
) -> list[str]:
    """Turn texts in the order a sequential run asks them; a citing turn's think cites the box the runner renders.

    The runner renders the first answered box of the cited turn (policy frame = original pixels here).
    """
    items = load_regiondial(bench / "synthetic.json")
    scenes = load_scenes(bench / "scenes.json")
    texts = []
    for item in items:
        for t, turn in enumerate(item.turns):
            boxes = answer(item, t)
            objects = [AnswerObject(box=tuple(round(v) for v in b), point=_centre(b)) for b in boxes]  # type: ignore[arg-type]
            k = turn.context_from_turn
            think = "It is there." if k is None else f"It is near {cite(answer(item, k)[0])}."
            focus = None if k is None else "the cited shape"
            texts.append(format_action(scene=scene(scenes[item.image_id]), focus=focus, think=think, objects=objects))
    return texts


def _centre(box: Box) -> tuple[int, int]:
    return (round((box.x1 + box.x2) / 2), round((box.y1 + box.y2) / 2))


def run_scripted(bench: Path, out: Path, texts: list[str]) -> WorldSummary:
    agent = RegionAgent(ScriptedPolicy(texts, frame="pixels"), memory=f"sqlite:///{out}/memory.db")
    try:
        run_benchmark(
            agent, load_regiondial(bench / "synthetic.json"), images=bench, results=out / "results.jsonl", name="w"
        )
    finally:
        agent.close()
    return score_world(bench, out / "results.jsonl")


def rates(summary: WorldSummary) -> tuple[float, float, float | None, float]:
    row = summary.all
    return row.acc50, row.parse_rate, row.citation_rate, row.scene_precision


# ------------------------------------------------------------------------------------------------ through the runner


def test_ground_truth_scores_one_on_every_metric_and_round(world: Path, tmp_path: Path) -> None:
    summary = run_scripted(world, tmp_path, scripts(world))
    assert [r.round for r in summary.rounds] == [1, 2, 3, 4, 5]
    for row in [*summary.rounds, summary.all]:
        assert (row.acc50, row.parse_rate, row.scene_precision) == (1.0, 1.0, 1.0), row
        assert row.citation_rate == (None if row.citing_turns == 0 else 1.0), row
    assert summary.rounds[0].citing_turns == 0 and summary.all.citing_turns > 0
    total = sum(len(i.turns) for i in load_regiondial(world / "synthetic.json"))
    assert summary.all.turns == total
    assert [(r.language, r.turns, r.acc50) for r in summary.languages] == [("en", total, 1.0)]
    assert check_goals(summary) == []
    # The results record the sections the scorer reads.
    results = list(read_results(tmp_path / "results.jsonl"))
    assert all(r.sections is not None and r.sections.scene for r in results)


def test_wrong_boxes_lower_only_acc(world: Path, tmp_path: Path) -> None:
    summary = run_scripted(world, tmp_path, scripts(world, answer=lambda item, t: [Box(0, 0, 1, 1)]))
    assert rates(summary) == (0.0, 1.0, 1.0, 1.0)


def test_acc_scores_the_first_box_only(world: Path, tmp_path: Path) -> None:
    def wrong_then_right(item: BenchDialogue, t: int) -> list[Box]:
        return [Box(0, 0, 1, 1), item.turns[t].gt_box]

    summary = run_scripted(world, tmp_path, scripts(world, answer=wrong_then_right))
    assert rates(summary) == (0.0, 1.0, 1.0, 1.0)
    assert all(r.hit for r in read_results(tmp_path / "results.jsonl")), "the official rule takes any box"


def test_hallucinated_scene_objects_lower_only_scene_precision(world: Path, tmp_path: Path) -> None:
    summary = run_scripted(
        world, tmp_path, scripts(world, scene=lambda objs: f"{scene_text(objs)}; {absent_object(objs)}")
    )
    assert rates(summary) == (1.0, 1.0, 1.0, 0.0)


def test_wrong_citations_lower_only_the_citation_rate(world: Path, tmp_path: Path) -> None:
    def off_by_one(box: Box) -> str:
        return render_bbox((box.x1, box.y1, box.x2 + 1, box.y2))

    summary = run_scripted(world, tmp_path, scripts(world, cite=off_by_one))
    assert rates(summary) == (1.0, 1.0, 0.0, 1.0)
    assert all(row.citation_rate in (None, 0.0) for row in summary.rounds)


@pytest.fixture(scope="module")
def any_language_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, WorldSummary]:
    """The ``world`` dialogues with every turn's language drawn ("any"), answered from the ground truth."""
    out = tmp_path_factory.mktemp("any")
    bench = generate_benchmark(out / "bench", 6, 3, rounds=(3, 5), language="any").parent
    (out / "run").mkdir()
    return bench, run_scripted(bench, out / "run", scripts(bench))


def test_every_language_scores_one_with_ground_truth(world: Path, any_language_run: tuple[Path, WorldSummary]) -> None:
    bench, summary = any_language_run
    english, mixed = load_regiondial(world / "synthetic.json"), load_regiondial(bench / "synthetic.json")
    assert [[t.gt_box for t in d.turns] for d in mixed] == [[t.gt_box for t in d.turns] for d in english]
    assert [d.turns[0].question for d in mixed] != [d.turns[0].question for d in english]
    data = json.loads((bench / "synthetic.json").read_text())
    assert all("language" in turn for item in data for turn in item["conversational_turns"])
    languages = load_languages(bench / "synthetic.json")
    acc, parse, _, scene = rates(summary)
    assert (acc, parse, scene) == (1.0, 1.0, 1.0)
    order = ["en", "zh", "nl", "fr", "hi", "fa", "mix"]
    assert [r.language for r in summary.languages] == [g for g in order if any(g in d for d in languages)]
    assert len(summary.languages) >= 5 and summary.language("mix") is not None
    assert all(r.acc50 == 1.0 for r in summary.languages)
    assert sum(r.turns for r in summary.languages) == summary.all.turns


def test_every_language_cites_with_ground_truth(any_language_run: tuple[Path, WorldSummary]) -> None:
    _, summary = any_language_run
    assert summary.all.citation_rate == 1.0


def test_a_single_language_tags_every_turn(tmp_path: Path) -> None:
    single = generate_benchmark(tmp_path / "zh", 2, 3, rounds=(2, 3), language="zh")
    assert {lang for d in load_languages(single) for lang in d} == {"zh"}


def test_report_files_and_a_run_of_another_benchmark(world: Path, tmp_path: Path) -> None:
    run_scripted(world, tmp_path, scripts(world))
    summary, paths = report_world(world, tmp_path / "results.jsonl", tmp_path / "report")
    assert WorldSummary.model_validate_json(paths.json.read_text()) == summary
    markdown = paths.markdown.read_text()
    assert "| metric | R1 | R2 | R3 | R4 | R5 | All |" in markdown and "| citation rate | – | 100.0 |" in markdown
    assert "| language | en |" in markdown and markdown == world_markdown(summary, title="Synthetic world results")
    with Image.open(paths.plot) as plot:
        assert plot.format == "PNG" and plot.size[0] > 200
    other = generate_benchmark(tmp_path / "other", 6, 4, rounds=(3, 5)).parent
    with pytest.raises(InputError, match="is not in"):
        score_world(other, tmp_path / "results.jsonl")
    shutil.copytree(world, tmp_path / "edited")
    data = json.loads((world / "synthetic.json").read_text())
    data[0]["conversational_turns"][0]["question"] = "Find the other shape."
    (tmp_path / "edited" / "synthetic.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="turn 0 of dialogue 0"):
        score_world(tmp_path / "edited", tmp_path / "results.jsonl")


# ------------------------------------------------------------------------------------------------ pure scoring


def test_scene_mentions_and_precision() -> None:
    objects = [WorldObject(1, "circle", "red", "striped", "small"), WorldObject(2, "star", "blue", "solid", "large")]
    assert scene_mentions("A Small RED circle, circles and a blue solid star.") == [
        ("small", "red", None, "circle"),
        (None, "blue", "solid", "star"),
    ]
    assert scene_is_precise("a small red circle next to a large star", objects)
    assert not scene_is_precise("a large red circle", objects)  # no object is large, red and a circle
    assert not scene_is_precise("a red triangle and a blue star", objects)
    assert not scene_is_precise("some shapes", objects) and not scene_is_precise(None, objects)


def test_citation_needs_the_rendered_integers() -> None:
    question = "Find the circle above bbox=[10, 20, 30, 40]."
    assert cites_reference(question, "It is above bbox=[10, 20, 30, 40].")
    assert cites_reference(question, "above bbox [10,20,30,40]")  # the R_ref reward's spelling
    assert not cites_reference(question, "above bbox=[10, 20, 30, 41]")
    assert not cites_reference(question, None)
    assert not cites_reference("Find the circle.", "bbox=[10, 20, 30, 40]")


def _turns(language: str, n: int, hits: int, *, round_: int = 1) -> list[JudgedTurn]:
    return [JudgedTurn(round_, language, i < hits, True, round_ > 1, True, True) for i in range(n)]


def test_languages_and_goals_with_margin() -> None:
    judged = [
        *_turns("en", 10, 10),
        *_turns("zh", 10, 9, round_=2),
        *_turns("fa", 10, 9, round_=2),
        *_turns("mix", 10, 7, round_=2),
    ]
    summary = summarise_world(judged)
    assert [(r.language, r.turns, r.acc50) for r in summary.languages] == [
        ("en", 10, 1.0),
        ("zh", 10, 0.9),
        ("fa", 10, 0.9),
        ("mix", 10, 0.7),
    ]
    assert summary.language("nl") is None and summary.rounds[1].acc50 == pytest.approx(25 / 30)
    failed = check_goals(summary)
    assert len(failed) == 2, failed
    assert failed[0].startswith("the language gap (en 100.0% vs zh 90.0%) is 10.0%, above the limit of 5.0%")
    assert failed[1].startswith("the mix gap (single languages 93.3% vs mix 70.0%) is 23.3%")
    assert check_goals(summary, margin=0.14) == []
    strict = WorldGoals(later_round_acc=0.9, language_gap=0.2, mix_gap=0.3)
    assert check_goals(summary, strict) == ["round 2 Acc@0.5 is 83.3%, below the goal of 90.0% (margin 0.0%)"]
    with pytest.raises(ConfigError, match="between 0 and 1"):
        WorldGoals(parse_rate=1.5)
    with pytest.raises(ConfigError, match="margin"):
        check_goals(summary, margin=-0.1)


def test_every_goal_can_fail() -> None:
    judged = [JudgedTurn(1, "en", False, False, False, False, False), *_turns("en", 1, 1, round_=2)]
    judged.append(JudgedTurn(2, "en", True, True, True, False, True))
    failed = check_goals(summarise_world(judged))
    assert [f.split(" is ")[0] for f in failed] == [
        "round 1 Acc@0.5",
        "the parse rate",
        "the citation rate",
        "scene precision",
    ]


# ------------------------------------------------------------------------------------------------ files and the CLI


def test_languages_travel_in_synthetic_json(world: Path, tmp_path: Path) -> None:
    assert load_languages(world / "synthetic.json") == [
        ["en"] * len(i.turns) for i in load_regiondial(world / "synthetic.json")
    ]
    data = json.loads((world / "synthetic.json").read_text())
    assert all("language" not in turn for item in data for turn in item["conversational_turns"])
    for item in data:
        for turn, lang in zip(item["conversational_turns"], ["zh", "mix", "fa", "nl", "hi"], strict=False):
            turn["language"] = lang
    tagged = tmp_path / "tagged.json"
    tagged.write_text(json.dumps(data))
    assert load_regiondial(tagged) == load_regiondial(world / "synthetic.json")  # the reader ignores the key
    assert load_languages(tagged)[0][:2] == ["zh", "mix"]
    data[0]["conversational_turns"][0]["language"] = "xx"
    tagged.write_text(json.dumps(data))
    with pytest.raises(InputError, match="'xx'"):
        load_languages(tagged)
    with pytest.raises(ConfigError, match="language='klingon'"):
        generate_benchmark(tmp_path / "k", 1, 0, language="klingon")


def test_cli_writes_only_without_a_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synthetic", "--out", str(tmp_path / "b"), "--n-dialogues", "2", "--rounds", "1-3"]) == 0
    written = json.loads(capsys.readouterr().out)
    assert written["dialogues"] == 2 and max(len(written["turns_per_round"]), 1) <= 3
    assert not (tmp_path / "b" / "world.json").exists()
    assert main(["synthetic", "--out", str(tmp_path / "c"), "--check-goals", "0"]) == 2
    assert "--check-goals needs --model" in capsys.readouterr().err
    assert main(["synthetic", "--out", str(tmp_path / "c"), "--rounds", "4-2"]) == 2
    assert "not a range of rounds" in capsys.readouterr().err


def test_cli_runs_the_tiny_model_end_to_end(
    tiny_qwen25: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["synthetic", "--out", str(tmp_path), "--model", str(tiny_qwen25), "--n-dialogues", "2", "--rounds", "1-2"]
    args += ["--max-new-tokens", "12", "--section-chars", "4", "--max-objects", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    printed = json.loads(out.strip().splitlines()[-1])
    assert "| metric | R1 |" in out and "| language |" in out
    world = json.loads((tmp_path / "world.json").read_text())
    assert sum(row["turns"] for row in world["languages"]) == world["all"]["turns"]  # --language any by default
    assert "language" in json.loads((tmp_path / "bench" / "synthetic.json").read_text())[0]["conversational_turns"][0]
    assert world["all"]["turns"] == printed["turns"] == printed["scored_now"] > 0
    assert (tmp_path / "bench" / "synthetic.json").is_file() and (tmp_path / "run" / "results.jsonl").is_file()
    assert (tmp_path / "run" / "summary.json").is_file() and "| Acc@0.5 |" in (tmp_path / "world.md").read_text()
    with Image.open(tmp_path / "world_rounds.png") as plot:
        assert plot.size[0] > 200
    # Rerun: every turn is found done; the untrained model misses the goals (exit 3, one line per goal).
    assert main([*args, "--check-goals", "0.0"]) == 3
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["scored_now"] == 0
    assert "goal missed: round 1 Acc@0.5" in captured.err
