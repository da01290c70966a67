"""Held-out regression check of the shipped generator (tools/generate/weights/world) with the world's exact scorer.

The generator does NOT reach issue 14's goals yet (:data:`ISSUE_GOALS`; docs/generation-eval.md has the table).
These tests hold it to what it reached: per task, the mean over the six languages of 10 prompts each (60 images;
prompt seed 7 and image seed 11, not the reported table's 0 and 123456) must stay within two binomial standard
deviations of the reported mean (:data:`REPORTED`, `make generator-eval`); inpainting of world-scene regions must
keep every pixel outside the mask and find the requested shape about as often as reported.  (CLC and CSS are not
checked here: the random-weights baseline scores HIGHER than the trained model, see docs/generation-eval.md.)  The
weights ship in the repository, so a missing folder fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

WEIGHTS = Path(__file__).resolve().parents[3] / "tools" / "generate" / "weights" / "world"
ISSUE_GOALS = {"single_object": 0.9, "colors": 0.8, "two_object": 0.7, "position": 0.6, "counting": 0.6}
"""What issue 14 asks for (not met: see the module docstring)."""
REPORTED = {"single_object": 0.91, "colors": 0.44, "two_object": 0.44, "position": 0.22, "counting": 0.51}
"""Synthetic m-GenEval, mean over six languages, 100 prompts per task each (docs/generation-eval.md)."""
MARGIN = 0.13
"""Two standard deviations of a 60-image share at p = 0.5."""
INPAINT_REPORTED, INPAINT_MARGIN = 0.24, 0.17
"""24 cases: two standard deviations at p = 0.24 are 0.17."""
LANGUAGES = ("en", "zh", "nl", "fr", "hi", "fa")


@pytest.fixture(scope="module")
def generator() -> Any:
    import torch

    from regionreasoner.tools.generate import Generator

    assert (WEIGHTS / "generator.json").is_file(), f"no shipped generator at {WEIGHTS} (run `make generator`)"
    torch.set_num_threads(2)
    return Generator.from_pretrained(WEIGHTS, device="cpu")


@pytest.fixture(scope="module")
def scores(generator: Any) -> dict[str, dict[str, float]]:
    from regionreasoner.evals.generation.exact import ExactWorldDetector
    from regionreasoner.evals.generation.geneval import evaluate_image
    from regionreasoner.evals.generation.world_prompts import world_geneval_prompts

    detector = ExactWorldDetector()
    table: dict[str, dict[str, float]] = {}
    for language in LANGUAGES:
        table[language] = {}
        for task in REPORTED:
            prompts = world_geneval_prompts(language, n_per_task=10, seed=7, tasks=(task,))
            images = generator.generate([p.prompt for p in prompts], seed=11)
            verdicts = [evaluate_image(i, p, detector, detector) for i, p in zip(images, prompts, strict=True)]
            table[language][task] = float(np.mean([v.correct for v in verdicts]))
    return table


@pytest.mark.parametrize("task", list(REPORTED))
def test_each_task_holds_what_was_reported(scores: dict[str, dict[str, float]], task: str) -> None:
    mean = float(np.mean([scores[language][task] for language in LANGUAGES]))
    per_language = {language: scores[language][task] for language in LANGUAGES}
    assert mean >= REPORTED[task] - MARGIN, f"{task}: {mean:.2f} < {REPORTED[task]} - {MARGIN} ({per_language})"


def test_inpainted_regions_hold_the_requested_shape_and_nothing_outside_changes(generator: Any) -> None:
    from regionreasoner.core.world import make_scene
    from regionreasoner.core.world.captions import Thing, world_phrase
    from regionreasoner.core.world.exact import WorldSegmenter
    from regionreasoner.core.world.scene import COLOURS, KINDS

    segmenter = WorldSegmenter()
    rng = np.random.default_rng(900)
    found = 0
    cases = 24
    for i in range(cases):
        scene = make_scene((900, i), size=(320, 240), n_objects=(3, 6))
        old = scene.objects[int(rng.integers(len(scene.objects)))]
        kind = [k for k in KINDS if k != old.kind][int(rng.integers(len(KINDS) - 1))]
        colour = [c for c in COLOURS if c != old.colour][int(rng.integers(len(COLOURS) - 1))]
        x0, y0, x1, y1 = (round(v) for v in old.box)
        mask = np.zeros((240, 320), dtype=bool)
        mask[y0:y1, x0:x1] = True
        prompt = world_phrase(Thing(kind, colour), LANGUAGES[i % len(LANGUAGES)])
        out = generator.inpaint(scene.image, mask, prompt, seed=i)
        before, after = np.asarray(scene.image.convert("RGB")), np.asarray(out)
        assert np.array_equal(before[~mask], after[~mask]), f"case {i}: pixels outside the mask changed"
        for obj in segmenter.segment(out):
            ys, xs = np.nonzero(obj.mask)
            if (obj.kind, obj.colour) == (kind, colour) and mask[int(ys.mean()), int(xs.mean())]:
                found += 1
                break
    assert found / cases >= INPAINT_REPORTED - INPAINT_MARGIN, f"{found}/{cases} inpainted regions hold the shape"
