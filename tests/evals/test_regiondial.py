import importlib.util
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from regionreasoner.core.errors import InputError
from regionreasoner.core.geometry import Box
from regionreasoner.core.masks import decode_rle, encode_rle
from regionreasoner.evals.cli import main as eval_cli
from regionreasoner.evals.regiondial import (
    CONTEXT_PLACEHOLDER,
    CONTEXT_PLACEHOLDER_2,
    BenchDialogue,
    BenchmarkFormatError,
    BenchTurn,
    context_box_text,
    fill_context,
    load_regiondial,
    parse_regiondial,
    regiondial_stats,
    resolve_context,
    write_regiondial,
)

# The official question files sit next to the checkout on development machines; CI clones only the project.
OFFICIAL = Path(os.environ.get("REGIONDIAL_DIR", Path(__file__).resolve().parents[3] / "shared/data/regiondial"))
needs_official = pytest.mark.skipif(
    not (OFFICIAL / "refcocog.json").is_file(),
    reason=f"official RegionDial-Bench question files not present at {OFFICIAL} (not part of the project)",
)
# A few dozen official dialogues, vendored with their quirks (tests/data/regiondial/README.md): the tests of the real
# format below run in every CI; the ones above check the full files where they are present.
EXCERPT = Path(__file__).resolve().parents[1] / "data/regiondial"
TEMPLATE = "refcocog_test_multi_bbox_images/{image_id}.jpg"


@needs_official
def test_official_refcocoplus_counts() -> None:
    stats = regiondial_stats(load_regiondial(OFFICIAL / "refcocoplus.json"))
    assert stats["images"] == 715
    assert stats["turns"] == 2289
    assert stats["turns_citing"] == 1195
    assert stats["turns_per_round"] == [715, 715, 308, 257, 157, 68, 34, 19, 6, 6, 2, 2]


@needs_official
def test_official_refcocog_counts_and_quirks() -> None:
    path = OFFICIAL / "refcocog.json"
    with pytest.raises(BenchmarkFormatError, match=r"missing field 'image_path'.*image_path_template"):
        load_regiondial(path)
    with pytest.raises(BenchmarkFormatError, match=r"image_id 151699 .* turn 1: context_from_turn=1 does not point"):
        load_regiondial(path, image_path_template="refcocog_test_multi_bbox_images/{image_id}.jpg")
    dialogues = load_regiondial(
        path, allow_forward_context=True, image_path_template="refcocog_test_multi_bbox_images/{image_id}.jpg"
    )
    stats = regiondial_stats(dialogues)
    assert stats["images"] == 1580
    assert stats["turns"] == 4115
    assert stats["turns_citing"] == 2491
    assert stats["turns_per_round"] == [1580, 1580, 568, 269, 81, 28, 7, 1, 1]
    assert stats["context_not_earlier"] == 4 and stats["second_context"] == 1
    # the derived image paths are the ones the rephrased copy of the file spells out
    rephrased = load_regiondial(OFFICIAL / "refcocog_r1.json", allow_forward_context=True)
    assert [d.image_path for d in dialogues] == [d.image_path for d in rephrased]
    lenient = load_regiondial(path, allow_forward_context=True, require_image_path=False)
    assert regiondial_stats(lenient)["missing_image_path"] == 1418


@needs_official
def test_official_example_context_rule() -> None:
    (dialogue,) = load_regiondial(OFFICIAL / "example.json")
    assert dialogue.image_id == 12424 and len(dialogue.turns) == 5
    turn3 = dialogue.turns[3]
    assert turn3.context_from_turn == 0 and CONTEXT_PLACEHOLDER in turn3.question
    # turn 0 predicted a box: it fills the placeholder; turn 1 failed: its GT box does
    predictions = {0: [Box(100.4, 7, 220.6, 253)], 1: [], 2: [Box(1, 1, 5, 5)]}
    resolved = resolve_context(dialogue, 3, predictions)
    assert resolved is not None
    box, source = resolved
    assert source == "pred" and fill_context(turn3.question, context_box_text(box)) == (
        "Find the person closer to the front person [100, 7, 221, 253]."
    )
    assert resolve_context(dialogue, 4, predictions) == (Box(9, 9, 121, 255), "gt")
    assert resolve_context(dialogue, 0, predictions) is None


def test_excerpt_refcocoplus_counts() -> None:
    stats = regiondial_stats(load_regiondial(EXCERPT / "refcocoplus.json"))
    assert (stats["images"], stats["dialogues"], stats["turns"], stats["turns_citing"]) == (18, 18, 69, 34)
    assert stats["turns_per_round"] == [18, 18, 8, 5, 5, 3, 3, 3, 2, 2, 1, 1]
    assert (stats["placeholder_without_context"], stats["context_without_placeholder"]) == (1, 2)
    assert stats["turns_with_masks"] == 0 and stats["missing_image_path"] == 0  # the official files hold no masks
    for rephrased in ("refcocoplus_r1.json", "refcocoplus_r2.json"):
        copy = load_regiondial(EXCERPT / rephrased)
        assert [d.image_id for d in copy] == [d.image_id for d in load_regiondial(EXCERPT / "refcocoplus.json")]
        assert regiondial_stats(copy)["turns_per_round"] == stats["turns_per_round"]


def test_excerpt_refcocog_counts_and_quirks() -> None:
    path = EXCERPT / "refcocog.json"
    with pytest.raises(BenchmarkFormatError, match=r"image_id 59034 .*missing field 'image_path'.*image_path_template"):
        load_regiondial(path)
    with pytest.raises(BenchmarkFormatError, match=r"image_id 151699 .* turn 1: context_from_turn=1 does not point"):
        load_regiondial(path, image_path_template=TEMPLATE)
    dialogues = load_regiondial(path, allow_forward_context=True, image_path_template=TEMPLATE)
    stats = regiondial_stats(dialogues)
    assert (stats["images"], stats["dialogues"], stats["turns"], stats["turns_citing"]) == (24, 24, 75, 48)
    assert stats["turns_per_round"] == [24, 24, 12, 7, 3, 2, 1, 1, 1]
    assert stats["context_not_earlier"] == 4 and stats["second_context"] == 1
    assert (stats["placeholder_without_context"], stats["context_without_placeholder"]) == (1, 2)
    by_id = {d.image_id: d for d in dialogues}
    assert by_id[151699].turns[1].context_from_turn == 1  # cites itself: filled with its own GT box
    assert resolve_context(by_id[151699], 1, {0: [Box(0, 0, 1, 1)]}) == (by_id[151699].turns[1].gt_box, "gt")
    second = by_id[188911].turns
    assert (second[2].context_from_turn, second[2].context_from_turn_2) == (0, 1)
    assert CONTEXT_PLACEHOLDER_2 in second[2].question  # never filled by the official script
    # the derived image paths are the ones the rephrased copy of the file spells out
    rephrased = load_regiondial(EXCERPT / "refcocog_r1.json", allow_forward_context=True)
    assert [d.image_path for d in dialogues] == [d.image_path for d in rephrased]
    lenient = load_regiondial(path, allow_forward_context=True, require_image_path=False)
    assert regiondial_stats(lenient)["missing_image_path"] == 11
    assert sum(d.image_path is None for d in lenient) == 11


def test_excerpt_example_context_rule() -> None:
    (dialogue,) = load_regiondial(EXCERPT / "example.json")
    assert dialogue.image_id == 12424 and len(dialogue.turns) == 5
    predictions = {0: [Box(100.4, 7, 220.6, 253)], 1: [], 2: [Box(1, 1, 5, 5)]}
    resolved = resolve_context(dialogue, 3, predictions)
    assert resolved is not None and resolved[1] == "pred"
    assert fill_context(dialogue.turns[3].question, context_box_text(resolved[0])) == (
        "Find the person closer to the front person [100, 7, 221, 253]."
    )
    assert resolve_context(dialogue, 4, predictions) == (Box(9, 9, 121, 255), "gt")


def test_excerpt_through_the_cli_stats(capsys: pytest.CaptureFixture[str]) -> None:
    assert eval_cli(["stats", str(EXCERPT / "refcocog.json")]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["images"], stats["turns"], stats["missing_image_path"]) == (24, 75, 11)
    assert eval_cli(["stats", "--strict", str(EXCERPT / "refcocog.json")]) == 2
    assert "image_path" in capsys.readouterr().err


def test_excerpt_is_small_and_has_no_masks() -> None:
    files = sorted(EXCERPT.glob("*.json"))
    assert {f.name for f in files} == {
        "example.json",
        "refcocog.json",
        "refcocog_r1.json",
        "refcocoplus.json",
        "refcocoplus_r1.json",
        "refcocoplus_r2.json",
    }
    assert sum(f.stat().st_size for f in files) < 200_000
    for f in files:
        assert all("masks" not in turn for d in json.loads(f.read_text()) for turn in d["conversational_turns"])


@needs_official
def test_excerpt_is_cut_from_the_official_files(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("cut_excerpt", EXCERPT / "cut_excerpt.py")
    assert spec is not None and spec.loader is not None
    cut = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cut)
    assert cut.main([str(OFFICIAL), str(tmp_path)]) == 0
    for made in sorted(tmp_path.iterdir()):
        assert made.read_bytes() == (EXCERPT / made.name).read_bytes(), f"{made.name} differs from its cut"
    assert {p.name for p in tmp_path.iterdir()} == {p.name for p in EXCERPT.glob("*.json")}


def test_resolve_context_uses_gt_for_forward_references() -> None:
    data = [_item(conversational_turns=[_turn(), _turn(context_from_turn=1)])]
    (dialogue,) = parse_regiondial(data, allow_forward_context=True)
    assert resolve_context(dialogue, 1, {1: [Box(0, 0, 1, 1)]}) == (Box(1, 2, 30, 40), "gt")


def _turn(**extra: Any) -> dict[str, Any]:
    return {"question": "Find the cat.", "bboxes": [[1, 2, 30, 40]], **extra}


def _item(**extra: Any) -> dict[str, Any]:
    return {"image_id": 5, "image_path": "images/5.jpg", "conversational_turns": [_turn()], **extra}


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ({"not": "a list"}, "JSON list of dialogues"),
        ([_item(image_id=None)], r"\(item 0\): missing or invalid field 'image_id'"),
        ([_item(conversational_turns=[])], "image_id 5 .*'conversational_turns'"),
        ([_item(image_path=None)], "image_id 5 .*missing field 'image_path'"),
        ([_item(conversational_turns=[{"bboxes": [[0, 0, 1, 1]]}])], "image_id 5 .*turn 0: missing field 'question'"),
        ([_item(conversational_turns=[{"question": "q"}])], "turn 0: missing field 'bboxes'"),
        ([_item(conversational_turns=[_turn(bboxes=[])])], "turn 0: 'bboxes' must be a non-empty list"),
        ([_item(conversational_turns=[_turn(bboxes=[[1, 2, 3]])])], r"turn 0 bboxes\[0\]: a box needs 4 numbers"),
        ([_item(conversational_turns=[_turn(bboxes=[[1, 2, 3, math.nan]])])], "must be finite numbers"),
        ([_item(conversational_turns=[_turn(bboxes=[[1, 2, 3, math.inf]])])], "must be finite numbers"),
        ([_item(conversational_turns=[_turn(bboxes=[[1, 2, "3", 4]])])], "must be finite numbers"),
        ([_item(conversational_turns=[_turn(bboxes=[[30, 2, 3, 40]])])], "inverted box.*x1 <= x2"),
        (
            [_item(conversational_turns=[_turn(), _turn(context_from_turn=1)])],
            "turn 1: context_from_turn=1 does not point to an earlier turn.*allow_forward_context=True",
        ),
        (
            [_item(conversational_turns=[_turn(context_from_turn=0)])],
            "turn 0: context_from_turn=0 does not point to an earlier turn .none: the first turn",
        ),
        ([_item(conversational_turns=[_turn(), _turn(context_from_turn=5)])], "context_from_turn=5 is not a turn"),
        ([_item(conversational_turns=[_turn(), _turn(context_from_turn=True)])], "context_from_turn=True is not"),
        (
            [_item(conversational_turns=[_turn(masks=[[[0, 1], [1, 0]], [[0, 1, 1], [1, 0, 0]]])])],
            r"turn 0: masks have different sizes \[\(2, 2\), \(2, 3\)\]",
        ),
        (
            [_item(conversational_turns=[_turn(masks=[[[0, 1], [1, 0]]]), _turn(masks=[[[0, 1, 1], [1, 0, 0]]])])],
            "image_id 5 .*masks of different turns have different sizes",
        ),
        ([_item(conversational_turns=[_turn(masks=[[[0, 1], [1]]])])], "mask rows have different lengths"),
        ([_item(conversational_turns=[_turn(masks=[[[0, "x"], [1, 0]]])])], "mask is not an HxW 0/1 array"),
        ([_item(conversational_turns=[_turn(masks=[{"counts": "abc"}])])], r"masks\[0\]: not a COCO RLE dict"),
        ([_item(conversational_turns=[_turn(masks=[7])])], "a mask must be an HxW 0/1 nested list or an RLE dict"),
        (
            [_item(img_height=3, img_width=2, conversational_turns=[_turn(masks=[[[0, 1], [1, 0]]])])],
            r"mask size \(2, 2\) differs from img_height x img_width \(3, 2\)",
        ),
        ([_item(conversational_turns=[_turn(ann_ids=7)])], "'ann_ids' must be a list of ids"),
    ],
)
def test_malformed_inputs_raise_a_typed_error_naming_the_place(data: Any, pattern: str) -> None:
    with pytest.raises(BenchmarkFormatError, match=pattern) as info:
        parse_regiondial(data)
    assert isinstance(info.value, InputError) and info.value.hint  # the message carries a fix


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkFormatError, match="does not exist"):
        load_regiondial(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text('[{"image_id": 1,')
    with pytest.raises(BenchmarkFormatError, match="not valid JSON"):
        load_regiondial(broken)


def test_masks_load_from_nested_lists_and_rle_as_their_union() -> None:
    a = np.zeros((4, 6), dtype=bool)
    a[0:2, 0:2] = True
    b = np.zeros((4, 6), dtype=bool)
    b[1:3, 4:6] = True
    rle_b = encode_rle(b)
    data = [
        _item(conversational_turns=[_turn(masks=[a.astype(int).tolist(), {"size": [4, 6], "counts": rle_b.counts}])])
    ]
    (dialogue,) = parse_regiondial(data)
    mask = dialogue.turns[0].masks
    assert mask is not None and np.array_equal(decode_rle(mask), a | b)


def test_write_then_load_round_trip(tmp_path: Path) -> None:
    mask = np.zeros((50, 60), dtype=bool)
    mask[2:40, 1:30] = True
    dialogues = [
        BenchDialogue(
            image_id=3,
            image_path="images/3.png",
            turns=[
                BenchTurn(question="Find the red circle.", gt_boxes=[Box(1, 2, 30, 40)], masks=encode_rle(mask)),
                BenchTurn(
                    question=f"Find the square below {CONTEXT_PLACEHOLDER}.",
                    gt_boxes=[Box(1.5, 41, 20, 49)],
                    context_from_turn=0,
                    ann_ids=[4],
                ),
            ],
        ),
        BenchDialogue(
            image_id="x7", image_path="images/x7.png", turns=[BenchTurn(question="q", gt_boxes=[Box(0, 0, 1, 1)])]
        ),
    ]
    path = write_regiondial(tmp_path / "bench.json", dialogues)
    assert load_regiondial(path) == dialogues
    raw = json.loads(path.read_text())
    assert raw[0]["conversational_turns"][0]["bboxes"] == [[1, 2, 30, 40]]  # ints stay ints
    assert raw[0]["conversational_turns"][0]["masks"][0]["size"] == [50, 60]
    assert isinstance(raw[0]["conversational_turns"][0]["masks"][0]["counts"], str)


def test_fill_context_and_box_text() -> None:
    question = f"Find the guy near the {CONTEXT_PLACEHOLDER}."
    assert (
        fill_context(question, context_box_text(Box(47, 107, 303, 466))) == "Find the guy near the [47, 107, 303, 466]."
    )
    assert context_box_text(Box(0.49, 0.5, 10.5, 11.2)) == "[0, 1, 11, 11]"
    assert fill_context("no placeholder", "[1, 2, 3, 4]") == "no placeholder"


def test_stats_of_a_small_file() -> None:
    data = [
        _item(
            conversational_turns=[
                _turn(),
                _turn(question=f"the dog to the left of {CONTEXT_PLACEHOLDER}", context_from_turn=0),
            ]
        ),
        _item(image_id=6, conversational_turns=[_turn(question=f"next to {CONTEXT_PLACEHOLDER}")]),
    ]
    stats = regiondial_stats(parse_regiondial(data))
    assert stats["images"] == 2 and stats["dialogues"] == 2 and stats["turns"] == 3
    assert stats["turns_citing"] == 1 and stats["turns_per_round"] == [2, 1]
    assert stats["placeholder_without_context"] == 1 and stats["relations"] == {"left_of": 1}
