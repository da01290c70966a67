"""Console scripts made of subcommands (``regionreasoner-eval``, ``regionreasoner-train``): one registry shape.

A :class:`Subcommand` is a help line, a function adding its arguments and a function running it; a script keeps a
``dict`` of them by name, :func:`register` adds one, and :func:`run_subcommands` parses and runs, with every user's
mistake one line and exit status 2 (:func:`~regionreasoner.agent.cli_args.run_command`).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass

from regionreasoner.agent.cli_args import OneLineParser, run_command
from regionreasoner.core.errors import RegionReasonerError

__all__ = ["Subcommand", "build_subcommand_parser", "register", "run_subcommands"]


@dataclass(frozen=True)
class Subcommand:
    """A subcommand: its help line, a function adding its arguments, and a function running it (exit code).

    ``run`` reports a user's mistake by raising a :class:`~regionreasoner.core.errors.RegionReasonerError`: the
    command prints it as one line and exits 2.  Arguments use the checked types of
    :mod:`regionreasoner.agent.cli_args`, so bad paths and numbers fail before anything runs, and ``run`` imports
    what it needs inside the function, so ``--help`` stays fast.
    """

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def register(registry: MutableMapping[str, Subcommand], name: str, subcommand: Subcommand) -> None:
    """Add ``subcommand`` under ``name``; a different one already registered under that name is an error."""
    if name in registry and registry[name] is not subcommand:
        raise RegionReasonerError(f"subcommand {name!r} is already registered: pick another name")
    registry[name] = subcommand


def build_subcommand_parser(prog: str, description: str | None, registry: Mapping[str, Subcommand]) -> OneLineParser:
    """The argument parser of ``prog`` with ``-v`` and every subcommand of ``registry``."""
    parser = OneLineParser(prog=prog, description=description)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, subcommand in registry.items():
        p = sub.add_parser(name, help=subcommand.help, description=subcommand.help)
        subcommand.add_arguments(p)
        p.set_defaults(run=subcommand.run)
    return parser


def run_subcommands(
    prog: str, description: str | None, registry: Mapping[str, Subcommand], argv: Sequence[str] | None
) -> int:
    """Parse ``argv`` and run its subcommand; the exit code: 2 (one line) for a user's mistake, 1 for a bug."""
    try:
        args = build_subcommand_parser(prog, description, registry).parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0), or a usage error (2) whose one line is printed
        return int(exc.code or 0)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    return run_command(prog, args.run, args)
