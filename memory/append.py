"""Appending turns inside one write transaction: idempotency, validation, id allocation, inserts.

Everything here runs on a connection that already holds the write lock of the dialogue (``BEGIN IMMEDIATE`` on
SQLite, ``SELECT ... FOR UPDATE`` of the dialogue row on Postgres, taken by :func:`append_drafts`), so the turn
index and region numbers read by :func:`allocate` cannot be taken by another writer before this transaction
commits.  The unique constraints ``(dialogue_id, turn_index)`` and ``(dialogue_id, number)`` are the last line of
defence; a violation rolls everything back and the caller retries (see ``RegionMemory._write``).

Validation happens before the first insert of each draft and raises a typed error; the caller's transaction is
then rolled back, so nothing of the batch is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, func, insert, select

from regionreasoner.core.errors import (
    DialogueNotFoundError,
    GeometryError,
    ImageNotFoundError,
    InputError,
    RegionNotFoundError,
    TurnConflictError,
)
from regionreasoner.core.types import REGION_ID_PATTERN, ImageVersion, Turn, TurnDraft, VersionDraft
from regionreasoner.memory.convert import (
    VERSION_COLUMNS,
    citation_values,
    content_hash,
    image_values,
    region_name,
    region_values,
    turn_from_draft,
    turn_values,
    version_from_row,
    version_values,
)
from regionreasoner.memory.models import CitationRow, DialogueRow, ImageRow, ImageVersionRow, RegionRow, TurnRow
from regionreasoner.memory.reads import latest_version, load_turns, region_count

__all__ = [
    "TOLERANCE_PX",
    "add_version",
    "allocate",
    "append_drafts",
    "existing_names",
    "insert_versions",
    "region_not_found",
]

log = logging.getLogger(__name__)

TOLERANCE_PX = 1e-6
"""How far (pixels) a box or point may stick out of the image and still be accepted (float round-off)."""


# The hot path's statements, built once (SQLAlchemy then reuses their compiled form).
_LOCK_DIALOGUE = select(DialogueRow.id).where(DialogueRow.id == bindparam("dialogue_id")).with_for_update()
_LAST_INDEX = select(func.max(TurnRow.turn_index)).where(TurnRow.dialogue_id == bindparam("dialogue_id"))
_LAST_NUMBER = select(func.max(RegionRow.number)).where(RegionRow.dialogue_id == bindparam("dialogue_id"))
# Both maxima in one statement (one round trip on the hot path instead of two).
_NEXT_IDS = select(_LAST_INDEX.scalar_subquery(), _LAST_NUMBER.scalar_subquery())
_IMAGE_SIZE = select(ImageRow.width, ImageRow.height).where(ImageRow.hash == bindparam("image_hash"))
_REFERENCED = select(RegionRow.number, RegionRow.id).where(
    RegionRow.dialogue_id == bindparam("dialogue_id"), RegionRow.number.in_(bindparam("numbers", expanding=True))
)
_TURN_COLUMNS = (TurnRow.turn_index, TurnRow.key, TurnRow.content_hash)
_TURN_BY_KEY = select(*_TURN_COLUMNS).where(
    TurnRow.dialogue_id == bindparam("dialogue_id"), TurnRow.key == bindparam("key")
)
_TURN_BY_INDEX = select(*_TURN_COLUMNS).where(
    TurnRow.dialogue_id == bindparam("dialogue_id"), TurnRow.turn_index == bindparam("turn_index")
)
_INSERT_TURN = insert(TurnRow).returning(TurnRow.id)
_INSERT_REGIONS = insert(RegionRow)
_INSERT_CITATIONS = insert(CitationRow)
_INSERT_VERSIONS = insert(ImageVersionRow)


def allocate(conn: Connection, dialogue_id: str) -> tuple[int, int]:
    """The next free turn index and region number of a dialogue: ``(max index + 1, max number + 1)``."""
    last_index, last_number = conn.execute(_NEXT_IDS, {"dialogue_id": dialogue_id}).one()
    return (0 if last_index is None else int(last_index) + 1, 1 if last_number is None else int(last_number) + 1)


def existing_names(count: int) -> str:
    """How an error message lists the regions ``R1..R<count>`` of a dialogue."""
    if count <= 0:
        return "it has no regions yet"
    if count <= 8:
        return "it has " + ", ".join(region_name(n) for n in range(1, count + 1))
    return f"it has R1 ... {region_name(count)}"


def region_not_found(dialogue_id: str, name: str, count: int) -> RegionNotFoundError:
    """The error for a region name that is malformed or not (yet) in a dialogue with ``count`` regions."""
    if not isinstance(name, str) or REGION_ID_PATTERN.match(name) is None:
        hint = "region names are R followed by a positive integer without leading zeros: R1, R2, ..."
        if isinstance(name, str) and REGION_ID_PATTERN.match(name.strip().upper()):
            hint = f"write {name.strip().upper()!r}; " + hint
        return RegionNotFoundError(f"{name!r} is not a region name ({existing_names(count)})", hint=hint)
    return RegionNotFoundError(
        f"dialogue {dialogue_id!r} has no region {name} ({existing_names(count)})",
        hint="cite only regions that earlier turns found",
    )


def append_drafts(conn: Connection, dialogue_id: str, drafts: Sequence[TurnDraft]) -> list[Turn]:
    """Store ``drafts`` in order in the current transaction and return the stored turns.

    A draft whose ``key`` (or explicit ``index``) is already stored for the same request (question, image, frame,
    references: :func:`~regionreasoner.memory.convert.content_hash`) returns the stored turn, whatever its answer
    says; another request under that key raises TurnConflictError.  Raises DialogueNotFoundError, ImageNotFoundError,
    GeometryError, RegionNotFoundError or InputError before inserting anything of the offending draft.
    """
    locked = conn.execute(_LOCK_DIALOGUE, {"dialogue_id": dialogue_id}).first()
    if locked is None:
        raise DialogueNotFoundError(
            f"no dialogue {dialogue_id!r}", hint="create it with create_dialogue() before appending turns"
        )
    next_index, next_number = allocate(conn, dialogue_id)
    latest = latest_version(conn, dialogue_id)
    next_version, current_image = (latest[0] + 1, latest[1]) if latest is not None else (0, None)
    sizes: dict[str, tuple[int, int]] = {}
    out: list[Turn] = []
    for position, draft in enumerate(drafts):
        digest = content_hash(draft)
        stored = _stored_version(conn, dialogue_id, draft, digest)
        if stored is not None:
            out.append(stored)
            continue
        index = next_index if draft.index is None else draft.index
        if index > next_index:
            raise InputError(
                f"draft {position}: turn index {index} would leave a gap in dialogue {dialogue_id!r}",
                hint=f"the next turn is {next_index}; pass index=None to append after the last turn",
            )
        if draft.image not in sizes:
            sizes[draft.image] = _image_size(conn, draft.image)
        _check_geometry(draft, sizes[draft.image], first_number=next_number, position=position)
        for version in draft.versions:
            for image_hash in (version.image, version.parent):
                if image_hash is not None and image_hash not in sizes:
                    sizes[image_hash] = _image_size(conn, image_hash)
        region_ids = _resolve_references(conn, dialogue_id, draft, count=next_number - 1)
        created_at = datetime.now(UTC)
        values = turn_values(draft, dialogue_id=dialogue_id, index=index, digest=digest, created_at=created_at)
        turn_id = conn.execute(_INSERT_TURN, values).scalar_one()
        if draft.regions:
            rows = [
                region_values(
                    r, dialogue_id=dialogue_id, number=next_number + i, turn_id=turn_id, image_hash=draft.image
                )
                for i, r in enumerate(draft.regions)
            ]
            conn.execute(_INSERT_REGIONS, rows)
        citations = citation_values(draft, turn_id=turn_id, region_ids=region_ids)
        if citations:
            conn.execute(_INSERT_CITATIONS, citations)
        first_tool_version = next_version
        if draft.image != current_image:
            # The caller sent another image with this turn: it is a version of its own, before the tools' ones.
            sent = image_values(draft.image, dialogue_id=dialogue_id, number=next_version, turn_id=turn_id)
            conn.execute(_INSERT_VERSIONS, {**sent, "created_at": created_at})
            first_tool_version += 1
        insert_versions(
            conn, dialogue_id, draft.versions, first=first_tool_version, turn_id=turn_id, created_at=created_at
        )
        out.append(
            turn_from_draft(
                draft,
                dialogue_id=dialogue_id,
                index=index,
                first_number=next_number,
                created_at=created_at,
                first_version=first_tool_version,
            )
        )
        next_index = max(next_index, index + 1)
        next_number += len(draft.regions)
        next_version = first_tool_version + len(draft.versions)
        current_image = draft.versions[-1].image if draft.versions else draft.image
    return out


def insert_versions(
    conn: Connection,
    dialogue_id: str,
    versions: Sequence[VersionDraft],
    *,
    first: int,
    turn_id: int | None,
    created_at: datetime,
) -> None:
    """Insert ``versions`` as versions ``first``, ``first + 1``, ... of a dialogue, made by turn ``turn_id``."""
    rows = [
        version_values(v, dialogue_id=dialogue_id, number=first + i, turn_id=turn_id, created_at=created_at)
        for i, v in enumerate(versions)
    ]
    if rows:
        conn.execute(_INSERT_VERSIONS, rows)


def add_version(conn: Connection, dialogue_id: str, version: VersionDraft) -> ImageVersion:
    """Store ``version`` (made outside any turn) as the dialogue's newest image version and return it.

    Raises DialogueNotFoundError, ImageNotFoundError (the image or its parent is not stored) or
    RegionNotFoundError (``version.region`` is not a region of the dialogue) before inserting anything.
    """
    if conn.execute(_LOCK_DIALOGUE, {"dialogue_id": dialogue_id}).first() is None:
        raise DialogueNotFoundError(f"no dialogue {dialogue_id!r}", hint="create it with create_dialogue() first")
    for image_hash in (version.image, version.parent):
        if image_hash is not None:
            _image_size(conn, image_hash)
    if version.region is not None:
        count = region_count(conn, dialogue_id)
        if int(version.region[1:]) > count:
            raise region_not_found(dialogue_id, version.region, count)
    latest = latest_version(conn, dialogue_id)
    number = latest[0] + 1 if latest is not None else 0
    insert_versions(conn, dialogue_id, [version], first=number, turn_id=None, created_at=datetime.now(UTC))
    return version_from_row(
        conn.execute(
            select(*VERSION_COLUMNS)
            .outerjoin(TurnRow, TurnRow.id == ImageVersionRow.turn_id)
            .where(ImageVersionRow.dialogue_id == dialogue_id, ImageVersionRow.number == number)
        ).one()
    )


def _stored_version(conn: Connection, dialogue_id: str, draft: TurnDraft, digest: str) -> Turn | None:
    """The stored turn this draft repeats (by key, else by explicit index), or None when it is new."""
    params = {"dialogue_id": dialogue_id, "key": draft.key, "turn_index": draft.index}
    if draft.key is not None:
        row = conn.execute(_TURN_BY_KEY, params).first()
    elif draft.index is not None:
        row = conn.execute(_TURN_BY_INDEX, params).first()
    else:
        return None
    if row is None:
        if draft.key is not None and draft.index is not None:
            taken = conn.execute(_TURN_BY_INDEX, params).first()
            if taken is not None:
                raise TurnConflictError(
                    f"dialogue {dialogue_id!r} already has turn {draft.index} under key {taken.key!r}, "
                    f"not {draft.key!r}",
                    hint="pass index=None to append after the last turn, or reuse the stored turn's key",
                )
        return None
    what = f"key {draft.key!r}" if draft.key is not None else f"index {draft.index}"
    reasons = []
    if row.content_hash != digest:
        reasons.append("different content")
    if row.key != draft.key:
        reasons.append(f"stored under key {row.key!r}, not {draft.key!r}")
    if draft.index is not None and draft.index != row.turn_index:
        reasons.append(f"stored as turn {row.turn_index}, not {draft.index}")
    if reasons:
        raise TurnConflictError(
            f"dialogue {dialogue_id!r} already has a turn with {what}: " + "; ".join(reasons),
            hint="use a new key for a new turn, or pass index=None to append after the last turn",
        )
    log.debug("turn %s of %s already stored: returning it", row.turn_index, dialogue_id)
    found = load_turns(conn, (TurnRow.dialogue_id == dialogue_id) & (TurnRow.turn_index == row.turn_index))
    return found[0]


def _image_size(conn: Connection, image_hash: str) -> tuple[int, int]:
    row = conn.execute(_IMAGE_SIZE, {"image_hash": image_hash}).first()
    if row is None:
        raise ImageNotFoundError(
            f"the draft's image {image_hash[:12]}... is not stored", hint="store it first with put_image()"
        )
    return int(row.width), int(row.height)


def _check_geometry(draft: TurnDraft, size: tuple[int, int], *, first_number: int, position: int) -> None:
    width, height = size
    for i, region in enumerate(draft.regions):
        name = f"draft {position}, region {i} (would be {region_name(first_number + i)})"
        if not region.box.within(width, height, tol=TOLERANCE_PX):
            raise GeometryError(
                f"{name}: box {region.box.to_list()} lies outside the {width}x{height} image",
                hint=f"boxes are xyxy in original pixels; clip it to [0, {width}] x [0, {height}]",
            )
        point = region.point
        if point is not None and not (
            -TOLERANCE_PX <= point.x <= width + TOLERANCE_PX and -TOLERANCE_PX <= point.y <= height + TOLERANCE_PX
        ):
            raise GeometryError(
                f"{name}: point [{point.x}, {point.y}] lies outside the {width}x{height} image",
                hint="points are (x, y) in original pixels of the turn's image",
            )
        if region.mask is not None and tuple(region.mask.size) != (height, width):
            raise GeometryError(
                f"{name}: mask RLE size {list(region.mask.size)} differs from the image's [{height}, {width}]",
                hint="RLE size is [height, width] of the turn's image; encode the full-image mask",
            )


def _resolve_references(conn: Connection, dialogue_id: str, draft: TurnDraft, *, count: int) -> dict[int, int]:
    """Row ids of every region the draft references or cites, by number; RegionNotFoundError for unknown ones."""
    names = [
        *draft.referenced,
        *(c.region for c in draft.citations if c.region is not None),
        *(v.region for v in draft.versions if v.region is not None),
    ]
    if not names:
        return {}
    wanted = {int(name[1:]) for name in names}
    rows = conn.execute(_REFERENCED, {"dialogue_id": dialogue_id, "numbers": sorted(wanted)}).all()
    found = {int(r.number): int(r.id) for r in rows}
    for name in names:
        if int(name[1:]) not in found:
            raise region_not_found(dialogue_id, name, count)
    return found
