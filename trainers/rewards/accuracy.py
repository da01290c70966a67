"""The answer-format and accuracy rewards of VisionReasoner, which RegionReasoner keeps unchanged.

Coordinates are the policy's frame (840x840 model pixels for RegionReasoner checkpoints), integer corners
inclusive: a box ``[x1, y1, x2, y2]`` covers ``x2 - x1 + 1`` columns (the ``+1`` IoU convention of the reference
code, :func:`regionreasoner.core.geometry.iou` with ``inclusive=True``).

* :func:`answer_format`, 0..2: per answer object, +1 for a ``bbox_2d`` list of 4 values and +1 for a ``point_2d``
  list of 2, each object's credit divided by the number of objects and summed.
* :func:`accuracy`, 0..3: predictions and ground truth, each cut to the first 120 objects, are matched one to one
  (Hungarian matching); a pair earns ``[IoU > 0.5] + [mean |corner difference| < 10 px] + [point distance < 30 px
  and the predicted point inside its own predicted box]``; the matched sum is divided by ``max(#pred, #gt)``.

Both keep the reference code's reading of odd inputs, documented in docs/training.md ("Rewards").  The common
case (lists of plain numbers) is scored in pure Python; anything else (booleans, null, strings, huge integers,
non-finite numbers, nested lists) goes through numpy exactly as the reference code does, so that the values agree
on every input.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, NamedTuple

from regionreasoner.core.answer import DEFAULT_MAX_OBJECTS
from regionreasoner.trainers.rewards.canonical import canonical_values
from regionreasoner.trainers.rewards.dense import dense_accuracy, dense_rewards, dense_values_accuracy, matrix_total
from regionreasoner.trainers.rewards.dense import reward_matrix as _reward_matrix
from regionreasoner.trainers.rewards.matching import LIMIT, Row, best_total, pair_reward
from regionreasoner.trainers.rewards.matching import best_matching as _best_matching
from regionreasoner.trainers.rewards.matching import pair_rewards as _pair_rewards

__all__ = [
    "MAX_OBJECTS",
    "Truth",
    "accuracy",
    "answer_content",
    "answer_format",
    "answer_rewards",
    "parse_truth",
    "section",
]

MAX_OBJECTS = DEFAULT_MAX_OBJECTS
"""Predictions and ground truth are cut to their first 120 objects before matching (``MAX_OBJECTS``)."""

_LIMIT = LIMIT  # |coordinate| up to this: every product below is exact in int64 and float64 alike
_SCAN: Any = json.decoder.JSONDecoder().scan_once  # type: ignore[attr-defined]  # json.loads, no wrappers
_JSON_FAILURES = (ValueError, RecursionError)  # json.loads: bad JSON, an integer too long for int(), deep nesting
_JSON_SPACE = " \t\n\r"


def section(text: str, tag: str) -> str | None:
    r"""The inner text of the first ``<tag> ... </tag>``, surrounding whitespace dropped; None when there is none.

    Exactly what the reference's ``re.search(r"<tag>\s*(.*?)\s*</tag>", text, re.DOTALL).group(1)`` gives: the
    first opening tag and the first closing tag after it (order with other tags, nesting and duplicates are not
    checked), written with ``str.find`` (regex ``\\s`` and ``str.strip`` agree on what whitespace is).

    >>> section("<think> a <b> </think> <think>c</think>", "think")
    'a <b>'
    """
    opening = f"<{tag}>"
    start = text.find(opening)
    if start < 0:
        return None
    start += len(opening)
    end = text.find(f"</{tag}>", start)
    return None if end < 0 else text[start:end].strip()


def answer_content(text: str) -> str | None:
    """The inner text of the first ``<answer>...</answer>`` (surrounding whitespace dropped), or None."""
    return section(text, "answer")


class _Unreadable:
    """The decoded value of an answer that is missing or is not JSON."""


UNREADABLE: Any = _Unreadable()


def _decode(content: str | None) -> Any:
    """``json.loads(content)``, or :data:`UNREADABLE` for no answer, bad JSON, huge integers, deep nesting."""
    if content is None:
        return UNREADABLE
    try:
        value, end = _SCAN(content, 0)
        if end == len(content):
            return value
    except (StopIteration, *_JSON_FAILURES):
        pass
    if not content or (content[0] not in _JSON_SPACE and content[-1] not in _JSON_SPACE):
        return UNREADABLE  # WHY: without JSON whitespace around the value, json.loads is the scanner alone
    try:  # WHY: the scanner alone refuses what json.loads accepts around a value (JSON whitespace)
        return json.loads(content)
    except _JSON_FAILURES:
        return UNREADABLE


def _format_of(data: Any) -> float:
    if data is UNREADABLE:
        return 0.0
    total = 0.0
    try:
        count = len(data)
        for item in data:
            credit = 0.0
            if "bbox_2d" in item:
                box = item["bbox_2d"]
                if isinstance(box, list) and len(box) == 4:
                    credit += 1.0
            if "point_2d" in item:
                point = item["point_2d"]
                if isinstance(point, list) and len(point) == 2:
                    credit += 1.0
            total += credit / count
    except TypeError:  # a number, null or a string item: the reference keeps the credit summed before the error
        pass
    return total


def answer_format(content: str | None) -> float:
    """Answer-format credit in 0..2 for the answer's inner text (``None``: no answer tag, 0).

    The reference code's quirks are kept: a value that is not a list is iterated as Python would (a string's
    characters, a dict's keys), and an error part-way keeps the credit already summed.

    >>> answer_format('[{"bbox_2d": [1, 2, 30, 40], "point_2d": [5, 6]}]')
    2.0
    >>> answer_format('[{"bbox_2d": [1, 2, 30, 40]}, {"point_2d": [5, 6, 7]}]')
    0.5
    """
    return _format_of(_decode(content))


def answer_rewards(content: str | None, truth: Truth | None) -> tuple[float, float]:
    """``(answer_format(content), accuracy(content, truth))`` with the answer decoded once.

    The common answer, a list of objects whose ``bbox_2d`` and ``point_2d`` are lists of 4 and 2 plain numbers,
    is read in one pass (:func:`_plain`), and a long one in the canonical form without ``json`` (:func:`_canonical`);
    anything else takes the exact general path.
    """
    if content is not None and len(content) > _LONG and truth is not None and type(truth.rows) is list:
        fast = _canonical(content, truth)
        if fast is not None:
            return fast
    data = _decode(content)
    if type(data) is list and data:
        if (
            truth is not None
            and type(truth.rows) is list
            and len(data) * len(truth.rows) > _DENSE_PAIRS
            and (found := dense_accuracy(data, content, truth.rows, truth.cache)) is not None  # type: ignore[arg-type]
        ):
            return _full_format(len(data)), found
        plain = _plain(data)
        if plain is not None:
            return _full_format(len(data)), _plain_accuracy(plain, data, truth)
    return _format_of(data), _accuracy_of(data, truth)


_LONG = 1500  # characters; WHY: an object takes 38 or more, so shorter answers rarely reach the numpy path


def _canonical(content: str, truth: Truth) -> tuple[float, float] | None:
    """:func:`answer_rewards` of a long canonical answer (see ``canonical``) against all-int truth; else None.

    WHY only long answers: :func:`answer_rewards` scores them on numpy (more than :data:`_DENSE_PAIRS` pairs),
    which wants the integers in an array, not the objects ``json.loads`` builds; short answers are read faster by
    ``json``'s scanner and :func:`_plain` than by a regular expression.
    """
    rows: list[Row] = truth.rows  # type: ignore[assignment]
    values = canonical_values(content)
    if values is None or len(values) * len(rows) <= _DENSE_PAIRS:
        return None
    found = dense_values_accuracy(values, rows, truth.cache)
    return None if found is None else (_full_format(len(values)), found)


_FULL_FORMAT: dict[int, float] = {}


def _full_format(count: int) -> float:
    """:func:`_format_of` of ``count`` objects that all earn 2: ``2 / count`` summed in order (bit for bit)."""
    total = _FULL_FORMAT.get(count)
    if total is None:
        total = 0.0
        for _ in range(count):
            total += 2.0 / count
        if len(_FULL_FORMAT) < 4096:
            _FULL_FORMAT[count] = total
    return total


def _plain(data: list[Any]) -> list[Row] | None:
    """The :data:`Row` of every object, or None when any object is not plain (NaN and infinities are not).

    Plain: a dict whose ``bbox_2d`` and ``point_2d`` are lists of 4 and 2 ints or floats (not booleans) of at most
    2**24 in size.  WHY one pass: such an answer earns 2 per object in :func:`_format_of`, :func:`_objects` keeps
    its first 120 boxes and points, and :func:`_rows` makes exactly these rows of them; the general functions,
    which walk the objects three times and test each value's type in a set, then need not run.
    """
    rows = []
    for item in data:
        if type(item) is not dict:
            return None
        box = item.get("bbox_2d")
        point = item.get("point_2d")
        if type(box) is not list or type(point) is not list:
            return None
        try:
            x1, y1, x2, y2 = box
            px, py = point
        except ValueError:  # not 4 and 2 values
            return None
        if (
            not (
                type(x1) is int
                and type(y1) is int
                and type(x2) is int
                and type(y2) is int
                and type(px) is int
                and type(py) is int
            )
            and not {type(x1), type(y1), type(x2), type(y2), type(px), type(py)} <= _NUMBER_TYPES
        ):
            return None
        if not (
            -_LIMIT <= x1 <= _LIMIT
            and -_LIMIT <= y1 <= _LIMIT
            and -_LIMIT <= x2 <= _LIMIT
            and -_LIMIT <= y2 <= _LIMIT
            and -_LIMIT <= px <= _LIMIT
            and -_LIMIT <= py <= _LIMIT
        ):  # NaN fails these comparisons too
            return None
        rows.append((x1, y1, x2, y2, (x2 - x1 + 1) * (y2 - y1 + 1), px, py))
    return rows


def _plain_accuracy(rows: list[Row], data: list[Any], truth: Truth | None) -> float:
    """:func:`_accuracy_of` for an answer that :func:`_plain` read (``rows``), without re-reading it."""
    if truth is None or truth.rows is ZERO:
        return 0.0
    if len(rows) == 1 and truth.rows is not None and len(truth.rows) == 1:  # the most common case: one pair
        return float(pair_reward(rows[0], truth.rows[0]))
    preds = rows[:MAX_OBJECTS]
    if truth.rows is None:
        return _accuracy_of(data, truth)  # the numpy path, as the general reading takes it
    if len(preds) * len(truth.rows) > _PURE_PAIRS:
        cache = truth.cache
        if "float" not in cache:
            import numpy as np

            cache["float"] = np.array(truth.rows, dtype=np.float64).T.copy()
        total = matrix_total(dense_rewards(preds, cache["float"]))
    else:
        total = best_total(preds, truth.rows)
    return total / max(len(preds), len(truth.rows))


_NUMBER_TYPES = frozenset((int, float))
_BOOL_NUMBER_TYPES = frozenset((int, float, bool))
_BOOL = {bool}
_FAILING_TYPES = frozenset((type(None), str, dict))

ZERO: Any = "zero"
"""What :func:`_rows` returns for objects that make the reference fail whatever they are matched with."""


def _rows(boxes: list[Any], points: list[Any], *, reference_ok: bool = False) -> list[Row] | None:
    """The objects as :data:`Row` for the pure-Python path, :data:`ZERO`, or None (numpy path).

    Ints and floats of at most 2**24 in size are read as numbers; booleans as 0/1 (numpy's int64 promotion),
    except that boxes made of booleans only fail (numpy refuses to subtract booleans); a null, a string or an
    object anywhere fails (numpy cannot compare or subtract them), and so does a list beside another value in a box
    or point (numpy refuses an inhomogeneous array).  Anything else (lists of lists, huge or non-finite numbers)
    takes the numpy path; so do wrong lengths, unless ``reference_ok`` (the other side is well-formed
    ground truth), when they fail.
    """
    out = []
    all_bool = True
    for b, p in zip(boxes, points, strict=True):
        if type(b) is not list or len(b) != 4 or type(p) is not list or len(p) != 2:
            # WHY: against well-formed ground truth, numpy fails on such a box or point whatever the others are
            # (a ragged array, a missing second axis, or shapes that do not broadcast)
            return ZERO if reference_ok else None
        x1, y1, x2, y2 = b
        px, py = p
        types = {type(x1), type(y1), type(x2), type(y2), type(px), type(py)}
        if not types <= _NUMBER_TYPES:
            if types & _FAILING_TYPES or (list in types and len(types) > 1):
                # WHY: a list beside a scalar makes numpy refuse the array (an inhomogeneous shape)
                return ZERO
            if not types <= _BOOL_NUMBER_TYPES:
                return None
        if all_bool and {type(x1), type(y1), type(x2), type(y2)} != _BOOL:
            all_bool = False
        if not (
            -_LIMIT <= x1 <= _LIMIT
            and -_LIMIT <= y1 <= _LIMIT
            and -_LIMIT <= x2 <= _LIMIT
            and -_LIMIT <= y2 <= _LIMIT
            and -_LIMIT <= px <= _LIMIT
            and -_LIMIT <= py <= _LIMIT
        ):  # NaN fails these comparisons too
            return None
        out.append((x1, y1, x2, y2, (x2 - x1 + 1) * (y2 - y1 + 1), px, py))
    return ZERO if all_bool else out


class Truth(NamedTuple):
    """Ground-truth boxes and points (policy frame), cut to :data:`MAX_OBJECTS`.

    ``rows``: what :func:`_rows` makes of them (None: only the numpy path can read them).  ``cache``: work done
    once per ground truth for the numpy pair rewards (a GRPO group scores several completions against it).
    """

    boxes: list[Any]
    points: list[Any]
    rows: list[Row] | None
    cache: dict[str, Any]


def _objects(data: Any) -> tuple[list[Any], list[Any]] | None:
    """``bbox_2d`` and ``point_2d`` of each object of a decoded answer, cut to 120; None where the reference fails."""
    if not isinstance(data, list):  # a dict iterates its keys and a string its characters: both fail
        return None
    boxes, points = [], []
    for item in data:
        if not isinstance(item, dict) or "bbox_2d" not in item or "point_2d" not in item:
            return None
        boxes.append(item["bbox_2d"])
        points.append(item["point_2d"])
    if not boxes:  # an empty array has no second axis to split: the reference fails
        return None
    return boxes[:MAX_OBJECTS], points[:MAX_OBJECTS]


def _truth(data: Any) -> Truth | None:
    objs = _objects(data)
    return None if objs is None else Truth(objs[0], objs[1], _rows(*objs), {})


_TRUTH_CACHE: dict[str, Truth | None] = {}
_TRUTH_CACHE_SIZE = 4096


def parse_truth(solution: str | Sequence[Any]) -> Truth | None:
    """The ground truth from the official JSON string or its parsed list of objects; None when it is unusable.

    JSON strings are cached (a GRPO group scores several completions against one solution).
    """
    if not isinstance(solution, str):
        return _truth(solution)
    if solution in _TRUTH_CACHE:
        return _TRUTH_CACHE[solution]
    try:
        truth = _truth(json.loads(solution))
    except _JSON_FAILURES:
        truth = None
    if len(_TRUTH_CACHE) >= _TRUTH_CACHE_SIZE:
        _TRUTH_CACHE.clear()
    _TRUTH_CACHE[solution] = truth
    return truth


def accuracy(content: str | None, truth: Truth | None) -> float:
    """Accuracy in 0..3 of the answer's inner text against the ground truth (policy-frame pixels).

    ``content`` None (no answer tag), JSON that is not a list of objects with ``bbox_2d`` and ``point_2d``, an
    empty list, or unusable ground truth all score 0.

    >>> truth = parse_truth('[{"bbox_2d": [10, 10, 109, 109], "point_2d": [50, 50]}]')
    >>> accuracy('[{"bbox_2d": [12, 11, 110, 108], "point_2d": [60, 55]}]', truth)  # IoU, L1 and point all hit
    3.0
    >>> accuracy('[{"bbox_2d": [12, 11, 110, 108], "point_2d": [200, 55]}]', truth)  # point outside its box
    2.0
    >>> two = '[{"bbox_2d": [12, 11, 110, 108], "point_2d": [60, 55]}, {"bbox_2d": [0, 0, 5, 5], "point_2d": [1, 1]}]'
    >>> accuracy(two, truth)  # an extra prediction: divided by max(#pred, #gt) = 2
    1.5
    """
    return answer_rewards(content, truth)[1]


_DENSE_PAIRS = 64  # more (prediction, truth) pairs than this, all plain ints: numpy (:func:`_dense_accuracy`)
_PURE_PAIRS = 400  # at most this many (prediction, truth) pairs of plain numbers: pure Python; more: numpy


def _accuracy_of(data: Any, truth: Truth | None) -> float:
    if data is UNREADABLE or truth is None:
        return 0.0
    objs = _objects(data)
    if objs is None:
        return 0.0
    boxes, points = objs
    if truth.rows is ZERO:
        return 0.0
    preds = (
        _rows(boxes, points, reference_ok=True)
        if truth.rows is not None and len(boxes) * len(truth.rows) <= _PURE_PAIRS
        else None
    )
    if preds is ZERO:
        return 0.0
    if preds is not None and truth.rows is not None:
        edges = _pair_rewards(preds, truth.rows)
    else:
        found = _reward_matrix(boxes, points, truth.boxes, truth.points)
        if found is None:
            return 0.0
        edges = found
    return _best_matching(edges) / max(len(boxes), len(truth.boxes))
