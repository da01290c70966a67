"""What a ``regionreasoner-eval`` subcommand is, in a module of its own.

Both :mod:`~regionreasoner.evals.cli` (the parser) and the modules that define subcommands
(:mod:`~regionreasoner.evals.cli_run`) import it, so neither has to import the other back.
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
    command prints it as one line and exits 2 (``regionreasoner.agent.cli_args.run_command``).  Arguments use the
    checked types of :mod:`regionreasoner.agent.cli_args` so that bad paths and numbers fail before anything runs.
    """

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
