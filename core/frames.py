"""Coordinate frames: how a policy's coordinates map to original-image pixels and back.

Memory stores boxes and points in original pixels (float xyxy, after EXIF transpose).  A policy answers in its
own frame; every frame here is an axis-aligned scaling ``model = original * (Mw / W, Mh / H)`` where
``(Mw, Mh) = frame.model_size(W, H)``:

* :class:`FixedResizeFrame`: the image is resized to a fixed size (RegionReasoner, VisionReasoner, Seg-Zero:
  840x840) and the model answers in pixels of that resized image.
* :class:`SmartResizeFrame`: Qwen2.5-VL native resolution: the processor's ``smart_resize`` picks a size whose
  sides are multiples of ``patch_size * merge_size`` (28) with ``min_pixels <= Mw*Mh <= max_pixels``; the model
  answers in pixels of that image.
* :class:`NormalizedFrame`: 0..1000 on both axes whatever the image size (Qwen2-VL, Qwen3-VL).
* :class:`PixelFrame`: original pixels (identity), for tools and for the official-eval reproduction option.

To the model, coordinates are rounded half up to integers (``floor(v + 0.5)``, as the reference code rounds);
back from the model they stay floats, so ``to_model(from_model(m)) == m`` for every integer ``m`` in range.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

from regionreasoner.core.errors import ConfigError, GeometryError
from regionreasoner.core.geometry import Box, Point

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MIN_PIXELS",
    "FixedResizeFrame",
    "Frame",
    "NormalizedFrame",
    "PixelFrame",
    "SmartResizeFrame",
    "frame_from_spec",
    "smart_resize",
]

Size = tuple[int, int]
"""(width, height) in pixels."""

DEFAULT_MIN_PIXELS = 56 * 56
"""Fewest pixels of a smart-resized image: transformers' Qwen2-VL image processor default (``size.shortest_edge``)."""
DEFAULT_MAX_PIXELS = 28 * 28 * 1280
"""Most pixels of a smart-resized image: transformers' Qwen2-VL image processor default (``size.longest_edge``)."""


def smart_resize(
    height: int,
    width: int,
    factor: int = 28,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[int, int]:
    """The (height, width) the Qwen2-VL/Qwen2.5-VL image processor resizes an image to.

    Both sides become multiples of ``factor`` (patch size x merge size), the pixel count lands in
    ``[min_pixels, max_pixels]`` and the aspect ratio is kept as closely as possible.  Same arithmetic as
    ``transformers.models.qwen2_vl.image_processing_qwen2_vl.smart_resize`` (Python's round-half-even included).
    """
    if height <= 0 or width <= 0:
        raise GeometryError(f"image size must be positive, got {width}x{height}")
    if max(height, width) / min(height, width) > 200:
        raise GeometryError(
            f"aspect ratio {max(height, width) / min(height, width):.1f} is above 200, which Qwen-VL cannot encode",
            hint="crop the image to a less extreme aspect ratio",
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def _round_half_up(v: float) -> int:
    return math.floor(v + 0.5)


class Frame(ABC):
    """A coordinate frame of a policy; see the module docstring.  Frames are immutable and hashable."""

    @property
    @abstractmethod
    def spec(self) -> str:
        """A short text form that :func:`frame_from_spec` turns back into an equal frame."""

    @abstractmethod
    def model_size(self, image_size: Size) -> Size:
        """``(Mw, Mh)``: the extent of the model's coordinate space for an original image of ``(W, H)`` pixels."""

    def resized_image_size(self, image_size: Size) -> Size | None:
        """The size the image must be resized to before the model sees it, or None to leave it to the processor."""
        return None

    def _scales(self, image_size: Size) -> tuple[float, float]:
        w, h = image_size
        if w <= 0 or h <= 0:
            raise GeometryError(f"image size must be positive, got {w}x{h}")
        mw, mh = self.model_size(image_size)
        return mw / w, mh / h

    def box_to_model(self, box: Box, image_size: Size) -> tuple[int, int, int, int]:
        """Original-pixel box -> integer model coordinates (rounded half up)."""
        sx, sy = self._scales(image_size)
        return (
            _round_half_up(box.x1 * sx),
            _round_half_up(box.y1 * sy),
            _round_half_up(box.x2 * sx),
            _round_half_up(box.y2 * sy),
        )

    def box_from_model(self, box: tuple[float, float, float, float] | Box, image_size: Size) -> Box:
        """Model-frame box -> original-pixel box (floats, not rounded)."""
        sx, sy = self._scales(image_size)
        x1, y1, x2, y2 = box
        return Box(x1 / sx, y1 / sy, x2 / sx, y2 / sy)

    def point_to_model(self, point: Point, image_size: Size) -> tuple[int, int]:
        """Original-pixel point -> integer model coordinates."""
        sx, sy = self._scales(image_size)
        return _round_half_up(point.x * sx), _round_half_up(point.y * sy)

    def point_from_model(self, point: tuple[float, float] | Point, image_size: Size) -> Point:
        """Model-frame point -> original-pixel point (floats)."""
        sx, sy = self._scales(image_size)
        return Point(point[0] / sx, point[1] / sy)

    def __str__(self) -> str:
        return self.spec


@dataclass(frozen=True)
class FixedResizeFrame(Frame):
    """The image is resized to ``width x height`` (RegionReasoner: 840x840); coordinates are in that image."""

    width: int = 840
    height: int = 840

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ConfigError(f"FixedResizeFrame({self.width}, {self.height}): both sides must be >= 1 pixel")

    @property
    def spec(self) -> str:
        """``fixed:WxH``."""
        return f"fixed:{self.width}x{self.height}"

    def model_size(self, image_size: Size) -> Size:
        """Always ``(width, height)``."""
        return self.width, self.height

    def resized_image_size(self, image_size: Size) -> Size:
        """Always ``(width, height)``: the policy resizes the image (bilinear) before encoding it."""
        return self.width, self.height


@dataclass(frozen=True)
class SmartResizeFrame(Frame):
    """Qwen2.5-VL native resolution: pixels of the processor's smart-resized image (multiples of ``factor``)."""

    factor: int = 28
    min_pixels: int = DEFAULT_MIN_PIXELS
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        if self.factor <= 0:
            raise ConfigError(f"SmartResizeFrame.factor={self.factor}: use patch_size * merge_size, e.g. 28")
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ConfigError(
                f"SmartResizeFrame min_pixels={self.min_pixels}, max_pixels={self.max_pixels}: "
                "need 0 < min_pixels <= max_pixels"
            )

    @property
    def spec(self) -> str:
        """``smart:FACTOR:MIN:MAX``."""
        return f"smart:{self.factor}:{self.min_pixels}:{self.max_pixels}"

    def model_size(self, image_size: Size) -> Size:
        """The smart-resized ``(width, height)``."""
        w, h = image_size
        h_bar, w_bar = smart_resize(h, w, self.factor, self.min_pixels, self.max_pixels)
        return w_bar, h_bar


@dataclass(frozen=True)
class NormalizedFrame(Frame):
    """Coordinates normalised to ``0..scale`` on both axes (Qwen2-VL, Qwen3-VL: 1000)."""

    scale: int = 1000

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise ConfigError(f"NormalizedFrame.scale={self.scale}: use a positive range such as 1000")

    @property
    def spec(self) -> str:
        """``norm:SCALE``."""
        return f"norm:{self.scale}"

    def model_size(self, image_size: Size) -> Size:
        """Always ``(scale, scale)``."""
        return self.scale, self.scale


@dataclass(frozen=True)
class PixelFrame(Frame):
    """Original-image pixels (the identity frame)."""

    @property
    def spec(self) -> str:
        """``pixels``."""
        return "pixels"

    def model_size(self, image_size: Size) -> Size:
        """The image size itself."""
        return image_size


_ALIASES: dict[str, Frame] = {
    "regionreasoner": FixedResizeFrame(840, 840),
    "fixed840": FixedResizeFrame(840, 840),
    "qwen2.5-vl": SmartResizeFrame(28, 3136, 12845056),
    "qwen2-vl": NormalizedFrame(1000),
    "qwen3-vl": NormalizedFrame(1000),
    "norm1000": NormalizedFrame(1000),
    "pixels": PixelFrame(),
}


def frame_from_spec(spec: str) -> Frame:
    """Parse a frame spec (``fixed:840x840``, ``smart:28:3136:12845056``, ``norm:1000``, ``pixels``) or an alias.

    Aliases: ``regionreasoner``/``fixed840`` (840x840), ``qwen2.5-vl`` (native, the released checkpoints'
    3136..12845056 pixels), ``qwen2-vl``/``qwen3-vl``/``norm1000`` (0..1000), ``pixels``.
    """
    text = spec.strip().lower()
    if text in _ALIASES:
        return _ALIASES[text]
    if m := re.fullmatch(r"fixed:(\d+)x(\d+)", text):
        return FixedResizeFrame(int(m.group(1)), int(m.group(2)))
    if m := re.fullmatch(r"smart:(\d+):(\d+):(\d+)", text):
        return SmartResizeFrame(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if m := re.fullmatch(r"norm:(\d+)", text):
        return NormalizedFrame(int(m.group(1)))
    raise ConfigError(
        f"unknown coordinate frame {spec!r}",
        hint=f"use fixed:WxH, smart:FACTOR:MIN:MAX, norm:SCALE, pixels, or one of {sorted(_ALIASES)}",
    )
