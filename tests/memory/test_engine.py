"""URLs, the default location, SQLite pragmas, database failures as StorageError, and the image store."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.exc import OperationalError

from regionreasoner.core.errors import ConfigError, ImageNotFoundError, StorageError
from regionreasoner.core.images import load_image
from regionreasoner.core.types import TurnDraft
from regionreasoner.memory import ImageStore, RegionMemory, default_url
from regionreasoner.memory import engine as engine_module
from regionreasoner.memory.engine import Begin, connect, default_home, make_engine, normalize_url, storage_error


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("REGIONREASONER_HOME", str(tmp_path / "rr-home"))
    return tmp_path / "rr-home"


def test_default_location_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REGIONREASONER_HOME", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert default_home() == tmp_path / "user" / ".local" / "share" / "regionreasoner"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_home() == tmp_path / "xdg" / "regionreasoner"
    monkeypatch.setenv("REGIONREASONER_HOME", str(tmp_path / "explicit"))
    assert default_home() == tmp_path / "explicit"


def test_default_url_creates_the_folder(home: Path) -> None:
    assert not home.exists()
    assert default_url() == f"sqlite:///{home.resolve() / 'memory.db'}"
    assert home.is_dir()


def test_default_memory_lives_in_the_home(
    home: Path, make_picture: Callable[..., np.ndarray], make_draft: Callable[..., TurnDraft]
) -> None:
    with RegionMemory() as memory:
        image = memory.put_image(make_picture()).hash
        memory.append_turn(memory.create_dialogue(image, id="d").id, make_draft(image))
    assert (home / "memory.db").is_file()
    assert (home / "images" / image[:2] / f"{image}.png").is_file()
    with RegionMemory(f"sqlite:///{home / 'memory.db'}") as again:
        assert again.get_region("d", "R1").image == image


def test_in_memory_sqlite_keeps_images_in_the_home(home: Path, make_picture: Callable[..., np.ndarray]) -> None:
    with RegionMemory("sqlite://") as memory:
        assert memory.images.root == home / "images"
        image = memory.put_image(make_picture()).hash
        assert memory.create_dialogue(image, id="x").id == "x"
        assert memory.list_dialogues()[0].id == "x"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:pw@db.example/rr", "postgresql+psycopg://u:***@db.example/rr"),
        ("postgresql://u@127.0.0.1:5432/rr", "postgresql+psycopg://u@127.0.0.1:5432/rr"),
        ("postgresql+psycopg://u@h/rr", "postgresql+psycopg://u@h/rr"),
        ("sqlite:///rel/memory.db", "sqlite:///rel/memory.db"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url).render_as_string(hide_password=True) == expected


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("memory.db", "for a SQLite file use sqlite:///"),
        ("mysql://u@h/db", "unsupported database URL scheme 'mysql'"),
        ("postgresql+psycopg2://u@h/db", "unsupported"),
    ],
)
def test_bad_urls(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        RegionMemory(url)


def test_sqlite_pragmas(sqlite_url: str) -> None:
    engine = make_engine(normalize_url(sqlite_url))
    try:
        with connect(engine, Begin.DEFERRED) as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout", "synchronous")
            }
    finally:
        engine.dispose()
    assert pragmas == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 30_000, "synchronous": 1}


def test_unreachable_postgres_is_a_storage_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="start the database server"):
        RegionMemory("postgresql+psycopg://postgres@127.0.0.1:9/nothing", image_dir=tmp_path)


def test_a_locked_database_is_a_storage_error(
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_picture: Callable[..., np.ndarray],
    make_draft: Callable[..., TurnDraft],
) -> None:
    monkeypatch.setattr(engine_module, "BUSY_TIMEOUT_MS", 200)
    with RegionMemory(sqlite_url, image_dir=tmp_path) as memory:
        image = memory.put_image(make_picture()).hash
        memory.create_dialogue(image, id="d")
        holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            with pytest.raises(StorageError, match="held the write lock") as info:
                memory.append_turn("d", make_draft(image))
            assert "database is locked" in str(info.value)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert memory.append_turn("d", make_draft(image)).index == 0


def test_missing_tables_name_the_upgrade_command() -> None:
    exc = OperationalError("SELECT 1", {}, Exception("no such table: regions"))
    error = storage_error(exc, normalize_url("sqlite:////tmp/x.db"))
    assert "regionreasoner db upgrade --url sqlite:////tmp/x.db" in str(error)


def test_a_closed_memory_refuses_work(sqlite_url: str, tmp_path: Path) -> None:
    memory = RegionMemory(sqlite_url, image_dir=tmp_path)
    memory.close()
    with pytest.raises(StorageError, match="closed"):
        memory.list_dialogues()


def test_image_store_writes_once_by_hash(tmp_path: Path, make_picture: Callable[..., np.ndarray]) -> None:
    store = ImageStore(tmp_path / "images")
    loaded = store.put(make_picture())
    path = store.path(loaded.hash)
    assert path == tmp_path / "images" / loaded.hash[:2] / f"{loaded.hash}.png"
    assert loaded.hash in store and "f" * 64 not in store and "junk" not in store
    stamp = path.stat().st_mtime_ns
    assert store.put(make_picture()).hash == loaded.hash
    assert path.stat().st_mtime_ns == stamp
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no temporary file may be left behind"
    assert store.get(loaded.hash).hash == loaded.hash


def test_image_store_detects_damage_and_absence(tmp_path: Path, make_picture: Callable[..., np.ndarray]) -> None:
    store = ImageStore(tmp_path)
    loaded = store.put(make_picture())
    load_image(make_picture(seed=7)).image.save(store.path(loaded.hash), format="PNG")
    with pytest.raises(StorageError, match="is damaged"):
        store.get(loaded.hash)
    with pytest.raises(ImageNotFoundError, match="no image file"):
        store.get("a" * 64)


def test_image_store_unwritable_root(tmp_path: Path, make_picture: Callable[..., np.ndarray]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError, match="pass image_dir= a writable folder"):
        ImageStore(blocker).put(make_picture())
