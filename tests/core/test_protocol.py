import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regionreasoner.core.protocol import (
    AnswerObject,
    format_action,
    format_answer,
    parse_action,
    parse_answer,
)
from regionreasoner.core.types import ProblemKind, Severity

GOOD = (
    "<scene> A street with two cars. </scene>\n"
    "<focus> A red car seen from the side. </focus>\n"
    "<think> The target is left of the reference bbox=[300, 200, 500, 400], so it is the blue car. </think>\n"
    '<answer>[{"bbox_2d": [10,100,200,210], "point_2d": [30,110]}]</answer>'
)


def kinds(text: str, **kw: object) -> set[ProblemKind]:
    return {p.kind for p in parse_action(text, **kw).problems}  # type: ignore[arg-type]


def errors(text: str, **kw: object) -> set[ProblemKind]:
    return {p.kind for p in parse_action(text, **kw).errors}  # type: ignore[arg-type]


def test_good_output() -> None:
    a = parse_action(GOOD, bounds=(840, 840), expect_focus=True)
    assert a.ok and a.problems == []
    assert a.sections.scene == "A street with two cars."
    assert a.sections.focus == "A red car seen from the side."
    assert a.objects == [AnswerObject(box=(10, 100, 200, 210), point=(30, 110))]
    assert a.citations == [(300.0, 200.0, 500.0, 400.0)]


def test_format_round_trip() -> None:
    objs = [AnswerObject((1, 2, 30, 40), (5, 6)), AnswerObject((7.5, 8, 9, 10), None, "cup")]
    text = format_action(scene="s", focus="f", think="t", objects=objs)
    parsed = parse_action(text)
    assert parsed.objects == objs
    assert format_answer(objs[:1]) == '[{"bbox_2d": [1,2,30,40], "point_2d": [5,6]}]'
    assert parse_action(format_action(scene="s", think="t", objects=objs)).sections.focus is None


# --- model outputs the issue lists as bad input, each with its recorded problem -----------------------------


def test_unclosed_tags() -> None:
    assert errors("<scene> a </scene><think> b </think><answer>[]") == {ProblemKind.UNCLOSED_TAG}
    text = "<scene> a <think> b </think><answer>[]</answer>"
    a = parse_action(text)
    assert a.ok  # an unclosed scene is a warning
    assert ProblemKind.UNCLOSED_TAG in kinds(text)
    assert parse_action("<scene> a </scene><think> b </think><answer>[]").objects == []


def test_two_answers_fail() -> None:
    text = GOOD + '\n<answer>[{"bbox_2d": [1,1,2,2], "point_2d": [1,1]}]</answer>'
    assert ProblemKind.DUPLICATED_TAG in errors(text)
    assert not parse_action(text).ok


def test_json_with_trailing_text() -> None:
    text = '<scene>s</scene><think>t</think><answer>[{"bbox_2d": [1,2,3,4], "point_2d": [2,3]}] done</answer>'
    assert errors(text) == {ProblemKind.TRAILING_TEXT}
    assert parse_action(text).objects == []


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ('[{"bbox_2d": [NaN, 1, 2, 3], "point_2d": [1, 1]}]', ProblemKind.NON_FINITE),
        ('[{"bbox_2d": [1, 1, Infinity, 3], "point_2d": [1, 1]}]', ProblemKind.NON_FINITE),
        ('[{"bbox_2d": [1, 1, 2, 1e999], "point_2d": [1, 1]}]', ProblemKind.NON_FINITE),
        ('[{"bbox_2d": [-5, 1, 2, 3], "point_2d": [1, 1]}]', ProblemKind.NEGATIVE),
        ('[{"bbox_2d": [1, 1, 2, 3], "point_2d": [-1, 1]}]', ProblemKind.NEGATIVE),
        ('[{"bbox_2d": [1, 1, 99999999999, 3], "point_2d": [1, 1]}]', ProblemKind.OUT_OF_FRAME),
        ('[{"bbox_2d": [1, 1, ' + "9" * 400 + ', 3], "point_2d": [1, 1]}]', ProblemKind.NON_FINITE),
        ('[{"bbox_2d": [1, 1, 2, 3], "point_2d": [900, 1]}]', ProblemKind.OUT_OF_FRAME),
        ('[{"bbox_2d": [50, 1, 20, 3], "point_2d": [30, 2]}]', ProblemKind.INVERTED),
        ('[{"bbox_2d": [1, 1, 2], "point_2d": [1, 1]}]', ProblemKind.WRONG_ARITY),
        ('[{"bbox_2d": [1, 1, 2, 3], "point_2d": [1]}]', ProblemKind.WRONG_ARITY),
        ('[{"bbox_2d": [1, "1", 2, 3], "point_2d": [1, 1]}]', ProblemKind.NOT_A_NUMBER),
        ('[{"bbox_2d": [1, true, 2, 3], "point_2d": [1, 1]}]', ProblemKind.NOT_A_NUMBER),
        ('[{"point_2d": [1, 1]}]', ProblemKind.MISSING_KEY),
        ("[1, 2]", ProblemKind.NOT_AN_OBJECT),
        ('"a string"', ProblemKind.NOT_A_LIST),
        ('[{"bbox_2d": [1, 2, 3, 4]', ProblemKind.INVALID_JSON),
        ("not json at all", ProblemKind.INVALID_JSON),
        ("[" * 100000, ProblemKind.INVALID_JSON),
    ],
)
def test_bad_answers_are_errors(answer: str, kind: ProblemKind) -> None:
    a = parse_action(f"<scene>s</scene><think>t</think><answer>{answer}</answer>", bounds=(840, 840))
    assert kind in {p.kind for p in a.errors}
    assert not a.ok


def test_ten_thousand_boxes() -> None:
    items = [{"bbox_2d": [i % 800, 1, i % 800 + 5, 9], "point_2d": [i % 800 + 1, 2]} for i in range(10_000)]
    text = f"<scene>s</scene><think>t</think><answer>{json.dumps(items)}</answer>"
    t0 = time.perf_counter()
    a = parse_action(text, bounds=(840, 840))
    assert time.perf_counter() - t0 < 2.0
    assert ProblemKind.TOO_MANY_OBJECTS in {p.kind for p in a.errors}
    assert len(a.objects) == 120 and not a.ok


def test_warnings_do_not_fail_the_turn() -> None:
    text = 'preamble <think> t </think><scene> s </scene><answer>```json\n{"bbox_2d": [1, 2, 30, 40]}\n```</answer>'
    a = parse_action(text, bounds=(840, 840), expect_focus=True)
    assert a.ok
    assert {p.kind for p in a.problems} == {
        ProblemKind.TEXT_OUTSIDE_TAGS,
        ProblemKind.OUT_OF_ORDER_TAG,
        ProblemKind.NOT_A_LIST,
        ProblemKind.MISSING_KEY,
        ProblemKind.MISSING_TAG,
    }
    assert all(p.severity is Severity.WARNING for p in a.problems)
    assert a.objects == [AnswerObject((1, 2, 30, 40), None)]


def test_missing_and_unexpected_sections() -> None:
    assert errors("<scene>s</scene><think>t</think>") == {ProblemKind.MISSING_TAG}
    assert kinds("<answer>[]</answer>") == {ProblemKind.MISSING_TAG, ProblemKind.EMPTY_ANSWER}
    assert ProblemKind.UNEXPECTED_TAG in kinds(GOOD, expect_focus=False)
    assert ProblemKind.UNEXPECTED_TAG in kinds("<scene>s</think></scene><think>t</think><answer>[]</answer>")
    assert ProblemKind.UNEXPECTED_TAG in errors("<scene>s</scene></answer><answer>[]</answer>")


def test_point_outside_box_is_a_warning() -> None:
    objs, probs = parse_answer('[{"bbox_2d": [1, 2, 3, 4], "point_2d": [10, 10]}]')
    assert len(objs) == 1 and [p.kind for p in probs] == [ProblemKind.POINT_OUTSIDE_BOX]


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(["<scene>", "</scene>", "<focus>", "</focus>", "<think>", "</think>", "<answer>"]),
            st.sampled_from(["</answer>", "[", "]", "{", "}", '"bbox_2d"', '"point_2d"', ":", ",", "NaN", "1e999"]),
            st.sampled_from(["bbox=[1, 2, 3, 4]", "-3", "12", "9" * 30, " ", "\n", "```"]),
            st.text(max_size=8),
        ),
        max_size=40,
    )
)
def test_parse_action_never_raises(pieces: list[str]) -> None:
    a = parse_action("".join(pieces), bounds=(840, 840), expect_focus=True)
    assert a.ok == (a.sections.answer is not None and not a.errors)
    for obj in a.objects:
        assert 0 <= obj.box[0] <= obj.box[2] <= 840 and 0 <= obj.box[1] <= obj.box[3] <= 840
