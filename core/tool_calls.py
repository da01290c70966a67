"""Tool calls written in ``<think>``: ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``.

:func:`parse_tool_call` reads one and raises only :class:`~regionreasoner.core.errors.ToolError`, whose message is
the observation sent back to the policy: a bad call is a model-caused failure, never a crash.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from regionreasoner.core.answer import MODEL_JSON, brief_json, is_text
from regionreasoner.core.errors import ToolError

__all__ = ["MAX_TOOL_CALL_DEPTH", "ToolCall", "parse_tool_call"]

MAX_TOOL_CALL_DEPTH = 32
"""A tool call's JSON may nest lists and objects this deep (``{"arguments": {"boxes": [[...]]}}`` is 4); deeper is
an error observation, so no tool and no message formatting ever recurses through a model-made structure."""


@dataclass(frozen=True)
class ToolCall:
    """A tool call written in ``<think>`` as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``.

    ``arguments`` holds JSON values (str, int, float, bool, None, lists, dicts), nested at most
    :data:`MAX_TOOL_CALL_DEPTH` deep; the tool checks their names and types (:meth:`Tool.__call__`).
    """

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


_CALL_FORM = 'write <tool_call>{"name": "<tool>", "arguments": {...}}</tool_call>'


def _json_defect(value: Any, limit: int) -> str | None:
    """What makes decoded JSON unusable, or None.

    Lists and dicts nested more than ``limit`` levels, or a string (key or value) that is not text.  Iterative, so
    no recursion limit applies.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str) and not is_text(item):
            return "has a string with a lone surrogate escape (such as \\ud800), which is not text"
        if isinstance(item, (list, dict)):
            if depth > limit:
                return f"is nested too deeply (at most {limit} levels)"
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return None


def parse_tool_call(text: str) -> ToolCall:
    """Read the JSON inside ``<tool_call>...</tool_call>`` (surrounding blanks ignored).

    ``"arguments"`` may be absent or ``null`` (no arguments); other keys are ignored.  Raises :class:`ToolError`,
    whose message is the observation to send back to the policy, for any text that is not such a call (invalid
    JSON, a call nested deeper than :data:`MAX_TOOL_CALL_DEPTH`, a string with a lone surrogate escape, no string
    ``name``, ``arguments`` that is not an object); never any other exception.

    >>> parse_tool_call('{"name": "zoom", "arguments": {"box": [1, 2, 3, 4]}}')
    ToolCall(name='zoom', arguments={'box': [1, 2, 3, 4]})
    """
    try:
        data = MODEL_JSON.decode(text.strip())
    except json.JSONDecodeError as exc:
        raise ToolError(f"the tool call is not JSON: {exc.msg} at char {exc.pos}", hint=_CALL_FORM) from None
    except RecursionError:  # json's scanner hit the interpreter's recursion limit
        raise ToolError("the tool call is nested too deeply", hint=_CALL_FORM) from None
    # WHY: the arguments reach tools and their text comes back into the turn: a structure deep enough to break a
    # recursive repr, or a lone surrogate that the database cannot encode, would crash the turn after the call.
    if (defect := _json_defect(data, MAX_TOOL_CALL_DEPTH)) is not None:
        raise ToolError(f"the tool call {defect}", hint=_CALL_FORM)
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ToolError('a tool call is {"name": ..., "arguments": {...}}')
    name: str = data["name"]
    arguments = data.get("arguments")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise ToolError(
            f"the arguments of tool {brief_json(name)} must be a JSON object, not {brief_json(arguments)}",
            hint='write "arguments": {"<name>": <value>, ...}',
        )
    return ToolCall(name=name, arguments=arguments)
