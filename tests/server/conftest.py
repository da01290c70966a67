"""Fixtures for the HTTP server tests: an app over a scripted agent, in-process or under uvicorn in a thread."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))  # test modules import server_helpers by name (importlib mode)

from server_helpers import LiveServer, Made


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Callable[..., Made]]:
    made: list[Made] = []

    def make(**settings: Any) -> Made:
        m = Made(tmp_path / f"app{len(made)}", **settings)
        made.append(m)
        return m

    (tmp_path / "app0").mkdir()
    for i in range(1, 4):
        (tmp_path / f"app{i}").mkdir()
    yield make
    for m in made:
        m.agent.close()


@pytest.fixture
def client(make_app: Callable[..., Made]) -> Iterator[TestClient]:
    made = make_app()
    with TestClient(made.app, raise_server_exceptions=False) as c:
        c.made = made  # type: ignore[attr-defined]
        yield c


@pytest.fixture
def live() -> Callable[[Any], LiveServer]:
    """The LiveServer class: a test enters it with an app and reads its url."""
    return LiveServer
