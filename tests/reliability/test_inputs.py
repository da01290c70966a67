"""Every input is validated at the boundary, before any model call (issue 9, defect 4).

Before the fix, a lone surrogate in a question failed in ``remember`` after the model ran (the turn was lost); a region
number >= 2**63 (``R99999999999999999999``) raised OverflowError from SQLite; a served ``image`` that was a number or
a dict raised AttributeError, a NUL in an image path ValueError, a missing ``question`` TypeError, an integer ``key``
a pydantic ValidationError after the model ran; inline boxes with exponents, NaN or three numbers and ``R0`` were
passed to the model as plain text, silently.  Now each is a typed error (``core.errors``) raised by the ``resolve``
node or by ``InputState`` itself, before the policy is called, and nothing is stored.  The graph is compiled from
``agent.graph.builder`` with an in-memory checkpointer and invoked with JSON-like inputs, as a server does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from langgraph.checkpoint.memory import InMemorySaver

import regionreasoner.agent.context as context_module
from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.context import AppContext, Resources, ServerConfig
from regionreasoner.agent.demo_scene import demo_scene
from regionreasoner.agent.graph import builder
from regionreasoner.core.errors import (
    GeometryError,
    InputError,
    RegionNotFoundError,
    RegionReasonerError,
)
from regionreasoner.core.images import load_image
from regionreasoner.core.protocol import AnswerObject, format_action
from regionreasoner.core.types import TurnDraft
from regionreasoner.memory import RegionMemory
from regionreasoner.policies.scripted import ScriptedPolicy

TURN = format_action(scene="a park", think="the ball", objects=[AnswerObject(box=(10, 10, 100, 100), point=(55, 55))])
IMAGE = load_image(demo_scene()[0])
DATA_URL = IMAGE.to_data_url()


class Served:
    """The compiled graph with an in-memory checkpointer, one memory, a scripted policy, served-style inputs."""

    def __init__(self, memory: RegionMemory, config: ServerConfig) -> None:
        self.memory = memory
        self.config = config
        self.graph: Any = builder.compile(checkpointer=InMemorySaver())
        self.policy = ScriptedPolicy([TURN] * 4, frame="fixed:840x840")

    def ask(self, inputs: Any, thread: str | None = None) -> dict[str, Any]:
        self.policy = ScriptedPolicy([TURN] * 4, frame="fixed:840x840")
        ctx = AppContext(policy=self.policy, memory=self.memory, settings=self.config)
        config = {"configurable": {"thread_id": thread or uuid.uuid4().hex}}
        out = self.graph.invoke(inputs, config, context=ctx)
        assert isinstance(out, dict)
        return out

    def stored(self) -> int:
        return sum(len(d.turns) for d in self.memory.list_dialogues(limit=1000))

    def dialogues(self) -> int:
        return len(self.memory.list_dialogues(limit=1000))


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    root = tmp_path / "images-root"
    root.mkdir()
    IMAGE.image.save(root / "scene.png")
    return root


@pytest.fixture
def served(tmp_path: Path, image_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    config = ServerConfig(memory_url=f"sqlite:///{tmp_path}/server.db", image_root=image_root)
    resources = Resources(config)
    monkeypatch.setattr(context_module, "_RESOURCES", resources)
    memory = RegionMemory(f"sqlite:///{tmp_path}/memory.db")
    yield Served(memory, config)
    memory.close()
    resources.close()


def refused(s: Served, inputs: Any, error: type[Exception], match: str) -> None:
    """``inputs`` raise ``error`` before any model call, and nothing is stored."""
    before = s.stored(), s.dialogues()
    with pytest.raises(error, match=match):
        s.ask(inputs)
    assert s.policy.remaining == 4, "the model ran"
    assert (s.stored(), s.dialogues()) == before


# -- the regressions of the issue -----------------------------------------------------------------------------------


def test_a_lone_surrogate_in_the_question_is_refused_before_the_model(served: Served) -> None:
    """Before: PydanticSerializationError in remember, after the model ran."""
    refused(served, {"question": "find \ud800 the ball", "image": DATA_URL}, InputError, r"lone surrogate.*U\+D800")


def test_a_nul_in_the_question_is_refused(served: Served) -> None:
    refused(served, {"question": "find\x00 the ball", "image": DATA_URL}, InputError, "NUL")


def test_a_huge_region_number_is_not_found(served: Served) -> None:
    """Before: OverflowError ("Python int too large to convert to SQLite INTEGER")."""
    out = served.ask({"question": "find the ball", "image": DATA_URL}, thread="t")
    assert out["turn"].regions
    for name in ("R99999999999999999999", "R9223372036854775808", "R2147483648", "R" + "9" * 5000):
        before = served.stored()
        with pytest.raises(RegionNotFoundError, match=r"has no region R\d+ \(it has R1\)"):
            served.ask({"question": f"the thing next to {name}"[:4000]}, thread="t")
        assert served.stored() == before


def test_memory_get_region_bounds(served: Served) -> None:
    dialogue = served.memory.create_dialogue(IMAGE)
    for name in ("R99999999999999999999", "R" + "9" * 5000, "R0", "r1"):
        with pytest.raises(RegionNotFoundError):
            served.memory.get_region(dialogue.id, name)


def test_memory_append_refuses_a_huge_referenced_region(served: Served) -> None:
    """Before: OverflowError from SQLite, raised by append_turn for a draft citing R99999999999999999999."""
    dialogue = served.memory.create_dialogue(IMAGE)
    draft = TurnDraft(
        question="q",
        rendered_question="q",
        image=IMAGE.hash,
        frame="fixed:840x840",
        referenced=["R99999999999999999999"],
    )
    with pytest.raises(RegionNotFoundError, match="has no region R99999999999999999999"):
        served.memory.append_turn(dialogue.id, draft)
    assert served.memory.turns(dialogue.id) == []


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        ({"question": "find the ball", "image": 5}, "image must be a string"),
        ({"question": "find the ball", "image": {"path": "x.png"}}, "image must be a string"),
        ({"question": "find the ball", "image": ["x.png"]}, "image must be a string"),
        ({"question": "find the ball", "image": True}, "image must be a string"),
        ({"question": "find the ball", "image": ""}, "image is empty"),
        ({"question": "find the ball", "image": "scene\x00.png"}, "NUL"),
        ({"question": "find the ball", "image": "\udcff.png"}, "lone surrogate"),
        ({"image": DATA_URL}, "question is empty"),
        ({"question": None, "image": DATA_URL}, "question must be a string"),
        ({"question": 5, "image": DATA_URL}, "question must be a string"),
        ({"question": ["find"], "image": DATA_URL}, "question must be a string"),
        ({"question": "find the ball", "image": DATA_URL, "key": 5}, "key must be a string"),
        ({"question": "find the ball", "image": DATA_URL, "key": {"a": 1}}, "key must be a string"),
        ({"question": "find the ball", "image": DATA_URL, "key": "k" * 300}, "key is 300 characters"),
        ({"question": "find the ball", "image": DATA_URL, "key": "a\x00b"}, "NUL"),
    ],
    ids=lambda v: json.dumps(v, default=str)[:40] if isinstance(v, dict) else None,
)
def test_bad_served_inputs_are_input_errors(served: Served, inputs: dict[str, Any], match: str) -> None:
    """Before: AttributeError, ValueError (embedded null byte), TypeError, ValidationError after the model ran.

    ('int' object has no attribute 'startswith'; State.__init__() missing 'question'; TurnDraft key not a string.)
    """
    refused(served, inputs, InputError, match)


def test_a_path_under_the_root_still_works(served: Served, image_root: Path) -> None:
    out = served.ask({"question": "find the ball", "image": str(image_root / "scene.png")})
    assert out["turn"].regions
    refused(served, {"question": "find the ball", "image": str(image_root / ("x" * 5000))}, InputError, "image")


def test_question_length_is_capped(served: Served) -> None:
    """Before: a 100,000-character question went to the model."""
    refused(served, {"question": "x" * 4001, "image": DATA_URL}, InputError, r"4001 characters.*4000.*MAX_QUESTION")
    assert served.ask({"question": "x" * 4000, "image": DATA_URL})["turn"] is not None


@pytest.mark.parametrize(
    ("question", "error", "match"),
    [
        ("the thing in bbox=[1e3, 10, 200, 300]", GeometryError, r"bbox=\[1e3, 10, 200, 300\].*four plain numbers"),
        ("the thing in bbox=[nan, 10, 200, 300]", GeometryError, "four plain numbers"),
        ("the thing in bbox=[10, 10, 200]", GeometryError, "four plain numbers"),
        ("the thing in bbox=[10, 10, 200, 300, 5]", GeometryError, "four plain numbers"),
        ("the thing in bbox=[10, 10, 200", GeometryError, "four plain numbers"),
        ("the thing in bbox [10, 10, 200, 300]", GeometryError, "four plain numbers"),
        ("the thing in bbox=(10, 10, 200, 300)", GeometryError, "four plain numbers"),
        ("the thing in bbox=[200, 300, 10, 10]", GeometryError, "inverted"),
        ("the thing in bbox=[-5, 10, 200, 300]", GeometryError, "outside the image"),
        ("the thing next to R0", InputError, r"'R0' is not a region name.*R1"),
        ("the thing next to R01", InputError, r"'R01' is not a region name.*write 'R1'"),
    ],
)
def test_inline_references_are_never_silent(served: Served, question: str, error: type[Exception], match: str) -> None:
    """Before: exponents, NaN, three numbers, R0 went to the model as plain text (and original pixels)."""
    refused(served, {"question": question, "image": DATA_URL}, error, match)


def test_plain_text_around_names_and_boxes_still_works(served: Served) -> None:
    out = served.ask({"question": "find R2-D2, PR1, r3 and the thing in bbox=[10, 10.5, 200, 300]", "image": DATA_URL})
    assert out["turn"].rendered_question.count("bbox=[") == 1


def test_the_api_validates_before_storing_the_image(tmp_path: Path) -> None:
    with RegionAgent(ScriptedPolicy([TURN]), memory=f"sqlite:///{tmp_path}/m.db") as agent:
        dlg = agent.dialogue(IMAGE)
        for question, key in [(None, None), (5, None), ("find \ud800", None), ("find", 5), ("x" * 4001, None)]:
            with pytest.raises(InputError):
                dlg.ask(question, key=key)  # type: ignore[arg-type]
        assert dlg.turns() == [] and agent.policy.remaining == 1  # type: ignore[attr-defined]
        assert dlg.ask("find the ball").regions


# -- the property: any JSON-ish input ends in a typed error or a stored turn -----------------------------------------

TEXT = st.text(st.characters(exclude_categories=()), max_size=12)  # lone surrogates and NULs included
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
NUMBER = st.one_of(
    st.integers(-20, 700).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1e3", "1E-2", "nan", "inf", "-0", "12.", ".5", "+3", "9" * 400, ""]),
)
BOX = st.builds(
    lambda sep, nums, close: f"bbox{sep}[{', '.join(nums)}{close}",
    st.sampled_from(["=", " = ", "", " "]),
    st.lists(NUMBER, min_size=0, max_size=6),
    st.sampled_from(["]", ")", ""]),
)
GOOD_BOX = st.builds(
    lambda xs, ys: f"bbox=[{xs[0]}, {ys[0]}, {xs[1]}, {ys[1]}]",
    st.lists(st.integers(0, IMAGE.width), min_size=2, max_size=2).map(sorted),
    st.lists(st.integers(0, IMAGE.height), min_size=2, max_size=2).map(sorted),
)
NAME = st.builds(lambda p, n: f"{p}{n}", st.sampled_from(["R", "r", "R0", "PR", "R-"]), st.integers(0, 2**70))
QUESTION = st.lists(st.one_of(TEXT, TEXT, GOOD_BOX, BOX, NAME, st.just("R1")), max_size=5).map(" ".join)
IMAGE_VALUE = st.one_of(st.just(DATA_URL), st.just(DATA_URL), st.just(DATA_URL), JSON, st.just("/etc/passwd"), TEXT)
FIELD = {
    "question": st.one_of(QUESTION, QUESTION, QUESTION, JSON),
    "image": IMAGE_VALUE,
    "key": st.one_of(st.none(), st.none(), st.text(max_size=12), TEXT, JSON),
}
INPUTS = st.fixed_dictionaries({}, optional=FIELD)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(inputs=INPUTS)
def test_any_served_input_is_a_typed_error_or_a_turn(served: Served, inputs: dict[str, Any]) -> None:
    before = served.stored(), served.dialogues()
    try:
        out = served.ask(inputs)
    except RegionReasonerError as exc:
        event(type(exc).__name__)
        assert (served.stored(), served.dialogues()) == before, "a refused input stored something"
        assert served.policy.remaining == 4, "the model ran for a refused input"
        return
    event("stored")
    assert out["turn"] is not None
    assert served.stored() == before[0] + 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(question=QUESTION)
def test_any_question_with_boxes_and_names_on_a_dialogue(served: Served, question: str) -> None:
    thread = "hyp-" + uuid.uuid4().hex
    served.ask({"question": "find the ball", "image": DATA_URL}, thread=thread)
    before = served.stored()
    try:
        out = served.ask({"question": question}, thread=thread)
    except RegionReasonerError as exc:
        event(type(exc).__name__)
        assert served.stored() == before
        assert served.policy.remaining == 4
        return
    event("stored")
    assert served.stored() == before + 1
    assert out["turn"].question == question.strip()


def test_the_api_checks_the_question_before_storing_an_image(tmp_path: Path) -> None:
    with RegionAgent(ScriptedPolicy([TURN]), memory=f"sqlite:///{tmp_path}/m.db") as agent:
        dlg = agent.dialogue(id="d", image=IMAGE)
        other = IMAGE.image.rotate(90)
        stored = sorted(p.name for p in (tmp_path / "images").rglob("*") if p.is_file())
        with pytest.raises(InputError, match="lone surrogate"):
            dlg.ask("find \udc80", image=other)
        assert sorted(p.name for p in (tmp_path / "images").rglob("*") if p.is_file()) == stored  # not stored


def test_omitted_inputs_do_not_reuse_the_previous_turns(served: Served) -> None:
    """Before: a served run without `question` re-asked the previous turn's question (LangGraph keeps channels)."""
    thread = uuid.uuid4().hex
    first = served.ask({"question": "Find the ball.", "image": DATA_URL, "key": "k1"}, thread)
    assert first["turn"].key == "k1"
    before = served.stored()
    with pytest.raises(InputError, match="the question is empty"):
        served.ask({}, thread)
    assert served.stored() == before
    # No key given: a fresh one, not the previous turn's (which would replay that turn).
    second = served.ask({"question": "Find the ball again."}, thread)
    assert second["turn"].key not in (None, "k1") and second["turn"].index == first["turn"].index + 1
