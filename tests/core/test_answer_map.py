"""Answer objects -> regions under both answer protocols, and the coordinate rules of ``parse_answer``.

The ``official`` protocol must give exactly what the released RegionReasoner evaluation keeps of an answer
(lmsdss/RegionReasoner@f34dbfc ``test/vision_reasoner/models/vision_reasoner_model.py`` lines 101-122: ``json.loads``,
then every box rounded as ``int(v * x_factor + 0.5)`` with ``x_factor = W / 840`` (line 224), all boxes or none,
then all points or none).  :func:`released_reading` restates those rules in a few lines as the test's oracle.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regionreasoner.core.answer_map import (
    ANSWER_PROTOCOLS,
    OfficialPrediction,
    coordinate_rule,
    empty_mask,
    map_answer,
    official_answer,
    official_prediction,
    official_round,
)
from regionreasoner.core.errors import ConfigError, GeometryError
from regionreasoner.core.frames import FixedResizeFrame, NormalizedFrame, PixelFrame
from regionreasoner.core.geometry import Box, Point
from regionreasoner.core.masks import decode_rle
from regionreasoner.core.protocol import FRAME_TOLERANCE, AnswerObject, parse_action, parse_answer
from regionreasoner.core.types import ProblemKind, Severity

RR = FixedResizeFrame(840, 840)
SIZE = (420, 210)  # x_factor 0.5, y_factor 0.25: exact in binary, so the expected values are easy to check by hand

_RAISES = (TypeError, KeyError, IndexError, ValueError, OverflowError, RecursionError)


def released_reading(answer: str, width: int, height: int) -> tuple[list[list[int]], list[list[int]]]:
    """The released code's boxes and points for an answer's inner text: what a Python reader of it gets.

    Every coordinate is ``int(v * factor + 0.5)`` with the factor computed first; an exception while reading the
    boxes keeps no box and no point, one while reading the points keeps the boxes and no point.
    """
    factors = (width / 840, height / 840)
    try:
        data = json.loads(answer)
    except (ValueError, RecursionError):
        return [], []
    try:
        boxes = [[int(obj["bbox_2d"][k] * factors[k % 2] + 0.5) for k in range(4)] for obj in data]
    except _RAISES:
        return [], []
    try:
        points = [[int(obj["point_2d"][k] * factors[k] + 0.5) for k in range(2)] for obj in data]
    except _RAISES:
        points = []
    return boxes, points


def as_lists(prediction: OfficialPrediction) -> tuple[list[list[int]], list[list[int]]]:
    return [list(b) for b in prediction.boxes], [list(p) for p in prediction.points]


# ------------------------------------------------------------------------------------------- official rounding


@settings(max_examples=500, deadline=None)
@given(
    v=st.one_of(st.integers(-5000, 5000), st.floats(-5000, 5000, allow_nan=False)),
    width=st.integers(1, 8000),
)
def test_official_round_is_the_released_expression(v: float, width: int) -> None:
    factor = width / 840
    expected = int(v * factor + 0.5)
    assert official_round(v, factor) == expected
    # int() truncates toward zero: for a negative sum it is the ceiling, not the floor of frames' half-up rounding.
    x = v * factor + 0.5
    assert expected == (math.floor(x) if x >= 0 else math.ceil(x))


def test_official_round_truncates_negative_values_toward_zero() -> None:
    assert [official_round(v, 0.5) for v in (-2, -3, -4, -101)] == [0, -1, -1, -50]
    assert [math.floor(v * 0.5 + 0.5) for v in (-2, -3, -4, -101)] == [-1, -1, -2, -50]  # what floor would give
    assert official_round(1e308, 2.0) is None  # the product overflows: the released code raises there


# --------------------------------------------------------------------------- the official protocol, by hand


def test_official_keeps_negative_and_above_frame_coordinates_rounded() -> None:
    objects, problems = parse_answer(
        '[{"bbox_2d": [-2, -6, 200, 404], "point_2d": [100, 200]},'
        ' {"bbox_2d": [600, 400, 845, 850], "point_2d": [700, 600]}]',
        bounds=(840, 840),
        coordinates="official",
    )
    assert not [p for p in problems if p.severity is Severity.ERROR]
    assert {p.kind for p in problems} == {ProblemKind.NEGATIVE, ProblemKind.OUT_OF_FRAME}
    mapped = map_answer(objects, RR, SIZE, "official")
    assert mapped.ok
    assert mapped.official == OfficialPrediction(
        boxes=((0, -1, 100, 101), (300, 100, 423, 213)), points=((50, 50), (350, 150))
    )
    # Stored regions are the same integer boxes clipped to the 420x210 image (memory holds in-image regions).
    assert [r.box for r in mapped.regions] == [Box(0, 0, 100, 101), Box(300, 100, 420, 210)]
    assert [r.point for r in mapped.regions] == [Point(50, 50), Point(350, 150)]
    assert all(r.mask is None for r in mapped.regions)


def test_official_missing_point_keeps_every_box_with_no_point_and_an_empty_mask() -> None:
    objects, problems = parse_answer(
        '[{"bbox_2d": [400, 0, 600, 200], "point_2d": [500, 100]}, {"bbox_2d": [0, 0, 100, 100]}]',
        coordinates="official",
    )
    assert ProblemKind.MISSING_KEY in {p.kind for p in problems}
    mapped = map_answer(objects, RR, SIZE, "official")
    assert mapped.ok and mapped.official is not None
    assert mapped.official.boxes == ((200, 0, 300, 50), (0, 0, 50, 25)) and mapped.official.points == ()
    assert mapped.official.mask_is_empty
    assert [r.point for r in mapped.regions] == [None, None]
    for region in mapped.regions:
        assert region.mask is not None and region.mask.size == (210, 420)
        assert not decode_rle(region.mask).any()


@pytest.mark.parametrize("point", ["[1]", '"12"', "7", "[1, null]", "[NaN, 1]", '{"x": 1}'])
def test_official_unreadable_point_keeps_the_boxes(point: str) -> None:
    text = (
        f'[{{"bbox_2d": [10, 20, 30, 40], "point_2d": [20, 30]}}, {{"bbox_2d": [10, 20, 30, 40], "point_2d": {point}}}]'
    )
    assert official_answer(text, RR, SIZE) == OfficialPrediction(boxes=((5, 5, 15, 10), (5, 5, 15, 10)))
    assert as_lists(official_answer(text, RR, SIZE)) == released_reading(text, *SIZE)
    objects, problems = parse_answer(text, coordinates="official")
    assert len(objects) == 2 and not [p for p in problems if p.severity is Severity.ERROR]


def test_official_inverted_box_is_scored_and_cited_but_is_no_region() -> None:
    objects, problems = parse_answer('[{"bbox_2d": [200, 0, 100, 100], "point_2d": [150, 50]}]', coordinates="official")
    assert ProblemKind.INVERTED in {p.kind for p in problems}
    assert all(p.severity is Severity.WARNING for p in problems)
    mapped = map_answer(objects, RR, SIZE, "official")
    assert mapped.ok and mapped.regions == []
    assert mapped.official is not None and mapped.official.boxes == ((100, 0, 50, 25),)
    assert mapped.official.pixel_boxes() == [Box(100, 0, 50, 25)]
    assert [p.kind for p in mapped.problems] == [ProblemKind.INVERTED]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('```json\n[{"bbox_2d": [10, 20, 30, 40], "point_2d": [20, 30]}]\n```', ((), ())),  # json.loads fails
        ('{"bbox_2d": [10, 20, 30, 40], "point_2d": [20, 30]}', ((), ())),  # iterating a dict gives its keys
        ('[{"bbox_2d": [10, 20, 30, 40, 99, "x"], "point_2d": [20, 30, 5]}]', (((5, 5, 15, 10),), ((10, 8),))),
        ('[{"bbox_2d": [true, 20, 30, 40], "point_2d": [20, false]}]', (((1, 5, 15, 10),), ((10, 0),))),
        ('[{"bbox_2d": [10, 20, 30], "point_2d": [20, 30]}]', ((), ())),
        ('[{"bbox_2d": [10, "20", 30, 40], "point_2d": [20, 30]}]', ((), ())),
        ('[{"bbox_2d": [10, 20, 30, Infinity], "point_2d": [20, 30]}]', ((), ())),
        ('[{"point_2d": [20, 30]}]', ((), ())),
        ("[]", ((), ())),
        ("[" * 5000, ((), ())),
    ],
)
def test_official_answer_reads_what_the_released_code_reads(answer: str, expected: tuple[Any, Any]) -> None:
    assert official_answer(answer, RR, SIZE) == OfficialPrediction(boxes=expected[0], points=expected[1])
    boxes, points = released_reading(answer, *SIZE)
    assert ([list(b) for b in expected[0]], [list(p) for p in expected[1]]) == (boxes, points)


def test_official_overflow_in_pixels() -> None:
    size = (1680, 1680)  # factor 2: 1e308 * 2 overflows although 1e308 is a finite JSON number
    box_overflow = '[{"bbox_2d": [1e308, 0, 10, 10], "point_2d": [1, 1]}]'
    point_overflow = '[{"bbox_2d": [0, 0, 10, 10], "point_2d": [1e308, 1]}]'
    assert official_answer(box_overflow, RR, size) == OfficialPrediction()
    assert official_answer(point_overflow, RR, size) == OfficialPrediction(boxes=((0, 0, 20, 20),))
    for text in (box_overflow, point_overflow):
        assert as_lists(official_answer(text, RR, size)) == released_reading(text, *size)
    objects, _ = parse_answer(box_overflow, coordinates="official")
    mapped = map_answer(objects, RR, size, "official")
    assert not mapped.ok and mapped.regions == [] and ProblemKind.NON_FINITE in {p.kind for p in mapped.problems}
    assert official_answer(None, RR, size) == OfficialPrediction()


_ODD = st.sampled_from([True, False, None, "7", [], 1e308, -1e308, 10**400, math.nan, math.inf])


@st.composite
def value(draw: st.DrawFn) -> Any:
    """Mostly a coordinate (often outside an 840 frame), sometimes something the released code cannot read."""
    kind = draw(st.integers(0, 39))
    if kind == 0:
        return draw(_ODD)
    if kind < 8:
        return draw(st.floats(-3000, 3000, allow_nan=False))
    return draw(st.integers(-100, 1000))


@st.composite
def coords(draw: st.DrawFn, arity: int) -> Any:
    n = arity if draw(st.integers(0, 9)) else draw(st.integers(0, arity + 2))
    return [draw(value()) for _ in range(n)] if draw(st.integers(0, 19)) else draw(value())


@st.composite
def noisy_object(draw: st.DrawFn) -> Any:
    obj: dict[str, Any] = {}
    if draw(st.integers(0, 29)):
        obj["bbox_2d"] = draw(coords(4))
    if draw(st.integers(0, 5)):
        obj["point_2d"] = draw(coords(2))
    return obj if draw(st.integers(0, 49)) else draw(value())


@settings(max_examples=400, deadline=None)
@given(
    objects=st.lists(noisy_object(), max_size=5),
    size=st.tuples(st.integers(1, 4000), st.integers(1, 4000)),
    bare=st.integers(0, 14),
)
def test_official_answer_equals_the_released_reading_on_noisy_answers(
    objects: list[Any], size: tuple[int, int], bare: int
) -> None:
    data: Any = objects[0] if bare == 0 and objects else objects
    text = json.dumps(data)
    assert as_lists(official_answer(text, RR, size)) == released_reading(text, *size)
    # The stored regions are always valid boxes inside the image, whatever the answer.
    parsed, problems = parse_answer(text, coordinates="official", max_objects=None)
    if not [p for p in problems if p.severity is Severity.ERROR]:
        for region in map_answer(parsed, RR, size, "official").regions:
            assert region.box.is_valid() and region.box.within(*size)
            assert region.point is None or (0 <= region.point.x <= size[0] and 0 <= region.point.y <= size[1])


def test_official_factor_of_other_frames() -> None:
    obj = [AnswerObject(box=(-10.0, 0.0, 500.0, 1000.0), point=(250.0, 500.0))]
    prediction, _ = official_prediction(obj, NormalizedFrame(1000), (640, 480))
    assert prediction.boxes == ((int(-10 * 0.64 + 0.5), 0, 320, 480),) == ((-5, 0, 320, 480),)
    prediction, _ = official_prediction(obj, PixelFrame(), (640, 480))
    assert prediction.boxes == ((-9, 0, 500, 1000),)  # -10 + 0.5 truncates to -9


# ------------------------------------------------------------------------------------- the default protocol


def test_default_maps_exactly_and_clips() -> None:
    objects = [AnswerObject(box=(-3.0, 1.0, 845.0, 839.0), point=(842.0, 2.0), label="dog")]
    (region,) = map_answer(objects, RR, (1000, 500), "regionreasoner").regions
    assert region.box == Box(0.0, 500 / 840, 1000.0, 839 * 500 / 840)  # float pixels, no rounding
    assert region.point == Point(1000.0, 2 * 500 / 840) and region.label == "dog" and region.mask is None
    assert map_answer(objects, RR, (1000, 500), "regionreasoner").official is None


def test_tolerant_rule_clips_slightly_out_of_frame_and_fails_far_out() -> None:
    assert coordinate_rule("regionreasoner") == "tolerant"
    text = "<scene>s</scene><think>t</think><answer>{}</answer>"
    slight = parse_action(
        text.format('[{"bbox_2d": [-3, 0, 845, 200], "point_2d": [842, 100]}]'),
        bounds=(840, 840),
        coordinates="tolerant",
    )
    assert slight.ok and slight.objects == [AnswerObject(box=(0, 0, 840, 200), point=(840, 100))]
    assert {(p.kind, p.severity) for p in slight.problems} == {
        (ProblemKind.NEGATIVE, Severity.WARNING),
        (ProblemKind.OUT_OF_FRAME, Severity.WARNING),
    }
    edge = 840 * (1 + FRAME_TOLERANCE)
    for bad, kind in [
        (f"[0, 0, {edge + 0.5}, 10]", ProblemKind.OUT_OF_FRAME),
        ("[-9, 0, 10, 10]", ProblemKind.NEGATIVE),
    ]:
        far = parse_action(
            text.format(f'[{{"bbox_2d": {bad}, "point_2d": [5, 5]}}]'), bounds=(840, 840), coordinates="tolerant"
        )
        assert not far.ok and kind in {p.kind for p in far.errors}
    at_edge = parse_action(
        text.format(f'[{{"bbox_2d": [-8.4, 0, {edge}, 10]}}]'), bounds=(840, 840), coordinates="tolerant"
    )
    assert at_edge.ok and at_edge.objects[0].box == (0, 0, 840, 10)
    # An inverted box stays an error even when clipping would hide it.
    inverted = parse_action(text.format('[{"bbox_2d": [845, 0, 842, 10]}]'), bounds=(840, 840), coordinates="tolerant")
    assert ProblemKind.INVERTED in {p.kind for p in inverted.errors}
    # Without bounds there is no extent to measure against: negatives are errors, as under strict.
    assert not parse_action(text.format('[{"bbox_2d": [-1, 0, 5, 5]}]'), coordinates="tolerant").ok


def test_strict_is_still_the_parser_default() -> None:
    objects, problems = parse_answer('[{"bbox_2d": [-1, 0, 5, 5], "point_2d": [1, 1]}]', bounds=(840, 840))
    assert objects == [] and [(p.kind, p.severity) for p in problems] == [(ProblemKind.NEGATIVE, Severity.ERROR)]


# ------------------------------------------------------------------------------------------------ misuse


def test_bad_keywords_are_config_errors() -> None:
    assert ANSWER_PROTOCOLS == ("regionreasoner", "official")
    with pytest.raises(ConfigError, match="answer protocol 'rr'"):
        map_answer([], RR, SIZE, "rr")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="answer protocol"):
        coordinate_rule("rr")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="coordinates='loose'"):
        parse_action("<answer>[]</answer>", coordinates="loose")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_objects=0"):
        parse_answer("[]", max_objects=0)
    for protocol in ANSWER_PROTOCOLS:
        with pytest.raises(GeometryError, match="positive"):
            map_answer([AnswerObject(box=(0, 0, 1, 1))], RR, (0, 10), protocol)


def test_empty_mask() -> None:
    mask = decode_rle(empty_mask((5, 3)))
    assert mask.shape == (3, 5) and mask.dtype == np.bool_ and not mask.any()
    with pytest.raises(GeometryError):
        empty_mask((0, 3))
