"""Shared fixtures of the evals tests: a small synthetic benchmark written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from regionreasoner.evals.synthetic import generate_benchmark


@pytest.fixture(scope="session")
def synthetic_bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of synthetic.json in a 12-image benchmark folder (seed 7, 2..6 rounds)."""
    out = tmp_path_factory.mktemp("synthetic")
    return generate_benchmark(out, 12, 7, rounds=(2, 6))
