"""Issue 10's dialogue: tools called from <think> under constrained decoding, SAM2 masks stored and rendered.

Three turns on the demo scene with a :class:`PiecePolicy` (a scripted policy that serves one piece per request, so
the script need not know the tool responses the agent appends) and constrained decoding ON: turn 1 detects, turn 2
zooms into R1 (the crop joins the conversation as image 2) and detects again, turn 3 makes three malformed calls
(bad JSON, an unknown tool, a wrong argument type), each an observation, and still answers.  A real tiny SAM2
checkpoint masks every region.  Every request carries the turn grammar with both tools, and the well-formed turns'
text is in that grammar (a TurnMachine on the tiny tokenizer accepts it; the malformed turn's it rejects).

The same dialogue then runs on the tiny Qwen2.5-VL through TransformersPolicy with a real tiny Grounding DINO,
zoom and SAM2: random weights write whatever the grammar allows, so the test checks what must hold for any text:
three turns stored, every tool call well-formed (the grammar), masks for every region, at least one tool ran.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from regionreasoner.agent.api import RegionAgent
from regionreasoner.core.citations import render_bbox
from regionreasoner.core.frames import FixedResizeFrame
from regionreasoner.core.images import LoadedImage
from regionreasoner.core.masks import decode_rle
from regionreasoner.core.types import ProblemKind, TurnStatus
from regionreasoner.policies.constraints import GrammarCache, TurnMachine
from regionreasoner.policies.scripted import PiecePolicy
from regionreasoner.tools.base import Detection
from regionreasoner.tools.segment import Sam2Segmenter

FRAME = FixedResizeFrame(840, 840)
SIZE = (640, 480)
BALL = (250.0, 330.0, 320.0, 400.0)  # the red ball, original pixels
BOX = (360.0, 300.0, 470.0, 410.0)  # the blue box


def _answer(box: tuple[float, float, float, float]) -> str:
    from regionreasoner.core.geometry import Box

    b = FRAME.box_to_model(Box(*box), SIZE)
    c = FRAME.point_to_model(Box(*box).center, SIZE)
    return f'\n<answer>[{{"bbox_2d": [{b[0]},{b[1]},{b[2]},{b[3]}], "point_2d": [{c[0]},{c[1]}]}}]</answer>'


def _call(name: str, arguments: Mapping[str, Any] | str) -> str:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return f'<tool_call>{{"name": "{name}", "arguments": {args}}}</tool_call>'


R1_840 = FRAME.box_to_model(__import__("regionreasoner.core.geometry", fromlist=["Box"]).Box(*BALL), SIZE)
TURNS: list[list[str]] = [
    [
        "<scene> a park </scene>",
        "\n<think> find it " + _call("detect", {"phrases": ["red ball"]}),
        " it is the ball </think>",
        _answer(BALL),
    ],
    [
        "<scene> a park </scene>",
        "\n<focus> a red ball </focus>",
        f"\n<think> near {render_bbox(R1_840)} " + _call("zoom", {"bbox_2d": list(R1_840)}),
        " closer " + _call("detect", {"phrases": ["blue box"]}),
        f" right of {render_bbox(R1_840)} </think>",
        _answer(BOX),
    ],
    [
        "<scene> a park </scene>",
        '\n<think> a <tool_call>{"name": "detect", "arguments": {"phrases": [}</tool_call>',  # bad JSON
        " b " + _call("segment", {}),  # an unknown tool
        " c " + _call("zoom", {"bbox_2d": "big"}),  # a wrong argument type
        " the sun </think>",
        _answer((500.0, 30.0, 590.0, 120.0)),
    ],
]
QUESTIONS = ["Find the red ball.", "Zoom into R1 and find the box right of it.", "Find the sun."]


class FixedDetector:
    """An explicit fake Detector: the demo scene's true boxes for the phrases it knows."""

    BOXES: Mapping[str, tuple[float, float, float, float]] = {"red ball": BALL, "blue box": BOX}

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def detect(self, image: LoadedImage, phrases: Sequence[str]) -> list[Detection]:
        from regionreasoner.core.geometry import Box

        self.calls.append(list(phrases))
        return [Detection(box=Box(*self.BOXES[p]), score=0.9, label=p) for p in phrases if p in self.BOXES]


@pytest.fixture(scope="module")
def grammar(tiny_qwen25: Path) -> tuple[GrammarCache, Any]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen25)
    return GrammarCache(tokenizer, 1024), tokenizer


def test_three_turns_call_detect_and_zoom_under_the_grammar_and_store_sam2_masks(
    scene: Any, tiny_sam2: Path, grammar: tuple[GrammarCache, Any], tmp_path: Path
) -> None:
    image, _ = scene
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    detector, policy = FixedDetector(), PiecePolicy(TURNS, frame=FRAME)
    segmenter = Sam2Segmenter(tiny_sam2)
    agent = RegionAgent(
        policy,
        memory=f"sqlite:///{tmp_path}/memory.db",
        segmenter=segmenter,
        detector=detector,
        zoom=True,
        tracer_provider=provider,
    )
    try:
        dlg = agent.dialogue(image.image)
        turns = [dlg.ask(q) for q in QUESTIONS]
        rendered = dlg.render()
        plain = dlg.image()
    finally:
        agent.close()

    # Every turn answers; R1..R3 carry SAM2 masks of the image's size (one embedding: the image is cached).
    assert [t.status for t in turns] == [TurnStatus.OK] * 3, [t.problems for t in turns]
    assert [r.id for t in turns for r in t.regions] == ["R1", "R2", "R3"]
    masks = [decode_rle(r.mask) for t in turns for r in t.regions if r.mask is not None]
    assert len(masks) == 3 and all(m.shape == (480, 640) for m in masks)
    assert segmenter.encoder_calls == 1
    # render() draws the masks: pixels of a non-empty mask outside every box change colour.
    diff = np.any(np.asarray(rendered) != np.asarray(plain), axis=-1)
    assert diff.any() and any((m & diff).any() for m in masks if m.any())

    # Turn 1: detect ran, its response shows the ball in the policy's 840x840 frame.
    assert detector.calls[0] == ["red ball"]
    assert f'"bbox_2d": {list(R1_840)}' in turns[0].raw_text.replace(", ", ", ")
    # Turn 2: zoom made image 2 (the crop of R1 with its margin), and the pieces after it saw two images.
    assert "<tool_response>image 2: a zoom of" in turns[1].raw_text
    after_zoom = [r for r in policy.requests if "image 2: a zoom" in r.assistant_prefix]
    assert after_zoom and all(len(r.images) == 2 for r in after_zoom)
    crop = after_zoom[0].images[1]
    assert max(crop.size) == 448 and crop.hash != image.hash
    # Turn 3: three malformed calls, three observations, and the turn still answered.
    errors = [p for p in turns[2].problems if p.kind is ProblemKind.TOOL_ERROR]
    assert len(errors) == 3 and turns[2].raw_text.count("<tool_response>error: ") == 3
    assert "no tool named 'segment'" in turns[2].raw_text and "bbox_2d must be four" in turns[2].raw_text

    # Constrained decoding was on: every request carried the turn grammar with both tools and the call budget.
    for request in policy.requests:
        assert request.constraint is not None and request.constraint.max_tool_calls == 3
        assert [t.name for t in request.constraint.tools] == ["detect", "zoom"]
    cache, tokenizer = grammar
    spec = policy.requests[0].constraint
    assert spec is not None
    for turn in turns[:2]:
        machine = TurnMachine(policy.requests[4 if turn is turns[1] else 0].constraint or spec, cache, tokenizer)
        assert machine.accept_text(turn.raw_text) and machine.done, turn.raw_text
    assert not TurnMachine(spec, cache, tokenizer).accept_text(turns[2].raw_text)  # the grammar forbids it

    # Every call is a span with the tool's name, arguments and outcome.
    spans = [s for s in exporter.get_finished_spans() if s.name.startswith("execute_tool")]
    tools = [s for s in spans if s.attributes and s.attributes.get("regionreasoner.tool.outcome")]
    outcomes = [(s.name, s.attributes["regionreasoner.tool.outcome"]) for s in tools if s.attributes]
    assert outcomes[:3] == [("execute_tool detect", "ok"), ("execute_tool zoom", "ok"), ("execute_tool detect", "ok")]
    assert [o for _, o in outcomes[3:]] == ["error"] * 3
    assert all(s.end_time and s.start_time and s.end_time >= s.start_time for s in tools)


def test_the_dialogue_on_the_tiny_qwen_with_real_tiny_tools(
    scene: Any, tiny_qwen25: Path, tiny_sam2: Path, tiny_grounding_dino: Path, tmp_path: Path
) -> None:
    from regionreasoner.policies.transformers_policy import TransformersPolicy

    image, _ = scene
    policy = TransformersPolicy(tiny_qwen25, frame="fixed:840x840")
    agent = RegionAgent(
        policy,
        memory=f"sqlite:///{tmp_path}/memory.db",
        segmenter=str(tiny_sam2),
        detector=str(tiny_grounding_dino),
        zoom=True,
        max_new_tokens=300,
        char_limits={"scene": 12, "focus": 12, "think": 16},
        # Sampled with a fixed seed and fixed keys (the per-call seed mixes in the key), so the run is the same every
        # time; with these seeded weights seed 0 calls a tool in turn 1 (greedy decoding never does).
        temperature=1.0,
        seed=0,
    )
    try:
        dlg = agent.dialogue(image.image)
        turns = [dlg.ask(q, key=f"k{i}") for i, q in enumerate(QUESTIONS)]
    finally:
        agent.close()
    assert [t.index for t in turns] == [0, 1, 2]
    calls = sum(t.raw_text.count("</tool_call>") for t in turns)
    assert calls >= 1, [t.raw_text for t in turns]
    assert all(t.raw_text.count("<tool_response>") == t.raw_text.count("</tool_call>") for t in turns)
    for turn in turns:
        assert all(r.mask is not None for r in turn.regions)
        # Under the grammar every call is well-formed: no observation says the call itself was broken.
        assert not any("not valid JSON" in p.message or "no tool named" in p.message for p in turn.problems)
