"""Fuzzing image bytes: mutated PNG and JPEG files load or fail with a typed ImageError, and store nothing broken."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from regionreasoner.core.errors import ImageError
from regionreasoner.core.images import load_image
from regionreasoner.memory import RegionMemory


def _encoded(fmt: str) -> bytes:
    image = Image.new("RGB", (24, 16), (200, 30, 30))
    image.putpixel((3, 3), (0, 255, 0))
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


ORIGINALS = {"PNG": _encoded("PNG"), "JPEG": _encoded("JPEG")}


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A PNG or JPEG with bytes flipped (headers included), cut short, or with junk spliced in."""
    data = bytearray(ORIGINALS[draw(st.sampled_from(sorted(ORIGINALS)))])
    for _ in range(draw(st.integers(1, 8))):
        # Most mutations hit the first 64 bytes: signature, IHDR / SOI, APPn and SOF segments.
        at = draw(st.integers(0, min(63, len(data) - 1)) | st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "set", "cut", "splice"]))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80]))
        elif kind == "cut":
            del data[at:]
            if not data:
                break
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


@settings(max_examples=300, deadline=None)
@given(mutated())
def test_mutated_bytes_load_or_raise_an_image_error(data: bytes) -> None:
    try:
        loaded = load_image(data)
    except ImageError:
        return
    # Whatever decoded is a usable RGB picture of positive size.
    assert loaded.image.mode == "RGB" and loaded.width > 0 and loaded.height > 0


@pytest.fixture
def memory(tmp_path: Path):  # type: ignore[no-untyped-def]
    with RegionMemory(f"sqlite:///{tmp_path}/m.db", image_dir=tmp_path / "images") as mem:
        yield mem


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutated())
def test_memory_stores_a_mutated_image_whole_or_not_at_all(memory: RegionMemory, data: bytes) -> None:
    try:
        info = memory.put_image(data)
    except ImageError:
        return
    # A stored image loads back as the same picture (its hash names its pixels).
    assert memory.load_image(info.hash).size == (info.width, info.height)
