"""The structured action: ``<scene> <focus> <think> <answer>`` and a parser that never raises on model output.

:func:`parse_action` splits a policy's text into its four sections, parses the answer JSON
(``[{"bbox_2d": [x1, y1, x2, y2], "point_2d": [x, y]}, ...]``, coordinates in the policy's frame), collects the
boxes cited in ``<think>`` as ``bbox=[...]``, and reports every defect as a typed
:class:`~regionreasoner.core.types.Problem`.  Problems of severity ``error`` make a turn fail; ``warning`` ones are
recorded only.  Which defect is which severity is documented in docs/protocol.md; ``coordinates=``
(:data:`CoordinateRule`) says whether coordinates outside the frame are defects.
:mod:`~regionreasoner.core.answer_map` maps the parsed objects to original pixels.
:mod:`~regionreasoner.core.answer` parses the answer JSON and :mod:`~regionreasoner.core.tool_calls` the tool calls;
their names are re-exported here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from regionreasoner.core.answer import (
    DEFAULT_MAX_OBJECTS,
    FRAME_TOLERANCE,
    AnswerObject,
    CoordinateRule,
    check_rule,
    format_answer,
    make_problem,
    parse_answer,
)
from regionreasoner.core.citations import find_cited_boxes
from regionreasoner.core.tool_calls import MAX_TOOL_CALL_DEPTH, ToolCall, parse_tool_call
from regionreasoner.core.types import Problem, ProblemKind, Sections, Severity

__all__ = [
    "DEFAULT_MAX_OBJECTS",
    "FRAME_TOLERANCE",
    "MAX_TOOL_CALL_DEPTH",
    "SECTION_TAGS",
    "AnswerObject",
    "CoordinateRule",
    "ParsedAction",
    "ToolCall",
    "format_action",
    "format_answer",
    "parse_action",
    "parse_answer",
    "parse_tool_call",
]

SECTION_TAGS: tuple[str, ...] = ("scene", "focus", "think", "answer")
"""The section tags in the order a turn writes them."""

_TAG = re.compile(r"<(/?)(scene|focus|think|answer)>")

Coords4 = tuple[float, float, float, float]


@dataclass(frozen=True)
class ParsedAction:
    """What :func:`parse_action` found: sections, valid answer objects, cited boxes and problems."""

    sections: Sections
    objects: list[AnswerObject] = field(default_factory=list)
    citations: list[Coords4] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        """The problems of severity ``error``."""
        return [p for p in self.problems if p.severity is Severity.ERROR]

    @property
    def ok(self) -> bool:
        """True when an answer was found and nothing is an error (the turn succeeds)."""
        return self.sections.answer is not None and not self.errors


def _scan_sections(text: str, problems: list[Problem]) -> tuple[dict[str, str], set[str]]:
    """Split ``text`` at section tags. Returns the inner text of each first closed section and the unclosed ones."""
    found: dict[str, str] = {}
    unclosed: set[str] = set()
    order: list[str] = []
    open_tag: str | None = None
    open_end = 0
    outside: list[str] = []
    last_end = 0
    for m in _TAG.finditer(text):
        closing, tag = m.group(1) == "/", m.group(2)
        if open_tag is None:
            outside.append(text[last_end : m.start()])
        if not closing:
            if open_tag is not None:
                unclosed.add(open_tag)
                problems.append(
                    make_problem(
                        ProblemKind.UNCLOSED_TAG,
                        f"<{open_tag}> is not closed before <{tag}>",
                        error=open_tag == "answer",
                        section=open_tag,
                    )
                )
            open_tag, open_end = tag, m.end()
        elif open_tag == tag:
            content = text[open_end : m.start()].strip()
            if tag in found:
                problems.append(
                    make_problem(
                        ProblemKind.DUPLICATED_TAG,
                        f"<{tag}> appears more than once; the first one is used",
                        error=tag == "answer",
                        section=tag,
                    )
                )
            else:
                found[tag] = content
                order.append(tag)
            open_tag = None
        else:
            problems.append(
                make_problem(
                    ProblemKind.UNEXPECTED_TAG,
                    f"</{tag}> closes a section that is not open" + (f" (inside <{open_tag}>)" if open_tag else ""),
                    error=tag == "answer",
                    section=tag,
                )
            )
        last_end = m.end()
    if open_tag is not None:
        unclosed.add(open_tag)
        problems.append(
            make_problem(
                ProblemKind.UNCLOSED_TAG,
                f"<{open_tag}> is never closed (output truncated?)",
                error=open_tag == "answer",
                section=open_tag,
            )
        )
    else:
        outside.append(text[last_end:])
    if any(chunk.strip() for chunk in outside):
        problems.append(
            make_problem(ProblemKind.TEXT_OUTSIDE_TAGS, "text outside the section tags is ignored", error=False)
        )
    ranks = [SECTION_TAGS.index(t) for t in order]
    if ranks != sorted(ranks):
        problems.append(
            make_problem(
                ProblemKind.OUT_OF_ORDER_TAG,
                f"sections appear as {order}; expected the order {list(SECTION_TAGS)}",
                error=False,
            )
        )
    return found, unclosed


def parse_action(
    text: str,
    *,
    bounds: tuple[float, float] | None = None,
    expect_focus: bool | None = None,
    required: Sequence[str] = ("scene", "think", "answer"),
    max_objects: int | None = DEFAULT_MAX_OBJECTS,
    coordinates: CoordinateRule = "strict",
) -> ParsedAction:
    """Parse a policy's output.  Never raises on any string (a bad keyword raises :class:`ConfigError`).

    ``bounds``: the policy frame's extent ``(Mw, Mh)`` for out-of-frame checks (None: no check).
    ``expect_focus``: True when the question cited a region (a missing ``<focus>`` is then reported), False when
    it did not (a ``<focus>`` is then reported), None to not check.  ``required``: tags whose absence is a
    problem (a missing ``answer`` is an error, other tags warnings).  ``max_objects`` and ``coordinates``: as
    :func:`parse_answer`.
    """
    check_rule(coordinates, max_objects)
    problems: list[Problem] = []
    found, unclosed = _scan_sections(text, problems)
    for tag in required:
        if tag not in found and tag not in unclosed:
            problems.append(
                make_problem(ProblemKind.MISSING_TAG, f"no <{tag}> section", error=tag == "answer", section=tag)
            )
    if expect_focus is True and "focus" not in found and "focus" not in unclosed and "focus" not in required:
        problems.append(
            make_problem(ProblemKind.MISSING_TAG, "the question cites a region but there is no <focus>", error=False)
        )
    if expect_focus is False and "focus" in found:
        problems.append(
            make_problem(ProblemKind.UNEXPECTED_TAG, "<focus> without a cited region", error=False, section="focus")
        )
    objects: list[AnswerObject] = []
    answer = found.get("answer")
    if answer is not None and "answer" not in unclosed:
        objects, answer_problems = parse_answer(answer, bounds=bounds, max_objects=max_objects, coordinates=coordinates)
        problems.extend(answer_problems)
    think = found.get("think")
    sections = Sections(scene=found.get("scene"), focus=found.get("focus"), think=think, answer=answer)
    citations = find_cited_boxes(think) if think else []
    return ParsedAction(sections=sections, objects=objects, citations=citations, problems=problems)


def format_action(*, scene: str, think: str, objects: Sequence[AnswerObject], focus: str | None = None) -> str:
    """A complete turn text in the layout of the reference format block (one section per line)."""
    lines = [f"<scene> {scene} </scene>"]
    if focus is not None:
        lines.append(f"<focus> {focus} </focus>")
    lines.append(f"<think> {think} </think>")
    lines.append(f"<answer>{format_answer(objects)}</answer>")
    return "\n".join(lines)
