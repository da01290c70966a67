"""Model output never crashes a turn (issue 9, defect 2): whatever the policy writes, the turn is recorded.

A model-caused failure is data: a bad answer makes a recorded failed turn, a bad tool call becomes a
``<tool_response>error: ...</tool_response>`` observation and a ``tool_error`` problem, and the dialogue goes on.
The regressions reproduce each crash found (a >4300-digit integer in the answer JSON, tool calls whose
``arguments`` is a number, a boolean or a list, deeply nested or huge-integer tool-call JSON, JSON escapes that
decode to lone surrogates, which the database cannot store); the hypothesis
tests feed arbitrary text and JSON to :func:`parse_action` and through the think -> tools loop of a real agent.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.demo_scene import demo_scene
from regionreasoner.core.errors import ToolError
from regionreasoner.core.frames import FixedResizeFrame
from regionreasoner.core.images import LoadedImage, load_image
from regionreasoner.core.protocol import ToolCall, parse_action, parse_answer, parse_tool_call
from regionreasoner.core.types import ProblemKind, Severity, Turn, TurnStatus
from regionreasoner.policies.base import Completion, Policy, PolicyRequest
from regionreasoner.policies.scripted import ScriptedPolicy
from regionreasoner.tools.base import Tool, ToolResult

ANSWER = '<answer>[{"bbox_2d": [10,10,100,100], "point_2d": [50,50]}]</answer>'
HUGE = "1" * 5000  # past CPython's int-string conversion limit (4300 digits), which json.loads obeys
DEEP = "[" * 100_000 + "]" * 100_000  # past the recursion limit of json's scanner
SURROGATE = r'"\ud800x"'  # a JSON string whose escape decodes to a lone surrogate: no database can store it


class ImageSizeTool(Tool):
    """An explicit fake: reports the image size in the unit it is asked for, and counts its calls."""

    name: ClassVar[str] = "image_size"
    description: ClassVar[str] = "the image's width and height"
    inputs: ClassVar[Mapping[str, Any]] = {"type": "object", "properties": {"unit": {"type": "string"}}}

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def run(self, image: LoadedImage, arguments: Mapping[str, Any]) -> ToolResult:
        self.calls += 1
        return ToolResult(text=f"{image.width}x{image.height} {arguments.get('unit', 'px')}")


class ToolScript(ScriptedPolicy):
    """ScriptedPolicy for turns with tool calls whose observation the script cannot know in advance.

    A script is written without its ``<tool_response>``; when the agent continues the message after the response
    it appended, that response is spliced into the script right after its ``</tool_call>``, and the script goes on
    (this reaches into ScriptedPolicy's current script, ``_current``: a test fake, not an API).
    """

    def _serve(self, request: PolicyRequest) -> Completion:
        prefix, script = request.assistant_prefix, self._current
        if script is not None and prefix.endswith("</tool_response>\n") and not script.startswith(prefix):
            head = prefix[: prefix.rfind("\n<tool_response>")]
            if script.startswith(head):
                self._current = prefix + script[len(head) :]
        return super()._serve(request)


@pytest.fixture(scope="module")
def image() -> LoadedImage:
    return load_image(demo_scene()[0])


@pytest.fixture(scope="module")
def agent() -> Iterator[RegionAgent]:
    """One agent for the module (building one costs ~0.5 s): tests append the turns they script to its policy."""
    with tempfile.TemporaryDirectory() as tmp:
        policy = ToolScript([])
        a = RegionAgent(
            policy, memory=f"sqlite:///{Path(tmp) / 'memory.db'}", tools=[ImageSizeTool()], constrained=False
        )
        yield a
        a.close()


def ask(agent: RegionAgent, image: LoadedImage, *texts: str, question: str = "Find the ball.") -> list[Turn]:
    """Ask one turn per scripted text in a fresh dialogue; every turn must come back and be stored."""
    policy = agent.policy
    assert isinstance(policy, ScriptedPolicy)
    del policy.turns[len(policy.turns) - policy.remaining :]  # what a test that failed mid-dialogue left unasked
    policy.turns.extend(texts)
    dlg = agent.dialogue(image.image)
    turns = [dlg.ask(question) for _ in texts]
    stored = agent.dialogue(id=dlg.id).turns()
    assert [t.index for t in stored] == [t.index for t in turns]
    assert [t.status for t in stored] == [t.status for t in turns]
    return turns


def tool_turn(call: str) -> str:
    """A well-formed turn whose <think> makes one tool call written as ``call`` (the JSON inside the tags)."""
    return f"<scene> a park </scene>\n<think> size? <tool_call>{call}</tool_call> done </think>\n{ANSWER}"


# --- regressions: each crash found, reproduced --------------------------------------------------------------------


def test_huge_integer_in_answer_is_a_problem_not_a_crash() -> None:
    text = f'<scene>s</scene><think>t</think><answer>[{{"bbox_2d": [{HUGE}, 1, 2, 3], "point_2d": [1, 2]}}]</answer>'
    a = parse_action(text, bounds=(840, 840))
    assert not a.ok and a.objects == []
    assert [p.kind for p in a.errors] == [ProblemKind.NON_FINITE]
    objects, problems = parse_answer(f'[{{"bbox_2d": [1, 1, 2, -{HUGE}]}}]', coordinates="official")
    assert objects == [] and ProblemKind.NON_FINITE in {p.kind for p in problems}
    # anywhere in the JSON, not only in coordinates
    objects, problems = parse_answer(f'[{{"bbox_2d": [1, 1, 2, 3], "point_2d": [1, 2], "n": {HUGE}}}]')
    assert len(objects) == 1 and not [p for p in problems if p.severity is Severity.ERROR]


def test_huge_integer_in_answer_fails_the_turn(agent: RegionAgent, image: LoadedImage) -> None:
    bad = f'<scene> a </scene>\n<think> t </think>\n<answer>[{{"bbox_2d": [{HUGE}, 1, 2, 3]}}]</answer>'
    good = f"<scene> a </scene>\n<think> t </think>\n{ANSWER}"
    failed, ok = ask(agent, image, bad, good)
    assert failed.status is TurnStatus.FAILED and ProblemKind.NON_FINITE in {p.kind for p in failed.problems}
    assert ok.status is TurnStatus.OK and len(ok.regions) == 1


def test_label_with_a_lone_surrogate_is_dropped_with_a_warning(agent: RegionAgent, image: LoadedImage) -> None:
    answer = f'<answer>[{{"bbox_2d": [10,10,100,100], "point_2d": [50,50], "label": {SURROGATE}}}]</answer>'
    (turn,) = ask(agent, image, f"<scene> a </scene>\n<think> t </think>\n{answer}")
    assert turn.status is TurnStatus.OK and turn.regions[0].label is None
    assert [p.kind for p in turn.problems] == [ProblemKind.INVALID_JSON]


class _PiecePolicy(Policy):
    """Serves each piece of a turn by its stop string, whatever the prefix (a server continues any text)."""

    frame = FixedResizeFrame(840, 840)
    PIECES: ClassVar[dict[str, str]] = {
        "</scene>": "<scene> a \ud800 </scene>",
        "</think>": "\n<think> t </think>",
        "</answer>": "\n" + ANSWER,
    }

    def complete_batch(self, requests: Sequence[PolicyRequest]) -> list[Completion]:
        return [Completion(text=self.PIECES[r.stop[0]], finish_reason="stop", stop=r.stop[0]) for r in requests]


def test_model_text_with_a_lone_surrogate_is_a_recorded_turn(tmp_path: Path, image: LoadedImage) -> None:
    # An OpenAI-compatible server can send a lone surrogate as a JSON escape; it used to fail the turn in remember.
    with RegionAgent(_PiecePolicy(), memory=f"sqlite:///{tmp_path}/m.db", constrained=False) as agent:
        turn = agent.dialogue(image.image).ask("find the square")
        assert turn.status is TurnStatus.OK and "\ufffd" in turn.raw_text and "\ud800" not in turn.raw_text
        assert ProblemKind.INVALID_TEXT in [p.kind for p in turn.problems]
        assert agent.dialogue(id=turn.dialogue_id).ask("find it again").status is TurnStatus.OK


def test_deeply_nested_value_in_answer_is_a_problem() -> None:
    deep = "[" * 900 + "]" * 900  # decodes near the recursion limit; its repr would not
    objects, problems = parse_answer(f'[{{"bbox_2d": [{deep}, 1, 2, 3]}}]')
    errors = [p for p in problems if p.severity is Severity.ERROR]
    assert objects == [] and [p.kind for p in errors] == [ProblemKind.NOT_A_NUMBER]
    assert len(errors[0].message) < 200


@pytest.mark.parametrize(
    "call",
    [
        '{"name": "image_size", "arguments": 5}',
        '{"name": "image_size", "arguments": true}',
        '{"name": "image_size", "arguments": ["unit"]}',
        '{"name": "image_size", "arguments": [[1]]}',
        '{"name": "image_size", "arguments": "unit"}',
        '{"name": "image_size", "arguments": {"unit": [[1]]}}',
        '{"name": "image_size", "arguments": {"unit": ' + "[" * 900 + "]" * 900 + "}}",
        '{"name": "image_size", "arguments": {"unit": ' + HUGE + "}}",
        '{"name": "image_size", "arguments": {"unit": "cm"}, "x": ' + DEEP + "}",
        DEEP,
        '{"name": ' + HUGE + "}",
        "[" * 900 + "]" * 900,
        '{"name": "image_size", "arguments": {"unit": ' + SURROGATE + "}}",
        '{"name": "image_size", "arguments": {' + SURROGATE + ": 1}}",
        '{"name": ' + SURROGATE + "}",
        '{"name": "image_size", "arguments": {' + ", ".join(f'"{"k" * 500}{i}": 1' for i in range(50)) + "}}",
    ],
    ids=[
        "args-int",
        "args-true",
        "args-list",
        "args-unhashable-list",
        "args-string",
        "arg-wrong-type",
        "arg-nested",
        "arg-huge-int",
        "call-deep",
        "deep",
        "name-huge-int",
        "nested-900",
        "arg-surrogate",
        "key-surrogate",
        "name-surrogate",
        "many-long-keys",
    ],
)
def test_bad_tool_call_is_an_observation(agent: RegionAgent, image: LoadedImage, call: str) -> None:
    (turn,) = ask(agent, image, tool_turn(call))
    assert turn.status is TurnStatus.OK, turn.problems
    tool_errors = [p for p in turn.problems if p.kind is ProblemKind.TOOL_ERROR]
    assert len(tool_errors) == 1 and tool_errors[0].severity is Severity.WARNING
    assert "<tool_response>error: " in (turn.sections.think or "")
    assert len(tool_errors[0].message) < 400  # the observation names the fix, it does not echo the call


@pytest.mark.parametrize("arguments", [5, True, ["unit"], [[1]], "unit", {"unit": 5}, {1: "x"}])
def test_tool_call_checks_argument_shape(image: LoadedImage, arguments: Any) -> None:
    tool = ImageSizeTool()
    with pytest.raises(ToolError):
        tool(image, arguments)
    assert tool.calls == 0


def test_parse_tool_call() -> None:
    assert parse_tool_call('{"name": "zoom", "arguments": {"box": [1, 2, 3, 4]}}') == ToolCall(
        name="zoom", arguments={"box": [1, 2, 3, 4]}
    )
    assert parse_tool_call(' {"name": "zoom"} ') == ToolCall(name="zoom", arguments={})
    assert parse_tool_call('{"name": "zoom", "arguments": null}') == ToolCall(name="zoom", arguments={})
    for bad, fix in [
        ("", "is not JSON"),
        ("{", "is not JSON"),
        ('{"name": "zoom"} x', "is not JSON"),
        ('["zoom"]', '{"name"'),
        ('{"arguments": {}}', '{"name"'),
        ('{"name": "zoom", "arguments": 5}', "must be a JSON object, not 5"),
        (DEEP, "nested too deeply"),
        ('{"name": "zoom", "arguments": {"a": ' + "[" * 40 + "]" * 40 + "}}", "nested too deeply"),
        ('{"name": "zoom", "arguments": {"a": ' + SURROGATE + "}}", "lone surrogate"),
    ]:
        with pytest.raises(ToolError, match=fix):
            parse_tool_call(bad)


# --- properties ---------------------------------------------------------------------------------------------------


class _Bare(str):
    """A JSON literal written as is (json.dumps cannot write a 5000-digit integer without converting it)."""


BARE = st.sampled_from(
    [HUGE, "-" + HUGE, "1e400", "-1e400", "NaN", "Infinity", "-Infinity", "9" * 400, "0.1", SURROGATE, '"image_size"']
).map(_Bare)


def _write(value: Any) -> str:
    """``value`` as JSON text, :class:`_Bare` literals as they are (so huge integers and NaN reach the parser)."""
    if isinstance(value, _Bare):
        return str(value)
    if isinstance(value, list):
        return "[" + ",".join(_write(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_write(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return json.dumps(value)


LEAF = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8), BARE)
"""JSON scalars, including what ``json.dumps`` would never write (5000-digit integers, 1e400, NaN)."""
KEY = st.one_of(st.sampled_from(["bbox_2d", "point_2d", "label", "name", "arguments", "unit"]), st.text(max_size=5))
JSON = st.recursive(
    LEAF, lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(KEY, inner, max_size=4)), max_leaves=20
)
NUMBER = st.one_of(st.integers(-10, 2000), st.floats(-10, 2000), BARE)
OBJECT = st.fixed_dictionaries(
    {"bbox_2d": st.one_of(st.lists(NUMBER, min_size=3, max_size=5), JSON)},
    optional={"point_2d": st.one_of(st.lists(NUMBER, min_size=1, max_size=3), JSON), "label": JSON},
)
ANSWER_JSON = st.one_of(st.lists(OBJECT, max_size=4), JSON, OBJECT)
NOISE = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["<scene>", "</scene>", "<focus>", "</focus>", "<think>", "</think>", "<answer>", "</answer>"]),
    st.sampled_from(["```json\n", "\n```", "bbox=[1, 2, 3, 4]", f"bbox=[{HUGE}, 1, 2, 3]", "[" * 2000, "\ud800"]),
)


@settings(max_examples=400, deadline=None)
@given(
    answer=ANSWER_JSON,
    before=st.lists(NOISE, max_size=4),
    after=st.lists(NOISE, max_size=3),
    rule=st.sampled_from(["strict", "tolerant", "official"]),
    bounds=st.sampled_from([None, (840.0, 840.0), (1000.0, 1000.0)]),
)
def test_parse_action_never_raises_on_any_answer_json(
    answer: Any, before: list[str], after: list[str], rule: Any, bounds: tuple[float, float] | None
) -> None:
    text = "".join(before) + "<answer>" + _write(answer) + "</answer>" + "".join(after)
    a = parse_action(text, bounds=bounds, coordinates=rule, expect_focus=None)
    assert a.ok == (a.sections.answer is not None and not a.errors)
    for obj in a.objects:
        assert all(math.isfinite(v) for v in (*obj.box, *(obj.point or ())))
        assert rule == "official" or (obj.box[0] <= obj.box[2] and obj.box[1] <= obj.box[3])
    for p in a.problems:
        assert len(p.message) < 1000


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_parse_action_never_raises_on_any_text(text: str) -> None:
    a = parse_action(text, bounds=(840, 840), expect_focus=True, coordinates="tolerant")
    assert a.ok == (a.sections.answer is not None and not a.errors)


@settings(max_examples=200, deadline=None)
@given(st.one_of(JSON.map(_write), st.text(max_size=40)))
def test_parse_tool_call_raises_only_tool_error(raw: str) -> None:
    try:
        call = parse_tool_call(raw)
    except ToolError:
        return
    assert isinstance(call.name, str) and isinstance(call.arguments, Mapping)
    assert all(isinstance(k, str) for k in call.arguments)


TOOL_CALL = st.one_of(
    st.fixed_dictionaries(  # close to a good call, so that the tool runs in a fair share of examples
        {"name": st.just("image_size")},
        optional={"arguments": st.fixed_dictionaries({}, optional={"unit": st.one_of(st.text(max_size=8), JSON)})},
    ).map(_write),
    st.fixed_dictionaries(
        {"name": st.one_of(st.just("image_size"), JSON)},
        optional={"arguments": st.one_of(st.dictionaries(KEY, JSON, max_size=3), JSON)},
    ).map(_write),
    JSON.map(_write),
    st.text(max_size=20),
)


FOLLOW_UP = f"<scene> a </scene>\n<think> t </think>\n{ANSWER}"
FIXTURES = [HealthCheck.function_scoped_fixture]  # the module-scoped agent is meant to be shared by examples


@settings(max_examples=100, deadline=None, suppress_health_check=FIXTURES)
@given(call=TOOL_CALL, after=st.sampled_from([ANSWER, "<answer>[</answer>", f"<answer>[{HUGE}]</answer>"]))
def test_any_tool_call_json_is_an_observation_and_the_turn_is_stored(
    agent: RegionAgent, image: LoadedImage, call: str, after: str
) -> None:
    text = f"<scene> a park </scene>\n<think> size? <tool_call>{call}</tool_call> so </think>\n{after}"
    turn, follow_up = ask(agent, image, text, FOLLOW_UP)
    assert turn.status is (TurnStatus.OK if after == ANSWER else TurnStatus.FAILED)
    think = turn.sections.think or ""
    assert think.count("<tool_response>") == 1
    ran = "<tool_response>error: " not in think
    event("the tool ran" if ran else "an error observation")
    assert ran == (ProblemKind.TOOL_ERROR not in {p.kind for p in turn.problems})
    assert follow_up.status is TurnStatus.OK


THINK_PIECE = st.one_of(
    TOOL_CALL.map(lambda call: f"<tool_call>{call}</tool_call>"),
    st.sampled_from(["<tool_call>", "</tool_call>", "</think>", "<tool_response>", "\n", " so "]),
    st.text(max_size=10),
)


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURES)
@given(pieces=st.lists(THINK_PIECE, max_size=6), after=st.sampled_from([ANSWER, "<answer>[</answer>", ""]))
def test_any_think_with_tool_calls_is_stored_and_the_dialogue_goes_on(
    agent: RegionAgent, image: LoadedImage, pieces: list[str], after: str
) -> None:
    text = "<scene> a park </scene>\n<think> " + "".join(pieces) + " </think>\n" + after
    turn, follow_up = ask(agent, image, text, FOLLOW_UP)
    assert turn.status in (TurnStatus.OK, TurnStatus.FAILED)
    assert sum(p.kind is ProblemKind.TOOL_ERROR for p in turn.problems) <= 3  # max_tool_iterations
    assert follow_up.status is TurnStatus.OK
