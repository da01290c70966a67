"""The span tree of a two-turn dialogue, with the in-memory exporter; exporters; errors."""

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.tracing import configure_tracing
from regionreasoner.core.errors import RegionNotFoundError
from regionreasoner.tools.segment import BoxSegmenter


def provider_with(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    kids = [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]
    return sorted(kids, key=lambda s: s.start_time or 0)


def test_span_tree_of_a_two_turn_dialogue(make_agent: Callable[..., RegionAgent], scene, scripted) -> None:  # type: ignore[no-untyped-def]
    image, obj = scene
    exporter = InMemorySpanExporter()
    agent = make_agent(
        [scripted(obj["red ball"]), scripted(obj["blue box"], cite=obj["red ball"])],
        tracer_provider=provider_with(exporter),
        segmenter=BoxSegmenter(),
    )
    dlg = agent.dialogue(image.image)
    t1 = dlg.ask("Find the red ball.")
    t2 = dlg.ask("Find the blue box right of R1.")
    spans = list(exporter.get_finished_spans())
    roots = [s for s in spans if s.parent is None]
    assert [s.name for s in roots] == ["regionreasoner.turn", "regionreasoner.turn"]
    assert {s.context.trace_id for s in roots} == {int(t1.trace_id or "0", 16), int(t2.trace_id or "0", 16)}

    expected_nodes = [
        ["resolve", "scene", "think", "answer", "ground", "remember"],
        ["resolve", "scene", "focus", "think", "answer", "ground", "remember"],
    ]
    for root, turn, nodes in zip(roots, (t1, t2), expected_nodes, strict=True):
        attrs = dict(root.attributes or {})
        assert attrs["regionreasoner.dialogue.id"] == dlg.id
        assert attrs["regionreasoner.turn.index"] == turn.index
        assert attrs["regionreasoner.turn.status"] == "ok"
        assert list(attrs["regionreasoner.region.ids"]) == [r.id for r in turn.regions]  # type: ignore[arg-type]
        assert attrs["regionreasoner.frame"] == "fixed:840x840"
        assert attrs["gen_ai.usage.output_tokens"] == turn.usage.generated_tokens
        node_spans = children(spans, root)
        assert [s.name for s in node_spans] == [f"regionreasoner.node {n}" for n in nodes]
        for node in node_spans:
            below = children(spans, node)
            name = node.name.split()[-1]
            if name in ("scene", "focus", "think", "answer"):
                (call,) = below
                a = dict(call.attributes or {})
                assert call.name == "chat scripted"
                assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == "scripted"
                assert a["regionreasoner.section"] == name
                assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0  # type: ignore[operator]
                assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]  # type: ignore[arg-type]
                (event,) = call.events
                assert event.name == "regionreasoner.section" and f"<{name}>" in str(
                    event.attributes["regionreasoner.text"]
                )  # type: ignore[index]
            elif name == "ground":
                assert [s.name for s in below] == ["execute_tool BoxSegmenter"]
            else:
                assert below == []
    second = dict(roots[1].attributes or {})
    assert second["regionreasoner.citations.verified"] == 1 and second["regionreasoner.citations.hallucinated"] == 0
    assert list(second["regionreasoner.references"]) == ["R1"]  # type: ignore[arg-type]


def test_section_text_capture_can_be_switched_off(make_agent: Callable[..., RegionAgent], scene, scripted) -> None:  # type: ignore[no-untyped-def]
    image, obj = scene
    exporter = InMemorySpanExporter()
    agent = make_agent([scripted(obj["sun"])], tracer_provider=provider_with(exporter), capture_sections=False)
    agent.dialogue(image.image).ask("Find the sun.")
    spans = exporter.get_finished_spans()
    assert spans and all(not s.events for s in spans)
    assert all("a sunny park" not in json.dumps(dict(s.attributes or {})) for s in spans)


def test_a_failing_turn_ends_its_span_with_an_error(make_agent: Callable[..., RegionAgent], scene) -> None:  # type: ignore[no-untyped-def]
    image, _ = scene
    exporter = InMemorySpanExporter()
    agent = make_agent([], tracer_provider=provider_with(exporter))
    with pytest.raises(RegionNotFoundError):
        agent.dialogue(image.image).ask("next to R3")
    spans = exporter.get_finished_spans()
    turn = [s for s in spans if s.name == "regionreasoner.turn"]
    assert len(turn) == 1 and turn[0].status.status_code is StatusCode.ERROR
    node = [s for s in spans if s.name == "regionreasoner.node resolve"]
    assert node[0].status.status_code is StatusCode.ERROR and node[0].events[0].name == "exception"


def test_json_lines_exporter(make_agent: Callable[..., RegionAgent], scene, scripted, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    image, obj = scene
    path = tmp_path / "trace.jsonl"
    provider = configure_tracing(jsonl_path=path)
    agent = make_agent([scripted(obj["tree"])], tracer_provider=provider)
    turn = agent.dialogue(image.image).ask("Find the tree.")
    provider.shutdown()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert {line["name"] for line in lines} >= {"regionreasoner.turn", "regionreasoner.node answer", "chat scripted"}
    assert {line["context"]["trace_id"] for line in lines} == {f"0x{turn.trace_id}"}
