"""Issue 13's dialogue: turn 2 "vervang R1 door een rode paraplu" inpaints R1, turn 3 runs on the new version.

A :class:`ScriptedPolicy` writes the turns in the 840x840 frame of the demo scene; a fake segmenter gives every
region an elliptic mask, so inpaint repaints R1's mask (not its box).  With an explicit fake generator (it paints
the mask red) the test checks memory (two versions, linked), the turn that ran on the new version, rendering, the
trace and the turn grammar; the same dialogue then runs on the real tiny NeoBabel generator, whose pixels outside
the mask must be unchanged.  A third test feeds bad tool calls (each an observation) and a ``generate`` call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from PIL import Image

from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.demo_scene import DemoObject
from regionreasoner.agent.render import render_regions
from regionreasoner.core.citations import render_bbox
from regionreasoner.core.frames import FixedResizeFrame
from regionreasoner.core.geometry import Box, Point
from regionreasoner.core.images import LoadedImage
from regionreasoner.core.masks import Rle, encode_rle
from regionreasoner.core.types import ProblemKind, TurnStatus
from regionreasoner.policies.scripted import PiecePolicy

FRAME = FixedResizeFrame(840, 840)
SIZE = (640, 480)
PROMPT = "een rode paraplu"


def ellipse(box: Box, width: int = 640, height: int = 480) -> npt.NDArray[np.bool_]:
    """The ellipse inscribed in ``box`` (pixel centres), as a bool (H, W) mask."""
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    cx, cy, rx, ry = (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2, box.width / 2, box.height / 2
    return np.asarray(((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2 <= 1.0)


class EllipseSegmenter:
    """An explicit fake Segmenter: every region's mask is the ellipse inscribed in its box."""

    def segment(self, image: LoadedImage, boxes: Sequence[Box], points: Sequence[Point | None]) -> list[Rle]:
        return [encode_rle(ellipse(b, image.width, image.height)) for b in boxes]


class PaintRed:
    """An explicit fake ImageGenerator: inpaint paints the mask red; generate a flat blue 48x32 picture."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def generate(self, prompts: Sequence[str], *, seed: int | None = None) -> list[Image.Image]:
        self.calls += [("generate", p) for p in prompts]
        return [Image.new("RGB", (48, 32), (0, 90, 200)) for _ in prompts]

    def inpaint(
        self, image: Image.Image, mask: npt.NDArray[np.bool_], prompt: str, *, seed: int | None = None
    ) -> Image.Image:
        self.calls.append(("inpaint", prompt))
        pixels = np.asarray(image.convert("RGB")).copy()
        pixels[mask] = (255, 0, 0)
        return Image.fromarray(pixels)


def _answer(obj: DemoObject) -> str:
    b, c = FRAME.box_to_model(obj.box, SIZE), FRAME.point_to_model(obj.box.center, SIZE)
    return f'<answer>[{{"bbox_2d": [{b[0]},{b[1]},{b[2]},{b[3]}], "point_2d": [{c[0]},{c[1]}]}}]</answer>'


def _call(name: str, arguments: dict[str, Any] | str) -> str:
    """A tool call as the turn grammar writes it: compact JSON, arguments in sorted order, UTF-8 unescaped."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
    return f'<tool_call>{{"name": "{name}", "arguments": {args}}}</tool_call>'


def stored_box(obj: DemoObject) -> Box:
    """The box memory stores for ``obj``'s answer: its 840-frame box mapped back to original pixels."""
    return FRAME.box_from_model(Box(*FRAME.box_to_model(obj.box, SIZE)), SIZE)


def _script(obj: DemoObject) -> tuple[list[str], int]:
    """The three turns about ``obj``; turn 2 holds the exact response the agent appends (R1's mask: ``pixels``)."""
    pixels = int(ellipse(stored_box(obj)).sum())
    ref = render_bbox(FRAME.box_to_model(obj.box, SIZE))
    response = f"image version 1 (640x480 px): R1 repainted (mask, {pixels} px); later turns run on it"
    turns = [
        f"<scene> a sunny park </scene>\n<think> the {obj.name} </think>\n{_answer(obj)}",
        f"<scene> a sunny park </scene>\n<focus> the {obj.name} </focus>\n"
        f"<think> R1 is {ref}, replace it {_call('inpaint', {'prompt': PROMPT, 'region': 'R1'})}"
        f"\n<tool_response>{response}</tool_response>\n the umbrella is at {ref} </think>\n{_answer(obj)}",
        "<scene> a park with a red umbrella </scene>\n<focus> a red umbrella </focus>\n"
        f"<think> the umbrella at {ref} </think>\n{_answer(obj)}",
    ]
    return turns, pixels


QUESTIONS = ["Find it.", "vervang R1 door een rode paraplu", "Find the umbrella that replaced R1."]


def _provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _run_dialogue(
    make_agent: Callable[..., RegionAgent],
    scene: Any,
    generator: object,
    exporter: InMemorySpanExporter,
    target: str = "red ball",
) -> tuple[RegionAgent, Any, list[Any], int]:
    image, objects = scene
    turns, pixels = _script(objects[target])
    agent = make_agent(turns, segmenter=EllipseSegmenter(), generator=generator, tracer_provider=_provider(exporter))
    dlg = agent.dialogue(image.image)
    return agent, dlg, [dlg.ask(q) for q in QUESTIONS], pixels


def test_inpainting_r1_makes_a_new_version_that_turn_3_runs_on(
    make_agent: Callable[..., RegionAgent], scene: Any, tiny_qwen25: Path
) -> None:
    exporter, fake = InMemorySpanExporter(), PaintRed()
    agent, dlg, turns, pixels = _run_dialogue(make_agent, scene, fake, exporter)
    memory = agent.memory
    assert [t.status for t in turns] == [TurnStatus.OK] * 3, [t.problems for t in turns]
    assert fake.calls == [("inpaint", PROMPT)]

    # Memory: two versions of the dialogue's image, linked; turn 2 made version 1, turn 3 ran on it.
    v0, v1 = dlg.versions()
    start = memory.dialogue(dlg.id).image
    assert (v0.number, v0.image, v0.tool) == (0, start, None)
    assert (v1.number, v1.parent, v1.turn, v1.tool, v1.prompt, v1.region) == (1, start, 1, "inpaint", PROMPT, "R1")
    assert memory.image_info(v1.image).parent == start  # images.parent_hash links them too
    assert turns[1].versions == [v1] and turns[1].image == start
    assert turns[2].image == v1.image and memory.latest_image(dlg.id) == v1.image
    first_request_of_turn_3 = [r for r in agent.policy.requests if r.assistant_prefix == ""][2]  # type: ignore[attr-defined]
    assert first_request_of_turn_3.images[0].hash == v1.image
    # Regions keep the version they were found on; R1 (found on version 0) is still citable on version 1.
    assert [(r.id, r.image) for r in dlg.regions()] == [("R1", start), ("R2", start), ("R3", v1.image)]
    assert turns[2].referenced == ["R1"] and all(c.verified for c in turns[2].citations)

    # The pixels: R1's mask is red, everything else is version 0's.
    mask = ellipse(stored_box(scene[1]["red ball"]))
    before, after = np.asarray(dlg.image(version=0)), np.asarray(dlg.image())
    assert int(mask.sum()) == pixels
    assert np.array_equal(after[~mask], before[~mask]) and (after[mask] == (255, 0, 0)).all()

    # Rendering shows the newest version with the regions found on it (R3), version 0 with R1 and R2.
    r3 = memory.get_region(dlg.id, "R3")
    assert np.array_equal(np.asarray(dlg.render()), np.asarray(render_regions(dlg.image(), [r3])))
    old = [memory.get_region(dlg.id, n) for n in ("R1", "R2")]
    assert np.array_equal(np.asarray(dlg.render(version=0)), np.asarray(render_regions(dlg.image(version=0), old)))
    assert np.array_equal(np.asarray(dlg.render(turn=1))[0:20, 0:20], before[0:20, 0:20])

    # The trace: an execute_tool inpaint span with its arguments, outcome and the version it made.
    spans = [s for s in exporter.get_finished_spans() if s.name == "execute_tool inpaint"]
    assert len(spans) == 1
    attrs = dict(spans[0].attributes or {})
    assert attrs["regionreasoner.tool.outcome"] == "ok" and attrs["gen_ai.tool.name"] == "inpaint"
    assert PROMPT in str(attrs["regionreasoner.tool.arguments"]) and '"region": "R1"' in str(
        attrs["regionreasoner.tool.arguments"]
    )
    assert attrs["regionreasoner.image.version"] == 1 and attrs["regionreasoner.image.hash"] == v1.image
    roots = [s for s in exporter.get_finished_spans() if s.name == "regionreasoner.turn"]
    assert [list(dict(s.attributes or {})["regionreasoner.image.versions"]) for s in roots] == [[], [1], []]

    # The protocol: the turn grammar offered both tools, and turn 2's text (with the call) is in it.
    from transformers import AutoTokenizer

    from regionreasoner.policies.constraints import GrammarCache, TurnMachine

    requests = [r for r in agent.policy.requests if "vervang" in r.messages[0].text]  # type: ignore[attr-defined]
    spec = requests[0].constraint
    assert spec is not None and [t.name for t in spec.tools] == ["generate", "inpaint"]
    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen25)
    machine = TurnMachine(spec, GrammarCache(tokenizer, 1024), tokenizer)
    assert machine.accept_text(turns[1].raw_text) and machine.done, turns[1].raw_text


def test_the_same_dialogue_with_the_real_tiny_generator(
    make_agent: Callable[..., RegionAgent], scene: Any, tmp_path: Path
) -> None:
    from regionreasoner.tools.generate import build_tiny_generator

    folder = build_tiny_generator(tmp_path / "tiny-generator", seed=0)
    # The tree: the tiny model's 8x8 code grid over a 480 px window has 60 px cells, and a cell is repainted when the
    # mask fills half of it (the ball's 70 px ellipse fills none).
    _, dlg, turns, _ = _run_dialogue(make_agent, scene, str(folder), InMemorySpanExporter(), target="tree")
    assert [t.status for t in turns] == [TurnStatus.OK] * 3, [t.problems for t in turns]
    v0, v1 = dlg.versions()
    assert v1.parent == v0.image and turns[2].image == v1.image
    mask = ellipse(stored_box(scene[1]["tree"]))
    before, after = np.asarray(dlg.image(version=0)), np.asarray(dlg.image())
    assert after.shape == before.shape
    assert np.array_equal(after[~mask], before[~mask])  # every pixel outside R1's mask is unchanged
    assert (after[mask] != before[mask]).any()


def test_bad_calls_are_observations_and_generate_starts_a_version_without_parent(scene: Any, tmp_path: Path) -> None:
    image, objects = scene
    ball = objects["red ball"]
    bad = [
        _call("inpaint", {"region": "R9", "prompt": PROMPT}),  # no such region
        _call("inpaint", {"region": "R1", "prompt": " "}),  # an empty prompt
        _call("inpaint", {"region": "R1", "prompt": "x" * 301}),  # too long
        _call("inpaint", {"region": 1, "prompt": PROMPT}),  # not a name
    ]
    generated = "一把红伞 on a beach"
    turns = [
        ["<scene> a park </scene>", "\n<think> the ball </think>", "\n" + _answer(ball)],
        [
            "<scene> a park </scene>",
            *(f"\n<think> try {c}" if i == 0 else f" again {c}" for i, c in enumerate(bad)),
            " now " + _call("generate", {"prompt": generated}),
            " done </think>",
            "\n" + _answer(ball),
        ],
        [
            "<scene> a beach </scene>",
            "\n<think> " + _call("inpaint", {"prompt": PROMPT, "region": "R1"}),
            " no </think>",
            "\n" + _answer(ball),
        ],
    ]
    fake = PaintRed()
    agent = RegionAgent(
        PiecePolicy(turns, frame=FRAME), memory=f"sqlite:///{tmp_path}/m.db", generator=fake, max_tool_iterations=5
    )
    try:
        dlg = agent.dialogue(image.image)
        t1, t2, t3 = (dlg.ask(q) for q in ["Find the ball.", "Draw something new.", "Now repaint the ball."])
        versions = dlg.versions()
        drawn = np.asarray(dlg.image())
    finally:
        agent.close()
    errors = [p.message for p in t2.problems if p.kind is ProblemKind.TOOL_ERROR]
    assert len(errors) == 4 and t2.status is TurnStatus.OK
    assert "has no region R9 (it has R1)" in errors[0]
    assert "the prompt is empty" in errors[1] and "more than 300" in errors[2]
    assert "region is integer, not string" in errors[3]
    assert t2.raw_text.count("<tool_response>error: ") == 4
    assert "<tool_response>image version 1 (48x32 px): a new 48x32 px picture; later turns run on it" in t2.raw_text
    assert fake.calls == [("generate", generated)]  # no bad call reached the generator
    # generate: a version without a parent; turn 3 runs on it, and R1 (found on the 640x480 photo) names nothing
    # on the 48x32 picture, so inpainting it is an observation too.
    assert [(v.number, v.tool, v.parent, v.prompt) for v in versions] == [
        (0, None, None, None),
        (1, "generate", None, generated),
    ]
    assert t3.image == versions[1].image and drawn.shape == (32, 48, 3)
    assert "R1 was found on a 640x480 image; the current image is 48x32" in t3.raw_text
    assert t1.versions == [] and t3.versions == []
