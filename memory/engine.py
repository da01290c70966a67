"""Database URLs, the default location, and engine creation with the right SQLite pragmas.

Default location (see docs/memory.md): ``$REGIONREASONER_HOME`` if set, else ``$XDG_DATA_HOME/regionreasoner``,
else ``~/.local/share/regionreasoner``; the default database is ``sqlite:///<home>/memory.db`` and images go to
``<home>/images``.

SQLite connections get ``journal_mode=WAL``, ``foreign_keys=ON``, ``busy_timeout`` (30 s) and
``synchronous=NORMAL``.  The driver's own transaction handling is switched off (``isolation_level = None``) and
SQLAlchemy's ``begin`` event emits the BEGIN itself, following SQLAlchemy's documented recipe: writers start with
``BEGIN IMMEDIATE`` (take the write lock first, so concurrent writers queue on ``busy_timeout`` instead of
deadlocking on a lock upgrade), multi-statement readers with a plain ``BEGIN``, and single-statement readers with
no BEGIN at all.  The mode is an execution option of the connection, see :func:`connect`.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import time
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from regionreasoner.core.errors import ConfigError, DependencyMissingError, StorageError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "Begin",
    "connect",
    "default_home",
    "default_image_dir",
    "default_url",
    "is_memory_sqlite",
    "make_engine",
    "normalize_url",
    "sqlite_path_problem",
    "storage_error",
    "tune_sqlite",
]

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite connection waits for another writer's lock before giving up (milliseconds)."""

_BEGIN_OPTION = "regionreasoner_begin"


class Begin(StrEnum):
    """How a SQLite transaction starts (ignored on Postgres, where row locks do the job)."""

    IMMEDIATE = "immediate"
    """``BEGIN IMMEDIATE``: take the write lock now (every write transaction)."""
    DEFERRED = "deferred"
    """``BEGIN``: a consistent snapshot for several reads."""
    NONE = "none"
    """No BEGIN: each statement runs on its own (single-statement reads)."""


def default_home() -> Path:
    """The data folder (not created).

    ``$REGIONREASONER_HOME``, else ``$XDG_DATA_HOME/regionreasoner``, else ``~/.local/share/regionreasoner``.
    """
    home = os.environ.get("REGIONREASONER_HOME")
    if home:
        return Path(home).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg:
        return Path(xdg).expanduser() / "regionreasoner"
    return Path.home() / ".local" / "share" / "regionreasoner"


def default_url() -> str:
    """``sqlite:///<home>/memory.db`` (see :func:`default_home`); creates the folder."""
    home = default_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(home / 'memory.db').resolve()}"


def normalize_url(url: str | None) -> URL:
    """Parse ``url`` (None: :func:`default_url`) and check it names a supported backend.

    ``postgresql://`` and ``postgres://`` select the psycopg 3 driver.  Raises ConfigError for anything else
    than SQLite and Postgres, and for a bare path (the message gives the ``sqlite:///`` URL to use).
    """
    text = default_url() if url is None else url.strip()
    if "://" not in text:
        raise ConfigError(
            f"{text!r} is not a database URL",
            hint=f"for a SQLite file use sqlite:///{Path(text).expanduser().resolve()}; "
            "for Postgres use postgresql+psycopg://user@host:5432/dbname",
        )
    if text.startswith("postgres://"):
        text = "postgresql://" + text.removeprefix("postgres://")
    try:
        parsed = make_url(text)
    except ArgumentError:
        # The text may hold a password (scheme://user:secret@host): the message shows it masked.
        shown = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", text)
        raise ConfigError(
            f"cannot parse database URL {shown!r}",
            hint="use sqlite:///path/to/file.db or postgresql+psycopg://user:password@host:port/database",
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgresql" and driver in ("", "psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        return parsed
    raise ConfigError(
        f"unsupported database URL scheme {parsed.drivername!r}",
        hint="use sqlite:///path/to/memory.db, sqlite:// (in memory) or postgresql+psycopg://user@host/dbname",
    )


def is_memory_sqlite(url: URL) -> bool:
    """True for an in-memory SQLite URL (``sqlite://`` or ``sqlite:///:memory:``)."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def default_image_dir(url: URL) -> Path:
    """Where images go when the caller passes no ``image_dir``.

    ``images/`` beside a SQLite file, else ``<home>/images`` (see :func:`default_home`).
    """
    if url.get_backend_name() == "sqlite" and not is_memory_sqlite(url) and url.database:
        return Path(url.database).expanduser().resolve().parent / "images"
    return default_home() / "images"


def make_engine(url: URL, *, echo: bool = False) -> Engine:
    """An engine for ``url`` (from :func:`normalize_url`), with pragmas and BEGIN handling on SQLite.

    A SQLite file's folder is created if missing.  In-memory SQLite uses one shared connection
    (``StaticPool``), so the caller must serialise access to it (RegionMemory does, with a lock).
    """
    if url.get_backend_name() == "postgresql":
        try:
            return create_engine(url, echo=echo, pool_pre_ping=True, connect_args={"connect_timeout": 10})
        except ModuleNotFoundError as exc:
            raise DependencyMissingError(
                f"the Postgres driver is not installed ({exc.name})", hint="pip install 'regionreasoner[postgres]'"
            ) from exc
    kwargs: dict[str, Any] = {"echo": echo}
    if is_memory_sqlite(url):
        kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(url.database or "").expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        kwargs.update(pool_size=8, max_overflow=24, connect_args={"check_same_thread": False})
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def connect(engine: Engine, begin: Begin) -> Connection:
    """A connection whose next transaction starts the ``begin`` way on SQLite (see :class:`Begin`)."""
    conn = engine.connect()
    return conn.execution_options(**{_BEGIN_OPTION: begin.value})


def tune_sqlite(dbapi_connection: sqlite3.Connection) -> str:
    """Give a raw sqlite3 connection the memory's settings: busy_timeout, WAL and ``synchronous=NORMAL``.

    WAL with ``synchronous=NORMAL`` commits without an fsync per transaction (the WAL is synced at checkpoints):
    a committed transaction survives the process being killed; only an OS crash or power loss can lose the last
    ones.  The turn checkpointer uses it too (a rollback-journal commit with fsync costs milliseconds).  Returns the
    journal mode in effect.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = _ensure_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()
    return mode


def _sqlite_on_connect(dbapi_connection: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
    # Take transaction control away from the driver (SQLAlchemy's documented SQLite recipe); we emit BEGIN.
    dbapi_connection.isolation_level = None
    mode = tune_sqlite(dbapi_connection)
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()
    log.debug("sqlite connection opened (journal_mode=%s)", mode)


def _ensure_wal(cursor: sqlite3.Cursor) -> str:
    """Switch a database to WAL (a persistent setting), waiting out concurrent first connections.

    The switch needs the database to itself and SQLite reports "database is locked" at once, without its busy
    handler, when another connection opens the same fresh file at that moment (seen with four threads upgrading a
    new database).  It is therefore retried for up to the busy timeout; a database already in WAL is left alone.
    """
    row = cursor.execute("PRAGMA journal_mode").fetchone()
    if row and str(row[0]).lower() == "wal":
        return "wal"
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            row = cursor.execute("PRAGMA journal_mode = WAL").fetchone()
            return str(row[0]) if row else "unknown"
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _sqlite_on_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(_BEGIN_OPTION, Begin.DEFERRED.value)
    if mode == Begin.IMMEDIATE.value:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif mode == Begin.DEFERRED.value:
        conn.exec_driver_sql("BEGIN")


def storage_error(exc: SQLAlchemyError, url: URL) -> StorageError:
    """Wrap a database failure into a StorageError whose hint names the likely fix."""
    where = url.render_as_string(hide_password=True)
    orig = getattr(exc, "orig", None)
    lines = str(orig if orig is not None else exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    low = text.lower()
    if "database is locked" in low or "database table is locked" in low:
        hint = (
            f"another connection held the write lock for more than {BUSY_TIMEOUT_MS // 1000} s; "
            "retry, or keep write transactions short"
        )
    elif "no such table" in low or ("relation" in low and "does not exist" in low):
        hint = f"the memory schema is missing: run `regionreasoner db upgrade --url {where}` or open with migrate=True"
    elif "unable to open database file" in low:
        hint = "the SQLite file cannot be opened: check that its folder exists and is writable"
    elif any(s in low for s in ("connection refused", "could not connect", "connection failed", "timeout expired")):
        hint = "start the database server, or fix the host and port in the URL"
    elif "password authentication failed" in low or ("role" in low and "does not exist" in low):
        hint = "fix the user name or password in the URL"
    elif "database" in low and "does not exist" in low:
        hint = "create the database first (createdb NAME), or fix its name in the URL"
    else:
        hint = "check the database URL and that the server is running"
    return StorageError(f"database error on {where}: {text}", hint=hint)


def sqlite_path_problem(url: URL) -> str | None:
    """Why a SQLite file URL cannot be opened as a memory (its path is a folder, or lies under a file), or None.

    Checks only; creates nothing.  Non-SQLite and in-memory URLs have no such problem.
    """
    if url.get_backend_name() != "sqlite" or is_memory_sqlite(url) or not url.database:
        return None
    path = Path(url.database).expanduser()
    if path.is_dir():
        return f"{path} is a folder"
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else f"{path} lies under the file {parent}"
    return None
