"""Agreement with pycocotools on 1,000 random cases: box IoU, mask IoU (through RLE) and COCO AP, to 1e-9."""

import warnings

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from regionreasoner.core.errors import InputError
from regionreasoner.core.geometry import Box, iou_matrix
from regionreasoner.core.masks import encode_rle
from regionreasoner.evals.coco_ap import (
    CocoDetection,
    CocoObject,
    average_precision,
    coco_box_ap,
    coco_mask_ap,
)
from regionreasoner.evals.metrics import intersection_union, mask_iou

CASES = 1000
SIZE = 48


def _box(rng: np.random.Generator, integer: bool) -> Box:
    x1, y1 = rng.uniform(0, SIZE - 4, 2)
    w, h = rng.uniform(1, 24, 2)
    box = Box(x1, y1, min(SIZE, x1 + w), min(SIZE, y1 + h))
    return Box(*(float(round(v)) for v in box)) if integer else box


def _mask(rng: np.random.Generator, box: Box) -> np.ndarray:
    m = np.zeros((SIZE, SIZE), dtype=bool)
    r0, r1, c0, c1 = int(box.y1), max(int(box.y1) + 1, int(box.y2)), int(box.x1), max(int(box.x1) + 1, int(box.x2))
    m[r0:r1, c0:c1] = rng.random((r1 - r0, c1 - c0)) < 0.85
    return m


def _coco_iou(a: list, b: list) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return np.asarray(mask_utils.iou(a, b, [0] * len(b)), dtype=np.float64)


def test_box_iou_matches_pycocotools() -> None:
    rng = np.random.default_rng(0)
    worst = 0.0
    for case in range(CASES):
        a = [_box(rng, integer=case % 2 == 0) for _ in range(int(rng.integers(1, 6)))]
        b = [_box(rng, integer=case % 2 == 0) for _ in range(int(rng.integers(1, 6)))]
        ours = iou_matrix(a, b)
        theirs = _coco_iou([x.to_xywh() for x in a], [x.to_xywh() for x in b])
        worst = max(worst, float(np.abs(ours - theirs).max()))
    assert worst <= 1e-9


def test_mask_iou_matches_pycocotools_rle() -> None:
    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(CASES):
        a = _mask(rng, _box(rng, integer=True))
        b = _mask(rng, _box(rng, integer=True)) if rng.random() < 0.7 else a & (rng.random(a.shape) < 0.5)
        if rng.random() < 0.05:
            a = np.zeros_like(a)  # empty masks too
        ra, rb = encode_rle(a), encode_rle(b)
        theirs = float(_coco_iou([ra.to_coco()], [rb.to_coco()])[0, 0])
        for ours in (mask_iou(a, b), mask_iou(ra, rb), mask_iou(a, rb)):
            worst = max(worst, abs(ours - theirs))
        exact = (int(np.count_nonzero(a & b)), int(np.count_nonzero(a | b)))
        assert intersection_union(ra, rb) == intersection_union(a, rb) == intersection_union(ra, b) == exact
    assert worst <= 1e-9


def _ap_case(rng: np.random.Generator, with_masks: bool) -> tuple[list[CocoObject], list[CocoDetection]]:
    integer = rng.random() < 0.5
    gts: list[CocoObject] = []
    gt_masks: list[np.ndarray] = []
    dets: list[CocoDetection] = []
    images = [int(i) for i in rng.permutation(int(rng.integers(1, 5))) + 1]
    for image in images:
        for category in range(1, int(rng.integers(1, 4)) + 1):
            for _ in range(int(rng.integers(0, 5))):
                box = _box(rng, integer)
                gt_masks.append(_mask(rng, box))
                mask = encode_rle(gt_masks[-1]) if with_masks else None
                gts.append(CocoObject(image_id=image, category_id=category, box=box, mask=mask))
    for _ in range(int(rng.integers(0, 2 * len(gts) + 3))):
        if gts and rng.random() < 0.75:  # a detection near a GT object, sometimes of another category
            index = int(rng.integers(len(gts)))
            g = gts[index]
            spread = 0.08 * max(g.box.width, g.box.height)
            jitter = rng.normal(0, spread, 4) if not integer else np.round(rng.normal(0, spread, 4))
            x1, y1, x2, y2 = (np.asarray(g.box) + jitter).clip(0, SIZE)
            box = Box(min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))
            image, category = g.image_id, g.category_id if rng.random() < 0.9 else g.category_id + 1
            shift = (round(float(jitter[1])), round(float(jitter[0])))
            moved = np.roll(gt_masks[index], shift, axis=(0, 1))
            mask_array = moved ^ (moved & (rng.random((SIZE, SIZE)) < 0.03))  # drop a few pixels
        else:
            box = _box(rng, integer)
            image, category = images[int(rng.integers(len(images)))], int(rng.integers(1, 3))
            mask_array = _mask(rng, box)
        score = float(np.round(rng.random(), 1))  # ties on purpose: both sides must break them the same way
        mask = encode_rle(mask_array) if with_masks else None
        dets.append(CocoDetection(image_id=image, category_id=category, box=box, mask=mask, score=score))
    return gts, dets


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_average_precision_matches_cocoeval(iou_type: str) -> None:
    rng = np.random.default_rng(2 if iou_type == "bbox" else 3)
    reference = coco_box_ap if iou_type == "bbox" else coco_mask_ap
    worst, seen = 0.0, []
    for _ in range(CASES):
        gts, dets = _ap_case(rng, with_masks=iou_type == "segm")
        ours = average_precision(gts, dets, iou_type=iou_type)  # type: ignore[arg-type]
        theirs = reference(gts, dets)
        worst = max(worst, *(abs(x - y) for x, y in zip(ours, theirs, strict=True)))
        seen.append(theirs.ap)
    assert worst <= 1e-9
    # the random cases exercise the whole range, not just AP = 0 or 1
    values = np.asarray(seen)
    assert ((values > 0.1) & (values < 0.9)).mean() > 0.3
    assert (values == -1).any() and (values == 0).any()


def test_ap_hand_computed() -> None:
    gts = [CocoObject(image_id=1, box=Box(0, 0, 10, 10)), CocoObject(image_id=1, box=Box(20, 20, 30, 30))]
    perfect = [CocoDetection(image_id=1, box=g.box, score=0.9) for g in gts]
    assert average_precision(gts, perfect) == pytest.approx((1.0, 1.0, 1.0))
    assert coco_box_ap(gts, perfect) == pytest.approx((1.0, 1.0, 1.0))
    # one correct detection out of two GT objects: precision 1 up to recall 0.5, then 0 -> 51/101
    half = perfect[:1]
    assert average_precision(gts, half).ap == pytest.approx(51 / 101)
    assert coco_box_ap(gts, half).ap == pytest.approx(51 / 101)
    assert coco_box_ap(gts, []) == (0.0, 0.0, 0.0) == average_precision(gts, [])
    assert coco_box_ap([], perfect) == (-1.0, -1.0, -1.0) == average_precision([], perfect)


def test_mask_ap_needs_masks() -> None:
    with pytest.raises(InputError, match="needs an RLE mask"):
        coco_mask_ap([CocoObject(image_id=1, box=Box(0, 0, 1, 1))], [])
