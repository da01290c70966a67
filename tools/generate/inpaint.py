"""Inpainting and extrapolation on NeoBabel's code grid (neobabel.md §2.3, §2.4).

Inpainting: the region's mask is downsampled to the code grid and thresholded (>= 0.5 → regenerate), the other
codes stay the image's own and are fixed (the sampler never re-masks them, and they are copied through
bit-exact), the grid is decoded and pasted back so that every pixel outside the mask is the ORIGINAL pixel.
Extrapolation: keep ``G//2 - offset`` columns (or rows) at one edge of the ``G x G`` window, generate the
``G//2 + offset`` beside them, and join the result to the rest of the grid; the grid grows along one axis and is
decoded non-square.  Importing this module loads no torch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from regionreasoner.core.errors import ConfigError, GeometryError, InputError
from regionreasoner.tools.generate.prompting import VocabLayout
from regionreasoner.tools.generate.sampler import ImageLogitsModel, SamplerSettings, SamplerStep, generate_codes

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = [
    "DIRECTIONS",
    "Direction",
    "cell_window",
    "crop_box",
    "crop_padded",
    "extrapolate_codes",
    "extrapolation_merge",
    "extrapolation_window",
    "inpaint_codes",
    "paste_back",
    "regenerate_tokens",
]

logger = logging.getLogger(__name__)

Direction = Literal["left", "right", "up", "down"]
DIRECTIONS: tuple[Direction, ...] = ("left", "right", "up", "down")
Box = tuple[int, int, int, int]
"""Integer ``(x0, y0, x1, y1)`` in original pixels, x1/y1 exclusive."""


def crop_box(
    size: tuple[int, int], mask: npt.NDArray[np.bool_], aspect: tuple[int, int] = (1, 1), *, context: float = 0.0
) -> Box:
    """The largest ``aspect`` (w, h) window of an image of ``size`` (w, h), centred on the mask's bounding box.

    The model sees this window (resized to its resolution); for an image of the target aspect it is the whole
    image, which is the release's resize + centre crop.  Following the mask (not the centre) lets a region near
    the edge of a wide image be inpainted; mask pixels still outside the window are left untouched (logged).
    ``context`` > 0 shrinks the window to ``context`` times the mask box's longer side (never below it, never above
    the largest window), so the region fills a known share of the model's code grid.

    >>> m = np.zeros((100, 300), bool); m[40:60, 250:290] = True
    >>> crop_box((300, 100), m)
    (200, 0, 300, 100)
    """
    w, h = size
    tw, th = aspect
    cw, ch = (h * tw // th, h) if w * th >= h * tw else (w, w * th // tw)
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        raise InputError("the mask selects no pixel", hint="pass a mask with True where the image should change")
    cx, cy = (int(xs.min()) + int(xs.max()) + 1) / 2, (int(ys.min()) + int(ys.max()) + 1) / 2
    if context > 0:
        # scale the largest window down to context x the mask's longer side (per aspect unit), keeping the aspect
        longest = max((int(xs.max()) - int(xs.min()) + 1) / tw, (int(ys.max()) - int(ys.min()) + 1) / th)
        unit = min(cw / tw, max(1.0, context * longest))
        cw, ch = max(1, round(unit * tw)), max(1, round(unit * th))
    x0 = min(max(round(cx - cw / 2), 0), w - cw)
    y0 = min(max(round(cy - ch / 2), 0), h - ch)
    outside = int(mask.sum()) - int(mask[y0 : y0 + ch, x0 : x0 + cw].sum())
    if outside:
        logger.warning(
            "%d mask pixels lie outside the %dx%d window the model sees; they stay unchanged", outside, cw, ch
        )
    return (x0, y0, x0 + cw, y0 + ch)


def cell_window(size: tuple[int, int], mask: npt.NDArray[np.bool_], grid: int) -> Box:
    """A square window, ``grid`` cells of the mask box's longer side, that puts the mask box on ONE code cell.

    For a model that draws one shape per code cell (``inpaint_cell`` in generator.json): the box is centred in a
    whole cell, so the regenerated code is exactly the region.  Of the ``grid`` cells per axis the one that keeps
    the window most inside the image is used (ties: the one nearest the middle); the window may still reach past
    the image (a large region in a small image), and :func:`crop_padded` fills that part with the border's colour.

    >>> m = np.zeros((240, 320), bool); m[100:140, 10:40] = True
    >>> cell_window((320, 240), m, 3)   # a 40-pixel cell, the box in the left column
    (5, 60, 125, 180)
    """
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
        raise ConfigError(f"grid={grid!r}: use the code grid's side (cells per axis)")
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        raise InputError("the mask selects no pixel", hint="pass a mask with True where the image should change")
    x_lo, x_hi, y_lo, y_hi = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    cell = max(x_hi - x_lo, y_hi - y_lo)
    side = grid * cell

    def start(lo: int, hi: int, extent: int) -> int:
        # window start that puts the box's centre at the centre of cell i; the cell with least overhang wins
        centre = (lo + hi) / 2
        starts = [(round(centre - (i + 0.5) * cell), i) for i in range(grid)]
        return min(starts, key=lambda s: (max(0, -s[0]) + max(0, s[0] + side - extent), abs(s[1] - (grid - 1) / 2)))[0]

    x0, y0 = start(x_lo, x_hi, size[0]), start(y_lo, y_hi, size[1])
    return (x0, y0, x0 + side, y0 + side)


def crop_padded(image: Image.Image, box: Box) -> Image.Image:
    """``image.crop(box)`` where the part of ``box`` outside the image is the colour most common on its border.

    PIL's crop fills it black, which the model would read as content; the border colour is the background.
    """
    from PIL import Image as PILImage

    rgb = image.convert("RGB")
    x0, y0, x1, y1 = box
    if x0 >= 0 and y0 >= 0 and x1 <= rgb.width and y1 <= rgb.height:
        return rgb.crop(box)
    pixels = np.asarray(rgb)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    colours, counts = np.unique(border.reshape(-1, 3), axis=0, return_counts=True)
    fill = tuple(int(v) for v in colours[int(counts.argmax())])
    out = PILImage.new("RGB", (x1 - x0, y1 - y0), fill)
    inside = (max(x0, 0), max(y0, 0), min(x1, rgb.width), min(y1, rgb.height))
    if inside[0] < inside[2] and inside[1] < inside[3]:
        out.paste(rgb.crop(inside), (inside[0] - x0, inside[1] - y0))
    return out


def regenerate_tokens(codes: torch.Tensor, regenerate: torch.Tensor, layout: VocabLayout) -> torch.Tensor:
    """Vocabulary ids (B, N) for the sampler: ``code + image_offset`` where kept, ``mask_id`` where ``regenerate``.

    ``codes`` (B, N) long in ``[0, K)``; ``regenerate`` (N,) or (B, N) bool (True = generate anew).
    """
    import torch

    if codes.ndim != 2 or regenerate.shape[-1] != codes.shape[1]:
        raise InputError(
            f"codes {tuple(codes.shape)} and mask {tuple(regenerate.shape)}", hint="pass (B, N) codes, (N,) mask"
        )
    return torch.where(regenerate.to(codes.device, torch.bool), layout.mask_id, codes + layout.image_offset)


def inpaint_codes(
    model: ImageLogitsModel,
    text_ids: Sequence[Sequence[int]],
    codes: torch.Tensor,
    regenerate: torch.Tensor,
    *,
    layout: VocabLayout,
    max_seq_length: int,
    settings: SamplerSettings | None = None,
    generator: torch.Generator | None = None,
    callback: Callable[[SamplerStep], None] | None = None,
) -> torch.Tensor:
    """Codes (B, N): ``codes`` where ``regenerate`` (N,) is False, bit for bit, and new codes where it is True."""
    import torch

    if not bool(regenerate.any()):
        raise InputError(
            "the mask covers no code cell (a cell is regenerated when the mask fills at least half of it, or the "
            "generator's inpaint_cover share)",
            hint="enlarge the mask, e.g. to the region's box",
        )
    tokens = regenerate_tokens(codes, regenerate, layout)
    out = generate_codes(
        model,
        text_ids,
        tokens,
        layout=layout,
        max_seq_length=max_seq_length,
        settings=settings,
        generator=generator,
        callback=callback,
    )
    # The sampler already keeps them (confidence +inf); the where makes "kept codes are the input" structural.
    return torch.where(regenerate.to(codes.device, torch.bool), out, codes)


def paste_back(original: Image.Image, generated: Image.Image, mask: npt.NDArray[np.bool_], box: Box) -> Image.Image:
    """``original`` with ``generated`` (the decoded window, any size) pasted where ``mask`` (H, W) is True.

    ``generated`` is resized (bicubic) onto ``box``, which may reach past the image (:func:`cell_window`: only its
    part inside is used); every pixel outside ``mask`` keeps the original value exactly.
    """
    from PIL import Image

    x0, y0, x1, y1 = box
    if mask.shape != (original.height, original.width):
        raise GeometryError(f"mask of shape {mask.shape} for a {original.width}x{original.height} image")
    window = np.asarray(generated.convert("RGB").resize((x1 - x0, y1 - y0), Image.Resampling.BICUBIC))
    out = np.array(original.convert("RGB"))
    a0, b0, a1, b1 = max(x0, 0), max(y0, 0), min(x1, original.width), min(y1, original.height)
    if a0 >= a1 or b0 >= b1:
        return Image.fromarray(out)
    region, inside = out[b0:b1, a0:a1], mask[b0:b1, a0:a1]
    region[inside] = window[b0 - y0 : b1 - y0, a0 - x0 : a1 - x0][inside]
    return Image.fromarray(out)


def _check_offset(direction: str, offset: int, side: int) -> int:
    if direction not in DIRECTIONS:
        raise ConfigError(f"direction={direction!r}", hint=f"use one of {list(DIRECTIONS)}")
    if side % 2 or not 0 <= offset < side // 2:
        raise ConfigError(
            f"offset={offset} on a {side}x{side} grid", hint=f"use 0 <= offset < {side // 2} on an even grid side"
        )
    return side // 2 - offset


def extrapolation_window(grid: torch.Tensor, direction: str, offset: int, layout: VocabLayout) -> torch.Tensor:
    """Sampler tokens (B, G*G) of the window extending ``grid`` (B, G, w) or (B, h, G) of codes by one step.

    ``left``: ``G//2 + offset`` MASK columns, then the grid's first ``G//2 - offset`` columns; ``right`` mirrors it;
    ``up``/``down`` do the same with rows.  G is the model's grid side; the axis across must be exactly G.
    """
    import torch

    horizontal = direction in ("left", "right")
    side = grid.shape[1] if horizontal else grid.shape[2]
    keep = _check_offset(direction, offset, side)
    tokens = grid + layout.image_offset
    if horizontal:
        new = torch.full((grid.shape[0], side, side - keep), layout.mask_id, dtype=grid.dtype, device=grid.device)
        parts = [new, tokens[:, :, :keep]] if direction == "left" else [tokens[:, :, -keep:], new]
        window = torch.cat(parts, dim=2)
    else:
        new = torch.full((grid.shape[0], side - keep, side), layout.mask_id, dtype=grid.dtype, device=grid.device)
        parts = [new, tokens[:, :keep, :]] if direction == "up" else [tokens[:, -keep:, :], new]
        window = torch.cat(parts, dim=1)
    return window.reshape(grid.shape[0], -1)


def extrapolation_merge(grid: torch.Tensor, window: torch.Tensor, direction: str, offset: int) -> torch.Tensor:
    """The grown grid: ``window`` codes (B, G, G) joined to what of ``grid`` it did not repeat (§2.4)."""
    import torch

    side = window.shape[1]
    keep = _check_offset(direction, offset, side)
    if direction == "left":
        return torch.cat([window, grid[:, :, keep:]], dim=2)
    if direction == "right":
        return torch.cat([grid[:, :, :-keep], window], dim=2)
    if direction == "up":
        return torch.cat([window, grid[:, keep:, :]], dim=1)
    return torch.cat([grid[:, :-keep, :], window], dim=1)


def extrapolate_codes(
    model: ImageLogitsModel,
    text_ids: Sequence[Sequence[int]],
    grid: torch.Tensor,
    directions: Sequence[str],
    *,
    offset: int,
    layout: VocabLayout,
    max_seq_length: int,
    settings: SamplerSettings | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Grow ``grid`` (B, G, G) of codes one step per direction (prompt ``text_ids[i]`` for step i); (B, h, w).

    Steps chain along one axis (``left`` then ``right`` widens twice); switching axis raises
    :class:`ConfigError` because the window across the grown axis would be ambiguous.
    """
    side = grid.shape[1]
    if grid.ndim != 3 or grid.shape[2] != side:
        raise InputError(f"grid of shape {tuple(grid.shape)}", hint="pass the (B, G, G) code grid of one image")
    if len(text_ids) != len(directions) or not directions:
        raise InputError(f"{len(text_ids)} prompts for {len(directions)} directions", hint="give one per direction")
    axes = {d in ("left", "right") for d in directions}
    if len(axes) > 1:
        raise ConfigError(f"directions {list(directions)} mix axes", hint="extend left/right or up/down per call")
    for direction, ids in zip(directions, text_ids, strict=True):
        window = extrapolation_window(grid, direction, offset, layout)
        codes = generate_codes(
            model,
            [ids] * grid.shape[0],
            window,
            layout=layout,
            max_seq_length=max_seq_length,
            settings=settings,
            generator=generator,
        )
        grid = extrapolation_merge(grid, codes.reshape(grid.shape[0], side, side), direction, offset)
    return grid
