"""The training-data builder: decomposition, relation words, frames, feeding modes, traces, official JSON, Dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from regionreasoner.core.citations import render_bbox, render_region
from regionreasoner.core.frames import FixedResizeFrame, NormalizedFrame, frame_from_spec
from regionreasoner.core.geometry import Box, Point
from regionreasoner.core.prompts import get_prompt
from regionreasoner.core.protocol import parse_action
from regionreasoner.core.relations import Relation, holds
from regionreasoner.trainers.data import (
    SYSTEM_PROMPT,
    SourceObject,
    SourceSample,
    TrainingSet,
    build_records,
    build_synthetic,
    build_training_set,
    chain_rounds,
    decompose,
    load_regionreasoner,
    load_visionreasoner,
    split_problem,
    user_text,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "train"
FRAME = FixedResizeFrame(840, 840)
TEMPLATE = get_prompt("regionreasoner-train")


def _sample(boxes: list[tuple[float, float, float, float]], size: tuple[int, int] = (840, 840)) -> SourceSample:
    phrases = [f"object {i}" for i in range(len(boxes))]
    problem = "'" + "' and '".join(phrases) + "'"
    objects = tuple(
        SourceObject(box=Box(*b), point=Box(*b).center, phrase=p) for b, p in zip(boxes, phrases, strict=True)
    )
    return SourceSample(
        id="s",
        source="visionreasoner",
        image=Image.new("RGB", size),
        image_size=size,
        problem=problem,
        objects=objects,
    )


# (reference, target) pairs in 840x840 pixels, one for each relation word of the vocabulary
GEOMETRIES = {
    Relation.INSIDE: ((100, 100, 300, 300), (110, 110, 150, 150)),
    Relation.TOUCHING: ((101, 0, 200, 100), (0, 0, 100, 100)),
    Relation.OVERLAPPING: ((50, 50, 150, 150), (0, 0, 100, 100)),
    Relation.NEXT_TO: ((120, 0, 220, 100), (0, 0, 100, 100)),
    Relation.ABOVE: ((0, 300, 100, 400), (0, 0, 100, 100)),
    Relation.BELOW: ((0, 0, 100, 100), (0, 300, 100, 400)),
    Relation.LEFT_OF: ((400, 0, 500, 100), (0, 0, 100, 100)),
    Relation.RIGHT_OF: ((0, 0, 100, 100), (400, 0, 500, 100)),
}


@pytest.mark.parametrize("relation", list(GEOMETRIES), ids=lambda r: r.value)
def test_later_rounds_state_the_relation_that_holds(relation: Relation) -> None:
    reference, target = GEOMETRIES[relation]
    dialogue = decompose(_sample([reference, target]), FRAME)
    first, second = dialogue.rounds
    assert first.question == "object 0" and first.reference is None
    assert second.relation is relation and second.context_from_round == 0
    assert second.reference == reference
    assert second.question == f"Also find object 1, {relation.phrase} {render_bbox(reference)}."
    assert holds(relation, Box(*target), Box(*reference))


def test_multi_object_samples_give_one_round_per_object_each_with_its_own_solution() -> None:
    boxes = [(0, 0, 100, 100), (400, 0, 500, 100), (400, 500, 500, 600), (410, 510, 450, 550)]
    dialogue = decompose(_sample(boxes), FRAME)
    assert len(dialogue.rounds) == 4
    for rnd, box in zip(dialogue.rounds, boxes, strict=True):
        (item,) = json.loads(rnd.solution())
        assert item["bbox_2d"] == list(box)
    # each round cites the previous one: right of, below, inside
    assert [r.relation for r in dialogue.rounds[1:]] == [Relation.RIGHT_OF, Relation.BELOW, Relation.INSIDE]
    assert [r.context_from_round for r in dialogue.rounds[1:]] == [0, 1, 2]


def test_a_sample_that_does_not_name_its_objects_stays_one_round() -> None:
    sample = _sample([(0, 0, 10, 10), (20, 20, 30, 30)])
    unnamed = SourceSample(
        id="u",
        source="visionreasoner",
        image=sample.image,
        image_size=sample.image_size,
        problem="'all the cups'",
        objects=tuple(SourceObject(box=o.box, point=o.point) for o in sample.objects),
    )
    (only,) = decompose(unnamed, FRAME).rounds
    assert only.question == "'all the cups'" and len(only.targets) == 2


@pytest.mark.parametrize("spec", ["fixed:840x840", "norm:1000", "pixels"])
def test_the_reference_box_is_the_policy_frame_rendering(spec: str) -> None:
    size = (640, 480)
    reference, target = Box(40, 60, 200, 220), Box(260, 80, 380, 200)
    frame = frame_from_spec(spec)
    dialogue = decompose(_sample([tuple(reference), tuple(target)], size), frame)
    second = dialogue.rounds[1]
    text = render_region(reference, frame, size)
    assert second.reference_text == text and text in second.question
    assert second.reference == frame.box_to_model(reference, size)
    assert json.loads(second.solution())[0]["bbox_2d"] == list(frame.box_to_model(target, size))
    assert dialogue.image_size == (frame.resized_image_size(size) or size)


def test_fixed_frame_example_coordinates() -> None:
    dialogue = decompose(_sample([(40, 60, 200, 220), (260, 80, 380, 200)], (640, 480)), FRAME)
    assert dialogue.rounds[1].question == "Also find object 1, next to bbox=[53, 105, 263, 385]."
    assert dialogue.image_size == (840, 840)


def test_split_problem() -> None:
    assert split_problem("'a' and 'b' and 'the man's hat'") == ["a", "b", "the man's hat"]
    assert split_problem("find the dog") == ["find the dog"]


def test_visionreasoner_fixture_loads_and_decomposes() -> None:
    samples = load_visionreasoner(DATA / "visionreasoner.json")
    assert [s.id for s in samples] == ["lvis_15266", "refcocog_dogs_1", "shapes_3"]
    assert [len(s.objects) for s in samples] == [1, 2, 3]
    assert samples[0].original_size == (512, 640) and samples[0].image_size == (840, 840)
    assert samples[2].objects[1].phrase == "the blue circle" and samples[2].objects[1].point == Point(320, 140)
    jsonl = load_visionreasoner(DATA / "visionreasoner.jsonl")
    assert [s.problem for s in jsonl] == [s.problem for s in samples]
    dogs = decompose(samples[1], FRAME)
    assert dogs.rounds[0].question == "a black and white dog laying down, looking away from the camera"
    # the talk's two dogs: boxes that share an edge
    assert dogs.rounds[1].question == "Also find the standing dog, touching bbox=[0, 457, 374, 672]."


def test_regionreasoner_rounds_are_chained_into_dialogues() -> None:
    samples = load_regionreasoner(DATA / "regionreasoner_train.json")
    dialogues = chain_rounds(samples, FRAME)
    assert [d.id for d in dialogues] == ["rr_0", "rr_3"]
    chain = dialogues[0]
    assert [r.context_from_round for r in chain.rounds] == [None, 0, 1]
    assert [r.relation for r in chain.rounds] == [None, Relation.NEXT_TO, Relation.ABOVE]
    assert chain.rounds[1].question == "Also find the standing dog, next to bbox=[0, 457, 374, 672]."
    # shapes_640x480: the policy frame scales the boxes to 840x840
    assert json.loads(dialogues[1].rounds[0].solution())[0]["bbox_2d"] == [53, 105, 263, 385]


def test_loader_errors_name_the_sample_and_the_fix(tmp_path: Path) -> None:
    from regionreasoner.core.errors import InputError

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"problem": "'a'", "solution": "[]", "image": "x.png"}]))
    with pytest.raises(InputError, match=r"sample 0 .*solution"):
        load_visionreasoner(bad)
    bad.write_text(json.dumps([{"problem": "'a'", "solution": '[{"bbox_2d": [0, 0, 1, 1]}]', "image": "x.png"}]))
    with pytest.raises(InputError, match=r"image x\.png not found"):
        load_visionreasoner(bad)


def test_official_and_multiturn_prompt_layouts() -> None:
    dialogues = [decompose(s, FRAME) for s in load_visionreasoner(DATA / "visionreasoner.json")]
    official = build_records(dialogues, "official")
    multiturn = build_records(dialogues, "multiturn")
    assert [r.id for r in official] == [r.id for r in multiturn]
    assert len(official) == 1 + 2 + 3
    for o, m in zip(official, multiturn, strict=True):
        assert o.problem == m.problem and o.solution == m.solution
        user = user_text(o.problem, TEMPLATE)
        assert user.startswith('\nPlease find "') and "<image>" not in user
        # official: system + one user message with the image, whatever the round
        assert [(x.role, x.image) for x in o.prompt] == [("system", False), ("user", True)]
        assert o.prompt[0].text == SYSTEM_PROMPT and o.prompt[1].text == user
        # multiturn: system, then (user, assistant) for each earlier round, then this round's user message
        assert [x.role for x in m.prompt] == ["system", *["user", "assistant"] * m.round, "user"]
        assert [x.image for x in m.prompt].count(True) == 1 and m.prompt[1].image
        assert m.prompt[-1].text == user
    shapes = [m for m in multiturn if m.dialogue_id == "shapes_3"]
    last = shapes[-1].prompt
    assert last[1].text == user_text(shapes[0].problem, TEMPLATE)
    assert last[2].text == '<answer>[{"bbox_2d": [53,105,263,385], "point_2d": [158,245]}]</answer>'
    assert last[3].text == user_text(shapes[1].problem, TEMPLATE)
    assert official[0].prompt[1].to_dict()["content"][0] == {"type": "image"}


def test_synthetic_traces_parse_and_cite_the_reference_exactly() -> None:
    dialogues = build_synthetic(12, 5, FRAME)
    relations: set[Relation] = set()
    for dialogue in dialogues:
        assert dialogue.image_size == (840, 840)
        for rnd in dialogue.rounds:
            assert rnd.trace is not None and "<box>" not in rnd.question
            parsed = parse_action(rnd.trace, bounds=(840, 840), expect_focus=rnd.reference is not None)
            assert parsed.ok and not parsed.problems, parsed.problems
            (obj,) = parsed.objects
            assert tuple(int(v) for v in obj.box) == rnd.targets[0].box
            assert parsed.sections.scene and parsed.sections.scene.startswith("The image shows")
            if rnd.reference is None:
                assert parsed.citations == [] and parsed.sections.focus is None
                continue
            assert rnd.relation is not None
            relations.add(rnd.relation)
            assert {tuple(int(v) for v in c) for c in parsed.citations} == {rnd.reference}
            assert render_bbox(rnd.reference) in rnd.question
            assert f"'target is {rnd.relation.phrase} the reference'" in (parsed.sections.think or "")
            assert rnd.context_from_round is not None
            cited = dialogue.rounds[rnd.context_from_round].targets[0].box
            assert cited == rnd.reference
    assert len(relations) >= 4


def test_synthetic_build_is_deterministic() -> None:
    a = build_training_set("synthetic", "official", count=3, seed=2)
    b = build_training_set("synthetic", "official", count=3, seed=2)
    assert [r.completion[0].text for r in a.records if r.completion] == [
        r.completion[0].text for r in b.records if r.completion
    ]


def test_official_json_round_trips_through_the_regionreasoner_loader(tmp_path: Path) -> None:
    training_set = build_training_set("synthetic", "official", count=3, seed=4)
    saved = training_set.save(tmp_path, dataset=False)
    payload = json.loads(saved.official_json.read_text())
    assert set(payload) == {"samples"}
    first = payload["samples"][0]
    assert {"id", "problem", "solution", "image", "img_height", "img_width"} <= set(first)
    assert (first["img_width"], first["img_height"]) == (320, 240)
    with Image.open(tmp_path / first["image"]) as image:
        assert image.size == (840, 840)
    reloaded = load_regionreasoner(saved.official_json)
    assert [s.problem for s in reloaded] == [r.problem for r in training_set.records]
    # the images are in the policy's size already, so boxes and dialogues come back unchanged
    again = chain_rounds(reloaded, FRAME)
    assert [d.id for d in again] == ["synthetic_4_0", "synthetic_4_1", "synthetic_4_2"]
    assert [r.solution() for d in again for r in d.rounds] == [r.solution for r in training_set.records]
    assert [r.context_from_round for d in again for r in d.rounds] == [
        r.context_from_round for r in training_set.records
    ]


def test_dataset_has_trl_columns_and_an_image_feature(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets", reason="the train extra (datasets) is not installed")
    training_set = build_training_set("synthetic", "multiturn", count=2, seed=1)
    ds = training_set.to_dataset(cache_dir=tmp_path / "cache")
    assert isinstance(ds, datasets.Dataset) and len(ds) == len(training_set.records)
    assert {"prompt", "image", "problem", "solution", "completion"} <= set(ds.column_names)
    assert isinstance(ds.features["image"], datasets.Image)
    row = ds[len(ds) - 1]
    assert row["image"].size == (840, 840)
    placeholders = [p for m in row["prompt"] for p in m["content"] if p["type"] == "image"]
    assert len(placeholders) == 1 and "image" not in placeholders[0]  # TRL fills it from the image column
    assert row["completion"][0]["role"] == "assistant"
    assert row["completion"][0]["content"][0]["text"].startswith("<scene>")
    assert row["prompt"][-1]["content"][-1]["text"] == user_text(row["problem"], TEMPLATE)


def test_file_sources_have_no_completion_column(tmp_path: Path) -> None:
    pytest.importorskip("datasets", reason="the train extra (datasets) is not installed")
    training_set = build_training_set("visionreasoner", "official", input_path=DATA / "visionreasoner.json")
    assert not training_set.has_completions
    saved = training_set.save(tmp_path / "out")
    from datasets import load_from_disk

    ds = load_from_disk(str(saved.dataset))
    assert "completion" not in ds.column_names and len(ds) == 6
    assert ds[0]["image"].size == (840, 840) and ds[5]["image"].size == (840, 840)
    assert not (tmp_path / "out" / ".cache").exists()


def test_an_empty_set_is_refused() -> None:
    from regionreasoner.core.errors import ConfigError

    with pytest.raises(ConfigError, match="at least one record"):
        TrainingSet(())


def test_normalized_frame_keeps_the_image_size() -> None:
    dialogue = decompose(_sample([(0, 0, 64, 48), (320, 0, 640, 48)], (640, 480)), NormalizedFrame(1000))
    assert dialogue.image_size == (640, 480)
    assert dialogue.rounds[1].reference == (0, 0, 100, 100)


def test_the_world_lives_in_core_and_evals_re_exports_it() -> None:
    import numpy as np

    from regionreasoner.core import world
    from regionreasoner.evals import synthetic, synthetic_world
    from regionreasoner.evals.regiondial import CONTEXT_PLACEHOLDER

    assert synthetic_world.make_scene is world.make_scene and synthetic.make_dialogue is world.make_dialogue
    assert world.CONTEXT_PLACEHOLDER == CONTEXT_PLACEHOLDER
    for seed in range(5):
        for obj in world.make_scene(seed).objects:
            point = world.inner_point(obj.mask)
            assert obj.mask[int(point.y), int(point.x)], (seed, obj.kind)
    ring = np.zeros((40, 40), dtype=bool)
    ring[5:35, 5:35] = True
    ring[15:25, 15:25] = False
    p = world.inner_point(ring)
    assert ring[int(p.y), int(p.x)]


def test_synthetic_dataset_and_load_saved_dataset(tmp_path: Path) -> None:
    pytest.importorskip("datasets", reason="the train extra (datasets) is not installed")
    from regionreasoner.core.errors import InputError
    from regionreasoner.trainers.data import load_saved_dataset, synthetic_dataset

    ds = synthetic_dataset(count=2, seed=9, mode="official", cache_dir=tmp_path / "cache")
    assert "completion" in ds.column_names and all(len(p) == 2 for p in ds["prompt"])
    build_training_set("synthetic", "official", count=2, seed=9).save(tmp_path / "out")
    assert load_saved_dataset(tmp_path / "out")["problem"] == ds["problem"]
    assert len(load_saved_dataset(tmp_path / "out" / "dataset")) == len(ds)
    with pytest.raises(InputError, match="holds no saved dataset"):
        load_saved_dataset(tmp_path)


@pytest.mark.parametrize("name", ["decompose", "sources"])
def test_docstring_examples(name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(f"regionreasoner.trainers.data.{name}"))
    assert result.attempted > 0 and result.failed == 0
