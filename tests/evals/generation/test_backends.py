"""The transformers backends on tiny random checkpoints: shapes and flow only (random weights, offline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from regionreasoner.core.errors import ConfigError, ModelLoadError
from regionreasoner.evals.generation.backends import (
    ClipColourClassifier,
    GroundingDinoGenEvalDetector,
    Mask2FormerDetector,
    ZeroShotDetector,
)
from regionreasoner.evals.generation.embed import HFVQA, HFImageEmbedder
from regionreasoner.evals.generation.geneval import ColourClassifier, ObjectDetector, evaluate_image
from regionreasoner.evals.generation.loading import load_colours, load_detector, load_embedders, load_vqa
from regionreasoner.evals.generation.meta import GENEVAL_COLORS, Clause, GenEvalPrompt
from regionreasoner.evals.generation.world_render import Placed, render_objects

pytestmark = pytest.mark.slow

IMAGE = render_objects([Placed("circle", "red", 30, 30, 14), Placed("square", "blue", 80, 70, 12)], (112, 96))


def _check_detections(found: list, classes: set[str], masks: bool) -> None:
    for d in found:
        assert d.label in classes
        assert 0 <= d.box.x1 <= d.box.x2 <= IMAGE.width and 0 <= d.box.y1 <= d.box.y2 <= IMAGE.height
        assert 0.0 <= d.score <= 1.0
        assert (d.mask is not None and d.mask.shape == (IMAGE.height, IMAGE.width)) if masks else d.mask is None


def test_owlvit_detector(tiny_backends: dict[str, Path]) -> None:
    detector = ZeroShotDetector(tiny_backends["owlvit"])
    assert isinstance(detector, ObjectDetector)
    found = detector.detect(IMAGE, ["circle", "square"])
    assert found  # every query box of a random model has some score
    _check_detections(found, {"circle", "square"}, masks=False)


def test_mask2former_detector(tiny_backends: dict[str, Path]) -> None:
    detector = Mask2FormerDetector(tiny_backends["mask2former"])
    found = detector.detect(IMAGE, ["circle", "square", "star"])
    _check_detections(found, {"circle", "square", "star"}, masks=True)
    assert detector.detect(IMAGE, ["dog"]) == []  # not a class of the checkpoint


def test_grounding_dino_detector(tiny_grounding_dino: Path) -> None:
    found = GroundingDinoGenEvalDetector(tiny_grounding_dino).detect(IMAGE, ["circle", "square"])
    _check_detections(found, {"circle", "square"}, masks=False)


def test_clip_colours_in_the_geneval_pipeline(tiny_backends: dict[str, Path]) -> None:
    colours = ClipColourClassifier(tiny_backends["clip"])
    assert isinstance(colours, ColourClassifier)
    named = colours.classify([IMAGE, IMAGE.crop((0, 0, 50, 50))], "circle")
    assert len(named) == 2 and set(named) <= set(GENEVAL_COLORS)
    assert colours.classifier("circle").shape == (len(GENEVAL_COLORS), 16)
    meta = GenEvalPrompt(tag="colors", include=(Clause("circle", 1, color="red"),), exclude=(), prompt="p")
    verdict = evaluate_image(IMAGE, meta, load_detector("exact"), colours)
    assert isinstance(verdict.correct, bool)


def test_embedders_are_unit_rows(tiny_backends: dict[str, Path]) -> None:
    for kind, name in (("dinov2", "dinov2"), ("clip", "clip")):
        rows = HFImageEmbedder(tiny_backends[name], kind=kind).embed([IMAGE, IMAGE.rotate(90)])
        assert rows.shape == (2, 32 if kind == "dinov2" else 16)
        assert np.allclose(np.linalg.norm(rows, axis=1), 1.0)
    embedders = load_embedders([f"dinov2={tiny_backends['dinov2']}", "exact"])
    assert sorted(embedders) == ["dinov2", "exact"]


def test_blip_vqa_answers_text(tiny_backends: dict[str, Path]) -> None:
    answer = HFVQA(tiny_backends["blip"], max_new_tokens=3).answer(IMAGE, "is there a circle?")
    assert isinstance(answer, str) and answer == answer.strip().lower()


def test_names_and_errors() -> None:
    assert load_colours("exact") is not None and load_vqa("exact") is not None
    with pytest.raises(ConfigError, match="--detector-path"):
        load_detector("mask2former")
    with pytest.raises(ConfigError, match="unknown detector"):
        load_detector("yolo")
    with pytest.raises(ModelLoadError, match="no checkpoint folder"):
        Mask2FormerDetector("/no/such/folder").load()
