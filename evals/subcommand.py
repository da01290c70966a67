"""What a ``regionreasoner-eval`` subcommand is, under the name the evals modules import it by.

It is :class:`regionreasoner.agent.cli_commands.Subcommand`: one shape for every console script of subcommands.
"""

from __future__ import annotations

from regionreasoner.agent.cli_commands import Subcommand

__all__ = ["Subcommand"]
