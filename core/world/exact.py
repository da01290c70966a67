"""Exact segmentation of synthetic-world images: palette segmentation plus shape templates.

The world paints every object in one of :data:`~regionreasoner.core.world.COLOURS` on a flat
:data:`~regionreasoner.core.world.BACKGROUND`; striped and checkered textures add the colour's half-bright shade and
dotted ones white dots (``core.world.scene._texture``).  :class:`WorldSegmenter` therefore

1. labels each pixel with its nearest palette entry (background, white, GenEval's ``#999`` fill, each colour and its
   dark shade), leaving pixels farther than ``tolerance`` (RGB distance) unlabelled;
2. gives white pixels to the nearest colour pixel within a dot's radius (the dots of a dotted shape);
3. splits each colour into 8-connected components (smaller than ``min_area`` are dropped);
4. fills a component's holes that are not background (another object inside it), keeps background holes (a ring);
5. fits each kind's template, rasterised by the world's own ``_shape_mask`` from the component's box, and keeps the
   kind with the best IoU; ``score = min(1, IoU / full_score_iou)``, components below ``min_iou`` are dropped.

It lives in core (pure numpy + scipy + PIL) because the demo checks its inpainted region with it and the generation
evals score with it: :class:`~regionreasoner.evals.generation.exact.ExactWorldDetector` adds GenEval's detector
interface (moved here from evals/generation/exact.py, which keeps that class and re-exports these names).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.geometry import Box
from regionreasoner.core.masks import BoolMask

# WHY the private names: the templates must be rasterised exactly as the world draws its shapes.
from regionreasoner.core.world.scene import BACKGROUND, COLOURS, KINDS, _shape_mask, _Spec

__all__ = ["FILL_RGB", "WorldObject", "WorldSegmenter"]

FILL_RGB: tuple[int, int, int] = (153, 153, 153)
"""GenEval's ``#999``: what the crop pipeline paints outside an object's mask."""

_NAMES: tuple[str, ...] = tuple(COLOURS)
_BACKGROUND, _WHITE, _FILL, _UNKNOWN = -1, -2, -3, -4

# Box width and height per radius of each kind's drawing (PIL adds about one pixel), and the box centre's offset
# above the drawing centre per radius.
_FIT: dict[str, tuple[float, float, float]] = {
    "circle": (2.0, 2.0, 0.0),
    "square": (1.7, 1.7, 0.0),
    "triangle": (np.sqrt(3.0), 1.5, 0.1),
    "star": (2 * np.sin(np.deg2rad(72)), 1 + np.cos(np.deg2rad(36)), (1 - np.cos(np.deg2rad(36))) / 2),
    "ring": (2.0, 2.0, 0.0),
    "cross": (1.9, 1.9, 0.0),
}


@dataclass(frozen=True, eq=False)
class WorldObject:
    """One segmented object: kind, colour, pixels and the template fit."""

    kind: str
    colour: str
    mask: BoolMask
    """Its pixels (H, W) in the whole image, holes of other objects filled."""
    box: Box
    """Tight box of ``mask`` (xyxy pixels, ``x2 = last column + 1``)."""
    iou: float
    """IoU of the best template with ``mask``."""
    score: float
    """``min(1, iou / full_score_iou)``: the detection confidence."""


def _palette() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    rgb = [BACKGROUND, (255, 255, 255), FILL_RGB]
    codes = [_BACKGROUND, _WHITE, _FILL]
    for k, name in enumerate(_NAMES):
        base = np.array(COLOURS[name], dtype=np.uint8)
        rgb += [tuple(base), tuple((base.astype(np.float64) * 0.5).astype(np.uint8))]  # the world's dark shade
        codes += [k, k]
    return np.array(rgb, dtype=np.float64), np.array(codes, dtype=np.int64)


class WorldSegmenter:
    """Exact segmenter and colour classifier for images of the synthetic world (see the module docstring).

    ``tolerance`` is the largest RGB distance to a palette entry (0 would accept exact colours only);
    ``min_area`` the fewest pixels of an object, also at least ``min_area_share`` of the image; ``min_iou`` the
    least template IoU of a kept object; ``full_score_iou`` the IoU scored 1.0.
    """

    def __init__(
        self,
        *,
        tolerance: float = 60.0,
        min_area: int = 12,
        min_area_share: float = 0.001,
        min_iou: float = 0.5,
        full_score_iou: float = 0.8,
    ) -> None:
        if not tolerance > 0 or min_area < 1 or not 0 <= min_area_share < 1:
            raise ConfigError("tolerance > 0, min_area >= 1 and 0 <= min_area_share < 1 are needed")
        if not 0 < min_iou <= full_score_iou <= 1:
            raise ConfigError(f"min_iou={min_iou}, full_score_iou={full_score_iou}: use 0 < min_iou <= full <= 1")
        self.tolerance = tolerance
        self.min_area = min_area
        self.min_area_share = min_area_share
        self.min_iou = min_iou
        self.full_score_iou = full_score_iou
        self._rgb, self._codes = _palette()

    def labels(self, image: Image.Image) -> npt.NDArray[np.int64]:
        """Per-pixel codes (H, W): a colour's index in COLOURS' order, or -1 background, -2 white, -3 fill, -4 none."""
        pixels = np.asarray(image.convert("RGB"), dtype=np.int64)
        packed = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
        # WHY unique colours: a world image has a few dozen, so the distances are computed once per colour.
        values, inverse = np.unique(packed.ravel(), return_inverse=True)
        rgb = np.stack([(values >> 16) & 255, (values >> 8) & 255, values & 255], axis=-1).astype(np.float64)
        d2 = ((rgb[:, None, :] - self._rgb[None]) ** 2).sum(-1)
        nearest = d2.argmin(-1)
        codes: npt.NDArray[np.int64] = self._codes[nearest]
        codes[d2[np.arange(len(values)), nearest] > self.tolerance**2] = _UNKNOWN
        out: npt.NDArray[np.int64] = codes[inverse].reshape(packed.shape)
        return out

    def segment(self, image: Image.Image) -> list[WorldObject]:
        """Every object found in ``image`` (any size, RGB), best score first."""
        from scipy import ndimage

        codes = self.labels(image)
        height, width = codes.shape
        coloured = codes >= 0
        if coloured.any():
            # Dots: each white pixel joins the nearest coloured pixel within a dot's radius.
            distance, (iy, ix) = ndimage.distance_transform_edt(~coloured, return_indices=True)
            radius = max(3.0, 0.025 * min(height, width))
            dots = (codes == _WHITE) & (distance <= radius)
            codes = codes.copy()
            codes[dots] = codes[iy[dots], ix[dots]]
        least = max(self.min_area, int(self.min_area_share * height * width))
        eight = np.ones((3, 3), dtype=bool)
        ids = np.zeros(codes.shape, dtype=np.int64)
        colour_of: list[str] = [""]
        for k, name in enumerate(_NAMES):
            parts, n = ndimage.label(codes == k, structure=eight)
            if n:
                ids[parts > 0] = parts[parts > 0] + len(colour_of) - 1
                colour_of += [name] * n
        sizes = np.bincount(ids.ravel(), minlength=len(colour_of))
        boxes = ndimage.find_objects(ids)
        order = sorted(range(1, len(colour_of)), key=lambda i: -_box_area(boxes[i - 1]))
        found: list[WorldObject] = []
        seen_through: set[int] = set()
        for index in order:
            where = boxes[index - 1]
            if where is None or sizes[index] < least or index in seen_through:
                continue
            ys, xs = where
            y1, y2 = max(0, ys.start - 1), min(height, ys.stop + 1)
            x1, x2 = max(0, xs.start - 1), min(width, xs.stop + 1)
            crop = _Crop(ids[y1:y2, x1:x2], codes[y1:y2, x1:x2], (x1, y1), (height, width), ids, colour_of, sizes)
            obj = self._object(index, crop, seen_through)
            if obj is not None:
                found.append(obj)
        found.sort(key=lambda o: -o.score)
        return found

    def _object(self, index: int, crop: _Crop, seen_through: set[int]) -> WorldObject | None:
        from scipy import ndimage

        piece = crop.ids == index
        filled = ndimage.binary_fill_holes(piece)
        holes, n = ndimage.label(filled & ~piece)
        covered = piece.copy()
        inner: list[int] = []
        for h in range(1, n + 1):
            hole = holes == h
            background = np.isin(crop.codes[hole], (_BACKGROUND, _UNKNOWN)).mean()
            inside = [int(j) for j in np.unique(crop.ids[hole]) if j > 0]
            # A hole of background, or one showing an object that continues outside, is a hole (of a ring).
            if background < 0.3 and all(int((crop.ids[filled] == j).sum()) == crop.sizes[j] for j in inside):
                covered |= hole
                inner += inside
        kind, iou = _best_kind(covered)
        if inner and all(crop.colour_of[j] in (rim := crop.surrounding(filled)) for j in inner):
            # What fills the hole has the colour of what lies around this object: a ring lying on a larger
            # object that shows through its hole, when the shape with its hole kept reads as a ring.
            ring, ring_iou = _best_kind(piece)
            if ring == "ring":
                kind, iou, covered = ring, ring_iou, piece
                seen_through.update(j for j in inner if crop.colour_of[j] in rim)
        hole_share = float((filled & ~covered).sum()) / float(filled.sum())
        if kind != "ring" and hole_share >= 0.12:
            # A disc with a hole of background is a ring even when a few-pixel ring's hole sits a pixel off.
            outer, outer_iou = _best_kind(filled, ("circle", "ring"))
            if outer == "circle" and outer_iou >= self.min_iou:
                kind, iou = "ring", outer_iou
        solid = covered
        if iou < self.min_iou:
            return None
        full = np.zeros(crop.shape, dtype=bool)
        x0, y0 = crop.origin
        full[y0 : y0 + solid.shape[0], x0 : x0 + solid.shape[1]] = solid
        ys, xs = np.nonzero(solid)
        box = Box(float(x0 + xs.min()), float(y0 + ys.min()), float(x0 + xs.max() + 1), float(y0 + ys.max() + 1))
        score = min(1.0, iou / self.full_score_iou)
        return WorldObject(kind=kind, colour=crop.colour_of[index], mask=full, box=box, iou=iou, score=score)

    def classify(self, crops: Sequence[Image.Image], classname: str) -> list[str]:
        """The majority world colour of each crop's pixels (fill, background and white ignored); "" when none."""
        out = []
        for crop in crops:
            codes = self.labels(crop)
            votes = np.bincount(codes[codes >= 0], minlength=len(_NAMES))
            out.append(_NAMES[int(votes.argmax())] if votes.sum() else "")
        return out


def _box_area(where: tuple[slice, slice] | None) -> int:
    if where is None:
        return 0
    ys, xs = where
    return int((ys.stop - ys.start) * (xs.stop - xs.start))


@dataclass(frozen=True, eq=False)
class _Crop:
    """One component's neighbourhood: component ids and pixel codes of a crop, and what the whole image knows."""

    ids: npt.NDArray[np.int64]
    codes: npt.NDArray[np.int64]
    origin: tuple[int, int]
    """``(x, y)`` of the crop's top-left pixel in the image."""
    shape: tuple[int, int]
    """``(H, W)`` of the image."""
    all_ids: npt.NDArray[np.int64]
    colour_of: list[str]
    sizes: npt.NDArray[np.int64]

    def surrounding(self, filled: BoolMask) -> set[str]:
        """Colours of the components covering at least a tenth of the pixels just outside ``filled``."""
        from scipy import ndimage

        x0, y0 = self.origin
        full = np.zeros(self.all_ids.shape, dtype=bool)
        full[y0 : y0 + filled.shape[0], x0 : x0 + filled.shape[1]] = filled
        rim = ndimage.binary_dilation(full, iterations=2) & ~full
        votes = np.bincount(self.all_ids[rim], minlength=len(self.colour_of))
        return {self.colour_of[j] for j in np.flatnonzero(votes >= 0.1 * rim.sum()) if j > 0}


def _best_kind(solid: BoolMask, kinds: Sequence[str] = KINDS) -> tuple[str, float]:
    """The kind of ``kinds`` whose template (fitted to ``solid``'s box) overlaps ``solid`` best, and that IoU.

    The template's radius and centre come from the box; when no kind fits well (IoU < 0.9: a tip hidden under
    another object, or a shape a few pixels wide), fits anchored on each side of the box (sized by the other
    dimension) and sub-pixel shifts and sizes of the centred fit are tried for the two best kinds.
    """
    ys, xs = np.nonzero(solid)
    x1, x2, y1, y2 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    width, height = float(x2 - x1), float(y2 - y1)
    pad = 2 + int(0.6 * max(width, height))
    canvas = (solid.shape[1] + 2 * pad, solid.shape[0] + 2 * pad)
    target = np.pad(solid, pad)
    area = int(solid.sum())

    def iou(kind: str, cx: float, cy: float, radius: float) -> float:
        spec = _Spec(kind, "red", "solid", pad + cx, pad + cy, max(1.0, radius))
        template = _shape_mask(spec, *canvas)
        inter = int((template & target).sum())
        return inter / (int(template.sum()) + area - inter)

    first: dict[str, float] = {}
    for kind in kinds:
        a_w, a_h, up = _FIT[kind]
        radius = ((width - 1) / a_w + (height - 1) / a_h) / 2
        first[kind] = iou(kind, (x1 + x2) / 2, (y1 + y2) / 2 + up * radius, radius)
    best = max(first.items(), key=lambda b: b[1])
    if best[1] >= 0.9:
        return best
    for kind in sorted(first, key=lambda k: -first[k])[:2]:  # the two best kinds are refitted
        a_w, a_h, up = _FIT[kind]
        r_w, r_h = (width - 1) / a_w, (height - 1) / a_h
        top, bottom = a_h / 2 + up, a_h / 2 - up  # extents above and below the drawing centre, per radius
        radius = (r_w + r_h) / 2
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + up * radius
        fits = [
            ((x1 + x2) / 2, y1 + 0.5 + top * r_w, r_w),  # top edge kept, bottom hidden
            ((x1 + x2) / 2, y2 - 0.5 - bottom * r_w, r_w),  # bottom edge kept
            (x1 + 0.5 + a_w / 2 * r_h, (y1 + y2) / 2 + up * r_h, r_h),  # left edge kept
            (x2 - 0.5 - a_w / 2 * r_h, (y1 + y2) / 2 + up * r_h, r_h),  # right edge kept
            # sub-pixel shifts and sizes: small shapes rasterise a pixel either way
            *((cx + dx, cy + dy, radius) for dx in (-0.5, 0.5) for dy in (-0.5, 0.5)),
            (cx, cy, 0.93 * radius),
            (cx, cy, 1.07 * radius),
        ]
        for cx, cy, radius in fits:
            best = max(best, (kind, iou(kind, cx, cy, radius)), key=lambda b: b[1])
    return best
