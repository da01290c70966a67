"""The structured action: ``<scene> <focus> <think> <answer>`` and a parser that never raises on model output.

:func:`parse_action` splits a policy's text into its four sections, parses the answer JSON
(``[{"bbox_2d": [x1, y1, x2, y2], "point_2d": [x, y]}, ...]``, coordinates in the policy's frame), collects the
boxes cited in ``<think>`` as ``bbox=[...]``, and reports every defect as a typed
:class:`~regionreasoner.core.types.Problem`.  Problems of severity ``error`` make a turn fail; ``warning`` ones are
recorded only.  Which defect is which severity is documented in docs/protocol.md; ``coordinates=``
(:data:`CoordinateRule`) says whether coordinates outside the frame are defects.
:mod:`~regionreasoner.core.answer_map` maps the parsed objects to original pixels.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from regionreasoner.core.citations import find_cited_boxes
from regionreasoner.core.errors import ConfigError
from regionreasoner.core.types import Problem, ProblemKind, Sections, Severity

__all__ = [
    "DEFAULT_MAX_OBJECTS",
    "FRAME_TOLERANCE",
    "SECTION_TAGS",
    "AnswerObject",
    "CoordinateRule",
    "ParsedAction",
    "format_action",
    "format_answer",
    "parse_action",
    "parse_answer",
]

SECTION_TAGS: tuple[str, ...] = ("scene", "focus", "think", "answer")
"""The section tags in the order a turn writes them."""

DEFAULT_MAX_OBJECTS = 120
"""More answer objects than this is a defect (the reference rewards truncate at 120, ``MAX_OBJECTS``)."""

CoordinateRule = Literal["strict", "tolerant", "official"]
"""How :func:`parse_answer` treats coordinates outside the frame (see docs/protocol.md):

* ``strict``: a negative coordinate, one above ``bounds`` or an inverted box is an error; the object is dropped.
* ``tolerant``: as ``strict``, except that a coordinate at most :data:`FRAME_TOLERANCE` of the frame extent outside
  ``[0, extent]`` is kept with a warning (the caller clips it); needs ``bounds``.
* ``official``: the released RegionReasoner evaluation's reading (``json.loads`` + ``int(v * W/840 + 0.5)``): every
  finite coordinate is kept (negative, beyond the frame, inverted: warnings), extra list values are ignored,
  ``true``/``false`` count as 1/0, a point that cannot be read is dropped with a warning and its object kept, and
  a fenced answer or a bare object is an error (``json.loads`` does not give a list for either).
"""

FRAME_TOLERANCE = 0.01
"""Under ``coordinates="tolerant"``, how far outside the frame a coordinate may lie, as a fraction of the frame's
extent on its axis (8.4 model pixels of an 840x840 frame): an off-by-a-few edge, not a wrong frame."""

_RULES: tuple[str, ...] = get_args(CoordinateRule)

_TAG = re.compile(r"<(/?)(scene|focus|think|answer)>")
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)

Coords4 = tuple[float, float, float, float]


@dataclass(frozen=True)
class AnswerObject:
    """One target of the answer, in the policy's frame: ``box`` xyxy, ``point`` (x, y) or None, optional label."""

    box: Coords4
    point: tuple[float, float] | None = None
    label: str | None = None


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


def _problem(
    kind: ProblemKind, message: str, *, error: bool, section: str | None = None, index: int | None = None
) -> Problem:
    severity = Severity.ERROR if error else Severity.WARNING
    return Problem(kind=kind, severity=severity, message=message, section=section, index=index)


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
                    _problem(
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
                    _problem(
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
                _problem(
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
            _problem(
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
            _problem(ProblemKind.TEXT_OUTSIDE_TAGS, "text outside the section tags is ignored", error=False)
        )
    ranks = [SECTION_TAGS.index(t) for t in order]
    if ranks != sorted(ranks):
        problems.append(
            _problem(
                ProblemKind.OUT_OF_ORDER_TAG,
                f"sections appear as {order}; expected the order {list(SECTION_TAGS)}",
                error=False,
            )
        )
    return found, unclosed


def _number(value: Any) -> float | None:
    """A JSON number as float; None for anything else (bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _coords(
    raw: Any,
    arity: int,
    key: str,
    index: int,
    bounds: tuple[float, float] | None,
    rule: CoordinateRule,
    problems: list[Problem],
    *,
    soft: bool = False,
) -> tuple[float, ...] | None:
    """Read ``arity`` coordinates (policy frame) under ``rule``; None when they cannot be used.

    ``soft``: report what makes them unusable as warnings (an official point: its object is kept without it).
    """

    def bad(kind: ProblemKind, message: str, *, error: bool = True) -> None:
        problems.append(
            _problem(kind, f"object {index}: {key} {message}", error=error and not soft, section="answer", index=index)
        )

    official = rule == "official"
    if not isinstance(raw, list) or len(raw) < arity or (len(raw) > arity and not official):
        got = f"{len(raw)} values" if isinstance(raw, list) else type(raw).__name__
        bad(ProblemKind.WRONG_ARITY, f"needs a list of {arity} numbers, got {got}")
        return None
    if len(raw) > arity:
        bad(ProblemKind.WRONG_ARITY, f"has {len(raw)} values; the first {arity} are used (official rule)", error=False)
        raw = raw[:arity]
    values: list[float] = []
    for v in raw:
        if official and isinstance(v, bool):
            bad(ProblemKind.NOT_A_NUMBER, f"has {json.dumps(v)}, read as {int(v)} (official rule)", error=False)
            values.append(float(v))
            continue
        num = _number(v)
        if num is None:
            bad(ProblemKind.NOT_A_NUMBER, f"has a non-number {v!r}")
            return None
        values.append(num)
    if not all(math.isfinite(v) for v in values):
        bad(ProblemKind.NON_FINITE, f"has a non-finite value {values}")
        return None
    if rule == "strict" or (rule == "tolerant" and bounds is None):
        if any(v < 0 for v in values):
            bad(ProblemKind.NEGATIVE, f"has a negative coordinate {values}")
            return None
        if bounds is not None and _beyond(values, bounds, 0.0):
            w, h = bounds
            bad(ProblemKind.OUT_OF_FRAME, f"{values} lies outside the frame 0..{w:g} x 0..{h:g}")
            return None
    clamp: tuple[float, float] | None = None
    if rule == "tolerant" and bounds is not None:
        w, h = bounds
        tol = (FRAME_TOLERANCE * w, FRAME_TOLERANCE * h)
        far_negative = any(v < -tol[i % 2] for i, v in enumerate(values))
        if far_negative or _beyond(values, bounds, FRAME_TOLERANCE):
            kind = ProblemKind.NEGATIVE if far_negative else ProblemKind.OUT_OF_FRAME
            bad(kind, f"{values} lies outside the frame 0..{w:g} x 0..{h:g} by more than {FRAME_TOLERANCE:.0%}")
            return None
        if any(v < 0 for v in values) or _beyond(values, bounds, 0.0):
            kind = ProblemKind.NEGATIVE if any(v < 0 for v in values) else ProblemKind.OUT_OF_FRAME
            bad(kind, f"{values} lies slightly outside the frame 0..{w:g} x 0..{h:g}; clipped to it", error=False)
            clamp = bounds
    elif official:  # keep every finite value; say what the released code would keep silently
        if any(v < 0 for v in values):
            bad(ProblemKind.NEGATIVE, f"has a negative coordinate {values}, kept (official rule)", error=False)
        if bounds is not None and _beyond(values, bounds, 0.0):
            w, h = bounds
            message = f"{values} lies outside the frame 0..{w:g} x 0..{h:g}, kept (official rule)"
            bad(ProblemKind.OUT_OF_FRAME, message, error=False)
    if arity == 4 and (values[0] > values[2] or values[1] > values[3]):
        bad(
            ProblemKind.INVERTED,
            f"{values} has x1 > x2 or y1 > y2" + (", kept (official rule)" if official else ""),
            error=not official,
        )
        if not official:
            return None
    if clamp is not None:  # after the inverted check: clipping must not hide an inverted box
        values = [min(max(v, 0.0), clamp[i % 2]) for i, v in enumerate(values)]
    return tuple(values)


def _beyond(values: Sequence[float], bounds: tuple[float, float], tolerance: float) -> bool:
    """True when an x lies above ``Mw * (1 + tolerance)`` or a y above ``Mh * (1 + tolerance)``."""
    w, h = bounds
    return any(v > w * (1 + tolerance) for v in values[0::2]) or any(v > h * (1 + tolerance) for v in values[1::2])


def _strict_constant(name: str) -> float:
    return float(name.replace("Infinity", "inf"))


_DECODER = json.JSONDecoder(parse_constant=_strict_constant)


def _check_rule(coordinates: str, max_objects: int | None) -> None:
    if coordinates not in _RULES:
        raise ConfigError(f"coordinates={coordinates!r}", hint=f"use one of {list(_RULES)}")
    if max_objects is not None and max_objects < 1:
        raise ConfigError(f"max_objects={max_objects}: set it >= 1, or None for no limit")


def parse_answer(
    content: str,
    *,
    bounds: tuple[float, float] | None = None,
    max_objects: int | None = DEFAULT_MAX_OBJECTS,
    coordinates: CoordinateRule = "strict",
) -> tuple[list[AnswerObject], list[Problem]]:
    """Parse the inner text of ``<answer>``: valid objects (policy frame) and the problems found.

    ``bounds`` is the frame extent ``(Mw, Mh)``: coordinates above it are ``out_of_frame``.  Objects with any
    defect are dropped and reported; ``NaN``/``Infinity`` literals are reported as ``non_finite``.
    ``max_objects``: more objects is an error and only the first are read (None: no limit).  ``coordinates``:
    which coordinates are defects, see :data:`CoordinateRule`.  Raises :class:`ConfigError` only for a bad
    keyword, never for ``content``.
    """
    _check_rule(coordinates, max_objects)
    official = coordinates == "official"
    problems: list[Problem] = []
    body = content.strip()
    if not official and (fence := _FENCE.match(body)):  # json.loads in the official code fails on a fence
        body = fence.group(1)
    try:
        data, end = _DECODER.raw_decode(body)
    except json.JSONDecodeError as exc:
        problems.append(
            _problem(ProblemKind.INVALID_JSON, f"answer is not valid JSON: {exc.msg} at char {exc.pos}", error=True)
        )
        return [], problems
    except RecursionError:
        problems.append(_problem(ProblemKind.INVALID_JSON, "answer JSON is nested too deeply", error=True))
        return [], problems
    if body[end:].strip():
        problems.append(
            _problem(
                ProblemKind.TRAILING_TEXT,
                f"answer has text after the JSON value: {body[end:].strip()[:40]!r}",
                error=True,
                section="answer",
            )
        )
        return [], problems
    if isinstance(data, dict):
        problems.append(_problem(ProblemKind.NOT_A_LIST, "answer is one object, not a list of objects", error=official))
        if official:  # the official code iterates the object's keys and fails
            return [], problems
        data = [data]
    if not isinstance(data, list):
        problems.append(
            _problem(ProblemKind.NOT_A_LIST, f"answer must be a JSON list, got {type(data).__name__}", error=True)
        )
        return [], problems
    if not data:
        problems.append(_problem(ProblemKind.EMPTY_ANSWER, "answer lists no object", error=False, section="answer"))
    if max_objects is not None and len(data) > max_objects:
        problems.append(
            _problem(
                ProblemKind.TOO_MANY_OBJECTS,
                f"answer has {len(data)} objects; at most {max_objects} are allowed",
                error=True,
                section="answer",
            )
        )
        data = data[:max_objects]
    objects: list[AnswerObject] = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            problems.append(
                _problem(ProblemKind.NOT_AN_OBJECT, f"object {i} is a {type(item).__name__}", error=True, index=i)
            )
            continue
        if "bbox_2d" not in item:
            problems.append(
                _problem(ProblemKind.MISSING_KEY, f"object {i} has no bbox_2d", error=True, section="answer", index=i)
            )
            continue
        box = _coords(item["bbox_2d"], 4, "bbox_2d", i, bounds, coordinates, problems)
        point: tuple[float, ...] | None = None
        if "point_2d" in item:
            point = _coords(item["point_2d"], 2, "point_2d", i, bounds, coordinates, problems, soft=official)
            if point is None and not official:
                continue
        else:
            problems.append(
                _problem(ProblemKind.MISSING_KEY, f"object {i} has no point_2d", error=False, section="answer", index=i)
            )
        if box is None:
            continue
        b = (box[0], box[1], box[2], box[3])
        p = (point[0], point[1]) if point is not None else None
        if p is not None and not (b[0] <= p[0] <= b[2] and b[1] <= p[1] <= b[3]):
            problems.append(
                _problem(
                    ProblemKind.POINT_OUTSIDE_BOX,
                    f"object {i}: point {list(p)} lies outside its box {list(b)}",
                    error=False,
                    section="answer",
                    index=i,
                )
            )
        label = item.get("label")
        objects.append(AnswerObject(box=b, point=p, label=label if isinstance(label, str) else None))
    return objects, problems


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
    _check_rule(coordinates, max_objects)
    problems: list[Problem] = []
    found, unclosed = _scan_sections(text, problems)
    for tag in required:
        if tag not in found and tag not in unclosed:
            problems.append(
                _problem(ProblemKind.MISSING_TAG, f"no <{tag}> section", error=tag == "answer", section=tag)
            )
    if expect_focus is True and "focus" not in found and "focus" not in unclosed and "focus" not in required:
        problems.append(
            _problem(ProblemKind.MISSING_TAG, "the question cites a region but there is no <focus>", error=False)
        )
    if expect_focus is False and "focus" in found:
        problems.append(
            _problem(ProblemKind.UNEXPECTED_TAG, "<focus> without a cited region", error=False, section="focus")
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


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def format_answer(objects: Sequence[AnswerObject]) -> str:
    """The answer JSON in the reference exemplar's layout: ``[{"bbox_2d": [10,100,200,210], "point_2d": [30,110]}]``."""
    parts = []
    for obj in objects:
        item = '{"bbox_2d": [' + ",".join(_num(v) for v in obj.box) + "]"
        if obj.point is not None:
            item += ', "point_2d": [' + ",".join(_num(v) for v in obj.point) + "]"
        if obj.label is not None:
            item += ', "label": ' + json.dumps(obj.label)
        parts.append(item + "}")
    return "[" + ", ".join(parts) + "]"


def format_action(*, scene: str, think: str, objects: Sequence[AnswerObject], focus: str | None = None) -> str:
    """A complete turn text in the layout of the reference format block (one section per line)."""
    lines = [f"<scene> {scene} </scene>"]
    if focus is not None:
        lines.append(f"<focus> {focus} </focus>")
    lines.append(f"<think> {think} </think>")
    lines.append(f"<answer>{format_answer(objects)}</answer>")
    return "\n".join(lines)
