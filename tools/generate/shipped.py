"""The generator found by name: ``"world"``, trained here by ``make generator`` and shipped in the package.

``world`` is a tiny NeoBabel + MAGVIT-v2 trained from scratch on the synthetic shapes world (docs/generation.md,
"The generator trained here"); its folder is package data in ``tools/generate/weights/world/``.  It is
:data:`DEFAULT_GENERATOR`: what ``regionreasoner generate`` / ``inpaint`` and the demo use when no generator is
named, and what ``generator="world"`` (or ``--generator world``) gives an agent.  Importing this module loads no
torch.
"""

from __future__ import annotations

from pathlib import Path

from regionreasoner.core.errors import ModelLoadError

__all__ = ["DEFAULT_GENERATOR", "WORLD_GENERATOR", "resolve_generator", "world_generator_path"]

WORLD_GENERATOR = "world"
"""The name of the shipped generator."""

DEFAULT_GENERATOR = WORLD_GENERATOR
"""The generator used when none is named (the CLI's generate and inpaint, the demo)."""

WEIGHTS = Path(__file__).with_name("weights")
"""Folder of the shipped generators (package data)."""


def world_generator_path() -> Path:
    """The shipped generator's folder; ModelLoadError (naming the fix) when this install lacks it."""
    folder = WEIGHTS / WORLD_GENERATOR
    if not (folder / "generator.json").is_file() or not (folder / "config.json").is_file():
        raise ModelLoadError(
            f"the shipped generator is missing from {folder}",
            hint="reinstall regionreasoner, or rebuild it with `make generator`, or pass a generator folder",
        )
    return folder


def resolve_generator(generator: str | Path) -> Path:
    """The folder ``generator`` names: ``"world"`` becomes the shipped one, anything else is a path (``~`` expanded)."""
    if str(generator) == WORLD_GENERATOR:
        return world_generator_path()
    return Path(generator).expanduser()
