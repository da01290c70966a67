"""From parsed answer objects (a policy's frame) to regions in original-image pixels, under two answer protocols.

* ``regionreasoner`` (default): the exact inverse of the frame (:meth:`Frame.box_from_model`, float pixels, no
  rounding), clipped to the image.  Pair it with ``parse_answer(coordinates="tolerant")``: a coordinate a little
  outside the frame is clipped, one far outside fails the turn (the model is answering in another frame).
* ``official``: what the released RegionReasoner evaluation keeps of an answer (lmsdss/RegionReasoner@f34dbfc,
  ``test/vision_reasoner/models/vision_reasoner_model.py``; the lines are cited in docs/evaluation.md).  Every
  coordinate becomes ``int(v * (W / Mw) + 0.5)`` (Python's ``int`` truncates toward zero, so ``-0.7`` gives 0, not
  -1), negative, beyond the image or inverted as it comes; when any object has no usable ``point_2d`` the boxes
  are kept but no point is, and the turn's mask is empty.  Pair it with ``parse_answer(coordinates="official")``.

Memory holds valid regions inside their image, so under ``official`` a region is the official box clipped to the
image (an inverted one is no region); the unclipped boxes, which the official metrics and citations use, are
:attr:`MappedAnswer.official` (:class:`OfficialPrediction`), and :func:`official_answer` derives them again from a
stored turn's answer text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from regionreasoner.core.errors import ConfigError, GeometryError
from regionreasoner.core.frames import Frame
from regionreasoner.core.geometry import Box, Point
from regionreasoner.core.masks import Rle, rle_from_any
from regionreasoner.core.protocol import AnswerObject, CoordinateRule, parse_answer
from regionreasoner.core.types import Problem, ProblemKind, RegionDraft, Severity

__all__ = [
    "ANSWER_PROTOCOLS",
    "AnswerProtocol",
    "MappedAnswer",
    "OfficialPrediction",
    "coordinate_rule",
    "empty_mask",
    "map_answer",
    "official_answer",
    "official_prediction",
    "official_round",
]

AnswerProtocol = Literal["regionreasoner", "official"]
"""How an answer becomes regions: ``regionreasoner`` (exact, clipped) or ``official`` (the released eval code)."""

ANSWER_PROTOCOLS: tuple[AnswerProtocol, ...] = get_args(AnswerProtocol)
"""Every :data:`AnswerProtocol`, default first."""

_RULES: dict[AnswerProtocol, CoordinateRule] = {"regionreasoner": "tolerant", "official": "official"}

IntBox = tuple[int, int, int, int]
IntPoint = tuple[int, int]


def coordinate_rule(protocol: AnswerProtocol) -> CoordinateRule:
    """The ``coordinates`` rule of :func:`~regionreasoner.core.protocol.parse_action` that goes with ``protocol``.

    >>> coordinate_rule("regionreasoner"), coordinate_rule("official")
    ('tolerant', 'official')
    """
    _check_protocol(protocol)
    return _RULES[protocol]


def _check_protocol(protocol: str) -> None:
    if protocol not in ANSWER_PROTOCOLS:
        raise ConfigError(f"answer protocol {protocol!r}", hint=f"use one of {list(ANSWER_PROTOCOLS)}")


def official_round(value: float, factor: float) -> int | None:
    """``int(value * factor + 0.5)``: the released code's model-to-pixel rounding (truncation toward zero).

    ``factor`` is ``W / Mw`` (or ``H / Mh``), computed first as the released code does.  None when the product is
    not finite: there the released code raises and keeps nothing of that list.

    >>> official_round(-1.2, 1.0), official_round(-1.6, 1.0), official_round(420.5, 1.0)
    (0, -1, 421)
    """
    scaled = value * factor + 0.5
    if not math.isfinite(scaled):
        return None
    return int(scaled)


def empty_mask(size: tuple[int, int]) -> Rle:
    """The all-zero mask of an image of ``size = (W, H)`` pixels, as COCO RLE (size ``[H, W]``)."""
    w, h = size
    if w <= 0 or h <= 0:
        raise GeometryError(f"image size must be positive, got {w}x{h}")
    return rle_from_any({"size": [h, w], "counts": [w * h]})


@dataclass(frozen=True)
class OfficialPrediction:
    """What the released evaluation keeps of one answer, in original-image integer pixels.

    ``boxes`` are xyxy as the official code computes them: possibly negative, beyond the image or inverted; it
    scores box IoU on them and pastes ``boxes[0]`` into a later question that cites the turn.  ``points`` is empty
    when any object has no usable point; then the official mask of the turn is empty (:attr:`mask_is_empty`).
    """

    boxes: tuple[IntBox, ...] = ()
    points: tuple[IntPoint, ...] = ()

    @property
    def mask_is_empty(self) -> bool:
        """True when the official code gives this answer an all-zero mask (boxes but no points, or no boxes)."""
        return not self.boxes or not self.points

    def pixel_boxes(self) -> list[Box]:
        """The boxes as :class:`Box` (float corners, inverted ones included, nothing clipped)."""
        return [Box(float(b[0]), float(b[1]), float(b[2]), float(b[3])) for b in self.boxes]


@dataclass(frozen=True)
class MappedAnswer:
    """Regions to store (original pixels, inside the image) and the problems met on the way.

    ``official``: the unclipped official prediction, under the ``official`` protocol only.
    """

    regions: list[RegionDraft] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    official: OfficialPrediction | None = None

    @property
    def ok(self) -> bool:
        """False when a problem is an error (the turn fails)."""
        return not any(p.severity is Severity.ERROR for p in self.problems)


def _factors(frame: Frame, size: tuple[int, int]) -> tuple[float, float]:
    w, h = size
    if w <= 0 or h <= 0:
        raise GeometryError(f"image size must be positive, got {w}x{h}")
    mw, mh = frame.model_size(size)
    return w / mw, h / mh


def _warning(kind: ProblemKind, message: str, index: int | None = None) -> Problem:
    return Problem(kind=kind, severity=Severity.WARNING, message=message, section="answer", index=index)


def official_prediction(
    objects: Sequence[AnswerObject], frame: Frame, size: tuple[int, int]
) -> tuple[OfficialPrediction, list[Problem]]:
    """The official boxes and points of ``objects`` (``frame`` coordinates) for an image of ``size = (W, H)``.

    A box coordinate that overflows (``v * W / Mw`` not finite) empties the prediction and is an error (the
    official code keeps no box then); a point coordinate that does only drops the points.
    """
    fx, fy = _factors(frame, size)
    problems: list[Problem] = []
    boxes: list[IntBox] = []
    for i, obj in enumerate(objects):
        x1, y1, x2, y2 = (official_round(v, f) for v, f in zip(obj.box, (fx, fy, fx, fy), strict=True))
        if x1 is None or y1 is None or x2 is None or y2 is None:
            message = f"object {i}: bbox_2d {list(obj.box)} overflows in pixels; the official code keeps no box"
            problems.append(
                Problem(
                    kind=ProblemKind.NON_FINITE, severity=Severity.ERROR, message=message, section="answer", index=i
                )
            )
            return OfficialPrediction(), problems
        boxes.append((x1, y1, x2, y2))
    points: list[IntPoint] = []
    for i, obj in enumerate(objects):
        if obj.point is None:
            points = []
            problems.append(
                _warning(ProblemKind.MISSING_KEY, f"object {i} has no usable point_2d: no points, empty mask", i)
            )
            break
        px, py = official_round(obj.point[0], fx), official_round(obj.point[1], fy)
        if px is None or py is None:
            points = []
            problems.append(
                _warning(ProblemKind.NON_FINITE, f"object {i}: point_2d overflows in pixels: no points, empty mask", i)
            )
            break
        points.append((px, py))
    return OfficialPrediction(boxes=tuple(boxes), points=tuple(points)), problems


def official_answer(answer: str | None, frame: Frame, size: tuple[int, int]) -> OfficialPrediction:
    """What the released evaluation keeps of the inner text of an ``<answer>`` section (None: there was none).

    The text is read with ``parse_answer(coordinates="official", max_objects=None)``; any error keeps nothing, as
    the official ``json.loads`` + list comprehension keeps nothing when it raises.  Used to score a stored turn
    by the official rules (``Turn.sections.answer``, ``frame_from_spec(Turn.frame)``, the image size).
    """
    if answer is None:
        return OfficialPrediction()
    objects, problems = parse_answer(answer, max_objects=None, coordinates="official")
    if any(p.severity is Severity.ERROR for p in problems):
        return OfficialPrediction()
    prediction, _ = official_prediction(objects, frame, size)
    return prediction


def _default_regions(objects: Sequence[AnswerObject], frame: Frame, size: tuple[int, int]) -> list[RegionDraft]:
    w, h = size
    drafts = []
    for obj in objects:
        box = frame.box_from_model(obj.box, size).clip(w, h)
        point = None
        if obj.point is not None:
            p = frame.point_from_model(obj.point, size)
            point = Point(min(max(p.x, 0.0), w), min(max(p.y, 0.0), h))
        drafts.append(RegionDraft(box=box, point=point, label=obj.label))
    return drafts


def _official_regions(
    objects: Sequence[AnswerObject], prediction: OfficialPrediction, size: tuple[int, int]
) -> tuple[list[RegionDraft], list[Problem]]:
    w, h = size
    mask = empty_mask(size) if prediction.boxes and not prediction.points else None
    drafts: list[RegionDraft] = []
    problems: list[Problem] = []
    for i, (obj, b) in enumerate(zip(objects, prediction.boxes, strict=True)):
        box = Box(float(b[0]), float(b[1]), float(b[2]), float(b[3])).clip(w, h)
        if not box.is_valid():
            message = f"object {i}: box {list(b)} is inverted: scored (IoU 0) and citable, but not a region"
            problems.append(_warning(ProblemKind.INVERTED, message, i))
            continue
        point = None
        if prediction.points:
            px, py = prediction.points[i]
            point = Point(min(max(float(px), 0.0), w), min(max(float(py), 0.0), h))
        drafts.append(RegionDraft(box=box, point=point, mask=mask, label=obj.label))
    return drafts, problems


def map_answer(
    objects: Sequence[AnswerObject], frame: Frame, size: tuple[int, int], protocol: AnswerProtocol
) -> MappedAnswer:
    """Map answer objects in ``frame`` coordinates to regions in original pixels of an image of ``size = (W, H)``.

    ``objects`` come from ``parse_action(..., coordinates=coordinate_rule(protocol))``.  See the module docstring
    for the two protocols.  Raises :class:`ConfigError` for an unknown protocol and :class:`GeometryError` for a
    non-positive size; model output never raises.
    """
    _check_protocol(protocol)
    if protocol == "regionreasoner":
        if size[0] <= 0 or size[1] <= 0:
            raise GeometryError(f"image size must be positive, got {size[0]}x{size[1]}")
        return MappedAnswer(regions=_default_regions(objects, frame, size))
    prediction, problems = official_prediction(objects, frame, size)
    if not prediction.boxes:
        return MappedAnswer(problems=problems, official=prediction)
    regions, region_problems = _official_regions(objects, prediction, size)
    return MappedAnswer(regions=regions, problems=[*problems, *region_problems], official=prediction)
