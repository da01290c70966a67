"""Boxes and points in original-image pixels, and their IoU.

Conventions (used everywhere in regionreasoner, see docs/geometry.md):

* Coordinates are **continuous pixel coordinates of the original image after EXIF transpose**: the origin is the
  top-left corner of the top-left pixel, x grows to the right, y grows downwards, and pixel ``(col c, row r)``
  covers ``[c, c+1) x [r, r+1)``.  A box covering columns 10..19 is therefore ``x1=10, x2=20``.
* A box is ``xyxy``: ``(x1, y1, x2, y2)`` with ``x1 <= x2`` and ``y1 <= y2``, as floats.
* A point is ``(x, y)`` in the same coordinates.
* IoU uses continuous areas (``(x2-x1)*(y2-y1)``), as the RegionDial-Bench evaluation does.  The ``+1``
  convention of the Seg-Zero/VisionReasoner rewards (inclusive integer corners) is available with
  ``inclusive=True``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple, SupportsFloat

import numpy as np
import numpy.typing as npt

from regionreasoner.core.errors import GeometryError

__all__ = [
    "Box",
    "Point",
    "as_box",
    "as_point",
    "boxes_array",
    "iou",
    "iou_matrix",
]

FloatArray = npt.NDArray[np.float64]


class Point(NamedTuple):
    """A point ``(x, y)`` in continuous pixel coordinates."""

    x: float
    y: float

    def is_finite(self) -> bool:
        """True when both coordinates are finite numbers."""
        return math.isfinite(self.x) and math.isfinite(self.y)

    def inside(self, box: Box) -> bool:
        """True when the point lies in the closed box ``[x1, x2] x [y1, y2]``."""
        return box.x1 <= self.x <= box.x2 and box.y1 <= self.y <= box.y2


class Box(NamedTuple):
    """An axis-aligned box ``(x1, y1, x2, y2)`` in continuous pixel coordinates (xyxy)."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        """``x2 - x1`` in pixels (negative for an inverted box)."""
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        """``y2 - y1`` in pixels (negative for an inverted box)."""
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        """Area in square pixels; 0 for an empty or inverted box."""
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> Point:
        """The centre point."""
        return Point((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)

    def is_finite(self) -> bool:
        """True when all four coordinates are finite."""
        return all(math.isfinite(v) for v in self)

    def is_valid(self) -> bool:
        """True when finite and not inverted (``x1 <= x2`` and ``y1 <= y2``); empty boxes are valid."""
        return self.is_finite() and self.x1 <= self.x2 and self.y1 <= self.y2

    def within(self, width: float, height: float, *, tol: float = 0.0) -> bool:
        """True when the box lies inside ``[0, width] x [0, height]`` (each side may exceed it by ``tol``)."""
        return self.x1 >= -tol and self.y1 >= -tol and self.x2 <= width + tol and self.y2 <= height + tol

    def clip(self, width: float, height: float) -> Box:
        """The box clipped to ``[0, width] x [0, height]``; an inverted box stays inverted."""
        return Box(
            min(max(self.x1, 0.0), width),
            min(max(self.y1, 0.0), height),
            min(max(self.x2, 0.0), width),
            min(max(self.y2, 0.0), height),
        )

    def intersection(self, other: Box) -> Box | None:
        """The overlapping box, or None when the two boxes share no area."""
        x1, y1 = max(self.x1, other.x1), max(self.y1, other.y1)
        x2, y2 = min(self.x2, other.x2), min(self.y2, other.y2)
        if x2 <= x1 or y2 <= y1:
            return None
        return Box(x1, y1, x2, y2)

    def union_box(self, other: Box) -> Box:
        """The smallest box containing both boxes."""
        return Box(min(self.x1, other.x1), min(self.y1, other.y1), max(self.x2, other.x2), max(self.y2, other.y2))

    def scale(self, sx: float, sy: float) -> Box:
        """The box with x multiplied by ``sx`` and y by ``sy``."""
        return Box(self.x1 * sx, self.y1 * sy, self.x2 * sx, self.y2 * sy)

    def rounded(self) -> tuple[int, int, int, int]:
        """Corners rounded half up to integers (``floor(v + 0.5)``), as the reference code rounds."""
        return (
            math.floor(self.x1 + 0.5),
            math.floor(self.y1 + 0.5),
            math.floor(self.x2 + 0.5),
            math.floor(self.y2 + 0.5),
        )

    def to_list(self) -> list[float]:
        """``[x1, y1, x2, y2]`` as a JSON-friendly list."""
        return [float(v) for v in self]

    def to_xywh(self) -> list[float]:
        """COCO ``[x, y, width, height]``."""
        return [self.x1, self.y1, self.width, self.height]


def as_box(value: Sequence[SupportsFloat] | Box, *, allow_inverted: bool = False) -> Box:
    """Validate four numbers and return a :class:`Box`.

    Raises :class:`GeometryError` on the wrong arity, a non-number, a non-finite value or (unless
    ``allow_inverted``) ``x1 > x2`` / ``y1 > y2``.
    """
    if isinstance(value, Box):
        box = value
    else:
        if isinstance(value, (str, bytes)) or len(value) != 4:
            raise GeometryError(
                f"a box needs exactly 4 numbers [x1, y1, x2, y2], got {value!r}",
                hint="pass xyxy pixel coordinates of the original image",
            )
        try:
            box = Box(*(float(v) for v in value))
        except (TypeError, ValueError) as exc:
            raise GeometryError(f"box coordinates must be numbers, got {value!r}") from exc
    if not box.is_finite():
        raise GeometryError(f"box coordinates must be finite, got {list(box)}")
    if not allow_inverted and (box.x1 > box.x2 or box.y1 > box.y2):
        raise GeometryError(
            f"inverted box {list(box)}: x1 must be <= x2 and y1 <= y2",
            hint="boxes are xyxy (top-left corner, then bottom-right corner), not xywh",
        )
    return box


def as_point(value: Sequence[SupportsFloat] | Point) -> Point:
    """Validate two finite numbers and return a :class:`Point` (raises :class:`GeometryError`)."""
    if isinstance(value, Point):
        point = value
    else:
        if isinstance(value, (str, bytes)) or len(value) != 2:
            raise GeometryError(f"a point needs exactly 2 numbers [x, y], got {value!r}")
        try:
            point = Point(*(float(v) for v in value))
        except (TypeError, ValueError) as exc:
            raise GeometryError(f"point coordinates must be numbers, got {value!r}") from exc
    if not point.is_finite():
        raise GeometryError(f"point coordinates must be finite, got {list(point)}")
    return point


def iou(a: Box, b: Box, *, inclusive: bool = False) -> float:
    """Intersection over union of two boxes, in [0, 1].

    ``inclusive=True`` uses the ``+1`` integer-corner convention of the Seg-Zero/VisionReasoner rewards
    (``width = x2 - x1 + 1``).  Two empty boxes have IoU 0.
    """
    add = 1.0 if inclusive else 0.0
    iw = min(a.x2, b.x2) - max(a.x1, b.x1) + add
    ih = min(a.y2, b.y2) - max(a.y1, b.y1) + add
    inter = max(0.0, iw) * max(0.0, ih)
    area_a = max(0.0, a.x2 - a.x1 + add) * max(0.0, a.y2 - a.y1 + add)
    area_b = max(0.0, b.x2 - b.x1 + add) * max(0.0, b.y2 - b.y1 + add)
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def boxes_array(boxes: Sequence[Sequence[SupportsFloat]] | FloatArray) -> FloatArray:
    """Boxes as a float64 array of shape (N, 4); an empty input gives shape (0, 4)."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise GeometryError(f"expected boxes of shape (N, 4), got shape {arr.shape}")
    return arr


def iou_matrix(
    a: Sequence[Sequence[SupportsFloat]] | FloatArray,
    b: Sequence[Sequence[SupportsFloat]] | FloatArray,
    *,
    inclusive: bool = False,
) -> FloatArray:
    """Pairwise IoU of N boxes against M boxes: a float64 array of shape (N, M).

    Vectorised equivalent of :func:`iou` (same conventions, same ``inclusive`` switch).
    """
    aa, bb = boxes_array(a), boxes_array(b)
    add = 1.0 if inclusive else 0.0
    iw = np.minimum(aa[:, None, 2], bb[None, :, 2]) - np.maximum(aa[:, None, 0], bb[None, :, 0]) + add
    ih = np.minimum(aa[:, None, 3], bb[None, :, 3]) - np.maximum(aa[:, None, 1], bb[None, :, 1]) + add
    inter = np.clip(iw, 0.0, None) * np.clip(ih, 0.0, None)
    area_a = np.clip(aa[:, 2] - aa[:, 0] + add, 0.0, None) * np.clip(aa[:, 3] - aa[:, 1] + add, 0.0, None)
    area_b = np.clip(bb[:, 2] - bb[:, 0] + add, 0.0, None) * np.clip(bb[:, 3] - bb[:, 1] + add, 0.0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    out = np.zeros_like(inter)
    np.divide(inter, union, out=out, where=union > 0)
    return out
