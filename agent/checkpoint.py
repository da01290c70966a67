"""Checkpointers for the turn graph: SQLite beside the region memory by default, Postgres by URL.

The state holds the turn in progress (:class:`~regionreasoner.agent.state.TurnWork`, with its typed references) and
pydantic types of :mod:`regionreasoner.core.types` (turns, problems, regions); the serializer
allows exactly those classes to be restored from a checkpoint, and nothing else beyond LangGraph's safe set.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from regionreasoner.core.errors import ConfigError
from regionreasoner.memory import RegionMemory

__all__ = ["STATE_TYPES", "make_checkpointer", "serializer"]

STATE_TYPES: tuple[tuple[str, str], ...] = (
    *(
        ("regionreasoner.core.types", name)
        for name in (
            "Citation",
            "Problem",
            "ProblemKind",
            "Region",
            "RegionDraft",
            "Sections",
            "Severity",
            "Turn",
            "TurnStatus",
            "Usage",
        )
    ),
    ("regionreasoner.agent.state", "TurnWork"),
    ("regionreasoner.core.citations", "Reference"),
    ("regionreasoner.core.geometry", "Box"),
    ("regionreasoner.core.geometry", "Point"),
    ("regionreasoner.core.masks", "Rle"),
)
"""(module, class) pairs a checkpoint may contain besides LangGraph's own safe types."""


def serializer() -> Any:
    """LangGraph's JSON-plus serializer, allowed to restore :data:`STATE_TYPES`."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    return JsonPlusSerializer(allowed_msgpack_modules=list(STATE_TYPES))


def make_checkpointer(memory: RegionMemory, checkpoints: str | Path | Any | None = None) -> Any:
    """A checkpointer for ``memory``'s dialogues.

    ``checkpoints``: a ready LangGraph checkpointer (returned as is), a SQLite file path, a Postgres URL, or None:
    ``checkpoints.db`` beside a SQLite memory file, the memory's own database for Postgres, and in-memory
    checkpoints for an in-memory SQLite memory.
    """
    from langgraph.checkpoint.memory import InMemorySaver

    if checkpoints is not None and not isinstance(checkpoints, (str, Path)):
        return checkpoints
    if checkpoints is None:
        url = memory.url
        if url.get_backend_name() == "postgresql":
            checkpoints = url.render_as_string(hide_password=False)
        elif url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            checkpoints = Path(str(url.database)).with_name("checkpoints.db")
        else:
            return InMemorySaver(serde=serializer())
    text = str(checkpoints)
    if text.startswith("postgres"):
        try:
            import psycopg
            from langgraph.checkpoint.postgres import PostgresSaver
            from psycopg.rows import dict_row
        except ImportError as exc:
            raise ConfigError(
                "Postgres checkpoints need langgraph-checkpoint-postgres", hint="pip install 'regionreasoner[postgres]'"
            ) from exc
        conn = psycopg.connect(text.replace("+psycopg", ""), autocommit=True, prepare_threshold=0, row_factory=dict_row)
        saver = PostgresSaver(conn, serde=serializer())
        saver.setup()
        return saver
    from langgraph.checkpoint.sqlite import SqliteSaver

    from regionreasoner.memory.engine import tune_sqlite

    Path(text).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(text, check_same_thread=False)
    # The memory's settings (WAL, synchronous=NORMAL, busy timeout): a checkpoint commit then costs tens of
    # microseconds instead of an fsync (milliseconds), and survives the process being killed all the same.
    tune_sqlite(db)
    return SqliteSaver(db, serde=serializer())
