"""regionreasoner-train: build training data (data), train (sft, grpo), plot a run (plot).

Subcommands live in the :data:`SUBCOMMANDS` dict (name -> :class:`~regionreasoner.trainers.subcommand.Subcommand`);
each is defined in a ``trainers/cli_<name>.py`` module and added here or with :func:`register`.  Importing this
module is light: subcommands import their heavy modules when they run.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from regionreasoner.agent.cli_args import OneLineParser, run_command
from regionreasoner.core.errors import RegionReasonerError
from regionreasoner.trainers.cli_data import DATA
from regionreasoner.trainers.cli_train import GRPO, PLOT, SFT
from regionreasoner.trainers.subcommand import Subcommand

__all__ = ["SUBCOMMANDS", "Subcommand", "build_parser", "main", "register"]

SUBCOMMANDS: dict[str, Subcommand] = {"data": DATA, "sft": SFT, "grpo": GRPO, "plot": PLOT}
"""Subcommands by name; more are added with :func:`register`."""


def register(name: str, subcommand: Subcommand) -> None:
    """Add a subcommand under ``name``; a different one already registered under that name is an error."""
    if name in SUBCOMMANDS and SUBCOMMANDS[name] is not subcommand:
        raise RegionReasonerError(f"subcommand {name!r} is already registered: pick another name")
    SUBCOMMANDS[name] = subcommand


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``regionreasoner-train`` with every registered subcommand."""
    parser = OneLineParser(prog="regionreasoner-train", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, subcommand in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=subcommand.help, description=subcommand.help)
        subcommand.add_arguments(p)
        p.set_defaults(run=subcommand.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``regionreasoner-train``; exit code 2 (one line) for a user's mistake, 1 for a bug."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0), or a usage error (2) whose one line is printed
        return int(exc.code or 0)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    return run_command("regionreasoner-train", args.run, args)


if __name__ == "__main__":
    sys.exit(main())
