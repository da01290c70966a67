"""The SQL region memory: dialogues, image versions, turns, regions R1, R2, ... and citations.

``RegionMemory(url)`` opens SQLite (default: a file in the data folder, see :func:`default_url`) or Postgres
(``postgresql+psycopg://...``), migrates the schema with Alembic, and stores each turn with its new regions and
citations in one transaction.  Images live in a content-addressed :class:`ImageStore` beside the database.
``upgrade(url)`` is what ``regionreasoner db upgrade`` runs.  Nothing here imports torch; SQLAlchemy is imported
when one of the names below is first used, and Alembic only when a migration runs.  See docs/memory.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regionreasoner.memory.blobs import ImageStore
    from regionreasoner.memory.engine import default_url
    from regionreasoner.memory.migrate import current, upgrade
    from regionreasoner.memory.store import RegionMemory

__all__ = ["ImageStore", "RegionMemory", "current", "default_url", "upgrade"]

_LAZY = {
    "ImageStore": "regionreasoner.memory.blobs",
    "RegionMemory": "regionreasoner.memory.store",
    "current": "regionreasoner.memory.migrate",
    "default_url": "regionreasoner.memory.engine",
    "upgrade": "regionreasoner.memory.migrate",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
