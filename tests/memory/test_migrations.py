"""Alembic migrations: they create exactly the ORM schema, are idempotent, and report their revision."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect, text

from regionreasoner.core.errors import StorageError
from regionreasoner.memory import RegionMemory, current, upgrade
from regionreasoner.memory.migrate import HEAD_REVISION, VERSION_TABLE, alembic_config
from regionreasoner.memory.models import Base

MEMORY_DIR = Path(__file__).resolve().parents[2] / "memory"


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_creates_the_schema_and_is_idempotent(memory_url: str) -> None:
    assert current(memory_url) is None
    if memory_url.startswith("sqlite:///"):
        assert not Path(memory_url.removeprefix("sqlite:///")).exists(), "current() must not create the file"
    else:
        assert _tables(memory_url) == set()
    assert upgrade(memory_url) == HEAD_REVISION
    assert _tables(memory_url) == {*Base.metadata.tables, VERSION_TABLE}
    assert current(memory_url) == HEAD_REVISION
    assert upgrade(memory_url) == HEAD_REVISION
    assert current(memory_url) == HEAD_REVISION


def test_upgrade_keeps_data(memory_url: str, tmp_path: Path, make_picture: Callable[..., np.ndarray]) -> None:
    with RegionMemory(memory_url, image_dir=tmp_path) as memory:
        image = memory.put_image(make_picture()).hash
        memory.create_dialogue(image, id="kept")
    assert upgrade(memory_url) == HEAD_REVISION
    with RegionMemory(memory_url, image_dir=tmp_path, migrate=False) as memory:
        assert memory.dialogue("kept").image == image


def test_head_revision_constant_matches_the_scripts() -> None:
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory.from_config(alembic_config())
    assert scripts.get_current_head() == HEAD_REVISION
    assert len(scripts.get_heads()) == 1


def test_orm_metadata_and_migrations_agree(memory_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    upgrade(memory_url)
    engine = create_engine(memory_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "version_table": VERSION_TABLE})
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_downgrade_to_base_and_back(memory_url: str) -> None:
    from alembic import command

    upgrade(memory_url)
    engine = create_engine(memory_url)
    try:
        with engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
    finally:
        engine.dispose()
    assert _tables(memory_url) <= {VERSION_TABLE}
    assert current(memory_url) is None
    assert upgrade(memory_url) == HEAD_REVISION


def test_concurrent_upgrades_of_a_fresh_database(memory_url: str) -> None:
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        try:
            results.append(upgrade(memory_url))
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [HEAD_REVISION] * 4


def test_migrate_false_refuses_a_database_without_the_schema(memory_url: str, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=rf"schema revision \(none\), this version needs {HEAD_REVISION}") as info:
        RegionMemory(memory_url, image_dir=tmp_path, migrate=False)
    assert "regionreasoner db upgrade" in str(info.value)


def test_a_database_from_a_newer_version_is_refused(memory_url: str, tmp_path: Path) -> None:
    upgrade(memory_url)
    engine = create_engine(memory_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    finally:
        engine.dispose()
    with pytest.raises(StorageError, match="cannot migrate the memory schema"):
        RegionMemory(memory_url, image_dir=tmp_path)
    with pytest.raises(StorageError, match="schema revision 9999"):
        RegionMemory(memory_url, image_dir=tmp_path, migrate=False)


def test_opening_an_up_to_date_database_does_not_import_alembic(sqlite_url: str, tmp_path: Path) -> None:
    upgrade(sqlite_url)
    code = (
        "import sys\n"
        "from regionreasoner.memory import RegionMemory\n"
        f"RegionMemory({sqlite_url!r}, image_dir={str(tmp_path)!r}).close()\n"
        "assert 'alembic' not in sys.modules, 'alembic was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_alembic_command_line_with_the_shipped_ini(sqlite_url: str) -> None:
    alembic = Path(sys.executable).with_name("alembic")
    ini = MEMORY_DIR / "alembic.ini"
    run = subprocess.run(
        [str(alembic), "-c", str(ini), "-x", f"url={sqlite_url}", "upgrade", "head"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert current(sqlite_url) == HEAD_REVISION
