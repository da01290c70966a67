"""EBNF (xgrammar dialect, also accepted by vLLM's structured outputs) for constrained turns.

Two forms of the same language (see :class:`~regionreasoner.policies.base.TurnConstraint`):

* :func:`turn_grammar`: one static grammar for a whole turn or its remainder.  It bounds every integer by the frame
  but cannot order corners (``x1 <= x2`` relates two numbers, which would need one rule per value pair); used by
  server backends that take one grammar per request.
* :func:`segment_grammar`: small grammars for the pieces of a turn (a section, or a stretch of one answer object)
  whose integer bounds depend on numbers already generated.  A token-level backend chains them
  (:mod:`regionreasoner.policies.constraints`) to get ordered corners and points inside their boxes.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence

from regionreasoner.core.errors import ConfigError
from regionreasoner.policies.base import ToolSpec, TurnConstraint

__all__ = [
    "OBJECT_HEAD",
    "POINT_HEAD",
    "TOOL_CALL_CLOSE",
    "TOOL_CALL_OPEN",
    "TOOL_RESPONSE_CLOSE",
    "TOOL_RESPONSE_OPEN",
    "int_range",
    "literal",
    "segment_grammar",
    "text_rule",
    "tool_call_grammar",
    "turn_grammar",
]

OBJECT_HEAD = '{"bbox_2d": ['
POINT_HEAD = '], "point_2d": ['
OBJECT_TAIL = "]}"
OBJECT_SEP = ", "
ANSWER_END = "]</answer>"


def literal(text: str) -> str:
    """An EBNF string literal for ``text`` (JSON escaping is a subset of what xgrammar accepts)."""
    return json.dumps(text, ensure_ascii=False)


def _ge(digits: str) -> str:
    """Digit strings of the same length that are >= ``digits`` (leading zeros allowed)."""
    if all(c == "0" for c in digits):
        return " ".join(["[0-9]"] * len(digits))
    if len(digits) == 1:
        return f"[{digits}-9]"
    alts = [f'"{digits[0]}" {_ge(digits[1:])}']
    if digits[0] != "9":
        alts.append(" ".join([f"[{int(digits[0]) + 1}-9]", *["[0-9]"] * (len(digits) - 1)]))
    return "(" + " | ".join(alts) + ")"


def _le(digits: str) -> str:
    """Digit strings of the same length that are <= ``digits`` (leading zeros allowed)."""
    if all(c == "9" for c in digits):
        return " ".join(["[0-9]"] * len(digits))
    if len(digits) == 1:
        return f"[0-{digits}]"
    alts = [f'"{digits[0]}" {_le(digits[1:])}']
    if digits[0] != "0":
        alts.append(" ".join([f"[0-{int(digits[0]) - 1}]", *["[0-9]"] * (len(digits) - 1)]))
    return "(" + " | ".join(alts) + ")"


def _same_length(lo: str, hi: str) -> str:
    """Digit strings of one length from ``lo`` to ``hi``: their common prefix, then three cases.

    At the first differing digit: ``lo``'s digit with a suffix >= ``lo``'s rest, a digit strictly between with any
    suffix, or ``hi``'s digit with a suffix <= ``hi``'s rest.
    """
    i = 0
    while i < len(lo) and lo[i] == hi[i]:
        i += 1
    prefix = f'"{lo[:i]}" ' if i else ""
    a, b = lo[i:], hi[i:]
    if not a:
        return f'"{lo}"'
    if len(a) == 1:
        return f"{prefix}[{a}-{b}]"
    parts = [f'"{a[0]}" {_ge(a[1:])}']
    if int(b[0]) - int(a[0]) > 1:
        parts.append(" ".join([f"[{int(a[0]) + 1}-{int(b[0]) - 1}]", *["[0-9]"] * (len(a) - 1)]))
    parts.append(f'"{b[0]}" {_le(b[1:])}')
    return f"{prefix}(" + " | ".join(parts) + ")"


def int_range(lo: int, hi: int) -> str:
    """An EBNF expression matching the decimal integers ``lo..hi`` (inclusive) without leading zeros."""
    if lo < 0 or hi < lo:
        raise ConfigError(f"int_range({lo}, {hi}): need 0 <= lo <= hi")
    # Split the range into bands of equal digit count (7..1234 -> 7..9, 10..99, 100..999, 1000..1234) and spell
    # each band digit by digit (:func:`_same_length`).  A band's numbers all have its length and (but for 0..9) a
    # non-zero first digit, so no leading zero is ever allowed: "007" is not JSON, and the parser would reject it.
    alts: list[str] = []
    while lo <= hi:
        top = min(hi, 10 ** len(str(lo)) - 1)
        alts.append(_same_length(str(lo), str(top)))
        lo = top + 1
    return "(" + " | ".join(alts) + ")"


def text_rule(limit: int | None = None) -> str:
    """Free text of one or more characters without ``<``, so it can neither open nor close a tag.

    With ``limit`` the text is 1..limit characters.  A bounded repetition takes seconds to compile against a
    150k-token vocabulary (the unbounded rule milliseconds), once per limit; token-level backends therefore use the
    unbounded rule and enforce the limit with a mask (:class:`~regionreasoner.policies.constraints.TurnMachine`),
    engines that take one grammar per request use the bounded rule.
    """
    return "[^<]+" if limit is None else f"[^<]{{1,{limit}}}"


def _section(tag: str, limit: int | None = None) -> str:
    return f'"<{tag}>" {text_rule(limit)} "</{tag}>"'


def _static_object(c: TurnConstraint) -> str:
    w, h = c.bounds
    x, y = int_range(0, w), int_range(0, h)
    return " ".join(
        [literal(OBJECT_HEAD), x, '","', y, '","', x, '","', y, literal(POINT_HEAD), x, '","', y, literal(OBJECT_TAIL)]
    )


def turn_grammar(c: TurnConstraint, *, start: int = 0, leading_separator: bool = False) -> str:
    """A static EBNF grammar for ``c.sections[start:]`` (the whole turn with ``start=0``).

    ``leading_separator`` puts the separator before the first section generated (for continuing a message whose
    previous section has just closed).  Integers are bounded by the frame; corners are not ordered.
    """
    if not 0 <= start < len(c.sections):
        raise ConfigError(f"turn_grammar start={start} outside sections {c.sections}")
    sep = literal(c.separator)
    pieces: list[str] = []
    for i, tag in enumerate(c.sections[start:]):
        if i > 0 or leading_separator:
            pieces.append(sep)
        if tag == "answer":
            more = f"({literal(OBJECT_SEP)} obj){{0,{c.max_objects - 1}}}" if c.max_objects > 1 else ""
            pieces.append(f'"<answer>[" obj {more} {literal(ANSWER_END)}')
        else:
            pieces.append(_section(tag))
    return f"root ::= {' '.join(pieces)}\nobj ::= {_static_object(c)}\n"


TOOL_CALL_OPEN = "<tool_call>"
TOOL_CALL_CLOSE = "</tool_call>"
TOOL_RESPONSE_OPEN = "\n<tool_response>"
TOOL_RESPONSE_CLOSE = "</tool_response>\n"
"""The agent appends ``TOOL_RESPONSE_OPEN + observation + TOOL_RESPONSE_CLOSE`` after a call (observation without
``<``); the grammar accepts exactly that, so a prefix holding responses replays through the machine."""


@functools.lru_cache(maxsize=64)
def tool_call_grammar(tools: tuple[ToolSpec, ...]) -> str:
    """EBNF of ``{"name": <one of tools>, "arguments": <that tool's schema>}</tool_call>``.

    The JSON part comes from xgrammar's JSON-schema converter (one ``anyOf`` branch per tool, the name a ``const``,
    compact separators), with its rules renamed under ``tc_`` so that ``root`` is free for this segment; the segment
    then ends on the literal ``</tool_call>`` like every segment of the chain.
    """
    import xgrammar as xgr

    branches = [
        {
            "type": "object",
            "properties": {"name": {"const": t.name}, "arguments": json.loads(t.schema)},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for t in tools
    ]
    schema = branches[0] if len(branches) == 1 else {"anyOf": branches}
    ebnf = str(xgr.Grammar.from_json_schema(json.dumps(schema), any_whitespace=False, strict_mode=True))
    # Rename every rule under ``tc_`` outside string literals and character classes (which may hold text that
    # looks like a rule name: ``"name"``, ``[A-Za-z]``); re.split with a group keeps the literals at odd indexes.
    names = set(re.findall(r"^([A-Za-z_][A-Za-z0-9_]*) ::=", ebnf, flags=re.M))
    parts = _LITERALS.split(ebnf)
    for i in range(0, len(parts), 2):
        parts[i] = _NAME.sub(lambda m: f"tc_{m.group(0)}" if m.group(0) in names else m.group(0), parts[i])
    return f"root ::= tc_root {literal(TOOL_CALL_CLOSE)}\n" + "".join(parts)


_LITERALS = re.compile(r'("(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\])')
_NAME = re.compile(r"(?<![A-Za-z0-9_])[A-Za-z_][A-Za-z0-9_]*(?![A-Za-z0-9_])")


def segment_grammar(
    kind: str,
    c: TurnConstraint,
    *,
    tag: str = "",
    lows: Sequence[int] = (),
    first: bool = False,
    last: bool = False,
    bounded: bool = False,
    calls_left: bool = False,
) -> str:
    """The EBNF of one segment of a chained turn.

    Kinds (``sep`` is the separator, emitted before every section but the ``first``):

    * ``section``: ``[sep] <tag> text </tag>`` (``bounded``: at most the tag's character limit); for ``think`` with
      ``calls_left`` the text may end in ``<tool_call>`` instead of ``</think>``;
    * ``tool_call``: ``{"name": ..., "arguments": {...}}</tool_call>`` (:func:`tool_call_grammar`);
    * ``tool_response``: the agent's ``<tool_response>...</tool_response>`` between newlines; ``think_more``: the
      rest of the think text after a response, ending like a think section;
    * ``answer_head``: ``[sep] <answer>[`` ;
    * ``box_head``: ``{"bbox_2d": [x1,y1,`` with x1 < W, y1 < H (room is left for a box of positive area);
    * ``x2``: ``x2,`` with ``lows[0] <= x2 <= W``; ``y2``: ``y2], "point_2d": [`` with ``lows[0] <= y2 <= H``
      (the machine passes ``x1 + 1`` and ``y1 + 1``, so boxes have positive width and height);
    * ``px``: ``px,`` with ``lows[0] <= px <= lows[1]``; ``py``: ``py]}`` then ``, `` or ``]</answer>`` (only the
      latter when ``last``), with ``lows[0] <= py <= lows[1]``.
    """
    # Every segment ends on literal text (a tag, "," or a bracket): the machine relies on it to know, after any
    # token, which segment it is in (see TurnMachine).  A number is complete only once a non-digit follows it, so
    # each number segment carries the literal after its number ("x2," not "x2"), and the next segment begins there.
    w, h = c.bounds
    sep = literal(c.separator)
    # A think piece that may call a tool ends on either literal: "</think>" closes the section, "<tool_call>"
    # opens the call (the machine tells which from the text).
    think_end = f'("</think>" | {literal(TOOL_CALL_OPEN)})' if calls_left else '"</think>"'
    match kind:
        case "section" if tag == "think" and calls_left:
            head = "" if first else f"{sep} "
            body = f'{head}"<think>" {text_rule(c.limit(tag) if bounded else None)} {think_end}'
        case "section":
            head = "" if first else f"{sep} "
            body = f"{head}{_section(tag, c.limit(tag) if bounded else None)}"
        case "tool_call":
            return tool_call_grammar(c.tools)
        case "tool_response":
            body = f"{literal(TOOL_RESPONSE_OPEN)} [^<]* {literal(TOOL_RESPONSE_CLOSE)}"
        case "think_more":
            # ``lows[0]``, when given, is what is left of the think limit (engines get the bound in the grammar).
            if not lows:
                body = f"[^<]* {think_end}"
            elif lows[0] > 0:
                body = f"[^<]{{0,{lows[0]}}} {think_end}"
            else:
                body = think_end
        case "answer_head":
            head = "" if first else f"{sep} "
            body = f'{head}"<answer>["'
        case "box_head":
            body = f'{literal(OBJECT_HEAD)} {int_range(0, w - 1)} "," {int_range(0, h - 1)} ","'
        case "x2":
            body = f'{int_range(lows[0], w)} ","'
        case "y2":
            body = f"{int_range(lows[0], h)} {literal(POINT_HEAD)}"
        case "px":
            body = f'{int_range(lows[0], lows[1])} ","'
        case "py":
            ends = literal(ANSWER_END) if last else f"({literal(OBJECT_SEP)} | {literal(ANSWER_END)})"
            body = f"{int_range(lows[0], lows[1])} {literal(OBJECT_TAIL)} {ends}"
        case _:
            raise ConfigError(f"unknown grammar segment {kind!r}")
    return f"root ::= {body}\n"
