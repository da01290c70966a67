"""The agent: the LangGraph turn machine, the Python API, tracing, rendering and the ``regionreasoner`` CLI.

``RegionAgent`` is loaded on first access, so ``import regionreasoner.agent`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regionreasoner.agent.api import DialogueSession, RegionAgent, StreamEvent
    from regionreasoner.agent.context import Context

__all__ = ["Context", "DialogueSession", "RegionAgent", "StreamEvent"]


def __getattr__(name: str) -> Any:
    if name in ("RegionAgent", "DialogueSession", "StreamEvent"):
        from regionreasoner.agent import api

        return getattr(api, name)
    if name == "Context":
        from regionreasoner.agent.context import Context

        return Context
    raise AttributeError(f"module 'regionreasoner.agent' has no attribute {name!r}")
