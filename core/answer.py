"""The ``<answer>`` of a turn: its JSON objects (boxes and points in the policy's frame), parsed without raising.

:func:`parse_answer` reads ``[{"bbox_2d": [x1, y1, x2, y2], "point_2d": [x, y]}, ...]`` and reports every defect as
a typed :class:`~regionreasoner.core.types.Problem`; ``coordinates=`` (:data:`CoordinateRule`) says whether
coordinates outside the frame are defects.  :data:`MODEL_JSON` is the one JSON reader of model output (integers of
any length and ``NaN``/``Infinity`` without raising).  :func:`format_answer` writes the reference layout.
:mod:`~regionreasoner.core.protocol` parses whole turns on top of this.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.types import Problem, ProblemKind, Severity

__all__ = [
    "DEFAULT_MAX_OBJECTS",
    "FRAME_TOLERANCE",
    "MODEL_JSON",
    "AnswerObject",
    "CoordinateRule",
    "brief_json",
    "check_rule",
    "format_answer",
    "is_text",
    "make_problem",
    "parse_answer",
]

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

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)

Coords4 = tuple[float, float, float, float]


@dataclass(frozen=True)
class AnswerObject:
    """One target of the answer, in the policy's frame: ``box`` xyxy, ``point`` (x, y) or None, optional label."""

    box: Coords4
    point: tuple[float, float] | None = None
    label: str | None = None


def is_text(value: str) -> bool:
    """False for a string with a lone surrogate (from a JSON escape): it cannot be encoded, stored or sent on."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def make_problem(
    kind: ProblemKind, message: str, *, error: bool, section: str | None = None, index: int | None = None
) -> Problem:
    """A problem of the model's output: ``error`` makes the turn fail, else a warning."""
    severity = Severity.ERROR if error else Severity.WARNING
    return Problem(kind=kind, severity=severity, message=message, section=section, index=index)


def _number(value: Any) -> float | None:
    """A JSON number as float; None for anything else (bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def brief_json(value: Any) -> str:
    """A JSON value for a problem message: short, and never a recursive repr of a model-made structure."""
    if isinstance(value, list):
        return f"a list of {len(value)} values"
    if isinstance(value, dict):
        return f"an object with {len(value)} keys"
    text = json.dumps(value)  # JSON spelling (true, null, "x"): the policy reads these messages
    return text if len(text) <= 40 else text[:37] + "..."


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
            make_problem(
                kind, f"object {index}: {key} {message}", error=error and not soft, section="answer", index=index
            )
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
            bad(ProblemKind.NOT_A_NUMBER, f"has a non-number {brief_json(v)}")
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


_MAX_FLOAT_DIGITS = sys.float_info.max_10_exp + 1
"""Digits of the largest finite float (309): a longer JSON integer (no leading zeros) is beyond every float."""


def _json_int(digits: str) -> int | float:
    """A JSON integer literal as int; one too long for any float as the infinity ``float()`` would make of it."""
    # WHY: int() refuses more than sys.get_int_max_str_digits() digits (4300 by default, 640 at the least) with a
    # ValueError that json lets escape, so a long integer in model output would crash the parser.  Such an integer
    # is no usable coordinate either way: read it as +-inf, which is then reported as non_finite.
    if len(digits) - digits.startswith("-") > _MAX_FLOAT_DIGITS:
        return -math.inf if digits.startswith("-") else math.inf
    return int(digits)


MODEL_JSON = json.JSONDecoder(parse_constant=_strict_constant, parse_int=_json_int)
"""The one JSON reader of model output: ``NaN``/``Infinity`` as floats, integers of any length without raising."""


def check_rule(coordinates: str, max_objects: int | None) -> None:
    """Raise :class:`ConfigError` for an unknown coordinate rule or a ``max_objects`` below 1 (caller settings)."""
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
    check_rule(coordinates, max_objects)
    official = coordinates == "official"
    problems: list[Problem] = []
    body = content.strip()
    if not official and (fence := _FENCE.match(body)):  # json.loads in the official code fails on a fence
        body = fence.group(1)
    try:
        data, end = MODEL_JSON.raw_decode(body)
    except json.JSONDecodeError as exc:
        problems.append(
            make_problem(ProblemKind.INVALID_JSON, f"answer is not valid JSON: {exc.msg} at char {exc.pos}", error=True)
        )
        return [], problems
    except RecursionError:
        problems.append(make_problem(ProblemKind.INVALID_JSON, "answer JSON is nested too deeply", error=True))
        return [], problems
    if body[end:].strip():
        problems.append(
            make_problem(
                ProblemKind.TRAILING_TEXT,
                f"answer has text after the JSON value: {body[end:].strip()[:40]!r}",
                error=True,
                section="answer",
            )
        )
        return [], problems
    if isinstance(data, dict):
        problems.append(
            make_problem(ProblemKind.NOT_A_LIST, "answer is one object, not a list of objects", error=official)
        )
        if official:  # the official code iterates the object's keys and fails
            return [], problems
        data = [data]
    if not isinstance(data, list):
        problems.append(
            make_problem(ProblemKind.NOT_A_LIST, f"answer must be a JSON list, got {type(data).__name__}", error=True)
        )
        return [], problems
    if not data:
        problems.append(make_problem(ProblemKind.EMPTY_ANSWER, "answer lists no object", error=False, section="answer"))
    if max_objects is not None and len(data) > max_objects:
        problems.append(
            make_problem(
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
                make_problem(ProblemKind.NOT_AN_OBJECT, f"object {i} is a {type(item).__name__}", error=True, index=i)
            )
            continue
        if "bbox_2d" not in item:
            problems.append(
                make_problem(
                    ProblemKind.MISSING_KEY, f"object {i} has no bbox_2d", error=True, section="answer", index=i
                )
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
                make_problem(
                    ProblemKind.MISSING_KEY, f"object {i} has no point_2d", error=False, section="answer", index=i
                )
            )
        if box is None:
            continue
        b = (box[0], box[1], box[2], box[3])
        p = (point[0], point[1]) if point is not None else None
        if p is not None and not (b[0] <= p[0] <= b[2] and b[1] <= p[1] <= b[3]):
            problems.append(
                make_problem(
                    ProblemKind.POINT_OUTSIDE_BOX,
                    f"object {i}: point {list(p)} lies outside its box {list(b)}",
                    error=False,
                    section="answer",
                    index=i,
                )
            )
        label = item.get("label")
        if isinstance(label, str) and not is_text(label):  # a lone surrogate escape: the label cannot be stored
            problems.append(
                make_problem(
                    ProblemKind.INVALID_JSON,
                    f"object {i}: label has a lone surrogate escape (such as \\ud800), which is not text; dropped",
                    error=False,
                    section="answer",
                    index=i,
                )
            )
            label = None
        objects.append(AnswerObject(box=b, point=p, label=label if isinstance(label, str) else None))
    return objects, problems


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
