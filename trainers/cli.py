"""regionreasoner-train: build training data (data), train (sft, grpo), plot a run (plot), the embedded model.

Subcommands live in the :data:`SUBCOMMANDS` dict (name -> :class:`~regionreasoner.agent.cli_commands.Subcommand`);
each is defined in a ``trainers/cli_<name>.py`` module and added here or with :func:`register`.  Importing this
module is light: subcommands import their heavy modules when they run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from regionreasoner.agent.cli_commands import Subcommand, build_subcommand_parser, run_subcommands
from regionreasoner.agent.cli_commands import register as _register
from regionreasoner.trainers.cli_data import DATA
from regionreasoner.trainers.cli_embedded import EMBEDDED_BASE, EMBEDDED_EXPORT, EMBEDDED_VISION
from regionreasoner.trainers.cli_train import GRPO, PLOT, SFT
from regionreasoner.trainers.generator_cli import GENERATOR

__all__ = ["SUBCOMMANDS", "Subcommand", "build_parser", "main", "register"]

SUBCOMMANDS: dict[str, Subcommand] = {
    "data": DATA,
    "sft": SFT,
    "grpo": GRPO,
    "plot": PLOT,
    "embedded-base": EMBEDDED_BASE,
    "embedded-vision": EMBEDDED_VISION,
    "embedded-export": EMBEDDED_EXPORT,
    "generator": GENERATOR,
}
"""Subcommands by name; more are added with :func:`register`."""


def register(name: str, subcommand: Subcommand) -> None:
    """Add a subcommand under ``name``; a different one already registered under that name is an error."""
    _register(SUBCOMMANDS, name, subcommand)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``regionreasoner-train`` with every registered subcommand."""
    return build_subcommand_parser("regionreasoner-train", __doc__, SUBCOMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``regionreasoner-train``; exit code 2 (one line) for a user's mistake, 1 for a bug."""
    return run_subcommands("regionreasoner-train", __doc__, SUBCOMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
