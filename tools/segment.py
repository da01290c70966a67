"""Segmenters.  :class:`BoxSegmenter` fills each box: the mask a box-only evaluation scores against."""

from __future__ import annotations

from collections.abc import Sequence

from regionreasoner.core.geometry import Box, Point
from regionreasoner.core.images import LoadedImage
from regionreasoner.core.masks import Rle, box_to_mask, encode_rle

__all__ = ["BoxSegmenter"]


class BoxSegmenter:
    """Masks that are the boxes themselves (pixels whose centres lie in the box); points are ignored."""

    def segment(self, image: LoadedImage, boxes: Sequence[Box], points: Sequence[Point | None]) -> list[Rle]:
        """One filled-box mask of shape (H, W) per box."""
        return [encode_rle(box_to_mask(b, image.height, image.width)) for b in boxes]
