"""Dialogue rows: their id and owner rules, creating one, and the statement that lists them.

A dialogue's ``owner`` is the principal that may read and write it (the HTTP server derives it from an auth token;
None: no owner, in-process use).  An id is global: creating a dialogue whose id another owner holds raises
InputError without saying that it exists or whose it is.  The read side is :mod:`regionreasoner.memory.reads`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, insert, select

from regionreasoner.core.errors import DialogueNotFoundError, InputError
from regionreasoner.core.types import Dialogue
from regionreasoner.memory.convert import DIALOGUE_COLUMNS, image_values
from regionreasoner.memory.models import DialogueRow, ImageVersionRow
from regionreasoner.memory.reads import dialogue_owner, load_dialogues

__all__ = [
    "MAX_OWNER_LENGTH",
    "check_dialogue_id",
    "check_not_taken",
    "check_owner",
    "create",
    "list_statement",
]

_DIALOGUE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")

MAX_OWNER_LENGTH = 128
"""The longest owner name (the ``dialogues.owner`` column is String(128))."""


def check_dialogue_id(dialogue_id: object) -> None:
    """InputError unless ``dialogue_id`` is 1-128 characters of ``A-Z a-z 0-9 _ . : -``."""
    if not isinstance(dialogue_id, str) or _DIALOGUE_ID.fullmatch(dialogue_id) is None:
        raise InputError(
            f"dialogue id {dialogue_id!r} is not allowed",
            hint="use 1 to 128 characters of letters, digits, '_', '.', ':' and '-', or omit id for a random one",
        )


def check_owner(owner: object) -> None:
    """InputError unless ``owner`` is None or a principal name of 1..MAX_OWNER_LENGTH characters."""
    if owner is None or (isinstance(owner, str) and 1 <= len(owner) <= MAX_OWNER_LENGTH):
        return
    what = f"has {len(owner)} characters" if isinstance(owner, str) else f"is a {type(owner).__name__}"
    raise InputError(
        f"owner {what}", hint=f"pass a principal name of 1 to {MAX_OWNER_LENGTH} characters, or None for no owner"
    )


def check_not_taken(conn: Connection, dialogue_id: str, owner: str | None) -> None:
    """InputError when the dialogue exists under another owner (it does not say so, nor whose it is)."""
    try:
        stored = dialogue_owner(conn, dialogue_id)
    except DialogueNotFoundError:
        return
    if stored != owner:
        raise InputError(f"dialogue id {dialogue_id!r} is taken", hint="pick another id or omit id")


def create(conn: Connection, dialogue_id: str, image_hash: str, *, title: str | None, owner: str | None) -> Dialogue:
    """Insert the dialogue and its version 0 (its starting image), or return the stored one with that id.

    The stored one is returned when it has this owner and image (with its turns); otherwise InputError.
    Run it in a write transaction.
    """
    row = conn.execute(select(*DIALOGUE_COLUMNS).where(DialogueRow.id == dialogue_id)).first()
    if row is not None:
        check_not_taken(conn, dialogue_id, owner)
        if row.image_hash != image_hash:
            raise InputError(
                f"dialogue {dialogue_id!r} already exists, about image {row.image_hash[:12]}...",
                hint="pick another id, or continue that dialogue with its own image",
            )
        return load_dialogues(conn, [row])[0]
    created_at = datetime.now(UTC)
    conn.execute(
        insert(DialogueRow).values(
            id=dialogue_id, image_hash=image_hash, title=title, owner=owner, created_at=created_at
        )
    )
    start = image_values(image_hash, dialogue_id=dialogue_id, number=0, turn_id=None)
    conn.execute(insert(ImageVersionRow).values(**start, created_at=created_at))
    return Dialogue(id=dialogue_id, image=image_hash, created_at=created_at, title=title, owner=owner)


def list_statement(limit: int, offset: int, owner: str | None) -> Select[Any]:
    """Rows of DIALOGUE_COLUMNS, newest first; ``owner``: a name (only its dialogues) or None (every dialogue)."""
    if not 1 <= limit <= 1000 or offset < 0:
        raise InputError(f"limit={limit}, offset={offset}", hint="use 1 <= limit <= 1000 and offset >= 0")
    stmt = select(*DIALOGUE_COLUMNS)
    if owner is not None:
        check_owner(owner)
        stmt = stmt.where(DialogueRow.owner == owner)
    return stmt.order_by(DialogueRow.created_at.desc(), DialogueRow.id).limit(limit).offset(offset)
