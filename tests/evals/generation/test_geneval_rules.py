"""GenEval's rules, clause for clause, with a scripted detector and colour classifier."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from PIL import Image

from regionreasoner.core.geometry import Box
from regionreasoner.evals.generation.geneval import (
    ColourClassifier,
    Detection,
    GenEvalRules,
    ObjectDetector,
    crop_object,
    evaluate_image,
    relative_position,
)
from regionreasoner.evals.generation.meta import Clause, GenEvalPrompt

IMAGE = Image.new("RGB", (200, 100), (10, 200, 30))


class Scripted:
    """Returns fixed detections; names each crop's colour from a list, recording the crops it saw."""

    def __init__(self, detections: Sequence[Detection], colours: Sequence[str] = ()) -> None:
        self.detections = list(detections)
        self.colours = list(colours)
        self.crops: list[Image.Image] = []

    def detect(self, image: Image.Image, classes: Sequence[str]) -> list[Detection]:
        return list(self.detections)

    def classify(self, crops: Sequence[Image.Image], classname: str) -> list[str]:
        self.crops += crops
        return self.colours[: len(crops)]


def det(label: str, x1: float, score: float = 0.95, w: float = 20, y1: float = 40, mask: bool = False) -> Detection:
    m = None
    if mask:
        m = np.zeros((100, 200), dtype=bool)
        m[int(y1) + 5 : int(y1) + 15, int(x1) + 5 : int(x1) + 15] = True
    return Detection(label=label, box=Box(x1, y1, x1 + w, y1 + 20), score=score, mask=m)


def prompt(tag: str, include: Sequence[Clause], exclude: Sequence[Clause] = ()) -> GenEvalPrompt:
    return GenEvalPrompt(tag=tag, include=tuple(include), exclude=tuple(exclude), prompt="p")


def test_protocols_are_runtime_checkable() -> None:
    s = Scripted([])
    assert isinstance(s, ObjectDetector) and isinstance(s, ColourClassifier)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (Box(0, 0, 10, 10), Box(50, 0, 60, 10), {"left of"}),
        (Box(50, 0, 60, 10), Box(0, 0, 10, 10), {"right of"}),
        (Box(0, 0, 10, 10), Box(0, 50, 10, 60), {"above"}),
        (Box(0, 50, 10, 60), Box(0, 0, 10, 10), {"below"}),
        (Box(0, 0, 10, 10), Box(50, 50, 60, 60), {"left of", "above"}),  # 45 degrees: both beyond 0.5
        (Box(0, 0, 100, 10), Box(15, 0, 115, 10), set()),  # offset 15 < 0.1 x (100 + 100): shrunk to nothing
        (Box(0, 0, 10, 10), Box(30, 12, 40, 22), {"left of"}),  # dy shrunk to 10 of 32.3: under the 0.5 cut
    ],
)
def test_relative_position(a: Box, b: Box, expected: set[str]) -> None:
    assert relative_position(a, b) == expected


def test_thresholds_and_counting_threshold() -> None:
    two_dogs = [det("dog", 10, 0.95), det("dog", 100, 0.5)]
    plain = prompt("two_object", [Clause("dog", 2)])
    counting = prompt("counting", [Clause("dog", 2)], [Clause("dog", 3)])
    assert evaluate_image(IMAGE, plain, Scripted(two_dogs), Scripted([])).correct  # 0.5 > 0.3
    verdict = evaluate_image(IMAGE, counting, Scripted(two_dogs), Scripted([]))
    assert not verdict.correct and "expected dog>=2, found 1" in verdict.reason  # 0.5 <= 0.9 for counting
    weak = [det("dog", 10, 0.3)]
    assert not evaluate_image(IMAGE, prompt("single_object", [Clause("dog", 1)]), Scripted(weak), Scripted([])).correct


def test_exclude_fires_and_max_objects_caps() -> None:
    counting = prompt("counting", [Clause("cat", 2)], [Clause("cat", 3)])
    three = [det("cat", x) for x in (0, 60, 120)]
    verdict = evaluate_image(IMAGE, counting, Scripted(three), Scripted([]))
    assert not verdict.correct and "expected cat<3, found 3" in verdict.reason
    many = [det("cat", float(x)) for x in range(20)]
    verdict = evaluate_image(IMAGE, prompt("counting", [Clause("cat", 17)]), Scripted(many), Scripted([]))
    assert not verdict.correct and "found 16" in verdict.reason
    assert len(verdict.detected["cat"]) == 16
    custom = GenEvalRules(max_objects=20)
    assert evaluate_image(IMAGE, prompt("counting", [Clause("cat", 17)]), Scripted(many), Scripted([]), custom).correct


def test_colour_needs_count_matches_among_the_best_objects() -> None:
    two = [det("car", 10, 0.9), det("car", 100, 0.8)]
    red = prompt("colors", [Clause("car", 1, color="red")])
    assert evaluate_image(IMAGE, red, Scripted(two), Scripted([], ["red", "blue"])).correct
    verdict = evaluate_image(IMAGE, red, Scripted(two), Scripted([], ["blue", "red"]))  # only the best car is asked
    assert not verdict.correct and "expected red car>=1, found 0 red; and 1 blue" in verdict.reason


def test_colour_crops_fill_outside_the_mask_with_999() -> None:
    colours = Scripted([], ["red"])
    found = [det("car", 10, mask=True)]
    evaluate_image(IMAGE, prompt("colors", [Clause("car", 1, color="red")]), Scripted(found), colours)
    crop = np.asarray(colours.crops[0])
    assert crop.shape == (20, 20, 3)
    assert tuple(crop[0, 0]) == (153, 153, 153)  # outside the mask
    assert tuple(crop[10, 10]) == (10, 200, 30)  # inside: the image
    no_mask = crop_object(IMAGE, det("car", 10))
    assert tuple(np.asarray(no_mask)[0, 0]) == (10, 200, 30)


def test_position_against_the_cited_group() -> None:
    spec = prompt("position", [Clause("bench", 1), Clause("dog", 1, position=("left of", 0))])
    left = [det("bench", 150), det("dog", 10)]
    right = [det("bench", 10), det("dog", 150)]
    assert evaluate_image(IMAGE, spec, Scripted(left), Scripted([])).correct
    verdict = evaluate_image(IMAGE, spec, Scripted(right), Scripted([]))
    assert not verdict.correct and "expected dog left of target, found right of target" in verdict.reason
    verdict = evaluate_image(IMAGE, spec, Scripted([det("dog", 10)]), Scripted([]))
    assert not verdict.correct and "no target for dog to be left of" in verdict.reason
