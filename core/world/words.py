"""Referring expressions for synthetic-world objects: the fewest attribute words that single an object out.

An expression is words in :data:`ATTRIBUTES` order ("small red striped circle"), always ending in the kind; when
every attribute is shared, a position word (:data:`POSITION_WORDS`) is prefixed.  :func:`relational_expression`
finds words that are unique among the objects satisfying a relation to a cited box
(:func:`regionreasoner.core.relations.holds`, boxes in original pixels).

The choice is language-free: :func:`referring_attributes` and :func:`relational_attributes` return an
:class:`Expression` (the attribute values used and the position word), which :mod:`.languages` renders in any
language; :func:`referring_expression` and :func:`relational_expression` are the same choice written in English.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import TypeVar

import numpy as np

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.geometry import Box
from regionreasoner.core.relations import Relation, holds
from regionreasoner.core.world.scene import COLOURS, KINDS, SIZES, TEXTURES, Scene, SceneObject

__all__ = [
    "ATTRIBUTES",
    "POSITION_WORDS",
    "RELATIONS",
    "Expression",
    "describe",
    "referring_attributes",
    "referring_expression",
    "relational_attributes",
    "relational_expression",
]

_T = TypeVar("_T")

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


@dataclass(frozen=True, kw_only=True)
class Expression:
    """The words that single an object out, language-free; :mod:`.languages` renders it.

    The attribute values used (None: not said) and an optional position word; ``str(expression)`` is the English
    words.
    """

    kind: str
    """The noun, one of :data:`~.scene.KINDS` (always said)."""
    size: str | None = None
    """One of :data:`~.scene.SIZES`, or None."""
    colour: str | None = None
    """A key of :data:`~.scene.COLOURS`, or None."""
    texture: str | None = None
    """One of :data:`~.scene.TEXTURES`, or None."""
    position: str | None = None
    """One of :data:`POSITION_WORDS` when the attributes alone are shared by a look-alike, else None."""

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("kind", self.kind, KINDS),
            ("size", self.size, SIZES),
            ("colour", self.colour, tuple(COLOURS)),
            ("texture", self.texture, TEXTURES),
            ("position", self.position, POSITION_WORDS),
        ):
            if value is not None and value not in allowed:
                raise ConfigError(f"{name}={value!r} is not a world word", hint=f"use one of {', '.join(allowed)}")

    @classmethod
    def of(cls, obj: SceneObject, attributes: Sequence[str] = ATTRIBUTES, position: str | None = None) -> Expression:
        """The ``attributes`` of ``obj`` (the kind is always kept), with an optional position word."""
        return cls(
            kind=obj.kind,
            size=obj.size if "size" in attributes else None,
            colour=obj.colour if "colour" in attributes else None,
            texture=obj.texture if "texture" in attributes else None,
            position=position,
        )

    @property
    def attributes(self) -> dict[str, str]:
        """The attributes said, name -> English value, in :data:`ATTRIBUTES` order."""
        values = {"size": self.size, "colour": self.colour, "texture": self.texture, "kind": self.kind}
        return {name: value for name, value in values.items() if value is not None}

    def __str__(self) -> str:
        """The English words, e.g. ``"leftmost small red striped circle"`` (no article)."""
        words = " ".join(self.attributes.values())
        return f"{self.position} {words}" if self.position else words


def describe(obj: SceneObject, attributes: Sequence[str] = ATTRIBUTES) -> str:
    """The words for ``attributes`` of ``obj`` in :data:`ATTRIBUTES` order, e.g. ``"small red circle"``."""
    return " ".join(str(getattr(obj, a)) for a in ATTRIBUTES if a in attributes)


def _matches(candidate: SceneObject, obj: SceneObject, attributes: Sequence[str]) -> bool:
    return all(getattr(candidate, a) == getattr(obj, a) for a in attributes)


def pick(options: Sequence[_T], rng: np.random.Generator | None) -> _T:
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


def referring_attributes(scene: Scene, obj: SceneObject, rng: np.random.Generator | None = None) -> Expression | None:
    """The attributes (and position word) that single ``obj`` out among the scene's objects, or None when none do.

    The shortest attribute sets are tried first (``rng`` picks among equally short ones); when every attribute is
    shared, a position word is added.
    """
    for n in range(1, 5):
        options = [
            attrs
            for attrs in _ATTRIBUTE_SETS
            if len(attrs) == n and not any(_matches(o, obj, attrs) for o in scene.objects if o is not obj)
        ]
        if options:
            return Expression.of(obj, pick(options, rng))
    twins = [o for o in scene.objects if o is not obj and _matches(o, obj, ATTRIBUTES)]
    word = _position_word(scene, obj, twins)
    return Expression.of(obj, ATTRIBUTES, position=word) if word else None


def referring_expression(scene: Scene, obj: SceneObject, rng: np.random.Generator | None = None) -> str | None:
    """Words that single ``obj`` out among the scene's objects (no article), or None when none do.

    :func:`referring_attributes` in English, e.g. ``"leftmost small red striped circle"``.
    """
    expression = referring_attributes(scene, obj, rng)
    return None if expression is None else str(expression)


def relational_attributes(
    scene: Scene, obj: SceneObject, relation: Relation, cited: Box, rng: np.random.Generator | None = None
) -> Expression | None:
    """Attributes such that ``obj`` is the only object matching them that is ``relation`` the ``cited`` box.

    None when the relation does not hold for ``obj`` or no attribute set makes it unique (no position words).
    """
    if not holds(relation, obj.box, cited):
        return None
    for n in range(1, 5):
        options = [
            attrs
            for attrs in _ATTRIBUTE_SETS
            if len(attrs) == n
            and not any(
                _matches(o, obj, attrs) and holds(relation, o.box, cited) for o in scene.objects if o is not obj
            )
        ]
        if options:
            return Expression.of(obj, pick(options, rng))
    return None


def relational_expression(
    scene: Scene, obj: SceneObject, relation: Relation, cited: Box, rng: np.random.Generator | None = None
) -> str | None:
    """Attribute words such that ``obj`` is the only object matching them that is ``relation`` the ``cited`` box.

    :func:`relational_attributes` in English; None when the relation does not hold for ``obj`` or no attribute set
    makes it unique.
    """
    expression = relational_attributes(scene, obj, relation, cited, rng)
    return None if expression is None else str(expression)
