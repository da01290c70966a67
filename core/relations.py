"""Spatial relations between two boxes, with written definitions and tolerances.

The vocabulary is the one of the RegionReasoner papers and training prompt (above, below, to the left of, to the
right of, inside, overlapping with, touching, next to) plus "near", which RegionDial-Bench questions and the
RegionReasoner consistency reward use.  A statement reads ``holds(REL, a, b)``: "a is REL b", where ``a`` is the
target and ``b`` the reference.  Image coordinates: y grows downwards, so "above" means smaller y.

Definitions (``w``/``h`` are box width/height, ``T`` a :class:`Tolerances`):

* ``left_of``: ``a.x2 <= b.x1 + T.axis_overlap * min(a.w, b.w)`` (a ends before b starts, allowing a small
  overlap).  ``right_of(a, b) = left_of(b, a)``.
* ``above``: ``a.y2 <= b.y1 + T.axis_overlap * min(a.h, b.h)``.  ``below(a, b) = above(b, a)``.
* ``inside``: at least ``T.inside`` of a's area lies in b, and a is smaller than b.
* ``overlapping``: the shared area exceeds ``T.overlap`` of the smaller box's area.
* ``touching``: the gap between the boxes is at most ``T.touch_px`` pixels and they do not overlap.
* ``next_to``: side by side: their vertical extents share at least ``T.side_by_side`` of the smaller height,
  the horizontal gap is at most ``T.next_gap`` of the larger width, and neither is inside the other.
* ``near``: the gap between the boxes is at most ``T.near`` times the largest side of the two boxes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.geometry import Box

__all__ = ["DEFAULT_TOLERANCES", "Relation", "Tolerances", "box_gap", "find_relations", "holds", "relations_between"]


class Relation(StrEnum):
    """A spatial relation "target REL reference"."""

    ABOVE = "above"
    BELOW = "below"
    LEFT_OF = "left_of"
    RIGHT_OF = "right_of"
    INSIDE = "inside"
    OVERLAPPING = "overlapping"
    TOUCHING = "touching"
    NEXT_TO = "next_to"
    NEAR = "near"

    @property
    def phrase(self) -> str:
        """The words used in questions, e.g. ``"to the left of"``."""
        return _PHRASES[self]


_PHRASES: dict[Relation, str] = {
    Relation.ABOVE: "above",
    Relation.BELOW: "below",
    Relation.LEFT_OF: "to the left of",
    Relation.RIGHT_OF: "to the right of",
    Relation.INSIDE: "inside",
    Relation.OVERLAPPING: "overlapping with",
    Relation.TOUCHING: "touching",
    Relation.NEXT_TO: "next to",
    Relation.NEAR: "near",
}

# Longest phrases first, so that "to the left of" wins over "left".
_PATTERNS: list[tuple[re.Pattern[str], Relation]] = [
    (re.compile(r"\bto the left of\b|\bleft of\b|\bon the left of\b"), Relation.LEFT_OF),
    (re.compile(r"\bto the right of\b|\bright of\b|\bon the right of\b"), Relation.RIGHT_OF),
    (re.compile(r"\bnext to\b|\bbeside\b|\balongside\b"), Relation.NEXT_TO),
    (re.compile(r"\boverlapping\b|\boverlaps\b"), Relation.OVERLAPPING),
    (re.compile(r"\btouching\b|\btouches\b"), Relation.TOUCHING),
    (re.compile(r"\binside\b|\bwithin\b"), Relation.INSIDE),
    (re.compile(r"\babove\b|\bover\b"), Relation.ABOVE),
    (re.compile(r"\bbelow\b|\bunder\b|\bbeneath\b|\bunderneath\b"), Relation.BELOW),
    (re.compile(r"\bnear\b|\bclose to\b|\bclosest to\b|\bnearby\b"), Relation.NEAR),
]


@dataclass(frozen=True, kw_only=True)
class Tolerances:
    """Tolerances of the relation definitions (fractions are of the named box extent or area)."""

    axis_overlap: float = 0.1
    """left/right/above/below: allowed overlap along the axis, as a fraction of the smaller extent."""
    inside: float = 0.95
    """inside: share of the target's area that must lie in the reference."""
    overlap: float = 0.05
    """overlapping: shared area above this fraction of the smaller area; touching needs at most this much."""
    touch_px: float = 2.0
    """touching: the largest gap, in pixels, between two boxes that still touch."""
    side_by_side: float = 0.5
    """next_to: shared vertical extent as a fraction of the smaller height."""
    next_gap: float = 0.5
    """next_to: the largest horizontal gap as a fraction of the larger width."""
    near: float = 0.5
    """near: the largest gap as a fraction of the largest side of the two boxes."""

    def __post_init__(self) -> None:
        for name in ("axis_overlap", "inside", "overlap", "side_by_side", "next_gap", "near"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"Tolerances.{name}={value}: set it between 0 and 1")
        if self.touch_px < 0:
            raise ConfigError(f"Tolerances.touch_px={self.touch_px}: set it >= 0 pixels")


DEFAULT_TOLERANCES = Tolerances()


def box_gap(a: Box, b: Box) -> float:
    """Euclidean distance in pixels between the closest points of two boxes (0 when they meet or overlap)."""
    dx = max(0.0, a.x1 - b.x2, b.x1 - a.x2)
    dy = max(0.0, a.y1 - b.y2, b.y1 - a.y2)
    return math.hypot(dx, dy)


def _shared_area(a: Box, b: Box) -> float:
    inter = a.intersection(b)
    return inter.area if inter is not None else 0.0


def _overlaps(a: Box, b: Box, t: Tolerances) -> bool:
    smaller = min(a.area, b.area)
    return smaller > 0 and _shared_area(a, b) > t.overlap * smaller


def _inside(a: Box, b: Box, t: Tolerances) -> bool:
    return a.area > 0 and a.area < b.area and _shared_area(a, b) >= t.inside * a.area


def holds(relation: Relation, a: Box, b: Box, tol: Tolerances = DEFAULT_TOLERANCES) -> bool:
    """True when "a is ``relation`` b" under the definitions in this module's docstring."""
    t = tol
    match relation:
        case Relation.LEFT_OF:
            return a.x2 <= b.x1 + t.axis_overlap * min(a.width, b.width)
        case Relation.RIGHT_OF:
            return holds(Relation.LEFT_OF, b, a, t)
        case Relation.ABOVE:
            return a.y2 <= b.y1 + t.axis_overlap * min(a.height, b.height)
        case Relation.BELOW:
            return holds(Relation.ABOVE, b, a, t)
        case Relation.INSIDE:
            return _inside(a, b, t)
        case Relation.OVERLAPPING:
            return _overlaps(a, b, t)
        case Relation.TOUCHING:
            return box_gap(a, b) <= t.touch_px and not _overlaps(a, b, t)
        case Relation.NEXT_TO:
            shared_h = min(a.y2, b.y2) - max(a.y1, b.y1)
            gap_x = max(0.0, a.x1 - b.x2, b.x1 - a.x2)
            return (
                shared_h >= t.side_by_side * min(a.height, b.height)
                and gap_x <= t.next_gap * max(a.width, b.width)
                and not _inside(a, b, t)
                and not _inside(b, a, t)
            )
        case Relation.NEAR:
            return box_gap(a, b) <= t.near * max(a.width, a.height, b.width, b.height)
    raise ConfigError(f"unknown relation {relation!r}: use one of {[r.value for r in Relation]}")


def relations_between(a: Box, b: Box, tol: Tolerances = DEFAULT_TOLERANCES) -> frozenset[Relation]:
    """Every relation that holds for "a REL b"."""
    return frozenset(r for r in Relation if holds(r, a, b, tol))


def find_relations(text: str) -> list[Relation]:
    """Relation words found in a question, in order of first appearance, each once.

    >>> find_relations("the cup to the left of R1, next to the plate")
    [<Relation.LEFT_OF: 'left_of'>, <Relation.NEXT_TO: 'next_to'>]
    """
    lowered = text.lower()
    found: list[tuple[int, Relation]] = []
    taken: list[tuple[int, int]] = []
    for pattern, relation in _PATTERNS:
        for m in pattern.finditer(lowered):
            if any(s < m.end() and m.start() < e for s, e in taken):
                continue
            taken.append((m.start(), m.end()))
            found.append((m.start(), relation))
    seen: set[Relation] = set()
    ordered: list[Relation] = []
    for _, relation in sorted(found, key=lambda x: x[0]):
        if relation not in seen:
            seen.add(relation)
            ordered.append(relation)
    return ordered
