"""Fixtures of the memory tests: one database per test, SQLite by default, Postgres behind one switch.

``memory_url`` is parametrised over both backends.  The SQLite variant is a fresh file under ``tmp_path``; the
Postgres variant (marked ``postgres``) creates a database with a unique name on the server named by
``REGIONREASONER_TEST_POSTGRES_URL`` and drops it afterwards, and is skipped, saying how to run it, when the
variable is not set.  ``make test-postgres`` starts a server and sets it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, func, select

from regionreasoner.core.types import RegionDraft, TurnDraft
from regionreasoner.memory import RegionMemory
from regionreasoner.memory.models import Base

TABLES = ("images", "dialogues", "turns", "regions", "citations", "image_versions")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file URL under tmp_path (the file does not exist yet)."""
    return f"sqlite:///{tmp_path / 'db' / 'memory.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def memory_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database URL: a SQLite file, or a new Postgres database (the ``postgres`` variant)."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def memory(memory_url: str, tmp_path: Path) -> Iterator[RegionMemory]:
    """A migrated RegionMemory on ``memory_url`` with images under tmp_path/images."""
    with RegionMemory(memory_url, image_dir=tmp_path / "images") as mem:
        yield mem


def _picture(width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


@pytest.fixture
def make_picture() -> Callable[..., np.ndarray]:
    """``make_picture(width=64, height=48, seed=0)``: a random RGB uint8 array (a distinct image per seed)."""

    def make(width: int = 64, height: int = 48, seed: int = 0) -> np.ndarray:
        return _picture(width, height, seed)

    return make


@pytest.fixture
def make_draft() -> Callable[..., TurnDraft]:
    """``make_draft(image_hash, boxes=[...], **fields)``: a TurnDraft with one region per box."""

    def make(image: str, boxes: list[tuple[float, float, float, float]] | None = None, **fields: object) -> TurnDraft:
        regions = [RegionDraft(box=b) for b in (boxes if boxes is not None else [(1.0, 2.0, 10.0, 12.0)])]
        values: dict[str, object] = {
            "question": "find the red block",
            "rendered_question": "find the red block",
            "image": image,
            "frame": "fixed:840x840",
            "regions": regions,
        }
        values.update(fields)
        return TurnDraft.model_validate(values)

    return make


@pytest.fixture
def row_counts() -> Callable[[RegionMemory], dict[str, int]]:
    """``row_counts(memory)``: rows per table, read on a separate connection, plus stored image files."""

    def count(memory: RegionMemory) -> dict[str, int]:
        engine = create_engine(memory.url)
        try:
            with engine.connect() as conn:
                counts = {
                    name: int(conn.execute(select(func.count()).select_from(Base.metadata.tables[name])).scalar_one())
                    for name in TABLES
                }
        finally:
            engine.dispose()
        root = memory.images.root
        counts["image_files"] = len(list(root.glob("*/*.png"))) if root.exists() else 0
        return counts

    return count
