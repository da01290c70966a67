"""Tiny random NeoBabel generators for the generation tests, built offline once per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def tiny_generator_path(model_cache: Path) -> Path:
    """A tiny random generator folder (tiny Gemma-2 + tiny MAGVIT-v2 + offline tokenizer; 32² px, 64 codes)."""
    from regionreasoner.tools.generate.generator import build_tiny_generator

    return build_tiny_generator(model_cache / "tiny-neobabel", seed=0)


@pytest.fixture(scope="session")
def tiny_generator(tiny_generator_path: Path) -> Any:
    """The tiny generator, loaded on CPU in float32 (shared: tests must not change it)."""
    from regionreasoner.tools.generate.generator import Generator

    return Generator.from_pretrained(tiny_generator_path, device="cpu")
