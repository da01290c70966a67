"""Synthetic multi-round grounding dialogues over :mod:`~regionreasoner.evals.synthetic_world` scenes.

Every question has exact ground truth and an unambiguous answer:

* a **plain turn** refers to one object by the fewest attribute words (size, colour, texture, kind) that no other
  object of the image shares, else by a position word ("the leftmost small red striped circle");
* a **relation turn** cites an earlier turn's GT region with ``<box>{context_bbox}</box>`` and
  ``context_from_turn``, using one relation phrase of :data:`RELATIONS` ("Find the blue square to the left of
  <box>{context_bbox}</box>.").  The relation holds between the target's box and the cited box under
  :func:`regionreasoner.core.relations.holds`, and no other object both matches the words and satisfies it.

:func:`generate_benchmark` writes ``images/<image_id>.png``, ``synthetic.json`` (RegionDial-Bench layout, image paths
relative to the folder, masks as COCO RLE, so the same runner scores it) and ``scenes.json`` (every object's
attributes and box).  All of it is a pure function of the seed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import numpy as np

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.geometry import Box
from regionreasoner.core.masks import encode_rle
from regionreasoner.core.relations import Relation, holds
from regionreasoner.evals.regiondial import CONTEXT_PLACEHOLDER, BenchDialogue, BenchTurn, write_regiondial
from regionreasoner.evals.synthetic_world import Scene, SceneObject, make_scene

__all__ = [
    "ATTRIBUTES",
    "POSITION_WORDS",
    "RELATIONS",
    "SyntheticDialogue",
    "SyntheticTurn",
    "describe",
    "generate_benchmark",
    "make_dialogue",
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

_PLAIN = ("Find the {expr}.", "Locate the {expr}.", "Where is the {expr}?", "Point out the {expr}.")
_RELATIONAL = (
    "Find the {expr} {rel} " + CONTEXT_PLACEHOLDER + ".",
    "Locate the {expr} that is {rel} " + CONTEXT_PLACEHOLDER + ".",
    "Which {expr} is {rel} " + CONTEXT_PLACEHOLDER + "?",
)

# Attribute subsets that always name the kind, shortest first.
_ATTRIBUTE_SETS: tuple[tuple[str, ...], ...] = tuple(
    (*extra, "kind") for n in range(4) for extra in combinations(("size", "colour", "texture"), n)
)


def describe(obj: SceneObject, attributes: Sequence[str]) -> str:
    """The words for ``attributes`` of ``obj`` in :data:`ATTRIBUTES` order, e.g. ``"small red circle"``."""
    return " ".join(str(getattr(obj, a)) for a in ATTRIBUTES if a in attributes)


def _matches(candidate: SceneObject, obj: SceneObject, attributes: Sequence[str]) -> bool:
    return all(getattr(candidate, a) == getattr(obj, a) for a in attributes)


def _pick(options: list[str], rng: np.random.Generator | None) -> str:
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
            return _pick(options, rng)
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
            return _pick(options, rng)
    return None


@dataclass(frozen=True)
class SyntheticTurn:
    """A generated turn: the question, the target object id and, for relation turns, what it cites and how."""

    question: str
    target: int
    expression: str
    context_from_turn: int | None = None
    relation: Relation | None = None


@dataclass(frozen=True, eq=False)
class SyntheticDialogue:
    """A dialogue about one scene; every turn targets a different object."""

    scene: Scene
    turns: tuple[SyntheticTurn, ...]

    def to_bench(self, image_id: int | str, image_path: str) -> BenchDialogue:
        """The dialogue as a :class:`BenchDialogue` (GT box and visible mask of each target, original pixels)."""
        turns = []
        for turn in self.turns:
            obj = self.scene.object(turn.target)
            turns.append(
                BenchTurn(
                    question=turn.question,
                    gt_boxes=[obj.box],
                    context_from_turn=turn.context_from_turn,
                    masks=encode_rle(obj.mask),
                    ann_ids=[obj.id],
                )
            )
        return BenchDialogue(image_id=image_id, image_path=image_path, turns=turns)


def _plain_turn(scene: Scene, free: list[SceneObject], rng: np.random.Generator) -> SyntheticTurn | None:
    for index in rng.permutation(len(free)):
        obj = free[int(index)]
        expr = referring_expression(scene, obj, rng)
        if expr is not None:
            question = _pick(list(_PLAIN), rng).replace("{expr}", expr)
            return SyntheticTurn(question=question, target=obj.id, expression=expr)
    return None


def _relation_turn(
    scene: Scene, free: list[SceneObject], done: list[SyntheticTurn], rng: np.random.Generator
) -> SyntheticTurn | None:
    options = [
        (k, obj, rel)
        for k, cited_turn in enumerate(done)
        for obj in free
        if obj.id != cited_turn.target
        for rel in RELATIONS
        if holds(rel, obj.box, scene.object(cited_turn.target).box)
    ]
    available = [rel for rel in RELATIONS if any(r is rel for _, _, r in options)]
    for rel_index in rng.permutation(len(available)):  # relation first, so rare relations get their share
        rel = available[int(rel_index)]
        with_rel = [(k, obj) for k, obj, r in options if r is rel]
        for index in rng.permutation(len(with_rel)):
            k, obj = with_rel[int(index)]
            expr = relational_expression(scene, obj, rel, scene.object(done[k].target).box, rng)
            if expr is not None:
                question = _pick(list(_RELATIONAL), rng).replace("{expr}", expr).replace("{rel}", rel.phrase)
                return SyntheticTurn(
                    question=question, target=obj.id, expression=expr, context_from_turn=k, relation=rel
                )
    return None


def make_dialogue(
    scene: Scene, *, seed: int | Sequence[int], n_turns: int, relation_share: float = 0.6
) -> SyntheticDialogue:
    """Up to ``n_turns`` turns about ``scene``; fewer when the scene runs out of referable objects.

    Turn 0 is a plain referring turn; each later turn cites an earlier one with probability ``relation_share``
    (falling back to the other kind of turn when impossible).  Deterministic in ``seed``.
    """
    if n_turns < 1:
        raise ConfigError(f"n_turns={n_turns}: use at least 1")
    if not 0.0 <= relation_share <= 1.0:
        raise ConfigError(f"relation_share={relation_share}: use a value between 0 and 1")
    rng = np.random.default_rng(list((seed,) if isinstance(seed, int) else seed))
    turns: list[SyntheticTurn] = []
    for t in range(n_turns):
        free = [o for o in scene.objects if all(o.id != d.target for d in turns)]
        relational = t > 0 and rng.random() < relation_share
        turn = _relation_turn(scene, free, turns, rng) if relational else None
        turn = turn or _plain_turn(scene, free, rng)
        if turn is None and t > 0 and not relational:
            turn = _relation_turn(scene, free, turns, rng)
        if turn is None:
            break
        turns.append(turn)
    return SyntheticDialogue(scene=scene, turns=tuple(turns))


def _scene_json(image_id: int, scene: Scene) -> dict[str, object]:
    width, height = scene.size
    objects = [
        {
            "id": o.id,
            "kind": o.kind,
            "colour": o.colour,
            "texture": o.texture,
            "size": o.size,
            "box": [int(v) for v in o.box],
            "area": o.area,
        }
        for o in scene.objects
    ]
    return {"image_id": image_id, "width": width, "height": height, "objects": objects}


def generate_benchmark(
    out_dir: str | Path,
    n_images: int,
    seed: int,
    *,
    size: tuple[int, int] = (320, 240),
    rounds: tuple[int, int] = (2, 5),
    relation_share: float = 0.6,
) -> Path:
    """Write a synthetic benchmark folder and return the path of its ``synthetic.json``.

    ``n_images`` images of ``size = (width, height)`` pixels, each with one dialogue of ``rounds = (min, max)``
    turns (inclusive).  Image ids are 1..n_images; files are ``images/<id>.png``.  Same arguments, same bytes.
    """
    lo, hi = rounds
    if n_images < 1:
        raise ConfigError(f"n_images={n_images}: use at least 1")
    if seed < 0:
        raise ConfigError(f"seed={seed}: use a non-negative integer")
    if not 1 <= lo <= hi <= 12:
        raise ConfigError(f"rounds={rounds}: use 1 <= min <= max <= 12")
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    dialogues: list[BenchDialogue] = []
    scenes: list[dict[str, object]] = []
    for i in range(n_images):
        image_id = i + 1
        dialogue = _dialogue_for(seed, i, size, lo, hi, relation_share)
        dialogue.scene.image.save(out / "images" / f"{image_id}.png", format="PNG")
        dialogues.append(dialogue.to_bench(image_id, f"images/{image_id}.png"))
        scenes.append(_scene_json(image_id, dialogue.scene))
    (out / "scenes.json").write_text("[\n" + ",\n".join(json.dumps(s) for s in scenes) + "\n]\n", encoding="utf-8")
    return write_regiondial(out / "synthetic.json", dialogues)


def _dialogue_for(
    seed: int, index: int, size: tuple[int, int], lo: int, hi: int, relation_share: float
) -> SyntheticDialogue:
    for attempt in range(50):
        rng = np.random.default_rng([seed, index, attempt])
        n_turns = int(rng.integers(lo, hi + 1))
        n_objects = (max(4, n_turns + 1), min(24, max(8, n_turns + 4)))
        scene = make_scene((seed, index, attempt), size=size, n_objects=n_objects)
        dialogue = make_dialogue(scene, seed=(seed, index, attempt, 1), n_turns=n_turns, relation_share=relation_share)
        if len(dialogue.turns) == n_turns:
            return dialogue
    raise ConfigError(
        f"could not build a {lo}..{hi}-turn dialogue for image {index + 1} in 50 attempts",
        hint="use fewer rounds or a larger image size",
    )
