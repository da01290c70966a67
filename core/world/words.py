"""Referring expressions for synthetic-world objects: the fewest attribute words that single an object out.

An expression is words in :data:`ATTRIBUTES` order ("small red striped circle"), always ending in the kind; when
every attribute is shared, a position word (:data:`POSITION_WORDS`) is prefixed.  :func:`relational_expression`
finds words that are unique among the objects satisfying a relation to a cited box
(:func:`regionreasoner.core.relations.holds`, boxes in original pixels).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np

from regionreasoner.core.geometry import Box
from regionreasoner.core.relations import Relation, holds
from regionreasoner.core.world.scene import Scene, SceneObject

__all__ = [
    "ATTRIBUTES",
    "POSITION_WORDS",
    "RELATIONS",
    "describe",
    "referring_expression",
    "relational_expression",
]

ATTRIBUTES: tuple[str, ...] = ("size", "colour", "texture", "kind")
"""Attribute words in the order they are written ("small red striped circle")."""

RELATIONS: tuple[Relation, ...] = (
    Relation.ABOVE,
    Relation.BELOW,
    Relation.LEFT_OF,
    Relation.RIGHT_OF,
    Relation.INSIDE,
    Relation.OVERLAPPING,
    Relation.TOUCHING,
    Relation.NEXT_TO,
)
"""The relation vocabulary of the RegionReasoner papers (reference §7), as core.relations defines it."""

POSITION_WORDS: tuple[str, ...] = ("leftmost", "rightmost", "topmost", "lowest")
"""Fallback words when attributes cannot single an object out (by box centre, with a margin)."""

_POSITION_MARGIN = 0.05
"""A position word needs the centre to beat every look-alike by this share of the image width/height."""

# Attribute subsets that always name the kind, shortest first.
_ATTRIBUTE_SETS: tuple[tuple[str, ...], ...] = tuple(
    (*extra, "kind") for n in range(4) for extra in combinations(("size", "colour", "texture"), n)
)


def describe(obj: SceneObject, attributes: Sequence[str] = ATTRIBUTES) -> str:
    """The words for ``attributes`` of ``obj`` in :data:`ATTRIBUTES` order, e.g. ``"small red circle"``."""
    return " ".join(str(getattr(obj, a)) for a in ATTRIBUTES if a in attributes)


def _matches(candidate: SceneObject, obj: SceneObject, attributes: Sequence[str]) -> bool:
    return all(getattr(candidate, a) == getattr(obj, a) for a in attributes)


def pick(options: Sequence[str], rng: np.random.Generator | None) -> str:
    """One of ``options``: drawn by ``rng``, or the first when ``rng`` is None."""
    return options[int(rng.integers(len(options)))] if rng is not None else options[0]


def _position_word(scene: Scene, obj: SceneObject, others: list[SceneObject]) -> str | None:
    width, height = scene.size
    mx, my = _POSITION_MARGIN * width, _POSITION_MARGIN * height
    c = obj.box.center
    tests = (
        ("leftmost", all(c.x + mx < o.box.center.x for o in others)),
        ("rightmost", all(c.x - mx > o.box.center.x for o in others)),
        ("topmost", all(c.y + my < o.box.center.y for o in others)),
        ("lowest", all(c.y - my > o.box.center.y for o in others)),
    )
    return next((word for word, ok in tests if ok), None)


def referring_expression(scene: Scene, obj: SceneObject, rng: np.random.Generator | None = None) -> str | None:
    """Words that single ``obj`` out among the scene's objects (no article), or None when none do.

    The shortest attribute sets are tried first (``rng`` picks among equally short ones); when every attribute is
    shared, a position word is prefixed.
    """
    for n in range(1, 5):
        options = [
            describe(obj, attrs)
            for attrs in _ATTRIBUTE_SETS
            if len(attrs) == n and not any(_matches(o, obj, attrs) for o in scene.objects if o is not obj)
        ]
        if options:
            return pick(options, rng)
    twins = [o for o in scene.objects if o is not obj and _matches(o, obj, ATTRIBUTES)]
    word = _position_word(scene, obj, twins)
    return f"{word} {describe(obj, ATTRIBUTES)}" if word else None


def relational_expression(
    scene: Scene, obj: SceneObject, relation: Relation, cited: Box, rng: np.random.Generator | None = None
) -> str | None:
    """Attribute words such that ``obj`` is the only object matching them that is ``relation`` the ``cited`` box.

    None when the relation does not hold for ``obj`` or no attribute set makes it unique.
    """
    if not holds(relation, obj.box, cited):
        return None
    for n in range(1, 5):
        options = [
            describe(obj, attrs)
            for attrs in _ATTRIBUTE_SETS
            if len(attrs) == n
            and not any(
                _matches(o, obj, attrs) and holds(relation, o.box, cited) for o in scene.objects if o is not obj
            )
        ]
        if options:
            return pick(options, rng)
    return None
