"""The whole graph with tiny random Qwen2.5-VL and Qwen3-VL: three turns, citations, memory, trace, rendering."""

from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from regionreasoner.agent.api import RegionAgent
from regionreasoner.core.types import TurnStatus
from regionreasoner.memory import RegionMemory
from regionreasoner.policies.transformers_policy import TransformersPolicy
from regionreasoner.tools.segment import BoxSegmenter

LIMITS = {"scene": 60, "focus": 40, "think": 80}


@pytest.mark.parametrize("family", ["qwen2.5-vl", "qwen3-vl"])
def test_three_turn_dialogue(family: str, tiny_qwen25: Path, tiny_qwen3: Path, scene, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    image, _ = scene
    frame = "fixed:840x840" if family == "qwen2.5-vl" else None
    policy = TransformersPolicy(tiny_qwen25 if family == "qwen2.5-vl" else tiny_qwen3, frame=frame)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    agent = RegionAgent(
        policy,
        memory=f"sqlite:///{tmp_path}/memory.db",
        segmenter=BoxSegmenter(),
        tracer_provider=provider,
        char_limits=LIMITS,
        max_objects=2,
    )
    dlg = agent.dialogue(image.image)
    turns = [
        dlg.ask("Find the red ball."),
        dlg.ask("Find the blue box to the right of R1."),
        dlg.ask("Find the kite above R2 and left of R1."),
    ]
    # Constrained decoding: an untrained model still writes complete, parseable, in-frame turns.
    assert [t.status for t in turns] == [TurnStatus.OK] * 3
    assert all(1 <= len(t.regions) <= 2 for t in turns)
    ids = [r.id for t in turns for r in t.regions]
    assert ids == [f"R{i}" for i in range(1, len(ids) + 1)]
    assert turns[1].referenced == ["R1"] and turns[2].referenced == ["R2", "R1"]
    assert "bbox=[" in turns[1].rendered_question and "R1" not in turns[1].rendered_question
    assert turns[1].sections.focus and turns[0].sections.focus is None
    for t in turns:
        assert t.frame == policy.frame.spec and t.trace_id and len(t.trace_id) == 32
        for r in t.regions:
            assert r.box.within(640, 480) and r.box.x1 < r.box.x2 and r.mask is not None
        assert t.usage.model_calls == (4 if t.referenced else 3) and t.usage.cached_tokens > 0
    # Memory holds the same dialogue; a fresh connection sees it.
    with RegionMemory(f"sqlite:///{tmp_path}/memory.db") as memory:
        assert [r.id for r in memory.regions(dlg.id)] == ids
    # One turn span per turn, and the rendering has the image's size.
    turn_spans = [s for s in exporter.get_finished_spans() if s.name == "regionreasoner.turn"]
    assert len(turn_spans) == 3
    assert dlg.render().size == (640, 480)
    agent.close()
