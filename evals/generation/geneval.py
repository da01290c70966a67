"""GenEval's scoring rules, with a pluggable detector and colour classifier (neobabel.md §5.1).

For each image: the detector's boxes per class are kept when their score exceeds ``threshold`` (0.3;
``counting_threshold`` 0.9 for the ``counting`` task), best first, at most ``max_objects`` (16) per class, no NMS.
Then every ``include`` clause must hold, in order: at least ``count`` objects of the class; their colours (the
classifier on each object's crop, background outside its mask filled with ``#999``) include the clause's colour
``count`` times; and each is ``position`` (:func:`relative_position`) every object of the cited group.  No
``exclude`` clause may fire (``count`` or more objects of its class).  This is ``evaluate_images.py`` of GenEval,
clause for clause.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image, ImageOps

from regionreasoner.core.errors import ConfigError, InputError
from regionreasoner.core.geometry import Box
from regionreasoner.core.masks import BoolMask
from regionreasoner.evals.generation.meta import GenEvalPrompt

__all__ = [
    "BGCOLOR",
    "ColourClassifier",
    "Detection",
    "GenEvalRules",
    "ImageVerdict",
    "ObjectDetector",
    "crop_object",
    "evaluate_image",
    "relative_position",
]

BGCOLOR = "#999"
"""What GenEval paints outside an object's mask before the colour classifier sees its crop."""


@dataclass(frozen=True, eq=False)
class Detection:
    """One detected object: class label, box (xyxy pixels of the image), confidence in [0, 1], optional mask."""

    label: str
    box: Box
    score: float
    mask: BoolMask | None = None
    """Its pixels, shape (H, W) of the image, or None for box-only detectors."""


@runtime_checkable
class ObjectDetector(Protocol):
    """Finds objects of the given class names in an image (every detection, unthresholded)."""

    def detect(self, image: Image.Image, classes: Sequence[str]) -> list[Detection]:
        """Detections of ``classes`` in ``image`` (RGB; boxes in its pixels)."""
        ...


@runtime_checkable
class ColourClassifier(Protocol):
    """Names the colour of each object crop (a colour of GenEval's list, or any name a clause may ask for)."""

    def classify(self, crops: Sequence[Image.Image], classname: str) -> list[str]:
        """One colour name per crop; ``classname`` is the objects' class (GenEval's templates use it)."""
        ...


@dataclass(frozen=True, kw_only=True)
class GenEvalRules:
    """GenEval's thresholds (``evaluate_images.py`` defaults)."""

    threshold: float = 0.3
    """Keep a detection whose score exceeds this."""
    counting_threshold: float = 0.9
    """The threshold for prompts tagged ``counting``."""
    max_objects: int = 16
    """At most this many detections per class (best scores)."""
    position_threshold: float = 0.1
    """Share of the two boxes' summed size removed from their centre offset before the direction is read."""

    def __post_init__(self) -> None:
        if not (0 <= self.threshold <= 1 and 0 <= self.counting_threshold <= 1):
            raise ConfigError("thresholds are scores in [0, 1]", hint="GenEval uses 0.3 and 0.9")
        if self.max_objects < 1 or self.position_threshold < 0:
            raise ConfigError("max_objects >= 1 and position_threshold >= 0", hint="GenEval uses 16 and 0.1")


@dataclass(frozen=True)
class ImageVerdict:
    """The result for one image: correct or not, why not, and the detections kept per class (boxes)."""

    correct: bool
    reason: str
    detected: dict[str, list[Box]] = field(default_factory=dict)


def relative_position(a: Box, b: Box, position_threshold: float = 0.1) -> set[str]:
    """Where box ``a`` lies relative to box ``b``: a subset of {"left of", "right of", "above", "below"}.

    The centre offset is shrunk by ``position_threshold`` times the summed box width (height), then divided by the
    unshrunk offset's length; a component beyond 0.5 names the direction (GenEval's ``relative_position``).

    >>> sorted(relative_position(Box(0, 0, 10, 10), Box(50, 0, 60, 10)))
    ['left of']
    """
    ca = np.array([(a.x1 + a.x2) / 2, (a.y1 + a.y2) / 2])
    cb = np.array([(b.x1 + b.x2) / 2, (b.y1 + b.y2) / 2])
    dims = np.array([abs(a.x2 - a.x1) + abs(b.x2 - b.x1), abs(a.y2 - a.y1) + abs(b.y2 - b.y1)])
    offset = ca - cb
    revised = np.maximum(np.abs(offset) - position_threshold * dims, 0) * np.sign(offset)
    if np.all(np.abs(revised) < 1e-3):
        return set()
    dx, dy = revised / np.linalg.norm(offset)
    out = set()
    if dx < -0.5:
        out.add("left of")
    if dx > 0.5:
        out.add("right of")
    if dy < -0.5:
        out.add("above")
    if dy > 0.5:
        out.add("below")
    return out


def crop_object(image: Image.Image, detection: Detection, bgcolor: str = BGCOLOR) -> Image.Image:
    """The crop the colour classifier sees: ``detection.box`` of ``image``, pixels outside its mask = ``bgcolor``."""
    rgb = image.convert("RGB")
    if detection.mask is not None:
        if detection.mask.shape != (rgb.height, rgb.width):
            raise InputError(f"mask {detection.mask.shape} does not match the image {rgb.height}x{rgb.width}")
        blank = Image.new("RGB", rgb.size, color=bgcolor)
        rgb = Image.composite(rgb, blank, Image.fromarray(detection.mask.astype(np.uint8) * 255))
    b = detection.box
    return rgb.crop((b.x1, b.y1, b.x2, b.y2))


def _kept(
    detections: Sequence[Detection], classes: Sequence[str], threshold: float, most: int
) -> dict[str, list[Detection]]:
    kept: dict[str, list[Detection]] = {}
    for name in classes:
        mine = sorted((d for d in detections if d.label == name and d.score > threshold), key=lambda d: -d.score)
        if mine:
            kept[name] = mine[:most]
    return kept


def evaluate_image(
    image: Image.Image,
    metadata: GenEvalPrompt,
    detector: ObjectDetector,
    colours: ColourClassifier,
    rules: GenEvalRules | None = None,
) -> ImageVerdict:
    """Score one generated image against its metadata with GenEval's rules (module docstring)."""
    rules = rules or GenEvalRules()
    image = ImageOps.exif_transpose(image).convert("RGB")
    threshold = rules.counting_threshold if metadata.tag == "counting" else rules.threshold
    detected = _kept(detector.detect(image, metadata.classes), metadata.classes, threshold, rules.max_objects)
    correct, reasons = True, []
    groups: list[list[Detection] | None] = []
    for clause in metadata.include:
        matched = True
        found = detected.get(clause.cls, [])[: clause.count]
        if len(found) < clause.count:
            correct = matched = False
            reasons.append(f"expected {clause.cls}>={clause.count}, found {len(found)}")
        else:
            if clause.color is not None:
                names = colours.classify([crop_object(image, d) for d in found], clause.cls)
                if names.count(clause.color) < clause.count:
                    correct = matched = False
                    seen = ", ".join(f"{names.count(c)} {c}" for c in dict.fromkeys(names))
                    reasons.append(
                        f"expected {clause.color} {clause.cls}>={clause.count}, found "
                        f"{names.count(clause.color)} {clause.color}; and {seen}"
                    )
            if clause.position is not None and matched:
                relation, group = clause.position
                targets = groups[group]
                if targets is None:
                    correct = matched = False
                    reasons.append(f"no target for {clause.cls} to be {relation}")
                else:
                    for obj in found:
                        for target in targets:
                            seen_rel = relative_position(obj.box, target.box, rules.position_threshold)
                            if relation not in seen_rel:
                                correct = matched = False
                                reasons.append(
                                    f"expected {clause.cls} {relation} target, found {' and '.join(seen_rel)} target"
                                )
                                break
                        if not matched:
                            break
        groups.append(found if matched else None)
    for clause in metadata.exclude:
        if len(detected.get(clause.cls, [])) >= clause.count:
            correct = False
            reasons.append(f"expected {clause.cls}<{clause.count}, found {len(detected[clause.cls])}")
    boxes = {name: [d.box for d in found] for name, found in detected.items()}
    return ImageVerdict(correct=correct, reason="\n".join(reasons), detected=boxes)
