"""Held-out check of the shipped generator (tools/generate/weights/world) with the exact scorer of the world.

10 prompts per task in two languages (en, nl; prompt seed 7, not the seed the reported table uses), one batch per
task; each goal of issue 14 must hold within MARGIN.  Skipped, saying why, while no weights are shipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

WEIGHTS = Path(__file__).resolve().parents[3] / "tools" / "generate" / "weights" / "world"
GOALS = {"single_object": 0.9, "colors": 0.8, "two_object": 0.7, "position": 0.6, "counting": 0.6}
MARGIN = 0.2
"""10 prompts per task: one binomial standard deviation at p = 0.7 is 0.14."""

pytestmark = pytest.mark.skipif(
    not (WEIGHTS / "generator.json").is_file(), reason=f"no shipped generator at {WEIGHTS} (run `make generator`)"
)


@pytest.mark.parametrize("language", ["en", "nl"])
def test_each_task_reaches_its_goal_within_the_margin(language: str) -> None:
    import torch

    from regionreasoner.evals.generation.exact import ExactWorldDetector
    from regionreasoner.evals.generation.geneval import evaluate_image
    from regionreasoner.evals.generation.world_prompts import world_geneval_prompts
    from regionreasoner.tools.generate import Generator

    torch.set_num_threads(2)
    gen = Generator.from_pretrained(WEIGHTS, device="cpu")
    detector = ExactWorldDetector()
    for task, goal in GOALS.items():
        prompts = world_geneval_prompts(language, n_per_task=10, seed=7, tasks=(task,))
        images = gen.generate([p.prompt for p in prompts], seed=11)
        verdicts = [evaluate_image(i, p, detector, detector) for i, p in zip(images, prompts, strict=True)]
        score = float(np.mean([v.correct for v in verdicts]))
        assert score >= goal - MARGIN, f"{task} ({language}): {score:.2f} < {goal} - {MARGIN}"


def test_inpainting_keeps_every_pixel_outside_the_mask() -> None:
    from regionreasoner.core.world.render import Placed, render_objects
    from regionreasoner.tools.generate import Generator

    gen = Generator.from_pretrained(WEIGHTS, device="cpu")
    res = gen.defaults.resolution
    image = render_objects([Placed("circle", "red", res * 0.27, res * 0.5, res * 0.14)], (res, res))
    mask = np.zeros((res, res), dtype=bool)
    mask[res // 4 : 3 * res // 4, : res // 2] = True
    out = gen.inpaint(image, mask, "a photo of a green star", seed=0)
    assert np.array_equal(np.asarray(out)[~mask], np.asarray(image)[~mask])
