"""COCO average precision (AP@[.5:.95], AP50, AP75) for boxes and masks, two ways.

* :func:`coco_box_ap` / :func:`coco_mask_ap` run pycocotools' ``COCOeval`` on minimal COCO dicts built in
  memory (what the VisionReasoner COCO detection evaluation uses, reference §6.2, where each predicted box's
  score is its area over the image area).
* :func:`average_precision` is an independent numpy implementation of the same algorithm (greedy matching by
  score per image and category, 101-point interpolated precision, area range "all", 100 detections per image);
  tests check that both agree to 1e-9 on random cases.

Ground truth is never crowd; an AP of ``-1`` means there was no ground truth at all (COCO's convention).
Boxes are xyxy in original-image pixels; masks are COCO RLE of the image size.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from regionreasoner.core.errors import InputError
from regionreasoner.core.geometry import Box, iou_matrix
from regionreasoner.core.masks import Rle, decode_rle

__all__ = [
    "IOU_THRESHOLDS",
    "RECALL_THRESHOLDS",
    "ApResult",
    "CocoDetection",
    "CocoObject",
    "average_precision",
    "coco_box_ap",
    "coco_mask_ap",
]

IOU_THRESHOLDS: npt.NDArray[np.float64] = np.linspace(0.5, 0.95, round((0.95 - 0.5) / 0.05) + 1, endpoint=True)
"""COCO IoU thresholds 0.50, 0.55, ..., 0.95 (built exactly as pycocotools builds them)."""

RECALL_THRESHOLDS: npt.NDArray[np.float64] = np.linspace(0.0, 1.0, round(1.0 / 0.01) + 1, endpoint=True)
"""COCO recall thresholds 0.00, 0.01, ..., 1.00."""

MAX_DETECTIONS = 100
"""Detections kept per image and category (COCO's largest maxDets)."""

IouType = Literal["bbox", "segm"]


@dataclass(frozen=True, kw_only=True)
class CocoObject:
    """A ground-truth object: image, category, xyxy box in pixels and (for mask AP) its RLE mask."""

    image_id: int
    category_id: int = 1
    box: Box
    mask: Rle | None = None


@dataclass(frozen=True, kw_only=True)
class CocoDetection(CocoObject):
    """A detection: a :class:`CocoObject` with a confidence ``score`` (higher is more confident)."""

    score: float


class ApResult(NamedTuple):
    """COCO AP@[.5:.95], AP@.5 and AP@.75 as fractions (``-1`` when there is no ground truth)."""

    ap: float
    ap50: float
    ap75: float


def _check(objects: Sequence[CocoObject], iou_type: IouType, what: str) -> None:
    if iou_type not in ("bbox", "segm"):
        raise InputError(f"iou_type={iou_type!r}: use 'bbox' or 'segm'")
    if iou_type == "segm":
        for i, obj in enumerate(objects):
            if obj.mask is None:
                raise InputError(f"{what}[{i}] has no mask", hint="mask AP needs an RLE mask on every object")


def _summarise(precision: npt.NDArray[np.float64]) -> ApResult:
    """AP, AP50, AP75 from a precision array (T, R, K), -1 marking categories without ground truth."""

    def mean(s: npt.NDArray[np.float64]) -> float:
        valid = s[s > -1]
        return float(np.mean(valid)) if valid.size else -1.0

    return ApResult(mean(precision), mean(precision[0]), mean(precision[5]))


# ----------------------------------------------------------------------------------------------- pycocotools


def _coco_eval(gts: Sequence[CocoObject], dets: Sequence[CocoDetection], iou_type: IouType) -> ApResult:
    _check(gts, iou_type, "gts")
    _check(dets, iou_type, "preds")
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    image_ids = sorted({o.image_id for o in gts} | {d.image_id for d in dets})
    category_ids = sorted({o.category_id for o in gts} | {d.category_id for d in dets})
    sizes = {o.image_id: dict(zip(("height", "width"), o.mask.size, strict=True)) for o in (*gts, *dets) if o.mask}
    annotations: list[dict[str, Any]] = []
    for number, obj in enumerate(gts, start=1):
        ann: dict[str, Any] = {
            "id": number,
            "image_id": obj.image_id,
            "category_id": obj.category_id,
            "bbox": obj.box.to_xywh(),
            "iscrowd": 0,
        }
        if iou_type == "segm":
            assert obj.mask is not None
            ann["segmentation"] = obj.mask.to_coco()
            ann["area"] = float(mask_utils.area(ann["segmentation"]))
        else:
            ann["area"] = obj.box.width * obj.box.height
        annotations.append(ann)
    dataset = {
        "images": [{"id": i, **sizes.get(i, {})} for i in image_ids],
        "categories": [{"id": c} for c in category_ids],
        "annotations": annotations,
    }
    if not gts:
        return ApResult(-1.0, -1.0, -1.0)
    if not dets:  # COCO.loadRes cannot load an empty list; every category with GT then has precision 0
        return ApResult(0.0, 0.0, 0.0)
    results: list[dict[str, Any]] = []
    for det in dets:
        res: dict[str, Any] = {"image_id": det.image_id, "category_id": det.category_id, "score": det.score}
        if iou_type == "segm":
            assert det.mask is not None
            res["segmentation"] = det.mask.to_coco()
        else:
            res["bbox"] = det.box.to_xywh()
        results.append(res)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco_gt = COCO()
        coco_gt.dataset = dataset
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
    precision = np.asarray(evaluator.eval["precision"], dtype=np.float64)  # (T, R, K, A, M)
    return _summarise(precision[:, :, :, 0, -1])


def coco_box_ap(gts: Sequence[CocoObject], preds: Sequence[CocoDetection]) -> ApResult:
    """Box AP through pycocotools ``COCOeval(..., 'bbox')`` (AP@[.5:.95], AP50, AP75)."""
    return _coco_eval(gts, preds, "bbox")


def coco_mask_ap(gts: Sequence[CocoObject], preds: Sequence[CocoDetection]) -> ApResult:
    """Mask AP through pycocotools ``COCOeval(..., 'segm')``; every object needs an RLE mask."""
    return _coco_eval(gts, preds, "segm")


# ----------------------------------------------------------------------------------------------- numpy


def _ious(dets: Sequence[CocoObject], gts: Sequence[CocoObject], iou_type: IouType) -> npt.NDArray[np.float64]:
    if not dets or not gts:
        return np.zeros((len(dets), len(gts)), dtype=np.float64)
    if iou_type == "bbox":
        return iou_matrix([d.box for d in dets], [g.box for g in gts])
    flat_d = np.stack([decode_rle(d.mask).ravel() for d in dets if d.mask is not None]).astype(np.float64)
    flat_g = np.stack([decode_rle(g.mask).ravel() for g in gts if g.mask is not None]).astype(np.float64)
    inter = flat_d @ flat_g.T
    union = flat_d.sum(axis=1)[:, None] + flat_g.sum(axis=1)[None, :] - inter
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=union > 0)
    return out


def _match(ious: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Greedy COCO matching: for each threshold, each detection (by score) takes the best free GT at IoU >= t."""
    n_det, n_gt = ious.shape
    matched = np.zeros((len(IOU_THRESHOLDS), n_det), dtype=np.bool_)
    for t, threshold in enumerate(IOU_THRESHOLDS):
        taken = np.zeros(n_gt, dtype=np.bool_)
        for d in range(n_det):
            best, m = min(float(threshold), 1 - 1e-10), -1
            for g in range(n_gt):
                if taken[g] or ious[d, g] < best:
                    continue
                best, m = float(ious[d, g]), g
            if m >= 0:
                taken[m] = True
                matched[t, d] = True
    return matched


def _precision_at_recalls(tp: npt.NDArray[np.float64], fp: npt.NDArray[np.float64], n_gt: int) -> list[float]:
    recall = tp / n_gt
    precision = (tp / (fp + tp + np.spacing(1))).tolist()
    for i in range(len(precision) - 1, 0, -1):  # make precision monotonically decreasing
        if precision[i] > precision[i - 1]:
            precision[i - 1] = precision[i]
    out = [0.0] * len(RECALL_THRESHOLDS)
    for r, index in enumerate(np.searchsorted(recall, RECALL_THRESHOLDS, side="left")):
        if index >= len(precision):
            break
        out[r] = precision[index]
    return out


def average_precision(
    gts: Sequence[CocoObject], preds: Sequence[CocoDetection], *, iou_type: IouType = "bbox"
) -> ApResult:
    """COCO AP@[.5:.95], AP50 and AP75 computed with numpy only (the algorithm of pycocotools' COCOeval).

    Images and categories are visited in ascending id order and detections keep their input order among equal
    scores (stable sorts), exactly as COCOeval does, so ties resolve the same way.
    """
    _check(gts, iou_type, "gts")
    _check(preds, iou_type, "preds")
    image_ids = sorted({o.image_id for o in gts} | {d.image_id for d in preds})
    category_ids = sorted({o.category_id for o in gts} | {d.category_id for d in preds})
    gt_by: dict[tuple[int, int], list[CocoObject]] = {}
    det_by: dict[tuple[int, int], list[CocoDetection]] = {}
    for obj in gts:
        gt_by.setdefault((obj.image_id, obj.category_id), []).append(obj)
    for det in preds:
        det_by.setdefault((det.image_id, det.category_id), []).append(det)
    precision = -np.ones((len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS), len(category_ids)), dtype=np.float64)
    for k, category in enumerate(category_ids):
        scores: list[npt.NDArray[np.float64]] = []
        matches: list[npt.NDArray[np.bool_]] = []
        n_gt = 0
        for image in image_ids:
            g = gt_by.get((image, category), [])
            d = det_by.get((image, category), [])
            if not g and not d:
                continue
            order = np.argsort([-x.score for x in d], kind="mergesort")[:MAX_DETECTIONS]
            d_sorted = [d[i] for i in order]
            matches.append(_match(_ious(d_sorted, g, iou_type)))
            scores.append(np.array([x.score for x in d_sorted], dtype=np.float64))
            n_gt += len(g)
        if not scores or n_gt == 0:
            continue
        all_scores = np.concatenate(scores)
        order = np.argsort(-all_scores, kind="mergesort")
        matched = np.concatenate(matches, axis=1)[:, order]
        tps = np.cumsum(matched, axis=1).astype(np.float64)
        fps = np.cumsum(~matched, axis=1).astype(np.float64)
        for t in range(len(IOU_THRESHOLDS)):
            precision[t, :, k] = _precision_at_recalls(tps[t], fps[t], n_gt)
    return _summarise(precision)
