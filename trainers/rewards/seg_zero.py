"""The original single-object Seg-Zero reward (``seg_restrict.py``, used as ``seg_strict``, and the looser ``seg.py``).

One box and two points, in the policy's frame (integer pixels):

* answer ``{"bbox": [x1, y1, x2, y2], "points_1": [x, y], "points_2": [x, y]}``: the first ``{...}`` (no nested
  braces) anywhere in the completion, not only inside ``<answer>``;
* ground truth ``<box>(x1,y1),(x2,y2)</box><points>(x,y),(x,y)</points>``.

Five 0/1 components, ``total`` 0..5: ``think_format`` (the strict VisionReasoner layout), ``answer_format``,
``iou`` (IoU > 0.5 with the ``+1`` convention, but an intersection only when the overlap is at least 2 pixels
wide and tall: the reference tests ``x1 < x2`` before adding 1), ``box_l1`` (mean corner difference < 10 px),
``points`` (both points inside the predicted box, and the mean distance to the ground-truth points under the better
of the two pairings < 100 px, after truncating the predicted points to integers).
``strict=False`` reads keys loosely: the first key containing ``bbox`` and keys containing ``point(s)``.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from typing import Any

from regionreasoner.trainers.rewards.vision_reasoner import think_answer_layout

__all__ = ["SEG_ZERO_COMPONENTS", "score_seg_zero"]

SEG_ZERO_COMPONENTS: tuple[str, ...] = ("think_format", "answer_format", "iou", "box_l1", "points", "total")
"""The names :func:`score_seg_zero` returns."""

_OBJECT = re.compile(r"{[^}]+}")
_GT_BOX = re.compile(r"<box>\((\d+),(\d+)\),\((\d+),(\d+)\)</box>")
_GT_POINTS = re.compile(r"<points>\((\d+),(\d+)\),\((\d+),(\d+)\)</points>")
# WHY: the reference scores any error on model output as 0; these are all the errors its operations can raise on
# decoded JSON (bad JSON, missing keys, wrong types, short lists, a zero union, ints too large for a float).
_FAILURES = (TypeError, ValueError, KeyError, IndexError, ZeroDivisionError, OverflowError, RecursionError)


def _first_object(text: str) -> dict[str, Any] | None:
    m = _OBJECT.search(text)
    if m is None:
        return None
    try:
        data = json.loads(m.group(0))
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _format_ok(data: dict[str, Any], strict: bool) -> bool:
    if strict:
        if any(k not in data for k in ("bbox", "points_1", "points_2")):
            return False
        box, p1, p2 = data["bbox"], data["points_1"], data["points_2"]
        return all(isinstance(v, list) and len(v) == n for v, n in ((box, 4), (p1, 2), (p2, 2)))
    box_key, point_keys = None, []
    for key in data:
        if "bbox" in key.lower() and box_key is None:
            box_key = key
        elif "point" in key.lower():
            point_keys.append(key)
    if box_key is None or len(point_keys) < 2:
        return False
    return len(data[box_key]) == 4 and all(len(data[k]) == 2 for k in point_keys[:2])


def _box_of(data: dict[str, Any], strict: bool) -> Any:
    """The predicted box value when it has 4 entries, else None (raises as the reference does on a bad value)."""
    key = "bbox" if strict else next((k for k in data if "bbox" in k.lower()), None)
    if key is None:
        return None
    box = data[key]
    return box if len(box) == 4 else None


def _iou_hit(box: Any, gt: tuple[int, ...]) -> bool:
    ix1, iy1 = max(box[0], gt[0]), max(box[1], gt[1])
    ix2, iy2 = min(box[2], gt[2]), min(box[3], gt[3])
    inter = (ix2 - ix1 + 1) * (iy2 - iy1 + 1) if ix1 < ix2 and iy1 < iy2 else 0
    union = (box[2] - box[0] + 1) * (box[3] - box[1] + 1) + (gt[2] - gt[0] + 1) * (gt[3] - gt[1] + 1) - inter
    return float(inter) / union > 0.5


def _l1_hit(box: Any, gt: tuple[int, ...]) -> bool:
    return (abs(box[0] - gt[0]) + abs(box[1] - gt[1]) + abs(box[2] - gt[2]) + abs(box[3] - gt[3])) / 4 < 10


def _points_hit(data: dict[str, Any], strict: bool, gt: tuple[int, ...] | None) -> bool:
    box = _box_of(data, strict)
    keys = ["points_1", "points_2"] if strict else [k for k in data if "points" in k.lower()][:2]
    if len(keys) != 2:
        return False
    p1, p2 = data[keys[0]], data[keys[1]]
    a, b = (int(p1[0]), int(p1[1])), (int(p2[0]), int(p2[1]))
    if box is None or gt is None:
        return False

    def inside(p: tuple[int, int]) -> bool:
        return bool(box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3])

    if not (inside(a) and inside(b)):
        return False
    g1, g2 = (gt[0], gt[1]), (gt[2], gt[3])

    def dist(p: tuple[int, int], q: tuple[int, int]) -> float:
        return math.sqrt((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2)

    return min(dist(a, g1) + dist(b, g2), dist(a, g2) + dist(b, g1)) / 2 < 100


def _ints(pattern: re.Pattern[str], text: str) -> tuple[int, ...] | None:
    m = pattern.search(text)
    return tuple(int(v) for v in m.groups()) if m else None


def score_seg_zero(completion: str, solution: str, *, strict: bool = True) -> dict[str, float]:
    """Every Seg-Zero reward component of one completion (0 or 1 each), by name, and ``total`` (0..5).

    >>> answer = '{"bbox": [10, 10, 109, 109], "points_1": [30, 30], "points_2": [80, 80]}'
    >>> text = f"<think>the cup</think><answer>{answer}</answer>"
    >>> score_seg_zero(text, "<box>(12,10),(110,108)</box><points>(32,31),(75,83)</points>")["total"]
    5.0
    """
    gt_box = _ints(_GT_BOX, solution.strip())
    gt_points = _ints(_GT_POINTS, solution)
    data = _first_object(completion)
    values = {"think_format": think_answer_layout(completion), "answer_format": 0.0, "iou": 0.0, "box_l1": 0.0}
    values["points"] = 0.0
    if data is not None:
        # the reference: an error in any check scores that check 0
        with contextlib.suppress(*_FAILURES):
            values["answer_format"] = float(_format_ok(data, strict))
        for name, hit in (("iou", _iou_hit), ("box_l1", _l1_hit)):
            with contextlib.suppress(*_FAILURES):
                box = _box_of(data, strict)
                values[name] = float(box is not None and gt_box is not None and hit(box, gt_box))
        with contextlib.suppress(*_FAILURES):
            values["points"] = float(_points_hit(data, strict, gt_points))
    values["total"] = values["iou"] + values["think_format"] + values["answer_format"] + values["points"]
    values["total"] += values["box_l1"]
    return values
