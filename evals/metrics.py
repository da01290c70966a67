"""Scoring of grounding turns and the RegionDial-Bench metrics: Acc@0.5, gIoU, cIoU, per round and pooled.

Definitions follow the official RegionReasoner scripts (shared/reference/regionreasoner.md §5.3; see
docs/evaluation.md):

* box IoU uses continuous areas without ``+1`` (:func:`regionreasoner.core.geometry.iou`);
* a turn is a **hit** when any predicted box has IoU > 0.5 with the GT box (the papers' "AP", really Acc@0.5);
* mask ``intersection = |pred & gt|`` and ``union = |pred | gt|`` in pixels; **gIoU** = mean over turns of I/U
  (a turn with U = 0 counts 0); **cIoU** = ΣI / ΣU;
* a turn without predicted boxes (failed parse) scores I = 0, U = |gt| and no hit;
* "Avg" pools **all** turns (not the mean of the round columns).

:class:`RoundMetrics` accumulates these sums in O(rounds) memory, so a results file of any length can be
summarised in one pass.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from regionreasoner.core.errors import GeometryError
from regionreasoner.core.geometry import Box, as_box, iou_matrix
from regionreasoner.core.masks import BoolMask, Rle, box_to_mask
from regionreasoner.evals.results import TurnResult

__all__ = [
    "DEFINITIONS",
    "PASS_THRESHOLDS",
    "MaskLike",
    "MetricRow",
    "RoundMetrics",
    "Summary",
    "TurnScore",
    "intersection_union",
    "mask_iou",
    "max_box_iou",
    "score_turn",
    "summarise",
]

MaskLike = BoolMask | Rle
"""A mask as a bool array of shape (H, W) or as COCO RLE of the same size."""

PASS_THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7, 0.9)
"""Mask-IoU thresholds of the official per-round pass rates (share of turns with I/U > t)."""

DEFINITIONS: dict[str, str] = {
    "acc50": "Acc@0.5: share of turns where any predicted box has IoU > 0.5 with the GT box (the papers' 'AP').",
    "giou": "gIoU: mean over turns of mask I/U (a turn with U = 0 counts 0).",
    "ciou": "cIoU: sum of mask intersections / sum of mask unions, in pixels.",
    "failed": "A turn without predicted boxes scores I = 0, U = |GT mask| (GT box pixels without a mask), no hit.",
    "avg": "Avg: pooled over all turns of all rounds (round-count weighted), not the mean of the round columns.",
    "round": "Round k = turn k of its dialogue (1-based).",
}


def _mask_utils() -> Any:
    from pycocotools import mask as mask_utils

    return mask_utils


def _shape(mask: MaskLike) -> tuple[int, int]:
    if isinstance(mask, Rle):
        return (int(mask.size[0]), int(mask.size[1]))
    if mask.ndim != 2:
        raise GeometryError(f"a mask must be 2-D (H, W), got shape {mask.shape}")
    return (int(mask.shape[0]), int(mask.shape[1]))


def _as_bool(mask: BoolMask) -> BoolMask:
    return mask if mask.dtype == np.bool_ else mask != 0


def _rle_array_counts(rle: Rle, array: BoolMask) -> tuple[int, int]:
    """Intersection and union of an RLE and a bool array, comparing pixels only inside the RLE's box.

    Decoding gives a column-major array; combining it with a row-major one costs a transposition, so only the
    window of the RLE's tight box is combined (the intersection cannot lie outside it).
    """
    mu = _mask_utils()
    coco = rle.to_coco()
    area_rle = int(mu.area(coco))
    arr = array if array.dtype == np.bool_ else array != 0
    area_arr = int(np.count_nonzero(arr))
    if area_rle == 0 or area_arr == 0:
        return 0, area_rle + area_arr
    x, y, w, h = (int(v) for v in mu.toBbox(coco))
    with warnings.catch_warnings():
        # pycocotools' decoder trips numpy 2's __array__(copy=...) deprecation; the result is correct.
        warnings.simplefilter("ignore", DeprecationWarning)
        decoded = mu.decode(coco).view(np.bool_)
    inter = int(np.count_nonzero(decoded[y : y + h, x : x + w] & arr[y : y + h, x : x + w]))
    return inter, area_rle + area_arr - inter


def intersection_union(pred: MaskLike, gt: MaskLike) -> tuple[int, int]:
    """``(|pred & gt|, |pred | gt|)`` in pixels for two masks of the same (H, W).

    Two RLEs are combined on their runs (pycocotools ``merge`` + ``area``, no decoding); otherwise the masks are
    compared as bool arrays.  Raises :class:`GeometryError` when the shapes differ (resize first).
    """
    if _shape(pred) != _shape(gt):
        raise GeometryError(
            f"mask shapes differ: prediction {_shape(pred)} vs ground truth {_shape(gt)}",
            hint="resize the prediction to the original image size (nearest neighbour) before scoring",
        )
    if isinstance(pred, Rle) and isinstance(gt, Rle):
        mu = _mask_utils()
        a, b = pred.to_coco(), gt.to_coco()
        inter = int(mu.area(mu.merge([a, b], intersect=True)))
        return inter, int(mu.area(a)) + int(mu.area(b)) - inter
    if isinstance(pred, Rle) != isinstance(gt, Rle):
        rle, array = (pred, gt) if isinstance(pred, Rle) else (gt, pred)
        assert isinstance(rle, Rle) and not isinstance(array, Rle)
        return _rle_array_counts(rle, array)
    assert not isinstance(pred, Rle) and not isinstance(gt, Rle)
    p, g = _as_bool(pred), _as_bool(gt)
    inter = int(np.count_nonzero(p & g))
    return inter, int(np.count_nonzero(p)) + int(np.count_nonzero(g)) - inter


def mask_iou(pred: MaskLike, gt: MaskLike) -> float:
    """IoU of two masks of the same shape; 0 when both are empty."""
    inter, union = intersection_union(pred, gt)
    return inter / union if union else 0.0


def max_box_iou(pred_boxes: Sequence[Box], gt_box: Box) -> float:
    """The largest IoU of any predicted box with the GT box (continuous areas, no +1); 0 without predictions."""
    if not pred_boxes:
        return 0.0
    return float(iou_matrix(list(pred_boxes), [gt_box]).max())


class TurnScore(NamedTuple):
    """The official per-turn numbers: box IoU (max over predictions), hit (> 0.5), mask I and U in pixels."""

    box_iou: float
    hit: bool
    intersection: int
    union: int


def _mask_area(mask: MaskLike) -> int:
    if isinstance(mask, Rle):
        return int(_mask_utils().area(mask.to_coco()))
    return int(np.count_nonzero(mask))


def score_turn(
    gt_box: Box,
    gt_mask: MaskLike | None,
    pred_boxes: Sequence[Box],
    pred_mask: MaskLike | None,
    image_size: tuple[int, int],
) -> TurnScore:
    """Score one turn by the official rules (reference §5.3).

    ``gt_box`` and ``pred_boxes`` are xyxy in original-image pixels; masks are (H, W) in the same frame and
    ``image_size`` is ``(width, height)`` in pixels.  Without a GT mask the rasterised GT box stands in for it; without
    a predicted mask, the union of the rasterised predicted boxes does (box-only evaluation).  No predicted box (a
    failed parse) gives ``intersection = 0``, ``union = |GT mask|``, no hit, whatever ``pred_mask`` holds, as the
    official script derives the mask from the boxes.  Masks of another shape than the image, and non-finite or
    inverted boxes, raise :class:`GeometryError`: resizing and validating are the caller's job.
    """
    width, height = image_size
    if width <= 0 or height <= 0:
        raise GeometryError(f"image_size={image_size}: pass (width, height) in pixels, both > 0")
    gt_box = as_box(gt_box)
    boxes = [as_box(b) for b in pred_boxes]
    for name, mask in (("gt_mask", gt_mask), ("pred_mask", pred_mask)):
        if mask is not None and _shape(mask) != (height, width):
            raise GeometryError(
                f"{name} has shape {_shape(mask)} but the image is {height}x{width} (H x W)",
                hint="resize the mask to the original image size (nearest neighbour) before scoring",
            )
    gt: MaskLike = gt_mask if gt_mask is not None else box_to_mask(gt_box, height, width)
    if not boxes:
        return TurnScore(0.0, False, 0, _mask_area(gt))
    box_iou = max_box_iou(boxes, gt_box)
    pred: MaskLike
    if pred_mask is not None:
        pred = pred_mask
    else:
        pred = box_to_mask(boxes[0], height, width)
        for box in boxes[1:]:
            pred |= box_to_mask(box, height, width)
    inter, union = intersection_union(pred, gt)
    return TurnScore(box_iou, box_iou > 0.5, inter, union)


@dataclass(slots=True)
class _Sums:
    """Running sums of one round (or of all turns): O(1) memory whatever the number of turns."""

    count: int = 0
    hits: int = 0
    failed: int = 0
    intersection: int = 0
    union: int = 0
    iou_sum: float = 0.0
    iou_comp: float = 0.0  # Neumaier compensation of iou_sum
    box_iou_sum: float = 0.0
    passes: list[int] = field(default_factory=lambda: [0] * len(PASS_THRESHOLDS))

    def add(self, intersection: int, union: int, hit: bool, box_iou: float, failed: bool) -> None:
        turn_iou = intersection / union if union > 0 else 0.0
        self.count += 1
        self.hits += int(hit)
        self.failed += int(failed)
        self.intersection += intersection
        self.union += union
        total = self.iou_sum + turn_iou
        if abs(self.iou_sum) >= abs(turn_iou):
            self.iou_comp += (self.iou_sum - total) + turn_iou
        else:
            self.iou_comp += (turn_iou - total) + self.iou_sum
        self.iou_sum = total
        self.box_iou_sum += box_iou
        for i, threshold in enumerate(PASS_THRESHOLDS):
            if turn_iou > threshold:
                self.passes[i] += 1

    def row(self, label: str, round_: int | None) -> MetricRow:
        n = self.count
        return MetricRow(
            label=label,
            round=round_,
            count=n,
            acc50=self.hits / n if n else 0.0,
            giou=(self.iou_sum + self.iou_comp) / n if n else 0.0,
            ciou=self.intersection / self.union if self.union else 0.0,
            mean_box_iou=self.box_iou_sum / n if n else 0.0,
            failed=self.failed,
            intersection=self.intersection,
            union=self.union,
            mask_pass_rates={
                f"{t:g}": (p / n if n else 0.0) for t, p in zip(PASS_THRESHOLDS, self.passes, strict=True)
            },
        )


class MetricRow(BaseModel):
    """Metrics of one round (``label`` "R1", "R2", ...) or of all turns pooled (``label`` "Avg").

    Rates are fractions in [0, 1]; ``intersection`` and ``union`` are pixel sums.
    """

    model_config = ConfigDict(frozen=True)

    label: str
    round: int | None = Field(description="1-based round; None for the pooled 'Avg' row")
    count: int = Field(description="number of turns")
    acc50: float = Field(description="share of turns with a hit (any predicted box IoU > 0.5)")
    giou: float = Field(description="mean of per-turn mask I/U")
    ciou: float = Field(description="sum of intersections / sum of unions")
    mean_box_iou: float = Field(description="mean of per-turn max box IoU")
    failed: int = Field(description="turns without a predicted box")
    intersection: int
    union: int
    mask_pass_rates: dict[str, float] = Field(description="share of turns with mask I/U > threshold")


class Summary(BaseModel):
    """Per-round rows (R1 first, only rounds that have turns) and the pooled "Avg" row."""

    model_config = ConfigDict(frozen=True)

    rounds: list[MetricRow]
    avg: MetricRow
    definitions: dict[str, str] = Field(default_factory=lambda: dict(DEFINITIONS))

    @property
    def turns(self) -> int:
        """Total number of turns scored."""
        return self.avg.count


class RoundMetrics:
    """Streaming accumulator of the benchmark metrics, keyed by 1-based round.

    Memory is O(number of rounds): each :meth:`add` only updates running sums.

    >>> m = RoundMetrics()
    >>> m.add(1, intersection=50, union=100, hit=True, box_iou=0.8)
    >>> m.add(2, intersection=0, union=40, hit=False, failed=True)
    >>> s = m.summary()
    >>> [r.label for r in s.rounds], s.avg.giou, round(s.avg.ciou, 4)
    (['R1', 'R2'], 0.25, 0.3571)
    """

    def __init__(self) -> None:
        self._rounds: dict[int, _Sums] = {}
        self._all = _Sums()

    def add(
        self,
        round_: int,
        *,
        intersection: int,
        union: int,
        hit: bool,
        box_iou: float = 0.0,
        failed: bool = False,
    ) -> None:
        """Add one turn: its 1-based round, mask intersection/union in pixels, hit flag and box IoU."""
        if round_ < 1:
            raise GeometryError(f"round={round_}: rounds are 1-based (round = turn index + 1)")
        if intersection < 0 or union < 0 or intersection > union:
            raise GeometryError(f"intersection={intersection}, union={union}: need 0 <= intersection <= union")
        sums = self._rounds.get(round_)
        if sums is None:
            sums = self._rounds[round_] = _Sums()
        for target in (sums, self._all):
            target.add(int(intersection), int(union), bool(hit), float(box_iou), bool(failed))

    def add_result(self, result: TurnResult) -> None:
        """Add one :class:`TurnResult`."""
        self.add(
            result.round,
            intersection=result.intersection,
            union=result.union,
            hit=result.hit,
            box_iou=result.box_iou,
            failed=result.status == "failed",
        )

    def __len__(self) -> int:
        return self._all.count

    def summary(self) -> Summary:
        """The per-round rows (R1 first) and the pooled "Avg" row."""
        rows = [self._rounds[r].row(f"R{r}", r) for r in sorted(self._rounds)]
        return Summary(rounds=rows, avg=self._all.row("Avg", None))


def summarise(results: Iterable[TurnResult]) -> Summary:
    """Summarise results (any iterable, streamed once) into per-round metrics and the pooled "Avg"."""
    metrics = RoundMetrics()
    for result in results:
        metrics.add_result(result)
    return metrics.summary()
