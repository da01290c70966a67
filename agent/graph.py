"""The turn graph: resolve -> scene -> focus -> think (<-> tools) -> answer -> ground -> remember.

resolve -> remember directly when the turn's key is stored already (the turn is returned, nothing is generated).

``builder`` is the uncompiled graph (tests compile it with their own checkpointer; apps too), and ``graph`` is
compiled without a checkpointer for ``langgraph dev`` / LangGraph Server, which supply persistence themselves
(``langgraph.json`` points at ``./agent/graph.py:graph``).  One invocation is one turn; a dialogue is a thread.
"""

from __future__ import annotations

import logging
import os
from typing import Literal, get_args

from langgraph.graph import END, START, StateGraph

from regionreasoner.agent.context import (
    DEFAULT_MODEL,
    MODEL_ENV,
    Context,
    is_untrained,
    resources,
    untrained_warning,
)
from regionreasoner.agent.nodes import answer, ground, remember, resolve, section_node, tools
from regionreasoner.agent.state import InputState, OutputState, SectionTag, State

__all__ = ["build_graph", "builder", "graph", "warn_if_served_untrained"]

logger = logging.getLogger(__name__)

_ORDER: tuple[SectionTag, ...] = get_args(SectionTag)


def _next(state: State, after: SectionTag | None) -> SectionTag:
    start = 0 if after is None else _ORDER.index(after) + 1
    for tag in _ORDER[start:]:
        if tag in state.work.sections:
            return tag
    return "answer"


def route_first(state: State) -> SectionTag | Literal["remember"]:
    """The first section this turn writes (scene, unless the prompt template has none).

    ``remember`` when resolve found the turn's key stored already (``state.turn`` set): the stored turn is returned
    without a model call, and remember ends the turn as it ends every turn.
    """
    if state.turn is not None:
        return "remember"
    return _next(state, None)


def route_after_scene(state: State) -> SectionTag:
    """Route to focus when the question cites a region, else to think."""
    return _next(state, "scene")


def route_after_focus(state: State) -> SectionTag:
    """think, unless the template has none."""
    return _next(state, "focus")


def route_after_think(state: State) -> Literal["tools", "answer"]:
    """Route to tools when the think piece ended with a tool call, else to answer."""
    return "tools" if state.work.text.rstrip().endswith("</tool_call>") else "answer"


def build_graph() -> StateGraph[State, Context, InputState, OutputState]:
    """A fresh uncompiled turn graph."""
    b = StateGraph(State, context_schema=Context, input_schema=InputState, output_schema=OutputState)
    b.add_node("resolve", resolve)
    for tag in ("scene", "focus", "think"):
        b.add_node(tag, section_node(tag))
    b.add_node("tools", tools)
    b.add_node("answer", answer)
    b.add_node("ground", ground)
    b.add_node("remember", remember)
    # Region names are resolved before any model call; unknown names raise here.  A stored turn key goes straight
    # to remember (crash recovery: the turn is returned as stored, nothing is generated).
    b.add_edge(START, "resolve")
    b.add_conditional_edges("resolve", route_first, ["scene", "focus", "think", "answer", "remember"])
    b.add_conditional_edges("scene", route_after_scene, ["focus", "think", "answer"])
    b.add_conditional_edges("focus", route_after_focus, ["think", "answer"])
    # This creates a cycle: a tool's response goes back into the think section (bounded per turn).
    b.add_conditional_edges("think", route_after_think, ["tools", "answer"])
    b.add_edge("tools", "think")
    b.add_edge("answer", "ground")
    b.add_edge("ground", "remember")
    b.add_edge("remember", END)
    return b


builder = build_graph()
graph = builder.compile(name="regionreasoner")


def warn_if_served_untrained() -> bool:
    """Log :func:`~regionreasoner.agent.context.untrained_warning` when a served graph's default model is untrained.

    A served graph loads ``$REGIONREASONER_MODEL``, or :data:`~regionreasoner.policies.embedded.DEFAULT_MODEL` when it
    is unset; when that names untrained weights (``tiny``), saying so at start-up keeps a server from answering with
    noise silently.  Returns True when it warned.
    """
    model = os.environ.get(MODEL_ENV, DEFAULT_MODEL)
    if not is_untrained(model):
        return False
    logger.warning("%s (%s is %s)", untrained_warning(model), MODEL_ENV, "set" if MODEL_ENV in os.environ else "unset")
    return True


if __name__ != "regionreasoner.agent.graph":
    # Loaded from its file (langgraph.json: ./agent/graph.py:graph) by `langgraph dev` or LangGraph Server, not
    # imported by an app: this is a served graph's start-up.  A bad REGIONREASONER_* setting fails it here, with the
    # variable's name, instead of at the first turn.
    resources().config  # noqa: B018 - read and check the server configuration now
    warn_if_served_untrained()
