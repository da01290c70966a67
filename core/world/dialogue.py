"""Multi-round grounding dialogues about one synthetic scene, with exact ground truth and unambiguous questions.

* A **plain turn** refers to one object by the fewest attribute words that no other object shares
  (:func:`~regionreasoner.core.world.words.referring_expression`).
* A **relation turn** cites an earlier turn's target with :data:`CONTEXT_PLACEHOLDER` and ``context_from_turn``,
  using one phrase of :data:`~regionreasoner.core.world.words.RELATIONS`; the relation holds between the target's
  box and the cited box (original pixels) and no other object both matches the words and satisfies it.

Consumers replace the placeholder: the RegionDial-Bench writer (evals/) keeps it, the training-data builder
(trainers/data/) writes the cited box as ``bbox=[...]`` in the policy's frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.relations import Relation, holds
from regionreasoner.core.world.scene import Scene, SceneObject
from regionreasoner.core.world.words import RELATIONS, pick, referring_expression, relational_expression

__all__ = ["CONTEXT_PLACEHOLDER", "SyntheticDialogue", "SyntheticTurn", "make_dialogue"]

CONTEXT_PLACEHOLDER = "<box>{context_bbox}</box>"
"""Where a relation turn's question cites the earlier region (the RegionDial-Bench placeholder, character for
character)."""

_PLAIN = ("Find the {expr}.", "Locate the {expr}.", "Where is the {expr}?", "Point out the {expr}.")
_RELATIONAL = (
    "Find the {expr} {rel} " + CONTEXT_PLACEHOLDER + ".",
    "Locate the {expr} that is {rel} " + CONTEXT_PLACEHOLDER + ".",
    "Which {expr} is {rel} " + CONTEXT_PLACEHOLDER + "?",
)


@dataclass(frozen=True)
class SyntheticTurn:
    """A generated turn: the question, the target object id and, for relation turns, what it cites and how."""

    question: str
    """The question; a relation turn holds :data:`CONTEXT_PLACEHOLDER` once."""
    target: int
    """Id of the target :class:`~regionreasoner.core.world.scene.SceneObject`."""
    expression: str
    """The attribute words naming the target ("small red circle")."""
    context_from_turn: int | None = None
    """0-based index of the cited earlier turn (relation turns only)."""
    relation: Relation | None = None
    """The relation "target REL cited" (relation turns only)."""


@dataclass(frozen=True, eq=False)
class SyntheticDialogue:
    """A dialogue about one scene; every turn targets a different object."""

    scene: Scene
    turns: tuple[SyntheticTurn, ...]

    def target(self, turn: int) -> SceneObject:
        """The target object of turn ``turn`` (0-based)."""
        return self.scene.object(self.turns[turn].target)


def _plain_turn(scene: Scene, free: list[SceneObject], rng: np.random.Generator) -> SyntheticTurn | None:
    for index in rng.permutation(len(free)):
        obj = free[int(index)]
        expr = referring_expression(scene, obj, rng)
        if expr is not None:
            question = pick(_PLAIN, rng).replace("{expr}", expr)
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
                question = pick(_RELATIONAL, rng).replace("{expr}", expr).replace("{rel}", rel.phrase)
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
