"""The typed turn state: one fresh TurnWork per turn, typed references, checkpoint round trips."""

from collections.abc import Callable
from dataclasses import FrozenInstanceError, replace

import pytest

from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.checkpoint import serializer
from regionreasoner.agent.state import State, TurnWork
from regionreasoner.core.citations import Reference, match_references
from regionreasoner.core.errors import ConfigError, GeometryError, InputError
from regionreasoner.core.types import Problem, ProblemKind, Severity, TurnStatus


def _state(agent: RegionAgent, dialogue_id: str) -> State:
    values = agent.graph.get_state({"configurable": {"thread_id": dialogue_id}}).values
    return State(**values)


def test_each_turn_starts_from_a_fresh_turn_work(make_agent: Callable[..., RegionAgent], scene, scripted) -> None:  # type: ignore[no-untyped-def]
    image, obj = scene
    broken = "<scene> a park </scene>\n<think> hmm </think>\n<answer>[{]</answer>"
    agent = make_agent([broken, scripted(obj["red ball"]), scripted(obj["blue box"], cite=obj["red ball"])])
    dlg = agent.dialogue(image.image)
    assert dlg.ask("Find the red ball.").status is TurnStatus.FAILED
    first = _state(agent, dlg.id).work
    assert first.status is TurnStatus.FAILED and first.problems and not first.regions
    dlg.ask("Find the red ball.")
    second = _state(agent, dlg.id).work
    # Nothing of the failed turn survives: problems, status and text are the new turn's own.
    assert second.status is TurnStatus.OK and second.key != first.key
    assert all(p.severity is not Severity.ERROR for p in second.problems)
    assert second.references == () and second.sections == ("scene", "think", "answer")
    assert second.text.count("<answer>") == 1
    dlg.ask("Find the blue box right of R1.")
    third = _state(agent, dlg.id).work
    assert third.references == (Reference(region="R1", box=(328, 578, 420, 700), frame="fixed:840x840"),)
    assert third.sections == ("scene", "focus", "think", "answer") and third.referenced == ["R1"]
    assert isinstance(third.bounds, tuple) and third.bounds == (840, 840)


def test_inline_references_are_typed(make_agent: Callable[..., RegionAgent], scene, scripted) -> None:  # type: ignore[no-untyped-def]
    image, obj = scene
    agent = make_agent([scripted(obj["blue box"], cite=obj["red ball"])])
    dlg = agent.dialogue(image.image)
    turn = dlg.ask("the box right of bbox=[250, 330, 320, 400]")
    work = _state(agent, dlg.id).work
    assert work.references == (Reference(inline=0, box=(328, 578, 420, 700), frame="fixed:840x840"),)
    assert work.referenced == [] and turn.referenced == []
    assert turn.citations[0].verified and turn.citations[0].region is None


def test_turn_work_is_immutable_and_normalises_restored_lists() -> None:
    work = TurnWork(bounds=[840, 840], sections=["scene", "answer"], status="failed")  # type: ignore[arg-type]
    assert work.bounds == (840, 840) and work.sections == ("scene", "answer") and work.status is TurnStatus.FAILED
    with pytest.raises(FrozenInstanceError):
        work.text = "x"  # type: ignore[misc]
    assert replace(work, finish="length").broken and not replace(work, finish="stop").broken


def test_checkpoints_round_trip_the_typed_state(caplog: pytest.LogCaptureFixture) -> None:
    problem = Problem(kind=ProblemKind.TRUNCATED, severity=Severity.ERROR, message="cut")
    ref = Reference(region="R2", box=(1, 2, 3, 4), frame="norm:1000")
    work = TurnWork(key="k", bounds=(1000, 1000), references=(ref,), problems=(problem,), finish="length")
    serde = serializer()
    back = serde.loads_typed(serde.dumps_typed({"work": work}))["work"]
    assert back == work and isinstance(back.references, tuple) and back.references[0] == ref
    # Every type in the state is on the serializer's allow-list (LangGraph warns about any other).
    assert "unregistered type" not in caplog.text


def test_references_reject_ambiguous_or_malformed_input() -> None:
    with pytest.raises(InputError, match="not both or neither"):
        Reference(box=(0, 0, 1, 1), frame="pixels")
    with pytest.raises(InputError):
        Reference(region="R1", inline=0, box=(0, 0, 1, 1), frame="pixels")
    with pytest.raises(GeometryError, match="4 coordinates"):
        Reference(region="R1", box=(0, 0, 1), frame="pixels")  # type: ignore[arg-type]
    assert Reference(inline=1, box=(0, 0, 1, 1), frame="pixels").label == "inline box 2"


def test_match_references_uses_the_exact_rendered_integers() -> None:
    refs = [
        Reference(region="R1", box=(10, 20, 30, 40), frame="pixels"),
        Reference(inline=0, box=(1, 1, 5, 5), frame="pixels"),
    ]
    matches, missing = match_references([(10, 20, 30, 40), (10, 20, 30, 41)], refs)
    assert [m.reference for m in matches] == [refs[0], None] and missing == [refs[1]]


def test_unknown_agent_arguments_are_config_errors(scene) -> None:  # type: ignore[no-untyped-def]
    from regionreasoner.policies.scripted import ScriptedPolicy

    with pytest.raises(ConfigError, match="detector"):
        RegionAgent(ScriptedPolicy([]), memory="sqlite://", detector=object())
