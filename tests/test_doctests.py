"""The examples in docstrings run (they are documentation that cannot drift)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(
    "regionreasoner." + ".".join(path.relative_to(ROOT).with_suffix("").parts)
    for folder in ("core", "memory", "policies", "tools", "agent", "trainers", "evals")
    for path in (ROOT / folder).rglob("*.py")
    if ">>>" in path.read_text()
)


def test_there_are_doctests() -> None:
    assert len(MODULES) >= 3


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
