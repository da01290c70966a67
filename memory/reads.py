"""Reading turns, regions, image versions and dialogues back as pydantic objects, in a few set-based queries each.

A dialogue with T turns loads in four SELECTs (turns, regions, citations, image versions) whatever T is; a region by
name is one indexed SELECT on ``(dialogue_id, number)``; the latest image one SELECT on ``(dialogue_id, number)``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Connection, bindparam, func, select

from regionreasoner.core.errors import DialogueNotFoundError, TurnNotFoundError
from regionreasoner.core.types import Dialogue, ImageVersion, Region, Turn
from regionreasoner.memory.convert import (
    CITATION_COLUMNS,
    REGION_COLUMNS,
    TURN_COLUMNS,
    VERSION_COLUMNS,
    AnyRow,
    dialogue_from_row,
    region_from_row,
    turn_from_row,
    version_from_row,
)
from regionreasoner.memory.models import CitationRow, DialogueRow, ImageVersionRow, RegionRow, TurnRow

__all__ = [
    "MAX_REGION_NUMBER",
    "REGION_BY_NUMBER",
    "dialogue_exists",
    "dialogue_not_found",
    "dialogue_owner",
    "get_region",
    "latest_image",
    "latest_version",
    "load_dialogues",
    "load_regions",
    "load_turns",
    "load_versions",
    "region_count",
    "turn_not_found",
    "versions_of",
]


def dialogue_not_found(dialogue_id: str) -> DialogueNotFoundError:
    """The error for an unknown dialogue id."""
    return DialogueNotFoundError(
        f"no dialogue {dialogue_id!r}", hint="check the id, or list them with list_dialogues()"
    )


def turn_not_found(dialogue_id: str, index: int, count: int) -> TurnNotFoundError:
    """The error for a turn index a dialogue with ``count`` turns does not have."""
    span = f"turns 0..{count - 1}" if count else "no turns yet"
    return TurnNotFoundError(
        f"dialogue {dialogue_id!r} has no turn {index} (it has {span})", hint="turn indices are 0-based"
    )


_LATEST_VERSION = (
    select(ImageVersionRow.number, ImageVersionRow.image_hash)
    .where(ImageVersionRow.dialogue_id == bindparam("dialogue_id"))
    .order_by(ImageVersionRow.number.desc())
    .limit(1)
)


def latest_version(conn: Connection, dialogue_id: str) -> tuple[int, str] | None:
    """``(number, image hash)`` of the dialogue's newest image version, or None (no such dialogue)."""
    row = conn.execute(_LATEST_VERSION, {"dialogue_id": dialogue_id}).first()
    return None if row is None else (int(row.number), str(row.image_hash))


def latest_image(conn: Connection, dialogue_id: str) -> str:
    """The hash of the dialogue's newest image version (what its next turn runs on); DialogueNotFoundError.

    One SELECT on the unique index ``(dialogue_id, number)``: every dialogue has version 0, its starting image.
    """
    found = latest_version(conn, dialogue_id)
    if found is None:
        raise dialogue_not_found(dialogue_id)
    return found[1]


def load_versions(conn: Connection, cond: ColumnElement[bool]) -> list[ImageVersion]:
    """Image versions matching ``cond`` (on ImageVersionRow columns), by dialogue and number."""
    stmt = (
        select(*VERSION_COLUMNS)
        .outerjoin(TurnRow, TurnRow.id == ImageVersionRow.turn_id)
        .where(cond)
        .order_by(ImageVersionRow.dialogue_id, ImageVersionRow.number)
    )
    return [version_from_row(row) for row in conn.execute(stmt)]


def versions_of(conn: Connection, dialogue_id: str) -> list[ImageVersion]:
    """The image versions of a dialogue, version 0 first; DialogueNotFoundError when unknown."""
    found = load_versions(conn, ImageVersionRow.dialogue_id == dialogue_id)
    if not found and not dialogue_exists(conn, dialogue_id):
        raise dialogue_not_found(dialogue_id)
    return found


def dialogue_exists(conn: Connection, dialogue_id: str) -> bool:
    """True when a dialogue with this id is stored."""
    return conn.execute(select(DialogueRow.id).where(DialogueRow.id == dialogue_id)).first() is not None


def dialogue_owner(conn: Connection, dialogue_id: str) -> str | None:
    """The owner of a dialogue (None: it has none): one SELECT by primary key; DialogueNotFoundError when unknown."""
    row = conn.execute(select(DialogueRow.owner).where(DialogueRow.id == dialogue_id)).first()
    if row is None:
        raise dialogue_not_found(dialogue_id)
    return row[0]


def region_count(conn: Connection, dialogue_id: str) -> int:
    """How many regions a dialogue has (its highest region number: numbers have no gaps)."""
    value = conn.execute(select(func.max(RegionRow.number)).where(RegionRow.dialogue_id == dialogue_id)).scalar()
    return 0 if value is None else int(value)


REGION_BY_NUMBER = (
    select(*REGION_COLUMNS)
    .join(TurnRow, TurnRow.id == RegionRow.turn_id)
    .where(RegionRow.dialogue_id == bindparam("dialogue_id"), RegionRow.number == bindparam("number"))
)
"""The look-up behind get_region: the unique index ``(dialogue_id, number)``, then the turn by primary key."""


MAX_REGION_NUMBER = 2**31 - 1
"""The highest region number a dialogue can have (the ``number`` column is a 32-bit INTEGER on Postgres); a
larger one (``R99999999999999999999``) names no region and is never sent to the database (SQLite raised
OverflowError past 2**63 - 1)."""


def get_region(conn: Connection, dialogue_id: str, number: int) -> Region | None:
    """Region ``R<number>`` of a dialogue, or None: one SELECT on the unique index ``(dialogue_id, number)``.

    A number outside ``1..MAX_REGION_NUMBER`` is None without a query.
    """
    if not 1 <= number <= MAX_REGION_NUMBER:
        return None
    row = conn.execute(REGION_BY_NUMBER, {"dialogue_id": dialogue_id, "number": number}).first()
    return None if row is None else region_from_row(row)


def load_regions(conn: Connection, cond: ColumnElement[bool]) -> list[Region]:
    """Regions matching ``cond`` (on RegionRow / TurnRow columns), in storage order."""
    stmt = select(*REGION_COLUMNS).join(TurnRow, TurnRow.id == RegionRow.turn_id).where(cond).order_by(RegionRow.id)
    return [region_from_row(row) for row in conn.execute(stmt)]


def load_turns(conn: Connection, cond: ColumnElement[bool]) -> list[Turn]:
    """Turns matching ``cond`` (on TurnRow columns), ordered by dialogue and index, with regions and citations."""
    turn_rows = conn.execute(select(*TURN_COLUMNS).where(cond).order_by(TurnRow.dialogue_id, TurnRow.turn_index)).all()
    if not turn_rows:
        return []
    turn_ids = select(TurnRow.id).where(cond).scalar_subquery()
    regions: dict[int, list[Region]] = defaultdict(list)
    region_stmt = (
        select(*REGION_COLUMNS)
        .join(TurnRow, TurnRow.id == RegionRow.turn_id)
        .where(RegionRow.turn_id.in_(turn_ids))
        .order_by(RegionRow.number)
    )
    for row in conn.execute(region_stmt):
        regions[int(row.turn_id)].append(region_from_row(row))
    citations: dict[int, list[AnyRow]] = defaultdict(list)
    citation_stmt = (
        select(*CITATION_COLUMNS)
        .outerjoin(RegionRow, RegionRow.id == CitationRow.region_id)
        .where(CitationRow.turn_id.in_(turn_ids))
        .order_by(CitationRow.turn_id, CitationRow.kind, CitationRow.position)
    )
    for row in conn.execute(citation_stmt):
        citations[int(row.turn_id)].append(row)
    versions: dict[int, list[ImageVersion]] = defaultdict(list)
    made = ImageVersionRow.turn_id.in_(turn_ids) & ImageVersionRow.tool.is_not(None)
    version_stmt = (
        select(*VERSION_COLUMNS)
        .join(TurnRow, TurnRow.id == ImageVersionRow.turn_id)
        .where(made)
        .order_by(ImageVersionRow.number)
    )
    for row in conn.execute(version_stmt):
        versions[int(row.turn_id)].append(version_from_row(row))
    return [
        turn_from_row(row, regions[int(row.id)], citations[int(row.id)], versions[int(row.id)]) for row in turn_rows
    ]


def load_dialogues(conn: Connection, rows: Sequence[AnyRow]) -> list[Dialogue]:
    """Dialogues for rows of :data:`~regionreasoner.memory.convert.DIALOGUE_COLUMNS`, with all their turns."""
    if not rows:
        return []
    ids = [row.id for row in rows]
    by_dialogue: dict[str, list[Turn]] = defaultdict(list)
    for turn in load_turns(conn, TurnRow.dialogue_id.in_(ids)):
        by_dialogue[turn.dialogue_id].append(turn)
    return [dialogue_from_row(row, by_dialogue[row.id]) for row in rows]
