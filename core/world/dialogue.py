"""Multi-round grounding dialogues about one synthetic scene, with exact ground truth and unambiguous questions.

* A **plain turn** refers to one object by the fewest attribute words that no other object shares
  (:func:`~regionreasoner.core.world.words.referring_expression`).
* A **relation turn** cites an earlier turn's target with :data:`CONTEXT_PLACEHOLDER` and ``context_from_turn``,
  using one phrase of :data:`~regionreasoner.core.world.words.RELATIONS`; the relation holds between the target's
  box and the cited box (original pixels) and no other object both matches the words and satisfies it.

Consumers replace the placeholder: the RegionDial-Bench writer (evals/) keeps it, the training-data builder
(trainers/data/) writes the cited box as ``bbox=[...]`` in the policy's frame.

Questions are English by default; ``language`` asks for one of
:data:`~regionreasoner.core.world.languages.LANGUAGES`, code-switched turns (``"mix"``) or a per-turn draw
(``"any"``), rendered by :mod:`~regionreasoner.core.world.languages`.  Targets, relations and cited turns do not
depend on the language: its choices come from a separate rng stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.relations import Relation, holds
from regionreasoner.core.world.languages import (
    ANY_LANGUAGE,
    CODE_SWITCHED,
    CONTEXT_PLACEHOLDER,
    LANGUAGES,
    CodeSwitch,
    draw_code_switch,
    question_templates,
    render_question,
)
from regionreasoner.core.world.scene import Scene, SceneObject
from regionreasoner.core.world.words import RELATIONS, Expression, pick, referring_attributes, relational_attributes

__all__ = ["CONTEXT_PLACEHOLDER", "DIALOGUE_LANGUAGES", "SyntheticDialogue", "SyntheticTurn", "make_dialogue"]

DIALOGUE_LANGUAGES: tuple[str, ...] = (*LANGUAGES, CODE_SWITCHED, ANY_LANGUAGE)
"""What :func:`make_dialogue`'s ``language`` may be: a single language, ``"mix"`` or ``"any"``."""

_TURN_LANGUAGES: tuple[str, ...] = (*LANGUAGES, CODE_SWITCHED)
"""What a turn's language is drawn from under ``"any"`` (uniformly)."""

_LANGUAGE_STREAM = 17
"""Appended to the seed for the rng of language choices, so that they never move targets or relations."""


@dataclass(frozen=True)
class SyntheticTurn:
    """A generated turn: the question, the target object id and, for relation turns, what it cites and how."""

    question: str
    """The question; a relation turn holds :data:`CONTEXT_PLACEHOLDER` once."""
    target: int
    """Id of the target :class:`~regionreasoner.core.world.scene.SceneObject`."""
    expression: str
    """The attribute words naming the target, in English whatever the question's language ("small red circle")."""
    context_from_turn: int | None = None
    """0-based index of the cited earlier turn (relation turns only)."""
    relation: Relation | None = None
    """The relation "target REL cited" (relation turns only)."""
    language: str = "en"
    """The question's language: one of :data:`~.languages.LANGUAGES`, or ``"mix"`` when code-switched."""
    languages: tuple[str, ...] = ("en",)
    """The languages the question uses: ``(language,)``, or ``(matrix, donor)`` when code-switched."""


@dataclass(frozen=True, eq=False)
class SyntheticDialogue:
    """A dialogue about one scene; every turn targets a different object."""

    scene: Scene
    turns: tuple[SyntheticTurn, ...]

    def target(self, turn: int) -> SceneObject:
        """The target object of turn ``turn`` (0-based)."""
        return self.scene.object(self.turns[turn].target)


@dataclass(frozen=True)
class _Draft:
    """A turn before its question is written: what it names and how (the English template drawn by the rng)."""

    target: int
    expression: Expression
    template: int
    context_from_turn: int | None = None
    relation: Relation | None = None


def _plain_turn(scene: Scene, free: list[SceneObject], rng: np.random.Generator) -> _Draft | None:
    for index in rng.permutation(len(free)):
        obj = free[int(index)]
        expression = referring_attributes(scene, obj, rng)
        if expression is not None:
            template = int(rng.integers(len(question_templates("en", relational=False))))
            return _Draft(target=obj.id, expression=expression, template=template)
    return None


def _relation_turn(
    scene: Scene, free: list[SceneObject], done: list[SyntheticTurn], rng: np.random.Generator
) -> _Draft | None:
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
            expression = relational_attributes(scene, obj, rel, scene.object(done[k].target).box, rng)
            if expression is not None:
                template = int(rng.integers(len(question_templates("en", relational=True))))
                return _Draft(
                    target=obj.id, expression=expression, template=template, context_from_turn=k, relation=rel
                )
    return None


def _write(draft: _Draft, language: str, rng: np.random.Generator | None) -> SyntheticTurn:
    """The turn of ``draft`` with its question in ``language`` (``rng``: the language stream, None for English)."""
    english = render_question(draft.expression, "en", relation=draft.relation, template=draft.template)
    question, chosen = english, "en"
    languages: tuple[str, ...] = ("en",)
    if rng is not None:
        chosen = pick(_TURN_LANGUAGES, rng) if language == ANY_LANGUAGE else language
    if rng is not None and chosen != "en":  # an English turn keeps the question the main rng chose
        target: str | CodeSwitch = draw_code_switch(draft.expression, rng) if chosen == CODE_SWITCHED else chosen
        matrix = target.matrix if isinstance(target, CodeSwitch) else target
        count = len(question_templates(matrix, relational=draft.relation is not None))
        template = int(rng.integers(count))
        question = render_question(draft.expression, target, relation=draft.relation, template=template)
        languages = target.languages if isinstance(target, CodeSwitch) else (target,)
    return SyntheticTurn(
        question=question,
        target=draft.target,
        expression=str(draft.expression),
        context_from_turn=draft.context_from_turn,
        relation=draft.relation,
        language=chosen,
        languages=languages,
    )


def make_dialogue(
    scene: Scene,
    *,
    seed: int | Sequence[int],
    n_turns: int,
    relation_share: float = 0.6,
    language: str = "en",
) -> SyntheticDialogue:
    """Up to ``n_turns`` turns about ``scene``; fewer when the scene runs out of referable objects.

    Turn 0 is a plain referring turn; each later turn cites an earlier one with probability ``relation_share``
    (falling back to the other kind of turn when impossible).  Questions are in ``language`` (one of
    :data:`DIALOGUE_LANGUAGES`): a single language, ``"mix"`` (every turn code-switched) or ``"any"`` (each turn
    draws uniformly from the six languages and mix).  Deterministic in ``seed``; targets, relations and cited
    turns are the same for every ``language``, and ``"en"`` gives the original English dialogue.
    """
    if n_turns < 1:
        raise ConfigError(f"n_turns={n_turns}: use at least 1")
    if not 0.0 <= relation_share <= 1.0:
        raise ConfigError(f"relation_share={relation_share}: use a value between 0 and 1")
    if language not in DIALOGUE_LANGUAGES:
        raise ConfigError(f"language={language!r}", hint=f"use one of {', '.join(DIALOGUE_LANGUAGES)}")
    seeds = list((seed,) if isinstance(seed, int) else seed)
    rng = np.random.default_rng(seeds)
    language_rng = None if language == "en" else np.random.default_rng([*seeds, _LANGUAGE_STREAM])
    turns: list[SyntheticTurn] = []
    for t in range(n_turns):
        free = [o for o in scene.objects if all(o.id != d.target for d in turns)]
        relational = t > 0 and rng.random() < relation_share
        draft = _relation_turn(scene, free, turns, rng) if relational else None
        draft = draft or _plain_turn(scene, free, rng)
        if draft is None and t > 0 and not relational:
            draft = _relation_turn(scene, free, turns, rng)
        if draft is None:
            break
        turns.append(_write(draft, language, language_rng))
    return SyntheticDialogue(scene=scene, turns=tuple(turns))
