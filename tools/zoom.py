"""Zooming into a region: :func:`zoom` (a pure function) and the ``zoom`` tool.

A zoom crops a box of the original image, enlarged by a margin and snapped outward to whole pixels, and resizes
it (bicubic) so that its longer side has a fixed length.  The returned :class:`~regionreasoner.tools.base.Crop`
records the exact source region, so boxes drawn on the zoomed image map back to original pixels with
:meth:`Crop.to_original`.  Pure PIL; no model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

from PIL import Image

from regionreasoner.core.errors import ConfigError, ToolError
from regionreasoner.core.geometry import Box
from regionreasoner.core.images import LoadedImage
from regionreasoner.tools.base import Crop, Tool, ToolResult

__all__ = ["ZoomTool", "zoom", "zoom_box"]

Size = int | tuple[int, int]


def _check_settings(margin: float, size: Size, min_side: int) -> None:
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not math.isfinite(margin) or margin < 0:
        raise ConfigError(f"margin={margin!r}: set it to a fraction >= 0 of the box's width and height (e.g. 0.1)")
    sides = [size] if isinstance(size, int) else list(size) if isinstance(size, tuple) and len(size) == 2 else [0]
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sides):
        raise ConfigError(f"size={size!r}: set it to the longer side in pixels (e.g. 448) or to (width, height)")
    if isinstance(min_side, bool) or not isinstance(min_side, int) or min_side < 1:
        raise ConfigError(f"min_side={min_side!r}: set it to an integer number of pixels >= 1")


def zoom_box(box: Box, width: int, height: int, *, margin: float = 0.1, min_side: int = 8) -> Box:
    """The region :func:`zoom` crops for ``box`` on a ``width`` x ``height`` image, in original pixels (xyxy).

    ``box`` grown by ``margin`` times its width (height) on the left and right (top and bottom), clipped to the
    image and snapped outward to whole pixels.  Raises :class:`ToolError` (with a hint) for a non-finite, inverted
    or zero-area box, one outside the image, or a region narrower or lower than ``min_side`` pixels.
    """
    if not box.is_finite():
        raise ToolError(f"bbox {list(box)} has a coordinate that is not a finite number", hint="send four numbers")
    if box.x1 > box.x2 or box.y1 > box.y2:
        raise ToolError(f"bbox {list(box)} is inverted", hint="send [x1, y1, x2, y2]: top-left, then bottom-right")
    if box.width <= 0 or box.height <= 0:
        raise ToolError(f"bbox {list(box)} has no area", hint="send a box with x2 > x1 and y2 > y1")
    if box.intersection(Box(0.0, 0.0, float(width), float(height))) is None:
        raise ToolError(
            f"bbox {list(box)} lies outside the image ({width}x{height})", hint="send a box that overlaps the image"
        )
    grown = Box(
        box.x1 - margin * box.width,
        box.y1 - margin * box.height,
        box.x2 + margin * box.width,
        box.y2 + margin * box.height,
    ).clip(width, height)
    # WHY snap outward to whole pixels: the crop is then exactly the pixels inside `region`, so Crop.to_original
    # (a pure scale and shift) is exact; floor/ceil never shrink the requested region.
    region = Box(
        float(math.floor(grown.x1)), float(math.floor(grown.y1)), float(math.ceil(grown.x2)), float(math.ceil(grown.y2))
    )
    if region.width < min_side or region.height < min_side:
        raise ToolError(
            f"bbox {list(box)} gives a {region.width:g}x{region.height:g} px region; a zoom needs {min_side} px a side",
            hint="send a larger box",
        )
    return region


def zoom(
    image: Image.Image, box: Box, *, margin: float = 0.1, size: Size = 448, min_side: int = 8
) -> tuple[Image.Image, Crop]:
    """Crop ``box`` (original pixels, xyxy) of ``image`` with a margin and resize it; returns ``(zoomed, crop)``.

    The cropped region is :func:`zoom_box`'s.  ``size`` as an int is the zoomed image's longer side in pixels (the
    aspect ratio is kept, the shorter side rounded, at least 1 px); as ``(width, height)`` it is the exact output
    size.  ``crop.box`` is the region in original pixels and ``crop.size`` the zoomed image's ``(width, height)``,
    so ``crop.to_original`` maps a box on the zoomed image back to original pixels.  Raises :class:`ToolError` for
    a box that cannot be zoomed (see :func:`zoom_box`), :class:`ConfigError` for bad settings.
    """
    _check_settings(margin, size, min_side)
    region = zoom_box(box, image.width, image.height, margin=margin, min_side=min_side)
    if isinstance(size, int):
        scale = size / max(region.width, region.height)
        out = (max(1, round(region.width * scale)), max(1, round(region.height * scale)))
    else:
        out = (int(size[0]), int(size[1]))
    left, top, right, bottom = (int(v) for v in region)
    zoomed = image.crop((left, top, right, bottom)).resize(out, Image.Resampling.BICUBIC)
    return zoomed, Crop(box=region, size=out)


class ZoomTool(Tool):
    """The ``zoom`` tool: a close-up of a box of the current image, as a new image for the policy to look at.

    ``bbox_2d`` arrives in original-image pixels (the agent converts it from the policy's frame and resolves region
    names before calling).  ``margin`` is the fraction of the box's width/height added on each side, ``size`` the
    zoomed image's longer side in pixels (or its exact ``(width, height)``), ``min_side`` the smallest region side
    in original pixels that may be zoomed.
    """

    name: ClassVar[str] = "zoom"
    description: ClassVar[str] = (
        'Look closer at a region: returns an enlarged image of the box (e.g. {"bbox_2d": [10, 20, 110, 90]}).'
    )
    inputs: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "properties": {"bbox_2d": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}},
        "required": ["bbox_2d"],
        "additionalProperties": False,
    }

    def __init__(self, *, margin: float = 0.1, size: Size = 448, min_side: int = 8) -> None:
        super().__init__()
        _check_settings(margin, size, min_side)
        self.margin = float(margin)
        self.size = size
        self.min_side = min_side

    def run(self, image: LoadedImage, arguments: Mapping[str, Any]) -> ToolResult:
        """Zoom into ``arguments["bbox_2d"]`` (original pixels, xyxy); the result carries the image and its crop."""
        values = arguments["bbox_2d"]
        if len(values) != 4 or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            raise ToolError(
                f"tool 'zoom' takes bbox_2d as 4 numbers, got {len(values)} items",
                hint="send [x1, y1, x2, y2]",
            )
        zoomed, crop = zoom(
            image.image, Box(*(float(v) for v in values)), margin=self.margin, size=self.size, min_side=self.min_side
        )
        sx, sy = crop.size[0] / crop.box.width, crop.size[1] / crop.box.height
        scale = f"x{sx:.2f}" if math.isclose(sx, sy, rel_tol=0.02) else f"x{sx:.2f} wide, x{sy:.2f} high"
        region = f"{crop.box.width:g}x{crop.box.height:g}"
        text = f"a zoom of a {region} px region, {scale}, as {crop.size[0]}x{crop.size[1]} px"
        return ToolResult(text=text, image=zoomed, crop=crop)
