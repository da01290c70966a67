"""Checkpointers for the turn graph: SQLite beside the region memory by default, Postgres by URL.

The state holds the caller's input (:class:`~regionreasoner.agent.state.InputState`, in the checkpoint a run starts
from), the turn in progress (:class:`~regionreasoner.agent.state.TurnWork`, with its typed references) and pydantic
types of :mod:`regionreasoner.core.types` (turns, problems, regions); the serializer allows exactly those classes to
be restored from a checkpoint, and nothing else beyond LangGraph's safe set, and never loads a pickle.

A checkpoint database is a file: whoever can write to it chooses what a permissive deserializer constructs
(LangGraph's default revives any ``module.name(arg)``, ``os.system`` included).  So every checkpointer the agent
uses **or is given** gets :func:`serializer`: :func:`make_checkpointer` installs it on a caller's checkpointer too.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from regionreasoner.core.errors import ConfigError, StorageError
from regionreasoner.memory import RegionMemory

__all__ = ["STATE_TYPES", "make_checkpointer", "secure", "serializer"]

STATE_TYPES: tuple[tuple[str, str], ...] = (
    *(
        ("regionreasoner.core.types", name)
        for name in (
            "Citation",
            "ImageVersion",
            "Problem",
            "ProblemKind",
            "Region",
            "RegionDraft",
            "Sections",
            "Severity",
            "Turn",
            "TurnStatus",
            "Usage",
            "VersionDraft",
        )
    ),
    ("regionreasoner.agent.state", "InputState"),
    ("regionreasoner.agent.state", "TurnWork"),
    ("regionreasoner.core.citations", "Reference"),
    ("regionreasoner.core.geometry", "Box"),
    ("regionreasoner.core.geometry", "Point"),
    ("regionreasoner.core.masks", "Rle"),
)
"""(module, class) pairs a checkpoint may contain besides LangGraph's own safe types."""


_SETUP_LOCK = 0x52524350  # "RRCP": the advisory lock key under which Postgres checkpoint tables are set up
_SETUP_TIMEOUT_S = 60.0


def serializer() -> Any:
    """LangGraph's JSON-plus serializer, allowed to restore :data:`STATE_TYPES` (and LangGraph's safe types) only.

    No pickle fallback (a ``pickle`` checkpoint raises instead of being loaded), and no JSON constructors beyond
    LangGraph's safe set.
    """
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    return JsonPlusSerializer(pickle_fallback=False, allowed_msgpack_modules=list(STATE_TYPES))


def secure(saver: Any) -> Any:
    """``saver`` (a caller's LangGraph checkpointer) with :func:`serializer` installed in place; returns it.

    LangGraph's own serializer (the default) is replaced; an ``EncryptedSerializer`` keeps its cipher around the
    allow-listed serializer.  Any other serializer is refused: the agent cannot tell what it would construct.
    """
    from langgraph.checkpoint.serde.base import maybe_add_typed_methods
    from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    current = getattr(saver, "serde", None)
    if type(current) is JsonPlusSerializer:
        saver.serde = maybe_add_typed_methods(serializer())
    elif isinstance(current, EncryptedSerializer) and type(current.serde) is JsonPlusSerializer:
        saver.serde = maybe_add_typed_methods(EncryptedSerializer(current.cipher, serializer()))
    else:
        raise ConfigError(
            f"checkpointer {type(saver).__name__} uses serializer {type(current).__name__}, which the agent cannot "
            "restrict to the types a turn's state holds",
            hint="pass a LangGraph checkpointer with its default serializer (or an EncryptedSerializer around it); "
            "the agent installs regionreasoner.agent.checkpoint.serializer() on it",
        )
    return saver


def make_checkpointer(memory: RegionMemory, checkpoints: str | Path | Any | None = None) -> Any:
    """A checkpointer for ``memory``'s dialogues.

    ``checkpoints``: a ready LangGraph checkpointer (its serializer replaced by :func:`serializer`, see
    :func:`secure`), a SQLite file path, a Postgres URL, or None: ``checkpoints.db`` beside a SQLite memory file, the
    memory's own database for Postgres, and in-memory checkpoints for an in-memory SQLite memory.  Every one
    restores only :data:`STATE_TYPES`.  SQLite checkpoint files get the memory's settings
    (:func:`regionreasoner.memory.engine.tune_sqlite`: the same 30 s busy timeout, WAL, ``synchronous=NORMAL``).
    """
    from langgraph.checkpoint.memory import InMemorySaver

    if checkpoints is not None and not isinstance(checkpoints, (str, Path)):
        return secure(checkpoints)
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
        # LangGraph's setup() migrates without a lock: processes setting up a fresh database at the same moment
        # collide on its migrations table (a unique violation). A session-level advisory lock makes them take turns.
        # It is polled, not waited for: a session blocked in pg_advisory_lock holds a snapshot, which the holder's
        # CREATE INDEX CONCURRENTLY waits out, and Postgres reports that as a deadlock.
        deadline = time.monotonic() + _SETUP_TIMEOUT_S
        while not (conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (_SETUP_LOCK,)).fetchone() or {}).get("ok"):
            if time.monotonic() > deadline:
                raise StorageError(
                    f"another process kept the checkpoint set-up lock for more than {_SETUP_TIMEOUT_S:g} s",
                    hint="retry; if it persists, look for a stuck process connected to the database",
                )
            time.sleep(0.05)
        try:
            saver.setup()
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_SETUP_LOCK,))
        return saver
    from langgraph.checkpoint.sqlite import SqliteSaver

    from regionreasoner.memory.engine import BUSY_TIMEOUT_MS, tune_sqlite

    Path(text).parent.mkdir(parents=True, exist_ok=True)
    # One lock-timeout policy for memory and checkpoints: sqlite3's default of 5 s would let a turn commit to the
    # memory and then fail on its checkpoint under the same contention the memory waits out.
    db = sqlite3.connect(text, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    # The memory's settings (WAL, synchronous=NORMAL, busy timeout): a checkpoint commit then costs tens of
    # microseconds instead of an fsync (milliseconds), and survives the process being killed all the same.
    tune_sqlite(db)
    return SqliteSaver(db, serde=serializer())
