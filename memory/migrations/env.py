"""Alembic environment of the region memory.

Run programmatically (:func:`regionreasoner.memory.migrate.upgrade_engine` passes an open connection in
``config.attributes["connection"]``, inside a transaction it owns) or by the ``alembic`` command with
``-x url=...`` (default: the default SQLite file).  SQLite gets ``render_as_batch`` so that later revisions can
alter tables; Postgres takes a transaction-scoped advisory lock so that concurrent upgrades run one at a time.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from regionreasoner.memory.engine import Begin, connect, make_engine, normalize_url
from regionreasoner.memory.migrate import VERSION_TABLE
from regionreasoner.memory.models import Base

_ADVISORY_LOCK = 0x5252_4D45  # "RRME": one lock id for memory migrations


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK})
        context.run_migrations()


def _url() -> str | None:
    return context.get_x_argument(as_dictionary=True).get("url") or context.config.get_main_option("sqlalchemy.url")


def run_offline() -> None:
    """Emit SQL instead of running it (``alembic upgrade head --sql``)."""
    context.configure(
        url=normalize_url(_url()),
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run the migrations on the connection passed in, or on a new one to the URL."""
    given = context.config.attributes.get("connection")
    if isinstance(given, Connection):
        _run(given)
        return
    engine = make_engine(normalize_url(_url()))
    try:
        with connect(engine, Begin.IMMEDIATE) as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
