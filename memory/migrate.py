"""Schema migrations of the region memory, run programmatically through Alembic.

``upgrade(url)`` brings a database to the newest schema and returns the revision now applied; ``current(url)``
says which revision a database is at.  ``regionreasoner db upgrade [--url URL]`` calls :func:`upgrade`.
Alembic is configured in code (the scripts are found inside the installed package), so this works from a wheel
and needs no ``alembic.ini``; ``memory/alembic.ini`` exists only for people who run the ``alembic`` command.
Alembic is imported only when a migration actually has to run.
"""

from __future__ import annotations

import logging
import threading
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, String, column, inspect, select, table
from sqlalchemy.exc import SQLAlchemyError

from regionreasoner.core.errors import StorageError
from regionreasoner.memory.engine import Begin, connect, is_memory_sqlite, make_engine, normalize_url, storage_error

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "HEAD_REVISION",
    "VERSION_TABLE",
    "alembic_config",
    "current",
    "current_revision",
    "upgrade",
    "upgrade_engine",
]

log = logging.getLogger(__name__)

HEAD_REVISION = "0003"
"""The newest revision in ``migrations/versions`` (a test checks it against Alembic's own view)."""

VERSION_TABLE = "memory_alembic_version"
"""Alembic's bookkeeping table; named apart from ``alembic_version`` so a shared Postgres database can also hold
another application's migrations."""

_ALEMBIC_LOCK = threading.Lock()
"""Alembic keeps the running migration context in module globals: one migration at a time per process.
Across processes, BEGIN IMMEDIATE (SQLite) or an advisory lock (Postgres, in env.py) serialises them."""

_version = table(VERSION_TABLE, column("version_num", String(32)))


def alembic_config() -> Config:
    """An Alembic configuration whose scripts are the migrations shipped in this package."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(files("regionreasoner.memory").joinpath("migrations")))
    return config


def upgrade(url: str | None = None, revision: str = "head") -> str:
    """Migrate the database at ``url`` to ``revision``; returns the revision now applied.

    ``url`` None means the default SQLite file.  Idempotent: a database already there is left as is.
    """
    engine = make_engine(normalize_url(url))
    try:
        return upgrade_engine(engine, revision)
    finally:
        engine.dispose()


def current(url: str | None = None) -> str | None:
    """The revision the database at ``url`` is at, or None for a database without the memory schema.

    A SQLite file that does not exist is reported as None and not created.
    """
    parsed = normalize_url(url)
    sqlite_file = parsed.get_backend_name() == "sqlite" and not is_memory_sqlite(parsed)
    if sqlite_file and not Path(parsed.database or "").expanduser().is_file():
        return None
    engine = make_engine(parsed)
    try:
        with connect(engine, Begin.DEFERRED) as conn:
            return current_revision(conn)
    except SQLAlchemyError as exc:
        raise storage_error(exc, engine.url) from exc
    finally:
        engine.dispose()


def upgrade_engine(engine: Engine, revision: str = "head") -> str:
    """Migrate the database behind ``engine`` to ``revision`` (cheap when it is already at the head)."""
    try:
        if revision in ("head", HEAD_REVISION):
            with connect(engine, Begin.DEFERRED) as conn:
                now = current_revision(conn)
            if now == HEAD_REVISION:
                return now
        from alembic import command
        from alembic.util import CommandError

        config = alembic_config()
        with _ALEMBIC_LOCK, connect(engine, Begin.IMMEDIATE) as conn, conn.begin():
            # One transaction: on SQLite BEGIN IMMEDIATE (and on Postgres an advisory lock taken in env.py)
            # makes concurrent upgrades queue, and the second one finds the schema already there.
            config.attributes["connection"] = conn
            try:
                command.upgrade(config, revision)
            except CommandError as exc:
                raise StorageError(
                    f"cannot migrate the memory schema to {revision!r}: {exc}",
                    hint="a database written by a newer regionreasoner needs that version; "
                    f"this one knows revisions up to {HEAD_REVISION}",
                ) from exc
        with connect(engine, Begin.DEFERRED) as conn:
            applied = current_revision(conn)
    except SQLAlchemyError as exc:
        raise storage_error(exc, engine.url) from exc
    log.info("memory schema at revision %s (%s)", applied, engine.url.render_as_string(hide_password=True))
    return applied or "base"


def current_revision(conn: Connection) -> str | None:
    """The revision recorded in the database behind ``conn`` (None when it has no memory schema)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(select(_version.c.version_num)).scalar_one_or_none()
