"""Scenes of the synthetic world: coloured, textured shapes with exact ground truth, deterministic by seed.

A :class:`Scene` is an RGB image of ``width x height`` pixels on a light grey background with a few shapes
(:data:`KINDS`) in named colours (:data:`COLOURS`) and textures (:data:`TEXTURES`).  Shapes may overlap: they are
drawn in order of their ``id`` (1, 2, ...), later shapes on top, so each object's **mask is its visible pixels**
(masks of different objects are disjoint) and its **box is the tight box of that mask**
(:func:`regionreasoner.core.masks.mask_to_box`, original pixels, ``x2 = last column + 1``).  Every object keeps at
least :data:`MIN_VISIBLE_SHARE` of its drawn area visible.  Size words (:data:`SIZES`) name the tercile of an
object's visible area among the objects of its image.

Everything is a pure function of the seed (a numpy ``Generator`` drives every choice; shapes are rasterised with
PIL without anti-aliasing), so the same seed gives the same pixels, masks and boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.geometry import Box, Point
from regionreasoner.core.masks import BoolMask, mask_to_box

__all__ = [
    "BACKGROUND",
    "COLOURS",
    "KINDS",
    "MIN_VISIBLE_PIXELS",
    "MIN_VISIBLE_SHARE",
    "SIZES",
    "TEXTURES",
    "Scene",
    "SceneObject",
    "inner_point",
    "make_scene",
]

KINDS: tuple[str, ...] = ("circle", "square", "triangle", "star", "ring", "cross")
"""Shape kinds (the noun of a referring expression)."""

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (214, 39, 40),
    "green": (44, 160, 44),
    "blue": (31, 90, 210),
    "yellow": (240, 200, 20),
    "purple": (148, 60, 189),
    "orange": (255, 127, 14),
    "pink": (240, 110, 190),
}
"""Named colours, RGB 0..255."""

TEXTURES: tuple[str, ...] = ("solid", "striped", "dotted", "checkered")
"""Fill patterns: solid colour, diagonal stripes, white dots, checks (stripes and checks in a darker shade)."""

SIZES: tuple[str, ...] = ("small", "medium", "large")
"""Size words: terciles of visible area within the image."""

BACKGROUND: tuple[int, int, int] = (236, 236, 236)
"""Background colour, RGB."""

MIN_VISIBLE_SHARE = 0.6
"""Every object keeps at least this share of its drawn pixels visible."""

MIN_VISIBLE_PIXELS = 80
"""Every object keeps at least this many visible pixels."""

Placement = Literal["free", "inside", "overlap", "touch"]
_PLACEMENTS: tuple[Placement, ...] = ("free", "free", "free", "inside", "overlap", "touch")
"""Where a new shape goes: anywhere, or relative to an earlier shape (so that relations other than left/right occur)."""


@dataclass(frozen=True, eq=False)
class SceneObject:
    """One shape of a scene, with exact ground truth in original-image pixels."""

    id: int
    """1-based draw order: a higher id is drawn on top of a lower one."""
    kind: str
    colour: str
    texture: str
    size: str
    """Tercile of the visible area among the scene's objects: small, medium or large."""
    mask: BoolMask
    """Visible pixels, shape (H, W)."""
    box: Box
    """Tight box of the visible pixels (xyxy, ``x2 = last column + 1``)."""
    area: int
    """Visible pixels."""
    drawn_area: int
    """Pixels of the whole shape before later shapes covered part of it."""


@dataclass(frozen=True, eq=False)
class Scene:
    """An image and its objects (in draw order); ``seed`` is what :func:`make_scene` was given."""

    seed: tuple[int, ...]
    image: Image.Image
    objects: tuple[SceneObject, ...]

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return self.image.size

    def object(self, object_id: int) -> SceneObject:
        """The object with this id."""
        for obj in self.objects:
            if obj.id == object_id:
                return obj
        raise ConfigError(f"no object {object_id} in this scene: ids are 1..{len(self.objects)}")


@dataclass(frozen=True)
class _Spec:
    kind: str
    colour: str
    texture: str
    cx: float
    cy: float
    radius: float


def _polygon(cx: float, cy: float, radii: Sequence[float], start_deg: float) -> list[tuple[float, float]]:
    n = len(radii)
    angles = np.deg2rad(start_deg + 360.0 * np.arange(n) / n)
    return [(cx + r * float(np.cos(a)), cy + r * float(np.sin(a))) for r, a in zip(radii, angles, strict=True)]


def _shape_mask(spec: _Spec, width: int, height: int) -> BoolMask:
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    cx, cy, r = spec.cx, spec.cy, spec.radius
    if spec.kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    elif spec.kind == "square":
        s = 0.85 * r
        draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=255)
    elif spec.kind == "triangle":
        draw.polygon(_polygon(cx, cy + 0.15 * r, [r] * 3, -90.0), fill=255)
    elif spec.kind == "star":
        draw.polygon(_polygon(cx, cy, [r, 0.45 * r] * 5, -90.0), fill=255)
    elif spec.kind == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        inner = 0.55 * r
        draw.ellipse([cx - inner, cy - inner, cx + inner, cy + inner], fill=0)
    elif spec.kind == "cross":
        arm, half = 0.95 * r, 0.32 * r
        draw.rectangle([cx - arm, cy - half, cx + arm, cy + half], fill=255)
        draw.rectangle([cx - half, cy - arm, cx + half, cy + arm], fill=255)
    else:
        raise ConfigError(f"unknown shape kind {spec.kind!r}: use one of {KINDS}")
    return np.asarray(canvas) > 0


def _texture(spec: _Spec, mask: BoolMask) -> npt.NDArray[np.uint8]:
    """The shape's pixels (H, W, 3) over its whole box; only ``mask`` pixels are used."""
    height, width = mask.shape
    base = np.array(COLOURS[spec.colour], dtype=np.uint8)
    dark = (base.astype(np.float64) * 0.5).astype(np.uint8)
    out = np.empty((height, width, 3), dtype=np.uint8)
    out[:] = base
    yy, xx = np.mgrid[0:height, 0:width]
    period = max(4, round(spec.radius / 2.5))
    x0, y0 = round(spec.cx - spec.radius), round(spec.cy - spec.radius)
    u, v = xx - x0, yy - y0
    if spec.texture == "striped":
        out[((u + v) // max(2, period // 2)) % 2 == 1] = dark
    elif spec.texture == "checkered":
        out[((u // period) + (v // period)) % 2 == 1] = dark
    elif spec.texture == "dotted":
        du, dv = u % period - period // 2, v % period - period // 2
        out[du * du + dv * dv <= max(1, (period // 4) ** 2)] = (255, 255, 255)
    elif spec.texture != "solid":
        raise ConfigError(f"unknown texture {spec.texture!r}: use one of {TEXTURES}")
    return out


def _propose(rng: np.random.Generator, drawn: list[tuple[_Spec, BoolMask]], width: int, height: int) -> _Spec:
    short = min(width, height)
    kind = KINDS[int(rng.integers(len(KINDS)))]
    colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
    texture = TEXTURES[int(rng.integers(len(TEXTURES)))]
    radius = float(rng.uniform(0.055, 0.17)) * short
    placement: Placement = "free"
    if drawn:
        placement = _PLACEMENTS[int(rng.integers(len(_PLACEMENTS)))]
    cx = float(rng.uniform(radius + 2, width - radius - 2))
    cy = float(rng.uniform(radius + 2, height - radius - 2))
    if placement != "free":
        anchor, _ = drawn[int(rng.integers(len(drawn)))]
        angle = float(rng.uniform(0, 2 * np.pi))
        if placement == "inside":
            radius = min(radius, 0.3 * anchor.radius)
            cx, cy = anchor.cx + 0.2 * anchor.radius * np.cos(angle), anchor.cy + 0.2 * anchor.radius * np.sin(angle)
        elif placement == "overlap":
            distance = 0.8 * (anchor.radius + radius)
            cx, cy = anchor.cx + distance * np.cos(angle), anchor.cy + distance * np.sin(angle)
        else:  # touch: side by side, boxes about one pixel apart (the touch relation is checked on final boxes)
            side = 1.0 if rng.random() < 0.5 else -1.0
            cx = anchor.cx + side * (anchor.radius + radius + 1.0)
            cy = anchor.cy + float(rng.uniform(-0.4, 0.4)) * anchor.radius
    return _Spec(kind, colour, texture, float(cx), float(cy), float(radius))


def _visible(masks: list[BoolMask]) -> list[BoolMask]:
    covered = np.zeros_like(masks[0])
    out: list[BoolMask] = []
    for m in reversed(masks):
        out.append(m & ~covered)
        covered |= m
    return out[::-1]


def make_scene(
    seed: int | Sequence[int],
    *,
    size: tuple[int, int] = (320, 240),
    n_objects: tuple[int, int] = (4, 8),
) -> Scene:
    """Generate a scene from ``seed`` (an int or a sequence of ints for numpy's ``default_rng``).

    ``size`` is ``(width, height)`` in pixels; the number of objects is drawn uniformly from ``n_objects``
    (inclusive).  Raises :class:`ConfigError` for sizes or counts that cannot produce a valid scene.
    """
    width, height = size
    lo, hi = n_objects
    if width < 64 or height < 64:
        raise ConfigError(f"size={size}: use at least 64x64 pixels")
    if not 1 <= lo <= hi <= 24:
        raise ConfigError(f"n_objects={n_objects}: use 1 <= min <= max <= 24")
    seed_tuple = (seed,) if isinstance(seed, int) else tuple(int(s) for s in seed)
    rng = np.random.default_rng(list(seed_tuple))
    target = int(rng.integers(lo, hi + 1))
    drawn: list[tuple[_Spec, BoolMask]] = []
    for _ in range(target * 40):
        if len(drawn) == target:
            break
        spec = _propose(rng, drawn, width, height)
        if not (
            spec.radius + 1 <= spec.cx <= width - spec.radius - 1
            and spec.radius + 1 <= spec.cy <= height - spec.radius - 1
        ):
            continue
        mask = _shape_mask(spec, width, height)
        masks = [m for _, m in drawn] + [mask]
        visible = _visible(masks)
        if all(
            int(v.sum()) >= max(MIN_VISIBLE_PIXELS, MIN_VISIBLE_SHARE * int(m.sum()))
            for v, m in zip(visible, masks, strict=True)
        ):
            drawn.append((spec, mask))
    if len(drawn) < lo:
        raise ConfigError(f"could not place {lo} objects in {width}x{height}: use a larger size or fewer objects")
    return _assemble(seed_tuple, drawn, width, height)


def _assemble(seed: tuple[int, ...], drawn: list[tuple[_Spec, BoolMask]], width: int, height: int) -> Scene:
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = BACKGROUND
    for spec, mask in drawn:
        canvas[mask] = _texture(spec, mask)[mask]
    visible = _visible([m for _, m in drawn])
    areas = [int(v.sum()) for v in visible]
    order = sorted(range(len(drawn)), key=lambda i: (areas[i], i))
    size_of = {i: SIZES[min(2, 3 * rank // len(drawn))] for rank, i in enumerate(order)}
    objects = []
    for i, ((spec, mask), vis) in enumerate(zip(drawn, visible, strict=True)):
        box = mask_to_box(vis)
        assert box is not None  # every object keeps MIN_VISIBLE_PIXELS visible
        objects.append(
            SceneObject(
                id=i + 1,
                kind=spec.kind,
                colour=spec.colour,
                texture=spec.texture,
                size=size_of[i],
                mask=vis,
                box=box,
                area=areas[i],
                drawn_area=int(mask.sum()),
            )
        )
    return Scene(seed=seed, image=Image.fromarray(canvas), objects=tuple(objects))


def inner_point(mask: BoolMask) -> Point:
    """The most interior pixel of a non-empty mask (original pixels, ``(x, y)`` of the pixel's centre).

    The mask is eroded (4-neighbourhood) until one more step would empty it; of the pixels left, the one nearest
    their mean is returned, shifted by half a pixel to the pixel centre.  This approximates the distance-transform
    maximum that the VisionReasoner data uses for ``point_2d`` ("largest inscribed circle" centre), and always lies
    on the mask.  Raises :class:`ConfigError` for an empty mask.
    """
    box = mask_to_box(mask)
    if box is None:
        raise ConfigError("inner_point needs a non-empty mask")
    x1, y1, x2, y2 = (int(v) for v in box)
    core = np.pad(np.asarray(mask[y1:y2, x1:x2], dtype=bool), 1)
    while True:
        eroded = core.copy()
        eroded[1:-1, 1:-1] &= core[:-2, 1:-1] & core[2:, 1:-1] & core[1:-1, :-2] & core[1:-1, 2:]
        eroded[0, :] = eroded[-1, :] = False
        eroded[:, 0] = eroded[:, -1] = False
        if not eroded.any():
            break
        core = eroded
    ys, xs = np.nonzero(core)
    my, mx = float(ys.mean()), float(xs.mean())
    i = int(np.argmin((ys - my) ** 2 + (xs - mx) ** 2))
    return Point(float(xs[i] - 1 + x1) + 0.5, float(ys[i] - 1 + y1) + 0.5)
