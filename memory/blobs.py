"""A content-addressed folder of PNG files: images are stored and found by their pixel hash.

``<root>/ab/abcdef....png`` holds the image whose :func:`~regionreasoner.core.images.image_hash` is
``abcdef...``.  Files are written atomically (a temporary file in the same folder, then ``os.replace``), so a
reader never sees half a file and two writers of the same image cannot corrupt it.  Nothing is ever modified in
place: an edited image is a new hash.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from regionreasoner.core.errors import ImageNotFoundError, StorageError
from regionreasoner.core.images import ImageSource, LoadedImage, load_image
from regionreasoner.core.types import check_image_hash, is_image_hash

__all__ = ["ImageStore", "check_hash"]

log = logging.getLogger(__name__)

check_hash = check_image_hash


class ImageStore:
    """PNG files named by content hash under ``root`` (created on first write).

    ``put`` is idempotent; ``get`` re-checks the hash of what it reads, so a damaged file raises StorageError
    instead of silently returning other pixels.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()

    def __repr__(self) -> str:
        return f"ImageStore({str(self.root)!r})"

    def path(self, image_hash: str) -> Path:
        """Where the image with this hash is (or would be) stored."""
        check_hash(image_hash)
        return self.root / image_hash[:2] / f"{image_hash}.png"

    def __contains__(self, image_hash: object) -> bool:
        return is_image_hash(image_hash) and self.path(image_hash).is_file()

    def put(self, source: ImageSource) -> LoadedImage:
        """Load ``source`` (see :func:`~regionreasoner.core.images.load_image`) and store it; returns it.

        Writing an image that is already stored does nothing.  Raises an ImageError subclass for bad input and
        StorageError when the folder is not writable.
        """
        image = load_image(source)
        target = self.path(image.hash)
        if target.is_file():
            return image
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".png", dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(image.to_png())
                    fh.flush()
                    os.fsync(fh.fileno())
                Path(tmp).replace(target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(
                f"cannot write image {image.hash[:12]}... to {target.parent}: {exc}",
                hint="pass image_dir= a writable folder",
            ) from exc
        log.debug("stored image %s (%dx%d) at %s", image.hash, image.width, image.height, target)
        return image

    def get(self, image_hash: str) -> LoadedImage:
        """The stored image with this hash; ImageNotFoundError when there is no file for it."""
        target = self.path(image_hash)
        if not target.is_file():
            raise ImageNotFoundError(
                f"no image file for hash {image_hash[:12]}... in {self.root}",
                hint="store it with put_image(), or open the memory with the image_dir= it was stored in",
            )
        image = load_image(target)
        if image.hash != image_hash:
            raise StorageError(
                f"image file {target} is damaged: its pixels hash to {image.hash[:12]}..., not {image_hash[:12]}...",
                hint="delete the file and store the image again with put_image()",
            )
        return image
