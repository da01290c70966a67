"""The database behind a RegionMemory: read connections, retried write transactions, and the schema check.

    db = Database(url, echo=False)
    with db.read() as conn:                 # one snapshot on SQLite (BEGIN), Begin.NONE for a single statement
        ...
    db.write(lambda conn: ...)              # BEGIN IMMEDIATE on SQLite; retried when writers collide

Every SQLAlchemy failure leaves as a typed :class:`~regionreasoner.core.errors.StorageError` whose message names
the fix.  Concurrency rules: docs/memory.md ("Concurrency").
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from sqlalchemy import URL, Connection
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from regionreasoner.core.errors import StorageError
from regionreasoner.memory.engine import Begin, connect, is_memory_sqlite, make_engine, storage_error
from regionreasoner.memory.migrate import HEAD_REVISION, current_revision, upgrade_engine

__all__ = ["MAX_ATTEMPTS", "Database", "is_collision"]

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_ATTEMPTS = 5
"""How often a write transaction is tried when it collides with a concurrent writer (unique violation,
Postgres serialization failure or deadlock)."""


class Database:
    """One engine on ``url`` (normalised), shared by threads; in-memory SQLite is one connection behind a lock.

    ``migrate``: bring the schema to the newest revision now; with False, a database that is not at the newest
    revision raises StorageError naming ``regionreasoner db upgrade``.  The engine is disposed when that fails.
    """

    def __init__(self, url: URL, *, migrate: bool = True, echo: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, echo=echo)
        # In-memory SQLite is one shared connection: serialise every use of it.
        self._lock: threading.RLock | None = threading.RLock() if is_memory_sqlite(url) else None
        self._closed = False
        try:
            if migrate:
                upgrade_engine(self.engine)
            else:
                self._check_schema()
        except BaseException:
            self.engine.dispose()
            raise

    def close(self) -> None:
        """Close every connection; reads and writes raise StorageError afterwards."""
        self._closed = True
        self.engine.dispose()

    @contextlib.contextmanager
    def read(self, begin: Begin = Begin.DEFERRED) -> Iterator[Connection]:
        """A read connection; ``Begin.DEFERRED`` gives several statements one snapshot on SQLite."""
        with self._guard():
            try:
                with connect(self.engine, begin) as conn:
                    yield conn
            except SQLAlchemyError as exc:
                raise storage_error(exc, self.url) from exc

    def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one write transaction, retried when it collides with a concurrent writer."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with self._guard(), connect(self.engine, Begin.IMMEDIATE) as conn, conn.begin():
                    return fn(conn)
            except (IntegrityError, OperationalError) as exc:
                if not is_collision(exc):
                    raise storage_error(exc, self.url) from exc
                if attempt == MAX_ATTEMPTS:
                    raise StorageError(
                        f"gave up after {MAX_ATTEMPTS} attempts: concurrent writers kept taking "
                        f"the same ids ({exc.orig})",
                        hint="retry the call; if it keeps failing, report it with the database URL and versions",
                    ) from exc
                log.info("write collided with a concurrent writer (attempt %d): %s; retrying", attempt, exc.orig)
                time.sleep(random.uniform(0.0, 0.005 * 2**attempt))
            except SQLAlchemyError as exc:
                raise storage_error(exc, self.url) from exc
        raise AssertionError("unreachable")

    def _guard(self) -> contextlib.AbstractContextManager[object]:
        if self._closed:
            raise StorageError("this RegionMemory is closed", hint="open a new RegionMemory(url)")
        return self._lock if self._lock is not None else contextlib.nullcontext()

    def _check_schema(self) -> None:
        with self.read() as conn:
            now = current_revision(conn)
        if now != HEAD_REVISION:
            where = self.url.render_as_string(hide_password=True)
            raise StorageError(
                f"the database {where} is at schema revision {now or '(none)'}, this version needs {HEAD_REVISION}",
                hint=f"run `regionreasoner db upgrade --url {where}`, or open it with migrate=True",
            )


def is_collision(exc: IntegrityError | OperationalError) -> bool:
    """True for a unique violation or a Postgres serialization failure / deadlock: worth retrying."""
    code = getattr(exc.orig, "sqlstate", None)
    if code is not None:
        return code in ("23505", "40001", "40P01")
    return isinstance(exc, IntegrityError) and "UNIQUE constraint failed" in str(exc.orig)
