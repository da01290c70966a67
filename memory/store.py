"""RegionMemory: dialogues, turns and their regions R1, R2, ... in SQLite or Postgres.

    from regionreasoner.memory import RegionMemory

    with RegionMemory("sqlite:///rr.db") as mem:    # images go to ./images beside rr.db
        dlg = mem.create_dialogue("photo.jpg")
        turn = mem.append_turn(dlg.id, draft)      # one transaction: the turn, its regions R1.., its citations
        mem.get_region(dlg.id, "R1").box           # Box(x1, y1, x2, y2) in original pixels

Boxes and points are in original-image pixels (float xyxy, after EXIF transpose).  Every public method raises
a typed :class:`~regionreasoner.core.errors.RegionReasonerError`: bad input before anything is written, and
database failures as :class:`~regionreasoner.core.errors.StorageError` whose message names the fix.  Concurrency
and idempotency rules: docs/memory.md.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from sqlalchemy import Connection, delete, func, insert, select

from regionreasoner.core.errors import ImageNotFoundError, InputError
from regionreasoner.core.images import ImageSource, LoadedImage, load_image
from regionreasoner.core.types import (
    REGION_ID_PATTERN,
    Dialogue,
    ImageInfo,
    ImageVersion,
    Region,
    Turn,
    TurnDraft,
    VersionDraft,
    is_image_hash,
)
from regionreasoner.memory import append as _append
from regionreasoner.memory import dialogues as _dialogues
from regionreasoner.memory.blobs import ImageStore, check_hash
from regionreasoner.memory.convert import DIALOGUE_COLUMNS, IMAGE_COLUMNS, image_from_row
from regionreasoner.memory.engine import Begin, default_image_dir, normalize_url
from regionreasoner.memory.models import DialogueRow, ImageRow, RegionRow, TurnRow
from regionreasoner.memory.reads import (
    MAX_REGION_NUMBER,
    dialogue_exists,
    dialogue_not_found,
    dialogue_owner,
    get_region,
    latest_image,
    load_dialogues,
    load_regions,
    load_turns,
    region_count,
    turn_not_found,
    versions_of,
)
from regionreasoner.memory.transactions import MAX_ATTEMPTS, Database

__all__ = ["MAX_ATTEMPTS", "RegionMemory"]

log = logging.getLogger(__name__)


class RegionMemory:
    """The SQL region memory of regionreasoner.

    ``url``: ``sqlite:///path/memory.db``, ``sqlite://`` (in memory), ``postgresql+psycopg://user@host/db``, or
    None for the default SQLite file (see :func:`~regionreasoner.memory.engine.default_url`).  ``image_dir``:
    where image files go (default: ``images/`` beside a SQLite file, else ``<home>/images``).  ``migrate``:
    bring the schema to the newest revision on open (cheap when it is there already); with False, a database
    that is not at the newest revision raises StorageError.  Use it as a context manager, or call
    :meth:`close`.  One instance may be shared by threads.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        image_dir: str | Path | None = None,
        migrate: bool = True,
        echo: bool = False,
    ) -> None:
        self.url = normalize_url(url)
        self.images = ImageStore(image_dir if image_dir is not None else default_image_dir(self.url))
        self._db = Database(self.url, migrate=migrate, echo=echo)
        log.debug("opened %r", self)

    def __repr__(self) -> str:
        return f"RegionMemory({self.url.render_as_string(hide_password=True)!r}, image_dir={str(self.images.root)!r})"

    def __enter__(self) -> RegionMemory:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every database connection; the instance cannot be used afterwards."""
        self._db.close()

    # ------------------------------------------------------------------ images

    def put_image(self, source: ImageSource, *, parent: str | None = None) -> ImageInfo:
        """Store an image version (its PNG file and its row) and return its info; idempotent.

        ``source``: anything :func:`~regionreasoner.core.images.load_image` accepts.  ``parent``: hash of the
        stored image this one was edited from (an inpainted version).  Storing an image that is already stored
        returns the stored info unchanged (its first parent wins).
        """
        if parent is not None:
            check_hash(parent)
        loaded = load_image(source)
        if parent == loaded.hash:
            raise InputError("an image cannot be its own parent", hint="pass the hash of the image it was edited from")
        stored = self._image_row(loaded.hash)
        if stored is not None:
            self.images.put(loaded)  # restores a missing file; a no-op otherwise
            return stored
        if parent is not None and self._image_row(parent) is None:
            raise ImageNotFoundError(
                f"parent image {parent[:12]}... is not stored", hint="put_image() the parent first"
            )
        self.images.put(loaded)

        def write(conn: Connection) -> ImageInfo:
            row = conn.execute(select(*IMAGE_COLUMNS).where(ImageRow.hash == loaded.hash)).first()
            if row is not None:
                return image_from_row(row)
            info = ImageInfo(
                hash=loaded.hash, width=loaded.width, height=loaded.height, parent=parent, created_at=_now()
            )
            conn.execute(
                insert(ImageRow).values(
                    hash=info.hash, width=info.width, height=info.height, parent_hash=parent, created_at=info.created_at
                )
            )
            return info

        return self._db.write(write)

    def image_info(self, image_hash: str) -> ImageInfo:
        """Size, parent and creation time of a stored image; ImageNotFoundError when unknown."""
        info = self._image_row(check_hash(image_hash))
        if info is None:
            raise ImageNotFoundError(f"no stored image {image_hash[:12]}...", hint="store it with put_image()")
        return info

    def load_image(self, image_hash: str) -> LoadedImage:
        """The pixels of a stored image (RGB, original size); ImageNotFoundError when unknown."""
        self.image_info(image_hash)
        return self.images.get(image_hash)

    # --------------------------------------------------------------- dialogues

    def create_dialogue(
        self, image: ImageSource, *, id: str | None = None, title: str | None = None, owner: str | None = None
    ) -> Dialogue:
        """Start a dialogue about ``image`` and return it (without turns).

        ``image``: the hash of a stored image, or anything :func:`~regionreasoner.core.images.load_image`
        accepts (it is stored first).  ``id``: 1-128 characters of ``A-Z a-z 0-9 _ . : -`` (default: a random
        uuid4 hex).  ``owner``: the principal that may read and write it, 1-128 characters (the server passes the
        name it derives from an auth token; None: no owner).  Creating a dialogue whose id exists returns the
        stored one when it has the same owner and is about the same image; otherwise InputError, and for another
        owner's id one that does not say it exists ("is taken"), raised before the image is stored.
        """
        _dialogues.check_owner(owner)
        if id is not None:
            _dialogues.check_dialogue_id(id)
            with self._db.read(Begin.NONE) as conn:  # another owner's id: refused before the image is stored
                _dialogues.check_not_taken(conn, id, owner)
        dialogue_id = id if id is not None else uuid.uuid4().hex
        image_hash = self._resolve_image(image)
        return self._db.write(lambda conn: _dialogues.create(conn, dialogue_id, image_hash, title=title, owner=owner))

    def dialogue_owner(self, dialogue_id: str) -> str | None:
        """Who owns a dialogue (None: nobody), for a server's ownership checks; DialogueNotFoundError when unknown.

        One SELECT by primary key; the turns are not read.
        """
        with self._db.read(Begin.NONE) as conn:
            return dialogue_owner(conn, dialogue_id)

    def dialogue(self, dialogue_id: str) -> Dialogue:
        """A dialogue with all its turns in order and their regions; DialogueNotFoundError when unknown."""
        with self._db.read() as conn:
            rows = conn.execute(select(*DIALOGUE_COLUMNS).where(DialogueRow.id == dialogue_id)).all()
            if not rows:
                raise dialogue_not_found(dialogue_id)
            return load_dialogues(conn, rows)[0]

    def latest_image(self, dialogue_id: str) -> str:
        """The hash of the dialogue's newest image version, which its next turn runs on, in one query."""
        with self._db.read() as conn:
            return latest_image(conn, dialogue_id)

    def versions(self, dialogue_id: str) -> list[ImageVersion]:
        """The image versions of a dialogue, 0 (its starting image) first; DialogueNotFoundError when unknown."""
        with self._db.read() as conn:
            return versions_of(conn, dialogue_id)

    def add_version(self, dialogue_id: str, version: VersionDraft) -> ImageVersion:
        """Record ``version`` (an image made outside any turn; ``put_image`` it first) as the newest version.

        Later turns run on it.  ImageNotFoundError, RegionNotFoundError or DialogueNotFoundError before any write.
        """
        if not isinstance(version, VersionDraft):
            raise InputError(f"version is a {type(version).__name__}", hint="pass a VersionDraft(image=..., tool=...)")
        return self._db.write(lambda conn: _append.add_version(conn, dialogue_id, version))

    def list_dialogues(self, limit: int = 50, offset: int = 0, *, owner: str | None = None) -> list[Dialogue]:
        """Dialogues, newest first, with their turns; ``limit`` 1..1000, ``offset`` >= 0.

        ``owner``: a principal name: only its dialogues; None (the default): every dialogue, whoever owns it.
        """
        stmt = _dialogues.list_statement(limit, offset, owner)
        with self._db.read() as conn:
            return load_dialogues(conn, conn.execute(stmt).all())

    def delete_dialogue(self, dialogue_id: str) -> None:
        """Delete a dialogue with its turns, regions and citations (images stay); DialogueNotFoundError."""

        def write(conn: Connection) -> None:
            if conn.execute(delete(DialogueRow).where(DialogueRow.id == dialogue_id)).rowcount == 0:
                raise dialogue_not_found(dialogue_id)

        self._db.write(write)

    # ------------------------------------------------------------------- turns

    def append_turn(self, dialogue_id: str, draft: TurnDraft) -> Turn:
        """Store one turn with its new regions and citations in ONE transaction; returns the stored Turn.

        The turn gets ``draft.index`` or the next index; its regions are named R(n+1), R(n+2), ... in answer
        order.  Appending a draft whose ``key`` (or explicit ``index``) is stored already returns the stored turn
        when the content is equal and raises TurnConflictError when it differs.  Checked before anything is
        written: the dialogue (DialogueNotFoundError) and image (ImageNotFoundError) exist; boxes and points lie
        in the image and masks have its size (GeometryError, 1e-6 px tolerance); referenced and cited regions
        exist in this dialogue (RegionNotFoundError; a number past ``MAX_REGION_NUMBER`` is never sent to the
        database).
        """
        return self.append_turns(dialogue_id, [draft])[0]

    def append_turns(self, dialogue_id: str, drafts: Sequence[TurnDraft]) -> list[Turn]:
        """Store several turns in order in ONE transaction (all or nothing), with :meth:`append_turn`'s rules."""
        for i, draft in enumerate(drafts):
            if not isinstance(draft, TurnDraft):
                raise InputError(
                    f"draft {i} is a {type(draft).__name__}, not a TurnDraft",
                    hint="build it with regionreasoner.core.types.TurnDraft(...)",
                )
        if not drafts:
            return []
        past = [
            name
            for draft in drafts
            for name in (*draft.referenced, *(c.region for c in draft.citations if c.region is not None))
            if int(name[1:]) > MAX_REGION_NUMBER
        ]
        if past:  # never sent to the database (SQLite raised OverflowError past 2**63 - 1)
            with self._db.read() as conn:
                if not dialogue_exists(conn, dialogue_id):
                    raise dialogue_not_found(dialogue_id)
                raise _append.region_not_found(dialogue_id, past[0], region_count(conn, dialogue_id))
        return self._db.write(lambda conn: _append.append_drafts(conn, dialogue_id, drafts))

    def turns(self, dialogue_id: str) -> list[Turn]:
        """The turns of a dialogue in order; DialogueNotFoundError when unknown."""
        with self._db.read() as conn:
            found = load_turns(conn, TurnRow.dialogue_id == dialogue_id)
            if not found and not dialogue_exists(conn, dialogue_id):
                raise dialogue_not_found(dialogue_id)
            return found

    def turn_by_key(self, dialogue_id: str, key: str) -> Turn | None:
        """The turn a dialogue stores under idempotency ``key``, or None (also for an unknown dialogue).

        One indexed query (the ``(dialogue_id, key)`` unique constraint), whatever the dialogue's length.
        """
        with self._db.read() as conn:
            found = load_turns(conn, (TurnRow.dialogue_id == dialogue_id) & (TurnRow.key == key))
            return found[0] if found else None

    def turn(self, dialogue_id: str, index: int) -> Turn:
        """Turn ``index`` (0-based) of a dialogue; DialogueNotFoundError, or NotFoundError for a missing index."""
        with self._db.read() as conn:
            found = load_turns(conn, (TurnRow.dialogue_id == dialogue_id) & (TurnRow.turn_index == index))
            if found:
                return found[0]
            if not dialogue_exists(conn, dialogue_id):
                raise dialogue_not_found(dialogue_id)
            count = conn.execute(select(func.count()).where(TurnRow.dialogue_id == dialogue_id)).scalar_one()
            raise turn_not_found(dialogue_id, index, int(count))

    # ----------------------------------------------------------------- regions

    def get_region(self, dialogue_id: str, region_id: str) -> Region:
        """Region ``region_id`` (``"R1"``, ``"R2"``, ...) of a dialogue, in original pixels.

        One indexed SELECT.  Raises RegionNotFoundError for a name the dialogue does not have or that is not a
        region name (``"R0"``, ``"r1"``, ``"X"``) or whose number is past ``MAX_REGION_NUMBER`` (never sent to the
        database), listing the names that exist; DialogueNotFoundError.
        """
        m = REGION_ID_PATTERN.match(region_id) if isinstance(region_id, str) else None
        # A name longer than MAX_REGION_NUMBER's digits names no region: no int() of thousands of digits (Python's
        # int-string limit) and no number past the column's range is sent to the database.
        if m is not None and len(m[1]) <= len(str(MAX_REGION_NUMBER)):
            with self._db.read(Begin.NONE) as conn:
                found = get_region(conn, dialogue_id, int(m[1]))
            if found is not None:
                return found
        with self._db.read() as conn:
            if not dialogue_exists(conn, dialogue_id):
                raise dialogue_not_found(dialogue_id)
            raise _append.region_not_found(dialogue_id, region_id, region_count(conn, dialogue_id))

    def regions(self, dialogue_id: str) -> list[Region]:
        """Every region of a dialogue, R1 first; DialogueNotFoundError when unknown."""
        with self._db.read() as conn:
            found = load_regions(conn, RegionRow.dialogue_id == dialogue_id)
            if not found and not dialogue_exists(conn, dialogue_id):
                raise dialogue_not_found(dialogue_id)
            return sorted(found, key=lambda r: int(r.id[1:]))

    def regions_for_image(self, image_hash: str) -> list[Region]:
        """Regions found on this image version in any dialogue, in the order they were stored.

        ImageNotFoundError when no such image is stored (an image without regions gives an empty list).
        """
        check_hash(image_hash)
        with self._db.read() as conn:
            found = load_regions(conn, RegionRow.image_hash == image_hash)
        if not found:
            self.image_info(image_hash)
        return found

    # ---------------------------------------------------------------- plumbing

    def _image_row(self, image_hash: str) -> ImageInfo | None:
        with self._db.read(Begin.NONE) as conn:
            row = conn.execute(select(*IMAGE_COLUMNS).where(ImageRow.hash == image_hash)).first()
        return None if row is None else image_from_row(row)

    def _resolve_image(self, image: ImageSource) -> str:
        if is_image_hash(image):
            if self._image_row(image) is not None:
                return image
            if not Path(image).is_file():
                raise ImageNotFoundError(
                    f"no stored image {image[:12]}...", hint="store it with put_image(), or pass the image itself"
                )
        return self.put_image(image).hash


def _now() -> datetime:
    return datetime.now(UTC)
