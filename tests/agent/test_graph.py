"""The turn graph with ScriptedPolicy: topology, citations, memory, streaming, failures as data."""

from collections.abc import Callable
from pathlib import Path

import pytest

from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.graph import build_graph
from regionreasoner.core.errors import InputError, RegionNotFoundError
from regionreasoner.core.types import ProblemKind, TurnStatus
from regionreasoner.policies.scripted import ScriptedPolicy

SNAPSHOT = Path(__file__).parent / "snapshots" / "graph.mmd"


def test_topology_snapshot() -> None:
    drawn = build_graph().compile().get_graph().draw_mermaid(with_styles=False)
    assert drawn == SNAPSHOT.read_text()


def test_three_turns_cite_earlier_regions(make_agent: Callable[..., RegionAgent], scene, scripted) -> None:  # type: ignore[no-untyped-def]
    image, obj = scene
    agent = make_agent(
        [
            scripted(obj["red ball"]),
            scripted(obj["blue box"], cite=obj["red ball"]),
            scripted(obj["yellow kite"], cite=obj["blue box"]),
        ]
    )
    dlg = agent.dialogue(image.image)
    t1 = dlg.ask("Find the red ball.")
    t2 = dlg.ask("Find the blue box to the right of R1.")
    t3 = dlg.ask("Find the kite above R2.")
    assert [t.status for t in (t1, t2, t3)] == [TurnStatus.OK] * 3
    assert [[r.id for r in t.regions] for t in (t1, t2, t3)] == [["R1"], ["R2"], ["R3"]]
    assert t2.rendered_question == "Find the blue box to the right of bbox=[328, 578, 420, 700]."
    assert t2.referenced == ["R1"] and [c.verified for c in t2.citations] == [True]
    assert t2.citations[0].region == "R1"
    assert t3.referenced == ["R2"] and t3.citations[0].region == "R2"
    # Boxes come back in original pixels within half a model pixel (640/840/2 px).
    assert all(
        abs(a - b) <= 0.5 * 640 / 840 + 1e-9 for a, b in zip(t1.regions[0].box, obj["red ball"].box, strict=False)
    )
    assert t1.sections.focus is None and t2.sections.focus == "the red ball"
    assert [r.id for r in dlg.regions()] == ["R1", "R2", "R3"]
    assert dlg.render().size == (640, 480)
    # Each scripted turn went through the same pieces as a model's: scene, (focus), think, answer.
    stops = [r.stop for r in agent.policy.requests]  # type: ignore[attr-defined]
    assert stops[:3] == [("</scene>",), ("</think>",), ("</answer>",)]
    assert stops[3:7] == [("</scene>",), ("</focus>",), ("</think>",), ("</answer>",)]


def test_inline_bbox_in_question(make_agent: Callable[..., RegionAgent], scene, scripted) -> None:  # type: ignore[no-untyped-def]
    image, obj = scene
    agent = make_agent([scripted(obj["blue box"], cite=obj["red ball"])])
    turn = agent.dialogue(image.image).ask("the box right of bbox=[250, 330, 320, 400]")
    assert turn.rendered_question == "the box right of bbox=[328, 578, 420, 700]"
    assert turn.status is TurnStatus.OK and turn.citations[0].verified and turn.citations[0].region is None
    with pytest.raises(Exception, match="outside the image"):
        agent.dialogue(image.image).ask("near bbox=[0, 0, 900, 10]")


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (None, ProblemKind.MISSING_TAG),
        ('<answer>[{"bbox_2d": [1, 2, 3</answer>', ProblemKind.INVALID_JSON),
        ('<answer>[{"bbox_2d": [1, 2, 900, 30], "point_2d": [2, 3]}]</answer>', ProblemKind.OUT_OF_FRAME),
    ],
)
def test_model_failures_are_recorded_turns(
    make_agent: Callable[..., RegionAgent],
    scene,
    scripted,
    answer: str | None,
    kind: ProblemKind,  # type: ignore[no-untyped-def]
) -> None:
    image, obj = scene
    bad = "<scene> a park </scene>\n<think> hmm </think>" + ("" if answer is None else "\n" + answer)
    agent = make_agent([scripted(obj["red ball"]), bad, scripted(obj["sun"])])
    dlg = agent.dialogue(image.image)
    dlg.ask("Find the red ball.")
    failed = dlg.ask("Find the tree.")
    assert failed.status is TurnStatus.FAILED and failed.regions == []
    assert kind in {p.kind for p in failed.problems}
    # The dialogue goes on; the failed turn is stored with its text and problems.
    assert dlg.ask("Find the sun.").regions[0].id == "R2"
    stored = agent.memory.turn(dlg.id, 1)
    assert stored.status is TurnStatus.FAILED and stored.raw_text == bad


def test_citing_a_region_a_failed_turn_never_made_is_a_clear_error(
    make_agent: Callable[..., RegionAgent],
    scene,
    scripted,  # type: ignore[no-untyped-def]
) -> None:
    image, obj = scene
    agent = make_agent([scripted(obj["red ball"]), "<scene> no answer </scene>"])
    dlg = agent.dialogue(image.image)
    dlg.ask("Find the red ball.")
    dlg.ask("Find the tree.")
    served = len(agent.policy.requests)  # type: ignore[attr-defined]
    with pytest.raises(RegionNotFoundError, match=r"R2.*Turn 2 \('Find the tree\.'\) failed"):
        dlg.ask("Find the dog next to R2.")
    assert len(agent.policy.requests) == served  # type: ignore[attr-defined]  # no model call was made
    assert len(dlg.turns()) == 2


def test_unknown_region_before_any_model_call(make_agent: Callable[..., RegionAgent], scene) -> None:  # type: ignore[no-untyped-def]
    image, _ = scene
    agent = make_agent([])
    dlg = agent.dialogue(image.image)
    with pytest.raises(RegionNotFoundError, match="R4"):
        dlg.ask("the cup next to R4")
    with pytest.raises(InputError, match="empty"):
        dlg.ask("   ")
    assert agent.policy.requests == [] and dlg.turns() == []  # type: ignore[attr-defined]


def test_stream_yields_section_deltas_then_the_turn(make_agent: Callable[..., RegionAgent], scene, scripted) -> None:  # type: ignore[no-untyped-def]
    image, obj = scene
    agent = make_agent([scripted(obj["red ball"])])
    events = list(agent.dialogue(image.image).stream("Find the red ball."))
    deltas = [e for e in events if e.kind == "delta"]
    assert [e.section for e in deltas] == ["scene", "think", "answer"]
    assert "".join(e.text for e in deltas).startswith("<scene> a sunny park </scene>")
    assert next(e.node for e in events if e.kind == "node") == "resolve"
    assert events[-1].kind == "turn" and events[-1].turn is not None and events[-1].turn.regions[0].id == "R1"


def test_same_key_is_stored_once(make_agent: Callable[..., RegionAgent], scene, scripted) -> None:  # type: ignore[no-untyped-def]
    image, obj = scene
    text = scripted(obj["red ball"])
    agent = make_agent([text, text])
    dlg = agent.dialogue(image.image)
    first = dlg.ask("Find the red ball.", key="turn-1")
    again = dlg.ask("Find the red ball.", key="turn-1")
    assert again.index == first.index == 0 and len(dlg.turns()) == 1


def test_scripted_policy_runs_out(make_agent: Callable[..., RegionAgent], scene) -> None:  # type: ignore[no-untyped-def]
    image, _ = scene
    agent = make_agent([])
    from regionreasoner.core.errors import PolicyError

    with pytest.raises(PolicyError, match="no turn left"):
        agent.dialogue(image.image).ask("Find the sun.")


def test_dialogue_needs_an_image_or_an_id(make_agent: Callable[..., RegionAgent]) -> None:
    with pytest.raises(InputError):
        make_agent([]).dialogue()


def test_scripted_policy_type_checks() -> None:
    with pytest.raises(Exception, match="list of turn texts"):
        ScriptedPolicy("one string")  # type: ignore[arg-type]
