"""Overlays: regions drawn on their image with boxes, points, masks and R labels.

Boxes and points are in original-image pixels (the frame memory stores), so they are drawn on the upright image
as loaded by :func:`regionreasoner.core.images.load_image` without any rescaling.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from regionreasoner.core.masks import decode_rle
from regionreasoner.core.types import Region

__all__ = ["PALETTE", "render_regions"]

PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (0, 128, 128),
    (170, 110, 40),
)
"""Region colours, cycled by region number (R1 gets the first)."""


def _colour(region_id: str) -> tuple[int, int, int]:
    return PALETTE[(int(region_id[1:]) - 1) % len(PALETTE)]


def render_regions(
    image: Image.Image,
    regions: Sequence[Region],
    *,
    mask_alpha: float = 0.4,
    line_width: int | None = None,
    highlight: Sequence[str] = (),
) -> Image.Image:
    """A copy of ``image`` (RGB) with each region's mask, box, point and id drawn on it.

    ``highlight`` lists region ids drawn with a thicker outline (e.g. the regions a turn just found).  Masks must
    have the image's size; a region whose mask size differs is drawn without its mask.
    """
    canvas = image.convert("RGB").copy()
    width = line_width or max(2, round(max(canvas.size) / 300))
    if mask_alpha > 0:
        base = np.asarray(canvas, dtype=np.float32)
        for region in regions:
            if region.mask is None or tuple(region.mask.size) != (canvas.height, canvas.width):
                continue
            m = decode_rle(region.mask)
            tint = np.asarray(_colour(region.id), dtype=np.float32)
            base[m] = (1 - mask_alpha) * base[m] + mask_alpha * tint
        canvas = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=max(12, round(max(canvas.size) / 40)))
    for region in regions:
        colour = _colour(region.id)
        w = width * 2 if region.id in highlight else width
        b = region.box
        draw.rectangle([b.x1, b.y1, max(b.x1, b.x2 - 1), max(b.y1, b.y2 - 1)], outline=colour, width=w)
        if region.point is not None:
            r = w * 2
            p = region.point
            draw.ellipse([p.x - r, p.y - r, p.x + r, p.y + r], fill=colour, outline=(255, 255, 255))
        label = region.id + (f" {region.label}" if region.label else "")
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        tx, ty = b.x1, max(0.0, b.y1 - (bottom - top) - 2 * w)
        draw.rectangle([tx, ty, tx + (right - left) + 2 * w, ty + (bottom - top) + 2 * w], fill=colour)
        draw.text((tx + w, ty + w - top), label, fill=(255, 255, 255), font=font)
    return canvas
