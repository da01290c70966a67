"""What a ``regionreasoner-train`` subcommand is, in a module of its own.

:mod:`~regionreasoner.trainers.cli` (the parser and registry) and the modules that define subcommands
(``trainers/cli_data.py``, later ``cli_sft.py``, ``cli_grpo.py``, ...) import it, so neither imports the other back.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Subcommand"]


@dataclass(frozen=True)
class Subcommand:
    """A subcommand: its help line, a function adding its arguments, and a function running it (exit code).

    ``run`` reports a user's mistake by raising a :class:`~regionreasoner.core.errors.RegionReasonerError`: the
    command prints it as one line and exits 2 (:func:`regionreasoner.agent.cli_args.run_command`).  Arguments use the
    checked types of :mod:`regionreasoner.agent.cli_args`, so bad paths and numbers fail before anything runs, and
    ``run`` imports what it needs inside the function, so ``--help`` stays fast.
    """

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
