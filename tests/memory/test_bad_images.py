"""Bad images never reach the memory: a typed error, no row, no file."""

from collections.abc import Callable
from pathlib import Path

import pytest

from regionreasoner.core.errors import ImageError
from regionreasoner.memory import RegionMemory


@pytest.mark.parametrize(
    "name", ["truncated png", "zero-size png", "decompression bomb", "animated gif", "not an image"]
)
def test_bad_images_store_nothing(
    name: str,
    bad_image_bytes: dict[str, bytes],
    row_counts: Callable[[RegionMemory], dict[str, int]],
    tmp_path: Path,
) -> None:
    with RegionMemory(f"sqlite:///{tmp_path}/m.db") as memory:
        before = row_counts(memory)
        with pytest.raises(ImageError):
            memory.put_image(bad_image_bytes[name])
        with pytest.raises(ImageError):
            memory.create_dialogue(bad_image_bytes[name])
        assert row_counts(memory) == before
        assert not list(memory.images.root.rglob("*.png"))
