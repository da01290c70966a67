"""Region references in questions and box citations in reasoning.

* A question names earlier regions as ``R1``, ``R2``, ... or gives a box inline as ``bbox=[x1, y1, x2, y2]`` (in
  original-image pixels).  :func:`find_region_names` and :func:`find_question_boxes` find them;
  :func:`render_question` replaces them with ``bbox=[...]`` in the policy's frame, which is the only form the
  RegionReasoner checkpoints were trained on.
* The ``<think>`` section cites the reference as ``bbox=[x1, y1, x2, y2]`` (``=`` optional, as the reference
  reward accepts).  :func:`check_citations` tells which cited boxes equal a referenced box exactly (verified) and
  which match none (hallucinated), with the same exact-integer rule as the RegionReasoner R_ref reward.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from regionreasoner.core.errors import GeometryError, InputError
from regionreasoner.core.frames import Frame
from regionreasoner.core.geometry import Box

__all__ = [
    "CitationCheck",
    "QuestionBox",
    "Reference",
    "ReferenceMatch",
    "check_citations",
    "check_question_references",
    "find_cited_boxes",
    "find_question_boxes",
    "find_region_names",
    "match_references",
    "render_bbox",
    "render_question",
    "render_region",
]

_NUM = r"(-?\d+(?:\.\d+)?)"
_CITED = re.compile(
    r"bbox\s*=?\s*\[\s*" + r"\s*,\s*".join([_NUM] * 4) + r"\s*\]",
    re.IGNORECASE,
)
_INLINE = re.compile(r"bbox\s*=\s*\[\s*" + r"\s*,\s*".join([_NUM] * 4) + r"\s*\]", re.IGNORECASE)
# A name stands alone among ASCII word characters only: Chinese has no spaces ("找出在R1旁边的…"), and Python's \w
# counts Han characters as word characters; "PR1" and "R2-D2" are still not names.
_REGION_NAME = re.compile(r"(?<![A-Za-z0-9_-])R([1-9][0-9]*)(?![A-Za-z0-9_-])")
_ZERO_NAME = re.compile(r"(?<![A-Za-z0-9_-])R(0[0-9]*)(?![A-Za-z0-9_-])")
_LOOSE_BOX = re.compile(r"bbox\s*=?\s*[\[(][^\])\n]{0,200}[\])]?", re.IGNORECASE)
"""Anything that looks like an inline box: ``bbox`` then a bracket, ``=`` optional, brackets of either kind."""

Coords4 = tuple[float, float, float, float]


def render_bbox(box: Sequence[float]) -> str:
    """``bbox=[x1, y1, x2, y2]`` with integer coordinates (the form the reference prompts and rewards use)."""
    if len(box) != 4:
        raise ValueError(f"render_bbox needs 4 coordinates, got {list(box)}")
    return "bbox=[" + ", ".join(str(math.floor(v + 0.5)) for v in box) + "]"


def render_region(box: Box, frame: Frame, image_size: tuple[int, int]) -> str:
    """A region's box (original pixels) as ``bbox=[x1, y1, x2, y2]`` in ``frame``, for an image of ``(W, H)`` pixels.

    >>> from regionreasoner.core.frames import FixedResizeFrame
    >>> render_region(Box(250, 330, 320, 400), FixedResizeFrame(840, 840), (640, 480))
    'bbox=[328, 578, 420, 700]'
    """
    return render_bbox(frame.box_to_model(box, image_size))


def find_cited_boxes(text: str) -> list[Coords4]:
    """Boxes cited as ``bbox=[...]`` or ``bbox [...]`` in ``text``, in order of appearance (duplicates kept)."""
    return [(float(a), float(b), float(c), float(d)) for a, b, c, d in _CITED.findall(text)]


def find_region_names(question: str) -> list[str]:
    """Region names (``R1``, ``R12``) mentioned in a question, in order, each once.

    A name is ``R`` plus a positive integer without leading zeros, standing alone (``R2-D2`` and ``PR1`` are not
    names).
    """
    seen: dict[str, None] = {}
    for m in _REGION_NAME.finditer(question):
        seen.setdefault("R" + m.group(1))
    return list(seen)


@dataclass(frozen=True)
class QuestionBox:
    """An inline ``bbox=[...]`` in a question: its character span and its four numbers as written."""

    start: int
    end: int
    coords: Coords4


def find_question_boxes(question: str) -> list[QuestionBox]:
    """Inline ``bbox=[x1, y1, x2, y2]`` boxes in a question (the ``=`` is required here), in order."""
    return [
        QuestionBox(m.start(), m.end(), (float(m[1]), float(m[2]), float(m[3]), float(m[4])))
        for m in _INLINE.finditer(question)
    ]


def check_question_references(question: str) -> None:
    """Raise for references a question writes in a form that cannot be resolved, instead of passing them on as text.

    * Something that looks like an inline box but is not ``bbox=[x1, y1, x2, y2]`` with four plain numbers
      (``bbox=[1e3, ...]``, ``NaN``, three or five numbers, no ``=``, round brackets, unclosed): GeometryError.
    * ``R0`` or a name with a leading zero (``R01``): InputError (names start at R1, without leading zeros).

    Lower-case ``r1`` and names glued to other words (``R2-D2``, ``PR1``) stay plain text, as documented.

    >>> check_question_references("the cup left of R1 in bbox=[10, 20, 30.5, 40]")
    >>> check_question_references("the cup in bbox=[1e3, 20, 30, 40]")
    Traceback (most recent call last):
    ...
    regionreasoner.core.errors.GeometryError: 'bbox=[1e3, 20, 30, 40]' is not an inline box (write bbox=[...] ...)
    """
    for m in _LOOSE_BOX.finditer(question):
        if _INLINE.fullmatch(question, m.start(), m.end()) is None:
            written = m.group()
            raise GeometryError(
                f"{written[:60]!r} is not an inline box",
                hint="write bbox=[x1, y1, x2, y2] with four plain numbers (12 or 12.5) in original-image pixels",
            )
    for m in _ZERO_NAME.finditer(question):
        digits = m.group(1).lstrip("0")
        fix = f"write 'R{digits}'; " if digits else ""
        raise InputError(
            f"{m.group()!r} is not a region name: names start at R1, without leading zeros",
            hint=fix + "cite regions as R1, R2, ... as earlier turns named them",
        )


def render_question(
    question: str,
    regions: Mapping[str, Sequence[float]],
    inline: Sequence[Sequence[float]] = (),
) -> str:
    """Replace region names and inline boxes with ``bbox=[...]`` in the policy's frame.

    ``regions`` maps names (``"R1"``) to their box in the policy's frame; ``inline`` gives the policy-frame box
    of each inline ``bbox=[...]`` of the question, in order.  A name missing from ``regions`` raises KeyError
    (the caller resolves names first).
    """
    boxes = find_question_boxes(question)
    if len(inline) != len(boxes):
        raise ValueError(f"question has {len(boxes)} inline boxes but {len(inline)} replacements were given")
    pieces: list[str] = []
    last = 0
    for qb, repl in zip(boxes, inline, strict=True):
        pieces.append(_render_names(question[last : qb.start], regions))
        pieces.append(render_bbox(repl))
        last = qb.end
    pieces.append(_render_names(question[last:], regions))
    return "".join(pieces)


def _render_names(text: str, regions: Mapping[str, Sequence[float]]) -> str:
    return _REGION_NAME.sub(lambda m: render_bbox(regions["R" + m.group(1)]), text)


@dataclass(frozen=True)
class CitationCheck:
    """One box cited in ``<think>`` (policy frame) and the referenced region it equals, if any."""

    model_box: Coords4
    region: str | None

    @property
    def verified(self) -> bool:
        """True when the cited box equals a referenced box exactly."""
        return self.region is not None


def check_citations(
    cited: Sequence[Coords4], references: Mapping[str, Sequence[float]]
) -> tuple[list[CitationCheck], list[str]]:
    """Match cited boxes against the referenced regions' rendered boxes (policy frame, exact integers).

    Returns one :class:`CitationCheck` per cited box (``region`` None: hallucinated) and the names of referenced
    regions that no citation matched.  Matching uses the integers the prompt showed, as the RegionReasoner
    R_ref reward does, so an off-by-one citation is a hallucination.
    """
    names = list(references)
    hits = _match_boxes(cited, [references[n] for n in names])
    checks = [CitationCheck(model_box=box, region=None if i is None else names[i]) for box, i in hits]
    matched = {names[i] for _, i in hits if i is not None}
    missing = [name for name in references if name not in matched]
    return checks, missing


def _match_boxes(cited: Sequence[Coords4], boxes: Sequence[Sequence[float]]) -> list[tuple[Coords4, int | None]]:
    """Each cited box (as floats) with the index of the first of ``boxes`` whose rendered integers it equals."""
    rendered = [tuple(float(math.floor(v + 0.5)) for v in box) for box in boxes]
    out: list[tuple[Coords4, int | None]] = []
    for box in cited:
        key = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
        out.append((key, next((i for i, ref in enumerate(rendered) if ref == key), None)))
    return out


@dataclass(frozen=True, kw_only=True)
class Reference:
    """A box the question cites: a stored region by name (``region="R2"``) or its ``inline``-th ``bbox=[...]``.

    ``box`` is xyxy integers in the policy's frame (exactly what the prompt shows), ``frame`` that frame's spec.
    Exactly one of ``region`` and ``inline`` (0-based) is set.
    """

    box: tuple[int, int, int, int]
    frame: str
    region: str | None = None
    inline: int | None = None

    def __post_init__(self) -> None:
        if (self.region is None) == (self.inline is None):
            raise InputError(
                "a Reference names a stored region or an inline box, not both or neither",
                hint="pass region='R2' or inline=0",
            )
        if len(self.box) != 4:
            raise GeometryError(f"a Reference box has 4 coordinates, got {list(self.box)}", hint="xyxy integers")
        box = tuple(int(v) for v in self.box)
        object.__setattr__(self, "box", (box[0], box[1], box[2], box[3]))

    @property
    def label(self) -> str:
        """``R2``, or ``inline box 1`` (1-based) for the first inline box."""
        return self.region if self.region is not None else f"inline box {(self.inline or 0) + 1}"


@dataclass(frozen=True)
class ReferenceMatch:
    """One box cited in ``<think>`` (policy frame) and the reference it equals, if any."""

    model_box: Coords4
    reference: Reference | None

    @property
    def verified(self) -> bool:
        """True when the cited box equals a referenced box exactly."""
        return self.reference is not None


def match_references(
    cited: Sequence[Coords4], references: Sequence[Reference]
) -> tuple[list[ReferenceMatch], list[Reference]]:
    """:func:`check_citations` over typed references: one match per cited box, and the references none matched.

    The rule is the same exact-integer rule (the R_ref reward's): a cited box verifies a reference only when it
    equals the integers the prompt showed.
    """
    hits = _match_boxes(cited, [ref.box for ref in references])
    matches = [ReferenceMatch(model_box=box, reference=None if i is None else references[i]) for box, i in hits]
    matched = {i for _, i in hits if i is not None}
    return matches, [ref for i, ref in enumerate(references) if i not in matched]
