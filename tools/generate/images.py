"""Pixels in and out of the MAGVIT-v2 tokenizer, as Show-o and NeoBabel prepare them (neobabel.md §1.5, §2.3).

* :func:`preprocess_image`: resize the shorter side to the target (PIL bicubic), centre-crop, scale to [-1, 1];
  Show-o's ``image_transform`` (torchvision ``Resize`` + ``CenterCrop`` + ``ToTensor`` + ``Normalize(0.5, 0.5)``)
  done with PIL and numpy, pixel for pixel.  A ``(width, height)`` target generalises it: scale until the image
  covers the target, then centre-crop.
* :func:`postprocess_image`: ``clamp((x + 1) / 2, 0, 1) * 255`` truncated to uint8, as the reference does.
* :func:`preprocess_mask` and :func:`mask_to_grid`: an inpainting mask through the same resize and crop, then a
  bicubic downsample to the code grid, ``>= 0.5``, flattened row-major; True = a code to regenerate.

Frames: "original" is the caller's image, "processed" the resized and cropped one the tokenizer sees (its
``(H, W)`` divided by the tokenizer stride is the code grid).  No torchvision.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from PIL import Image

from regionreasoner.core.errors import ConfigError, EmptyImageError, GeometryError, InputError, UnsupportedImageError
from regionreasoner.core.images import LoadedImage
from regionreasoner.core.masks import BoolMask

__all__ = [
    "mask_to_grid",
    "postprocess_image",
    "postprocess_images",
    "preprocess_image",
    "preprocess_mask",
    "resize_and_crop",
    "target_size",
]

Size = int | tuple[int, int]
"""A square side in pixels, or ``(width, height)``."""


def target_size(size: Size, *, multiple_of: int = 16) -> tuple[int, int]:
    """``(width, height)`` of ``size``, each a positive multiple of ``multiple_of`` (the tokenizer stride)."""
    pair = (size, size) if isinstance(size, int) and not isinstance(size, bool) else size
    if (
        not isinstance(pair, tuple)
        or len(pair) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in pair)
    ):
        raise ConfigError(f"size={size!r}: give a side or (width, height) in pixels, integers >= 1")
    if any(v % multiple_of for v in pair):
        raise ConfigError(
            f"size={size!r}: use multiples of {multiple_of} (the tokenizer stride), e.g. 256 or (512, 256)"
        )
    return pair


def _rgb(image: Image.Image | LoadedImage) -> Image.Image:
    picture = image.image if isinstance(image, LoadedImage) else image
    if not isinstance(picture, Image.Image):
        raise InputError(f"got {type(image).__name__}: give a PIL image or a LoadedImage")
    if picture.width == 0 or picture.height == 0:
        raise EmptyImageError(f"image of size {picture.size}: give a non-empty image")
    if picture.mode != "RGB":
        raise UnsupportedImageError(
            f"image mode {picture.mode!r}: give an RGB image",
            hint="load it with regionreasoner.core.images.load_image (alpha composited over white)",
        )
    return picture


def resize_and_crop(image: Image.Image, size: Size, *, multiple_of: int = 16) -> Image.Image:
    """``image`` (any PIL mode) resized with PIL bicubic until it covers ``size``, then centre-cropped to it.

    For a square ``size`` this is torchvision's ``Resize(side)`` + ``CenterCrop(side)`` on a PIL image: the
    shorter side becomes ``side``, the longer ``floor(side * long / short)``, and the crop offset is
    ``round((resized - side) / 2)`` (round half to even, like torchvision).
    """
    width, height = target_size(size, multiple_of=multiple_of)
    w, h = image.size
    if w == 0 or h == 0:
        raise EmptyImageError(f"image of size {image.size}: give a non-empty image")
    # Integer arithmetic: the binding side lands exactly on the target, the other side floors (as torchvision).
    if width * h >= height * w:
        new_w, new_h = width, width * h // w
    else:
        new_w, new_h = height * w // h, height
    resized = image if (new_w, new_h) == (w, h) else image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left = round((new_w - width) / 2.0)
    top = round((new_h - height) / 2.0)
    return resized.crop((left, top, left + width, top + height))


def preprocess_image(image: Image.Image | LoadedImage, size: Size = 256, *, multiple_of: int = 16) -> torch.Tensor:
    """The tokenizer input for ``image``: float32 ``(3, H, W)`` in [-1, 1], ``(W, H) = size`` (square for an int).

    Resize (bicubic) + centre-crop by :func:`resize_and_crop`, then ``2 * v / 255 - 1`` per channel.
    """
    picture = resize_and_crop(_rgb(image), size, multiple_of=multiple_of)
    pixels = np.asarray(picture, dtype=np.uint8)  # (H, W, 3)
    tensor = torch.from_numpy(pixels.copy()).permute(2, 0, 1).to(torch.float32).div(255.0)
    return (tensor - 0.5) / 0.5  # ToTensor then Normalize(mean 0.5, std 0.5), in the same float32 steps


def preprocess_mask(mask: npt.ArrayLike, size: Size = 256, *, multiple_of: int = 16) -> npt.NDArray[np.float32]:
    """An original-frame mask (bool ``(H, W)``) in the processed frame: float32 ``(h, w)`` in [0, 1].

    The mask goes through the image's resize and crop as an 8-bit grey image (0 / 255), bicubic, and is scaled to
    [0, 1] without thresholding, which is what the reference feeds to the grid downsample.
    """
    array = np.asarray(mask)
    if array.ndim != 2 or array.size == 0:
        raise GeometryError(f"mask of shape {array.shape}: give a non-empty (H, W) array")
    grey = Image.fromarray(np.where(array.astype(bool), 255, 0).astype(np.uint8))  # uint8 (H, W): mode L
    processed = resize_and_crop(grey, size, multiple_of=multiple_of)
    return np.asarray(processed, dtype=np.float32) / np.float32(255.0)


def mask_to_grid(mask: npt.ArrayLike, grid: Sequence[int], *, cover: float = 0.0) -> BoolMask:
    """Which codes of a ``grid = (h, w)`` token grid a processed-frame mask covers: bool ``(h * w,)``, row-major.

    ``mask`` is bool or float in [0, 1], ``(H, W)`` in the processed frame (e.g. :func:`preprocess_mask`).  With
    ``cover`` 0 it is downsampled with torch bicubic interpolation (``align_corners=False``, no antialias, as the
    reference's ``F.interpolate``) and a code is True where the value is >= 0.5 (about: the cell's centre is in
    the mask).  With ``cover`` in (0, 1] a code is True where the mask's mean over the cell is >= ``cover`` (1: the
    cell lies wholly inside), so that what is drawn into the cells stays inside the mask that is pasted back.
    """
    if isinstance(cover, bool) or not isinstance(cover, (int, float)) or not 0 <= cover <= 1:
        raise GeometryError(f"cover={cover!r}: use 0 (the reference's rule) or a share in (0, 1]")
    array = np.asarray(mask)
    if array.ndim != 2 or array.size == 0:
        raise GeometryError(f"mask of shape {array.shape}: give a non-empty (H, W) array")
    if array.dtype.kind not in "biuf":
        raise GeometryError(f"mask of dtype {array.dtype}: give a bool or float array")
    if len(grid) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in grid):
        raise GeometryError(f"grid={tuple(grid)!r}: give (rows, columns), integers >= 1")
    values = torch.from_numpy(array.astype(np.float32))[None, None]
    if cover > 0:
        share = F.adaptive_avg_pool2d(values, (grid[0], grid[1]))
        covered: BoolMask = (share[0, 0] >= cover - 1e-6).reshape(-1).numpy()
        return covered
    small = F.interpolate(values, size=(grid[0], grid[1]), mode="bicubic", align_corners=False)
    flat: BoolMask = (small[0, 0] >= 0.5).reshape(-1).numpy()
    return flat


def postprocess_images(pixels: torch.Tensor) -> list[Image.Image]:
    """RGB images from decoder output ``(B, 3, H, W)`` (≈ [-1, 1]): ``clamp((x + 1) / 2, 0, 1) * 255``, truncated."""
    if not isinstance(pixels, torch.Tensor) or pixels.ndim != 4 or pixels.shape[1] != 3:
        shape = tuple(pixels.shape) if isinstance(pixels, torch.Tensor) else type(pixels).__name__
        raise InputError(f"pixels {shape}: give a tensor (B, 3, H, W)")
    scaled = torch.clamp((pixels.detach().to("cpu", torch.float32) + 1.0) / 2.0, min=0.0, max=1.0) * 255.0
    # astype truncates toward zero, as the reference's .numpy().astype(np.uint8) does (not rounding).
    arrays = scaled.permute(0, 2, 3, 1).numpy().astype(np.uint8)
    return [Image.fromarray(a) for a in arrays]  # uint8 (H, W, 3): mode RGB


def postprocess_image(pixels: torch.Tensor) -> Image.Image:
    """One RGB image from decoder output ``(3, H, W)`` or ``(1, 3, H, W)``; see :func:`postprocess_images`."""
    if isinstance(pixels, torch.Tensor) and pixels.ndim == 3:
        pixels = pixels.unsqueeze(0)
    if isinstance(pixels, torch.Tensor) and pixels.ndim == 4 and pixels.shape[0] != 1:
        raise InputError(f"pixels {tuple(pixels.shape)}: a batch of {pixels.shape[0]}", hint="use postprocess_images")
    return postprocess_images(pixels)[0]
