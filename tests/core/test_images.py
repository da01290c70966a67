"""Bad and unusual images: each gets a typed error or a well-defined conversion."""

import io
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from regionreasoner.core.errors import (
    EmptyImageError,
    ImageDecodeError,
    ImageTooLargeError,
    RegionReasonerError,
    UnsupportedImageError,
)
from regionreasoner.core.geometry import Box
from regionreasoner.core.images import LoadedImage, load_image
from regionreasoner.core.masks import mask_to_box


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_loads_every_source_kind(tmp_path: Path) -> None:
    img = Image.new("RGB", (7, 5), (10, 20, 30))
    p = tmp_path / "a.png"
    img.save(p)
    loaded = load_image(p)
    assert loaded.size == (7, 5) and loaded.image.mode == "RGB" and loaded.source_format == "PNG"
    assert load_image(str(p)) == loaded
    assert load_image(p.read_bytes()) == loaded
    assert load_image(img) == loaded
    assert load_image(np.asarray(img)) == loaded
    assert load_image(loaded.to_data_url()) == loaded
    assert load_image(loaded) is loaded
    # The hash depends on pixels only, not on the container.
    jpeg_as_png = load_image(png_bytes(load_image(p).image))
    assert jpeg_as_png.hash == loaded.hash and len(loaded.hash) == 64


def test_truncated_png() -> None:
    data = png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)))
    with pytest.raises(ImageDecodeError, match=r"truncated|cannot"):
        load_image(data[: len(data) // 2])


def test_zero_size_image(make_raw_png: Callable[..., bytes]) -> None:
    with pytest.raises(EmptyImageError, match="zero size"):
        load_image(Image.new("RGB", (0, 0)))
    with pytest.raises(EmptyImageError):
        load_image(Image.new("RGB", (5, 0)))
    with pytest.raises((EmptyImageError, ImageDecodeError)):
        load_image(make_raw_png(0, 10, 8, 0, b""))


def test_decompression_bomb_is_refused_before_decoding(make_raw_png: Callable[..., bytes]) -> None:
    # 60000 x 60000 grey pixels declared; the data stops after one row.
    bomb = make_raw_png(60000, 60000, 8, 0, b"\x00" * 60001)
    with pytest.raises(ImageTooLargeError, match="pixels"):
        load_image(bomb)
    small = png_bytes(Image.new("L", (100, 100)))
    with pytest.raises(ImageTooLargeError, match=r"max_pixels|limit"):
        load_image(small, max_pixels=9_999)


def test_cmyk_is_converted() -> None:
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # pure red in CMYK
    buf = io.BytesIO()
    cmyk.save(buf, "JPEG", quality=100)
    out = load_image(buf.getvalue())
    r, g, b = out.image.getpixel((1, 1))  # type: ignore[misc]
    assert r > 200 and g < 60 and b < 60


def test_16_bit_grey_is_scaled_not_clipped() -> None:
    arr = np.array([[0, 32768, 65535]], dtype=np.uint16)
    out = load_image(png_bytes(Image.fromarray(arr)))
    assert [out.image.getpixel((i, 0)) for i in range(3)] == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]


def test_16_bit_rgb_png(make_raw_png: Callable[..., bytes]) -> None:
    row = b"\x00" + struct.pack(">HHHHHH", 65535, 0, 0, 0, 65535, 0)
    out = load_image(make_raw_png(2, 1, 16, 2, row))
    assert out.image.getpixel((0, 0)) == (255, 0, 0) and out.image.getpixel((1, 0)) == (0, 255, 0)


def test_palette_with_alpha_composites_over_white() -> None:
    img = Image.new("P", (2, 1))
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.putpixel((0, 0), 0)
    img.putpixel((1, 0), 1)
    img.info["transparency"] = 0  # palette entry 0 (red) is fully transparent
    out = load_image(png_bytes(img))
    assert out.image.getpixel((0, 0)) == (255, 255, 255)
    assert out.image.getpixel((1, 0)) == (0, 0, 255)
    rgba = Image.new("RGBA", (1, 1), (0, 0, 0, 0))
    assert load_image(rgba).image.getpixel((0, 0)) == (255, 255, 255)


def test_exif_rotated_jpeg_boxes_in_the_upright_frame() -> None:
    # Stored landscape 60x40 with a white block in the top-left; orientation 6 = "rotate 90 CW to view".
    stored = np.zeros((40, 60, 3), dtype=np.uint8)
    stored[0:10, 0:20] = 255
    img = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif.tobytes(), quality=95)
    out = load_image(buf.getvalue())
    assert out.size == (40, 60)  # upright: portrait
    bright = np.asarray(out.image)[..., 0] > 128
    # Rotating 90 deg clockwise moves the top-left block to the top-right.
    assert mask_to_box(bright) == Box(30, 0, 40, 20)


def test_animated_gif_needs_a_frame() -> None:
    frames = [Image.new("RGB", (8, 8), (80 * i, 0, 0)) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50)
    data = buf.getvalue()
    with pytest.raises(UnsupportedImageError, match=r"3 frames.*frame=0"):
        load_image(data)
    assert load_image(data, frame=2).size == (8, 8)
    with pytest.raises(UnsupportedImageError, match="frame=5"):
        load_image(data, frame=5)
    single = io.BytesIO()
    frames[0].save(single, "GIF")
    assert load_image(single.getvalue()).size == (8, 8)


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, this is not an image", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, b"GIF89a"],
)
def test_bytes_that_are_not_an_image(data: bytes) -> None:
    with pytest.raises(ImageDecodeError):
        load_image(data)


def test_other_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match="no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(ImageDecodeError, match="remote"):
        load_image("https://example.com/cat.png")
    with pytest.raises(ImageDecodeError, match="base64"):
        load_image("data:image/png;base64,@@@")
    with pytest.raises(ImageDecodeError, match="shape"):
        load_image(np.zeros((2, 2, 7), dtype=np.uint8))
    with pytest.raises(UnsupportedImageError, match="uint8"):
        load_image(np.zeros((2, 2, 3), dtype=np.float32))


def test_errors_share_one_base_class() -> None:
    with pytest.raises(RegionReasonerError):
        load_image(b"nope")
    with pytest.raises(ValueError):  # InputError is also a ValueError for callers that catch those
        load_image(b"nope")


def test_loaded_image_is_hashable_and_comparable() -> None:
    a = load_image(Image.new("RGB", (3, 3)))
    b = load_image(Image.new("RGB", (3, 3)))
    assert a == b and hash(a) == hash(b) and isinstance(a, LoadedImage)
    assert load_image(Image.new("RGB", (3, 3), (1, 1, 1))) != a
