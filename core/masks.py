"""Binary masks: box conversions, IoU, and COCO run-length encoding through pycocotools.

A mask is a numpy array of shape ``(H, W)`` (rows, columns) and dtype bool, aligned with the original image
after EXIF transpose.  Boxes follow :mod:`regionreasoner.core.geometry` (continuous xyxy pixels), so the box of a
mask whose pixels span columns ``c0..c1`` is ``x1=c0, x2=c1+1``, which is what COCO's ``toBbox`` gives.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from regionreasoner.core.errors import GeometryError
from regionreasoner.core.geometry import Box

__all__ = [
    "BoolMask",
    "Rle",
    "as_mask",
    "box_to_mask",
    "decode_rle",
    "encode_rle",
    "mask_area",
    "mask_iou",
    "mask_to_box",
    "rle_area",
    "rle_from_any",
    "rle_iou",
]

BoolMask = npt.NDArray[np.bool_]


class Rle(BaseModel):
    """COCO compressed run-length encoding of an ``(H, W)`` mask: ``size = [H, W]``, ``counts`` as text."""

    model_config = ConfigDict(frozen=True)

    size: tuple[int, int] = Field(description="[height, width] of the mask in pixels")
    counts: str = Field(description="COCO compressed RLE string (column-major runs)")

    def to_coco(self) -> dict[str, Any]:
        """The dict pycocotools expects (``counts`` as bytes)."""
        return {"size": [self.size[0], self.size[1]], "counts": self.counts.encode("ascii")}


def as_mask(mask: npt.ArrayLike) -> BoolMask:
    """Validate a 2-D array and return it as a C-contiguous bool mask of shape (H, W)."""
    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise GeometryError(f"a mask must be 2-D (H, W), got shape {arr.shape}")
    if arr.dtype != np.bool_:
        arr = arr != 0
    return np.ascontiguousarray(arr)


def mask_area(mask: npt.ArrayLike) -> int:
    """Number of foreground pixels."""
    return int(np.count_nonzero(as_mask(mask)))


def mask_to_box(mask: npt.ArrayLike) -> Box | None:
    """The tight box around the foreground pixels (``x2 = last column + 1``), or None for an empty mask."""
    m = as_mask(mask)
    cols = np.flatnonzero(m.any(axis=0))
    if cols.size == 0:
        return None
    rows = np.flatnonzero(m.any(axis=1))
    return Box(float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))


def box_to_mask(box: Box, height: int, width: int) -> BoolMask:
    """Rasterise a box: pixels whose centre ``(c + 0.5, r + 0.5)`` lies inside it.  Shape ``(height, width)``.

    For integer corners this covers exactly columns ``x1 .. x2-1`` and rows ``y1 .. y2-1``, so
    ``mask_to_box(box_to_mask(b, H, W)) == b`` for integer boxes inside the image.
    """
    if height < 0 or width < 0:
        raise GeometryError(f"mask size must be non-negative, got {height}x{width}")
    out = np.zeros((height, width), dtype=np.bool_)
    c0 = max(0, int(np.ceil(box.x1 - 0.5)))
    c1 = min(width, int(np.ceil(box.x2 - 0.5)))
    r0 = max(0, int(np.ceil(box.y1 - 0.5)))
    r1 = min(height, int(np.ceil(box.y2 - 0.5)))
    if c1 > c0 and r1 > r0:
        out[r0:r1, c0:c1] = True
    return out


def mask_iou(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """IoU of two masks of the same shape; 0 when both are empty."""
    ma, mb = as_mask(a), as_mask(b)
    if ma.shape != mb.shape:
        raise GeometryError(f"mask shapes differ: {ma.shape} vs {mb.shape}", hint="resize one to the other first")
    inter = int(np.count_nonzero(ma & mb))
    union = int(np.count_nonzero(ma | mb))
    return inter / union if union else 0.0


def _mask_utils() -> Any:
    from pycocotools import mask as mask_utils

    return mask_utils


def encode_rle(mask: npt.ArrayLike) -> Rle:
    """COCO-compress a mask."""
    m = as_mask(mask)
    encoded = _mask_utils().encode(np.asfortranarray(m.astype(np.uint8)))
    return Rle(size=(int(encoded["size"][0]), int(encoded["size"][1])), counts=encoded["counts"].decode("ascii"))


def decode_rle(rle: Rle) -> BoolMask:
    """Decode an :class:`Rle` into a bool mask of shape ``rle.size``."""
    with warnings.catch_warnings():
        # pycocotools' Cython decoder trips numpy 2's __array__(copy=...) deprecation; the result is correct.
        warnings.simplefilter("ignore", DeprecationWarning)
        decoded = _mask_utils().decode(rle.to_coco())
    return np.ascontiguousarray(decoded.astype(np.bool_))


def rle_area(rle: Rle) -> int:
    """Foreground pixel count of an encoded mask, without decoding it."""
    return int(_mask_utils().area(rle.to_coco()))


def rle_iou(a: Rle, b: Rle) -> float:
    """IoU of two encoded masks of the same size, computed on the runs (no decoding)."""
    if a.size != b.size:
        raise GeometryError(f"RLE sizes differ: {a.size} vs {b.size}")
    result = _mask_utils().iou([a.to_coco()], [b.to_coco()], [0])
    return float(cast(npt.NDArray[np.float64], result)[0][0])


def rle_from_any(value: Rle | Mapping[str, Any] | Sequence[Sequence[int]] | npt.ArrayLike) -> Rle:
    """Accept an :class:`Rle`, a COCO RLE dict (compressed or uncompressed ``counts``) or a nested 0/1 list.

    RegionDial-Bench files store masks either as nested lists or as RLE dicts; both come out as :class:`Rle`.
    """
    if isinstance(value, Rle):
        return value
    if isinstance(value, Mapping):
        if "size" not in value or "counts" not in value:
            raise GeometryError(f"an RLE dict needs 'size' and 'counts', got keys {sorted(value)}")
        h, w = (int(v) for v in value["size"])
        counts = value["counts"]
        if isinstance(counts, list):
            coco = _mask_utils().frPyObjects({"size": [h, w], "counts": counts}, h, w)
            return Rle(size=(h, w), counts=coco["counts"].decode("ascii"))
        if isinstance(counts, bytes):
            counts = counts.decode("ascii")
        return Rle(size=(h, w), counts=str(counts))
    return encode_rle(np.asarray(value))
