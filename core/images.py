"""Safe image loading: one RGB picture in the frame boxes are expressed in, with a content hash.

:func:`load_image` accepts a path, a ``data:`` URL, raw bytes, a PIL image or a numpy array and returns a
:class:`LoadedImage`: an 8-bit RGB PIL image after EXIF transpose (so boxes come out in the upright frame a viewer
shows), its sha256 content hash over the decoded pixels, and where it came from.  Everything that cannot become
such a picture raises a typed :class:`~regionreasoner.core.errors.ImageError` whose message names the fix.

Conversions (see docs/images.md): CMYK/YCbCr/LAB -> RGB; 16-bit and 32-bit grey scaled to 8 bits; palette, LA
and RGBA images composited over white; animated images rejected unless a frame is chosen.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from regionreasoner.core.errors import (
    ConfigError,
    EmptyImageError,
    ImageDecodeError,
    ImageError,
    ImageTooLargeError,
    UnsupportedImageError,
)

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_PIXELS", "ImageSource", "LoadedImage", "image_hash", "load_image"]

DEFAULT_MAX_PIXELS = 64_000_000
"""Largest accepted image (width x height): 64 megapixels, e.g. 8000x8000. Guards against decompression bombs."""

DEFAULT_MAX_BYTES = 50_000_000
"""Largest accepted encoded image: 50 MB (a file, the bytes of a data URL, raw bytes), checked before reading."""

_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<b64>;base64)?,(?P<data>.*)$", re.DOTALL)


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """An 8-bit RGB image, upright (EXIF orientation applied), with its content hash.

    ``hash`` is the sha256 (hex) of the size and RGB pixels, so the same picture hashes the same whatever file
    format or metadata it arrived in.  Sizes are in pixels, ``(width, height)``.
    """

    image: Image.Image
    hash: str
    source_format: str | None = None

    @property
    def width(self) -> int:
        """Width in pixels."""
        return self.image.width

    @property
    def height(self) -> int:
        """Height in pixels."""
        return self.image.height

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels, as PIL orders it."""
        return self.image.size

    def to_png(self) -> bytes:
        """The pixels as PNG bytes (lossless)."""
        buf = io.BytesIO()
        self.image.save(buf, format="PNG")
        return buf.getvalue()

    def to_data_url(self) -> str:
        """A ``data:image/png;base64,...`` URL of the pixels."""
        return "data:image/png;base64," + base64.b64encode(self.to_png()).decode("ascii")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LoadedImage) and other.hash == self.hash

    def __hash__(self) -> int:
        return hash(self.hash)


ImageSource: TypeAlias = (
    str | os.PathLike[str] | bytes | bytearray | memoryview | Image.Image | npt.NDArray[np.uint8] | LoadedImage
)
"""What :func:`load_image` accepts."""


def image_hash(image: Image.Image) -> str:
    """sha256 hex digest of an RGB image's size and pixels."""
    if image.mode != "RGB":
        raise ImageError(f"image_hash expects an RGB image, got mode {image.mode}", hint="load it with load_image()")
    h = hashlib.sha256()
    h.update(f"RGB {image.width}x{image.height}\n".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def load_image(
    source: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    frame: int | None = None,
) -> LoadedImage:
    """Load ``source`` as an upright 8-bit RGB image with a content hash.

    ``source``: a file path, a ``data:image/...;base64,`` URL, encoded bytes, a PIL image, an ``(H, W)`` or
    ``(H, W, 3)`` uint8 array, or a :class:`LoadedImage` (returned as is).  ``max_pixels`` bounds width x
    height before any pixel is decoded; ``max_bytes`` bounds the encoded size before it is read (a file's size
    from ``stat`` and at most ``max_bytes + 1`` bytes read, a data URL's base64 length before decoding).
    ``frame`` picks one frame of an animated image (0-based); without it an animated image is rejected.

    Raises ImageDecodeError (not an image, truncated, missing file), EmptyImageError (zero width or height),
    ImageTooLargeError (above ``max_bytes`` or ``max_pixels``), UnsupportedImageError (animated without ``frame``,
    unknown mode), ConfigError (``max_bytes`` < 1).
    """
    if isinstance(source, LoadedImage):
        return source
    if max_bytes < 1:
        raise ConfigError(f"max_bytes={max_bytes}: set it >= 1 (bytes)")
    if isinstance(source, Image.Image):
        return _finish(source, max_pixels=max_pixels, frame=frame, label="PIL image")
    if isinstance(source, (bytes, bytearray, memoryview)):
        _check_bytes(len(source), max_bytes, f"{len(source)} bytes")
        return _open_bytes(bytes(source), max_pixels=max_pixels, frame=frame, label=f"{len(source)} bytes")
    if isinstance(source, str) and source.startswith("data:"):
        return _open_bytes(_decode_data_url(source, max_bytes), max_pixels=max_pixels, frame=frame, label="data URL")
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if re.match(r"^[a-z][a-z0-9+.-]*://", text) and not text.startswith("file://"):
            raise ImageDecodeError(
                f"cannot load {text!r}: remote URLs are not fetched",
                hint="download the image yourself and pass its path or bytes",
            )
        path = Path(text.removeprefix("file://"))
        try:
            is_file = path.is_file()
        except (OSError, ValueError):  # a name too long for the file system, a NUL byte in the path
            is_file = False
        if not is_file:
            raise ImageDecodeError(f"cannot load {str(path)[:200]!r}: no such file", hint="check the path")
        return _open_bytes(_read_file(path, max_bytes), max_pixels=max_pixels, frame=frame, label=str(path))
    return _from_array(source, max_pixels=max_pixels)


def _check_bytes(size: int, max_bytes: int, label: str) -> None:
    if size > max_bytes:
        raise ImageTooLargeError(
            f"{label}: {size} bytes exceeds the limit of {max_bytes} bytes (max_bytes)",
            hint="compress or downscale the image, or raise max_bytes if you trust the source",
        )


def _read_file(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, refusing one larger than ``max_bytes`` before reading it (and reading at most one more)."""
    label = str(path)
    try:
        _check_bytes(path.stat().st_size, max_bytes, label)
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)  # the file may have grown since stat
    except OSError as exc:
        raise ImageDecodeError(f"cannot read {label!r}: {exc}", hint="check the path and its permissions") from exc
    _check_bytes(len(data), max_bytes, label)
    return data


def _decode_data_url(url: str, max_bytes: int) -> bytes:
    m = _DATA_URL.match(url)
    if m is None or not m.group("b64"):
        raise ImageDecodeError("malformed data URL", hint="use data:image/png;base64,<base64 bytes>")
    # Checked before decoding: base64 encodes 3 bytes in 4 characters, so this is the decoded size (give or take
    # the padding) and nothing is allocated for an oversized URL.
    _check_bytes((m.end("data") - m.start("data")) // 4 * 3, max_bytes, "data URL")
    try:
        return base64.b64decode(m.group("data"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ImageDecodeError(f"data URL is not valid base64: {exc}") from exc


def _open_bytes(data: bytes, *, max_pixels: int, frame: int | None, label: str) -> LoadedImage:
    if not data:
        raise ImageDecodeError(f"{label}: empty input is not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(
            f"{label}: {exc}", hint=f"resize the image below {max_pixels} pixels before loading it"
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(
            f"{label}: not a recognised image format", hint="pass PNG, JPEG, WebP, GIF, BMP or TIFF bytes"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"{label}: cannot read image header: {exc}") from exc
    return _finish(image, max_pixels=max_pixels, frame=frame, label=label)


def _from_array(source: npt.ArrayLike, *, max_pixels: int) -> LoadedImage:
    try:
        arr = np.asarray(source)
    except (TypeError, ValueError) as exc:
        raise ImageDecodeError(f"cannot use {type(source).__name__} as an image: {exc}") from exc
    if arr.dtype == object or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageDecodeError(
            f"cannot use {type(source).__name__} with shape {arr.shape} as an image",
            hint="pass a path, bytes, a PIL image or a uint8 array of shape (H, W) or (H, W, 3)",
        )
    if arr.dtype != np.uint8:
        raise UnsupportedImageError(f"array dtype {arr.dtype} is not supported", hint="convert it to uint8 first")
    return _finish(Image.fromarray(arr), max_pixels=max_pixels, frame=None, label="array")


def _finish(image: Image.Image, *, max_pixels: int, frame: int | None, label: str) -> LoadedImage:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise EmptyImageError(f"{label}: image has zero size {width}x{height}", hint="pass a non-empty image")
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"{label}: {width}x{height} = {width * height} pixels exceeds the limit of {max_pixels}",
            hint="downscale it, or raise max_pixels if you trust the source",
        )
    n_frames = int(getattr(image, "n_frames", 1))
    if n_frames > 1 or frame not in (None, 0):
        if frame is None:
            raise UnsupportedImageError(
                f"{label}: animated image with {n_frames} frames",
                hint="pass frame=0 (or another index) to pick one frame",
            )
        if not 0 <= frame < n_frames:
            raise UnsupportedImageError(f"{label}: frame={frame} but the image has {n_frames} frame(s)")
        image.seek(frame)
    fmt = image.format
    try:
        image.load()
        upright = ImageOps.exif_transpose(image)
        rgb = _to_rgb(upright, label)
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError(
            f"{label}: cannot decode pixels ({exc})", hint="the file is truncated or corrupt"
        ) from exc
    return LoadedImage(image=rgb, hash=image_hash(rgb), source_format=fmt)


def _to_rgb(image: Image.Image, label: str) -> Image.Image:
    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(image).astype(np.float64)
        scale = 255.0 / 65535.0
        grey = np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if mode == "F":
        grey = np.clip(np.rint(np.asarray(image, dtype=np.float64)), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if (mode == "P" and "transparency" in image.info) or mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode in ("1", "L", "P", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        return image.convert("RGB")
    raise UnsupportedImageError(f"{label}: image mode {mode!r} is not supported", hint="convert it to RGB first")
