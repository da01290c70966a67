"""``--protocol official`` maps noisy answers to boxes and scores exactly as the released evaluation does.

The expected values are worked out by hand from the released rules (lmsdss/RegionReasoner@f34dbfc, cited in
docs/evaluation.md): the image is 420x210, so ``x_factor = 420 / 840 = 0.5`` and ``y_factor = 210 / 840 = 0.25``
and every model coordinate ``v`` becomes ``int(v * factor + 0.5)``, truncated toward zero; box IoU is computed on
those integer boxes as they are (negative, beyond the image, inverted); a turn whose answer lacks a point keeps its
box (and its hit) with an empty mask; a later turn citing it gets ``str(boxes[0])`` pasted into its question.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.context import Context
from regionreasoner.core.errors import ConfigError
from regionreasoner.core.geometry import Box, Point
from regionreasoner.core.images import LoadedImage
from regionreasoner.core.masks import Rle, box_to_mask, decode_rle, encode_rle
from regionreasoner.core.types import TurnStatus
from regionreasoner.evals.metrics import summarise
from regionreasoner.evals.regiondial import BenchDialogue, BenchTurn
from regionreasoner.evals.results import TurnResult, read_results
from regionreasoner.evals.runner import run_benchmark
from regionreasoner.policies.scripted import ScriptedPolicy

W, H = 420, 210

# (question, cited turn, GT box in original pixels, the answer objects in the 840x840 frame)
TURNS: list[tuple[str, int | None, list[int], list[dict[str, list[int]]]]] = [
    ("Find the red square.", None, [0, 0, 100, 100], [{"bbox_2d": [-2, -6, 200, 404], "point_2d": [100, 200]}]),
    (
        "Find the shape right of <box>{context_bbox}</box>.",
        0,
        [300, 100, 420, 210],
        [{"bbox_2d": [600, 400, 845, 850], "point_2d": [700, 600]}],
    ),
    ("Find the green bar.", None, [200, 0, 300, 50], [{"bbox_2d": [400, 0, 600, 200]}]),
    ("Find the blue block.", None, [0, 100, 50, 200], [{"bbox_2d": [-101, 400, 100, 800], "point_2d": [50, 600]}]),
    ("Find the orange strip.", None, [100, 0, 150, 25], [{"bbox_2d": [200, 0, 100, 100], "point_2d": [150, 50]}]),
    (
        "Find the thing below <box>{context_bbox}</box>.",
        4,
        [300, 100, 420, 210],
        [{"bbox_2d": [600, 400, 840, 840], "point_2d": [700, 600]}],
    ),
]

# What the released code stores and scores for each turn, worked out by hand.
OFFICIAL_BOXES = [
    [(0, -1, 100, 101)],  # int(-2*0.5+0.5) = int(-0.5) = 0 (floor would give -1); int(-6*0.25+0.5) = -1
    [(300, 100, 423, 213)],  # above the 420x210 image: kept
    [(200, 0, 300, 50)],  # no point: box and hit kept, the mask is empty
    [(-50, 100, 50, 200)],  # IoU exactly 0.5 with the GT, so no hit (clipping would make it 1.0)
    [(100, 0, 50, 25)],  # inverted: IoU 0, and it is the box turn 5 cites
    [(300, 100, 420, 210)],
]
OFFICIAL_POINTS = [[(50, 50)], [(350, 150)], [], [(25, 150)], [(75, 13)], [(350, 150)]]
BOX_IOU = [10000 / 10200, 13200 / 13899, 1.0, 0.5, 0.0, 1.0]
# Box-only masks: the rasterised boxes (clipped to the image by rasterising) against the rasterised GT boxes.
INTERSECTION = [10000, 13200, 0, 5000, 0, 13200]
UNION = [10100, 13200, 5000, 5000, 1250, 13200]
RENDERED = {1: "Find the shape right of [0, -1, 100, 101].", 5: "Find the thing below [100, 0, 50, 25]."}


def turn_text(objects: list[dict[str, list[int]]], *, cites: bool) -> str:
    focus = "<focus> the cited shape </focus>\n" if cites else ""
    return f"<scene> shapes </scene>\n{focus}<think> look </think>\n<answer>{json.dumps(objects)}</answer>"


@pytest.fixture
def bench(tmp_path: Path) -> tuple[list[BenchDialogue], Path]:
    Image.new("RGB", (W, H), (200, 200, 200)).save(tmp_path / "img.png")
    turns = [
        BenchTurn(
            question=q,
            gt_boxes=[Box(*map(float, gt))],
            context_from_turn=k,
            masks=encode_rle(box_to_mask(Box(*map(float, gt)), H, W)),
        )
        for q, k, gt, _ in TURNS
    ]
    return [BenchDialogue(image_id=1, image_path="img.png", turns=turns)], tmp_path


def official_agent(tmp_path: Path, **kw: object) -> RegionAgent:
    texts = [turn_text(objects, cites=k is not None) for _, k, _, objects in TURNS]
    policy = ScriptedPolicy(texts, frame="fixed:840x840")
    return RegionAgent(policy, memory=f"sqlite:///{tmp_path}/m.db", constrained=False, answer_protocol="official", **kw)


def run_official(agent: RegionAgent, items: list[BenchDialogue], root: Path) -> list[TurnResult]:
    run_benchmark(agent, items, images=root, results=root / "results.jsonl", name="off", protocol="official")
    return list(read_results(root / "results.jsonl"))


def test_official_protocol_stores_and_scores_the_released_boxes(bench: tuple[list[BenchDialogue], Path]) -> None:
    items, root = bench
    results = run_official(official_agent(root), items, root)
    assert [r.turn for r in results] == list(range(len(TURNS)))
    for r in results:
        t = r.turn
        # Recorded boxes: the official ones, unclipped; an inverted one is left out (IoU 0, no pixels).
        expected_boxes = [Box(*map(float, b)) for b in OFFICIAL_BOXES[t] if b[0] <= b[2] and b[1] <= b[3]]
        assert r.pred_boxes == expected_boxes, t
        assert r.pred_points == [Point(*map(float, p)) for p in OFFICIAL_POINTS[t]], t
        assert r.box_iou == BOX_IOU[t], t  # bit for bit: the same integer arithmetic as the released script
        assert r.hit == (t in (0, 1, 2, 5)), t
        assert (r.intersection, r.union) == (INTERSECTION[t], UNION[t]), t
        if t in RENDERED:
            assert r.rendered_question == RENDERED[t] and r.context_source == "pred"
    summary = summarise(results)
    assert summary.avg.acc50 == 4 / 6
    assert summary.avg.ciou == sum(INTERSECTION) / sum(UNION)
    assert summary.avg.giou == pytest.approx(
        sum(i / u for i, u in zip(INTERSECTION, UNION, strict=True)) / 6, abs=1e-15
    )


class FullMasks:
    """An explicit fake segmenter: every region's mask is the whole image."""

    def segment(self, image: LoadedImage, boxes: Sequence[Box], points: Sequence[Point | None]) -> list[Rle]:
        return [encode_rle(np.ones((image.height, image.width), dtype=bool)) for _ in boxes]


def test_official_missing_point_gives_an_empty_mask_even_with_a_segmenter(
    bench: tuple[list[BenchDialogue], Path],
) -> None:
    items, root = bench
    results = run_official(official_agent(root, segmenter=FullMasks()), items, root)
    no_point = results[2]
    assert no_point.hit and (no_point.intersection, no_point.union) == (0, 5000)
    assert (results[0].intersection, results[0].union) == (10000, W * H)  # the segmenter's mask is used elsewhere


def test_official_agent_keeps_noisy_answers_as_clipped_regions(bench: tuple[list[BenchDialogue], Path]) -> None:
    """The agent side: with answer_protocol="official" every noisy turn succeeds and stores in-image regions."""
    items, root = bench
    agent = official_agent(root)
    run_official(agent, items, root)
    turns = agent.dialogue(id="off-0-1").turns()
    assert [t.status for t in turns] == [TurnStatus.OK] * len(TURNS)
    assert [[r.box for r in t.regions] for t in turns] == [
        [Box(0, 0, 100, 101)],
        [Box(300, 100, 420, 210)],
        [Box(200, 0, 300, 50)],
        [Box(0, 100, 50, 200)],
        [],  # the inverted box is no region
        [Box(300, 100, 420, 210)],
    ]
    no_point = turns[2].regions[0]
    assert no_point.point is None and no_point.mask is not None and not decode_rle(no_point.mask).any()
    assert turns[0].regions[0].point == Point(50, 50)


def test_an_unknown_answer_protocol_is_refused() -> None:
    with pytest.raises(ConfigError, match="answer_protocol='rr'"):
        Context(answer_protocol="rr")  # type: ignore[arg-type]
