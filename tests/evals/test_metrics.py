import doctest
import math
import random
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest

from regionreasoner.core.errors import GeometryError
from regionreasoner.core.geometry import Box
from regionreasoner.core.masks import box_to_mask, encode_rle
from regionreasoner.evals import metrics, regiondial
from regionreasoner.evals.metrics import (
    RoundMetrics,
    intersection_union,
    mask_iou,
    max_box_iou,
    score_turn,
    summarise,
)
from regionreasoner.evals.results import TurnResult


def test_doctests_of_metrics_and_regiondial() -> None:
    for module in (metrics, regiondial):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


def test_box_iou_hand_computed() -> None:
    gt = Box(0, 0, 10, 10)
    assert max_box_iou([Box(5, 0, 15, 10)], gt) == pytest.approx(50 / 150)
    assert max_box_iou([Box(20, 20, 30, 30), Box(0, 0, 10, 5), Box(5, 0, 15, 10)], gt) == pytest.approx(0.5)
    assert max_box_iou([], gt) == 0.0


def _square(h: int, w: int, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    m[r0:r1, c0:c1] = True
    return m


def test_intersection_union_numpy_rle_and_mixed_agree() -> None:
    a = _square(8, 10, 0, 4, 0, 4)  # 16 px
    b = _square(8, 10, 2, 6, 2, 6)  # 16 px, 4 shared
    expected = (4, 28)
    assert intersection_union(a, b) == expected
    assert intersection_union(encode_rle(a), encode_rle(b)) == expected
    assert intersection_union(a, encode_rle(b)) == expected
    assert mask_iou(a, b) == pytest.approx(4 / 28)
    empty = np.zeros((8, 10), dtype=bool)
    assert intersection_union(empty, empty) == (0, 0) and mask_iou(empty, empty) == 0.0


def test_intersection_union_rejects_different_shapes() -> None:
    with pytest.raises(GeometryError, match="resize the prediction"):
        intersection_union(np.zeros((4, 4), bool), np.zeros((4, 5), bool))


def test_score_turn_hand_computed_with_masks() -> None:
    gt_mask = _square(20, 20, 0, 10, 0, 10)  # 100 px
    pred_mask = _square(20, 20, 0, 10, 5, 15)  # 100 px, 50 shared
    score = score_turn(Box(0, 0, 10, 10), gt_mask, [Box(5, 0, 15, 10)], pred_mask, (20, 20))
    assert score.box_iou == pytest.approx(1 / 3)
    assert (score.hit, score.intersection, score.union) == (False, 50, 150)
    # the same with either mask as RLE
    assert score_turn(Box(0, 0, 10, 10), encode_rle(gt_mask), [Box(5, 0, 15, 10)], pred_mask, (20, 20)) == score
    assert score_turn(Box(0, 0, 10, 10), gt_mask, [Box(5, 0, 15, 10)], encode_rle(pred_mask), (20, 20)) == score


def test_score_turn_hit_is_strictly_above_half() -> None:
    gt = Box(0, 0, 10, 10)
    at_half = score_turn(gt, None, [Box(0, 0, 10, 5)], None, (20, 20))
    assert at_half.box_iou == 0.5 and at_half.hit is False
    above = score_turn(gt, None, [Box(0, 0, 10, 6)], None, (20, 20))
    assert above.hit is True
    # any predicted box may hit: the second one does
    assert score_turn(gt, None, [Box(15, 15, 20, 20), Box(0, 0, 10, 9)], None, (20, 20)).hit is True


def test_score_turn_box_only_uses_rasterised_boxes() -> None:
    gt = Box(0, 0, 10, 10)
    # two predicted boxes: their union covers 50 + 25 pixels, 50 of them inside the GT box
    score = score_turn(gt, None, [Box(0, 0, 5, 10), Box(15, 15, 20, 20)], None, (20, 20))
    assert (score.intersection, score.union) == (50, 125)
    assert score.box_iou == pytest.approx(0.5)


def test_failed_parse_rule() -> None:
    gt_mask = _square(20, 20, 2, 9, 3, 8)  # 35 px
    gt = Box(3, 2, 8, 9)
    assert score_turn(gt, gt_mask, [], None, (20, 20)) == (0.0, False, 0, 35)
    # a predicted mask without boxes is ignored, as the official script derives masks from boxes
    assert score_turn(gt, gt_mask, [], gt_mask, (20, 20)) == (0.0, False, 0, 35)
    # no GT mask: the union is the pixel count of the GT box
    assert score_turn(Box(0, 0, 4, 5), None, [], None, (20, 20)) == (0.0, False, 0, 20)
    assert score_turn(gt, encode_rle(gt_mask), [], None, (20, 20)) == (0.0, False, 0, 35)


def test_score_turn_rejects_masks_of_another_size() -> None:
    with pytest.raises(GeometryError, match="resize the mask"):
        score_turn(Box(0, 0, 4, 4), np.zeros((10, 12), bool), [Box(0, 0, 4, 4)], None, (10, 10))
    with pytest.raises(GeometryError, match="pred_mask"):
        score_turn(Box(0, 0, 4, 4), None, [Box(0, 0, 4, 4)], encode_rle(np.zeros((9, 10), bool)), (10, 10))
    with pytest.raises(GeometryError, match="width, height"):
        score_turn(Box(0, 0, 4, 4), None, [Box(0, 0, 4, 4)], None, (0, 10))


def test_round_metrics_hand_computed() -> None:
    m = RoundMetrics()
    m.add(1, intersection=50, union=100, hit=True, box_iou=0.8)
    m.add(1, intersection=30, union=30, hit=True, box_iou=0.9)
    m.add(1, intersection=0, union=0, hit=True, box_iou=0.6)  # U = 0 counts 0 in gIoU
    m.add(2, intersection=0, union=70, hit=False, box_iou=0.0, failed=True)
    s = m.summary()
    r1, r2 = s.rounds
    assert (r1.label, r1.count, r1.acc50) == ("R1", 3, 1.0)
    assert r1.giou == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert r1.ciou == pytest.approx(80 / 130)
    assert (r2.label, r2.acc50, r2.giou, r2.ciou, r2.failed) == ("R2", 0.0, 0.0, 0.0, 1)
    # "Avg" is pooled over turns, not the mean of the round columns (which would give 0.5)
    assert s.avg.acc50 == pytest.approx(0.75)
    assert s.avg.giou == pytest.approx(1.5 / 4)
    assert s.avg.ciou == pytest.approx(80 / 200)
    assert s.avg.mask_pass_rates == {"0.3": 0.5, "0.5": 0.25, "0.7": 0.25, "0.9": 0.25}
    assert s.turns == 4 and len(m) == 4


def test_round_metrics_rejects_bad_counts() -> None:
    m = RoundMetrics()
    with pytest.raises(GeometryError, match="1-based"):
        m.add(0, intersection=0, union=1, hit=False)
    with pytest.raises(GeometryError, match="intersection <= union"):
        m.add(1, intersection=5, union=4, hit=False)


def _random_results(n: int, seed: int) -> list[TurnResult]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        turn = rng.choice([0, 0, 0, 1, 1, 2, 3, 7, 11])
        union = rng.choice([0, rng.randint(1, 5000)])
        inter = rng.randint(0, union)
        box_iou = rng.random()
        failed = rng.random() < 0.1
        out.append(
            TurnResult(
                image_id=i,
                dialogue_index=i,
                turn=turn,
                round=turn + 1,
                question="q",
                rendered_question="q",
                gt_box=Box(0, 0, 1, 1),
                status="failed" if failed else "ok",
                box_iou=box_iou,
                hit=box_iou > 0.5,
                intersection=inter,
                union=union,
            )
        )
    return out


def test_streaming_equals_batch_computation() -> None:
    results = _random_results(5000, 1)
    summary = summarise(iter(results))  # a one-pass iterator is enough
    by_round: dict[int, list[TurnResult]] = {}
    for r in results:
        by_round.setdefault(r.round, []).append(r)
    assert [row.round for row in summary.rounds] == sorted(by_round)
    for row in [*summary.rounds, summary.avg]:
        group = by_round[row.round] if row.round is not None else results
        ious = [Fraction(r.intersection, r.union) if r.union else Fraction(0) for r in group]
        assert row.count == len(group)
        assert row.giou == pytest.approx(float(sum(ious) / len(ious)), abs=1e-15)
        assert row.giou == pytest.approx(float(np.mean([float(x) for x in ious])), abs=1e-12)
        assert row.ciou == sum(r.intersection for r in group) / sum(r.union for r in group)
        assert row.acc50 == sum(r.hit for r in group) / len(group)
        assert row.mean_box_iou == pytest.approx(float(np.mean([r.box_iou for r in group])), abs=1e-12)
        assert row.failed == sum(r.status == "failed" for r in group)


def test_streaming_memory_does_not_grow() -> None:
    m = RoundMetrics()
    rng = random.Random(0)
    updates = [(rng.randint(1, 12), rng.randint(0, 1000)) for _ in range(1000)]
    tracemalloc.start()
    try:
        for round_, inter in updates:  # warm up: every round exists
            m.add(round_, intersection=inter, union=1000, hit=inter > 500, box_iou=inter / 1000)
        before, _ = tracemalloc.get_traced_memory()
        for i in range(100_000):
            round_, inter = updates[i % 1000]
            m.add(round_, intersection=inter, union=1000, hit=inter > 500, box_iou=inter / 1000)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(m) == 101_000
    assert after - before < 16_384, f"memory grew by {after - before} bytes over 100k updates"


def test_scripted_perfect_and_wrong_predictions() -> None:
    gt_mask = box_to_mask(Box(10, 10, 30, 40), 64, 64)
    perfect, wrong = RoundMetrics(), RoundMetrics()
    for round_ in (1, 2, 3):
        s = score_turn(Box(10, 10, 30, 40), gt_mask, [Box(10, 10, 30, 40)], gt_mask, (64, 64))
        perfect.add(round_, intersection=s.intersection, union=s.union, hit=s.hit, box_iou=s.box_iou)
        s = score_turn(Box(10, 10, 30, 40), gt_mask, [Box(40, 40, 60, 60)], None, (64, 64))
        wrong.add(round_, intersection=s.intersection, union=s.union, hit=s.hit, box_iou=s.box_iou)
    for row in [*perfect.summary().rounds, perfect.summary().avg]:
        assert (row.acc50, row.giou, row.ciou) == (1.0, 1.0, 1.0)
    for row in [*wrong.summary().rounds, wrong.summary().avg]:
        assert (row.acc50, row.giou, row.ciou) == (0.0, 0.0, 0.0)


def test_turn_result_validation() -> None:
    base = _random_results(1, 3)[0].model_dump()
    with pytest.raises(ValueError, match="round must be turn"):
        TurnResult.model_validate({**base, "round": base["turn"] + 2})
    with pytest.raises(ValueError, match=r"hit means box_iou > 0\.5"):
        TurnResult.model_validate({**base, "box_iou": 0.9, "hit": False})
    with pytest.raises(ValueError, match="swapped"):
        TurnResult.model_validate({**base, "intersection": 10, "union": 5})
    r = TurnResult.model_validate({**base, "intersection": 1, "union": 4})
    assert r.mask_iou == 0.25 and not math.isnan(r.box_iou)
