"""The exact scorer: ground truth scores 1.0, every kind of mistake scores 0, and its accuracy on world scenes.

Accuracy criterion (measured on 200 ``make_scene`` scenes at 160x120, seeds 0..199): an object counts when at least
90% of its drawn pixels are visible and no object of the same colour lies within 2 pixels of it (one colour's
touching shapes are one connected component for any palette segmenter); it is found when, among the detected
objects of its colour, the one of best mask IoU has its kind.  Goal >= 0.97; measured 0.999 (911/912); the other
objects (occluded or crowded): 0.71 (222/314).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from regionreasoner.core.world import COLOURS, KINDS, make_scene
from regionreasoner.evals.generation.exact import ExactWorldDetector
from regionreasoner.evals.generation.geneval import evaluate_image
from regionreasoner.evals.generation.meta import GenEvalPrompt
from regionreasoner.evals.generation.world_prompts import world_geneval_prompts
from regionreasoner.evals.generation.world_render import Placed, layout_for, render_objects

SIZE = (96, 96)
DETECTOR = ExactWorldDetector()
PROMPTS = world_geneval_prompts("en", n_per_task=8, seed=1)


def score(image: Image.Image, meta: GenEvalPrompt) -> bool:
    return evaluate_image(image, meta, DETECTOR, DETECTOR).correct


def truth(meta: GenEvalPrompt, index: int) -> list[Placed]:
    return layout_for(meta, size=SIZE, seed=index)


@pytest.mark.parametrize("size", [(64, 64), (96, 96), (160, 120)])
def test_ground_truth_scores_one(size: tuple[int, int]) -> None:
    verdicts = [score(render_objects(layout_for(p, size=size, seed=i), size), p) for i, p in enumerate(PROMPTS)]
    assert all(verdicts), [p.prompt for p, ok in zip(PROMPTS, verdicts, strict=True) if not ok]


def test_ground_truth_survives_mild_noise() -> None:
    rng = np.random.default_rng(0)
    hits = []
    for i, p in enumerate(PROMPTS):
        pixels = np.asarray(render_objects(truth(p, i), SIZE), dtype=np.float64)
        noisy = np.clip(pixels + rng.normal(0, 6, pixels.shape), 0, 255).astype(np.uint8)
        hits.append(score(Image.fromarray(noisy), p))
    assert np.mean(hits) == 1.0


def _other(value: str, choices: list[str], avoid: set[str]) -> str:
    return next(c for c in choices[choices.index(value) + 1 :] + choices if c not in avoid | {value})


def test_wrong_colour_scores_zero() -> None:
    coloured = [p for p in PROMPTS if p.tag in ("colors", "color_attr")]
    for i, p in enumerate(coloured):
        shapes = truth(p, i)
        wrong = [replace(shapes[0], colour=_other(shapes[0].colour, list(COLOURS), set())), *shapes[1:]]
        assert score(render_objects(shapes, SIZE), p)
        assert not score(render_objects(wrong, SIZE), p), p.prompt


def test_wrong_count_scores_zero() -> None:
    for i, p in enumerate(q for q in PROMPTS if q.tag == "counting"):
        shapes = truth(p, i)
        more = layout_for(replace(p, include=(replace(p.include[0], count=p.include[0].count + 1),)), size=SIZE, seed=i)
        assert not score(render_objects(more, SIZE), p), p.prompt
        assert not score(render_objects(shapes[:-1], SIZE), p), p.prompt


def test_wrong_position_scores_zero() -> None:
    for i, p in enumerate(q for q in PROMPTS if q.tag == "position"):
        landmark, target = truth(p, i)
        swapped = [replace(landmark, cx=target.cx, cy=target.cy), replace(target, cx=landmark.cx, cy=landmark.cy)]
        assert score(render_objects([landmark, target], SIZE), p)
        assert not score(render_objects(swapped, SIZE), p), p.prompt


def test_wrong_kind_scores_zero() -> None:
    for i, p in enumerate(PROMPTS):
        shapes = truth(p, i)
        kind = _other(shapes[0].kind, list(KINDS), {c.cls for c in p.include})
        wrong = [replace(s, kind=kind) if s.kind == shapes[0].kind else s for s in shapes]
        assert not score(render_objects(wrong, SIZE), p), p.prompt


def test_an_empty_image_scores_zero() -> None:
    blank = render_objects([], SIZE)
    assert not any(score(blank, p) for p in PROMPTS)


def test_accuracy_on_world_scenes() -> None:
    from scipy import ndimage

    clear = clear_ok = other = other_ok = 0
    for seed in range(200):
        scene = make_scene(seed, size=(160, 120))
        found = DETECTOR.segment(scene.image)
        for obj in scene.objects:
            near = ndimage.binary_dilation(obj.mask, iterations=2)
            crowded = any(o is not obj and o.colour == obj.colour and (near & o.mask).any() for o in scene.objects)
            is_clear = obj.area >= 0.9 * obj.drawn_area and not crowded
            # The detected object of best mask IoU among those of its colour (a wrong colour finds none).
            mine = [f for f in found if f.colour == obj.colour]
            ious = [(f.mask & obj.mask).sum() / (f.mask | obj.mask).sum() for f in mine]
            ok = bool(mine) and max(ious) > 0 and mine[int(np.argmax(ious))].kind == obj.kind
            if is_clear:
                clear, clear_ok = clear + 1, clear_ok + ok
            else:
                other, other_ok = other + 1, other_ok + ok
    print(f"exact scorer: {clear_ok}/{clear} clear objects, {other_ok}/{other} others")
    assert clear >= 800
    assert clear_ok / clear >= 0.97
    assert other_ok / other >= 0.6
