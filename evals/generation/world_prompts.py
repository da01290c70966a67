"""Synthetic m-GenEval: GenEval metadata about the world's shapes, N prompts per task, in six languages.

Prompt ``i`` of a task has the same content in every language (drawn from ``(seed, task, i)``; only ``prompt`` is
translated, by :func:`~regionreasoner.core.world.captions.world_prompt`), so images of one index are
comparable across languages (CLC).  Classes are world kinds, colours world colours, both in English:

* ``single_object``: one kind;  ``colors``: one kind in one colour;
* ``two_object``: two different kinds;  ``color_attr``: two different kinds in two different colours;
* ``counting``: 1..4 of one kind (counts cycle through 1..4), ``exclude`` one more;
* ``position``: kind A ``left of``/``right of``/``above``/``below`` kind B (``include`` = [B, A with position]).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from regionreasoner.core.errors import ConfigError, InputError
from regionreasoner.core.world import COLOURS, KINDS, LANGUAGES, CodeSwitch
from regionreasoner.core.world.captions import MAX_COUNT, Thing, world_prompt
from regionreasoner.evals.generation.meta import POSITIONS, TASKS, Clause, GenEvalPrompt, write_metadata

__all__ = ["WorldContent", "content_of", "reword", "world_geneval_prompts", "write_world_metadata"]


@dataclass(frozen=True)
class WorldContent:
    """What a world prompt says, language-free: one or two things, and the position of the first to the second."""

    things: tuple[Thing, ...]
    relation: str | None = None
    """A GenEval position word: ``things[0] <relation> things[1]``."""


def _sample(task: str, index: int, seed: int) -> tuple[tuple[Clause, ...], tuple[Clause, ...]]:
    rng = np.random.default_rng([seed, TASKS.index(task), index])
    kinds = [KINDS[int(i)] for i in rng.permutation(len(KINDS))[:2]]
    colours = [list(COLOURS)[int(i)] for i in rng.permutation(len(COLOURS))[:2]]
    a, b = kinds
    if task == "single_object":
        return (Clause(a, 1),), ()
    if task == "colors":
        return (Clause(a, 1, color=colours[0]),), ()
    if task == "two_object":
        return (Clause(a, 1), Clause(b, 1)), ()
    if task == "color_attr":
        return (Clause(a, 1, color=colours[0]), Clause(b, 1, color=colours[1])), ()
    if task == "counting":
        n = 1 + index % MAX_COUNT
        return (Clause(a, n),), (Clause(a, n + 1),)
    relation = POSITIONS[int(rng.integers(len(POSITIONS)))]
    return (Clause(b, 1), Clause(a, 1, position=(relation, 0))), ()


def content_of(prompt: GenEvalPrompt) -> WorldContent:
    """The things (and relation) a world prompt's metadata describes; :class:`InputError` for other metadata."""
    try:
        if prompt.tag == "counting":
            (clause,) = prompt.include
            return WorldContent((Thing(clause.cls, count=clause.count, counted=True),))
        if prompt.tag == "position":
            landmark, target = prompt.include
            if target.position is None:
                raise ValueError("the second clause has no position")
            return WorldContent((Thing(target.cls), Thing(landmark.cls)), relation=target.position[0])
        return WorldContent(tuple(Thing(c.cls, c.color) for c in prompt.include))
    except (ConfigError, ValueError) as exc:
        raise InputError(f"not a synthetic-world prompt: {prompt.prompt!r} ({exc})") from exc


def reword(prompt: GenEvalPrompt, language: str | CodeSwitch) -> GenEvalPrompt:
    """The same metadata with ``prompt`` said in ``language`` (a world language or a CodeSwitch)."""
    content = content_of(prompt)
    text = world_prompt(content.things, language, relation=content.relation)
    return GenEvalPrompt(tag=prompt.tag, include=prompt.include, exclude=prompt.exclude, prompt=text)


def world_geneval_prompts(
    language: str | CodeSwitch = "en",
    *,
    n_per_task: int = 100,
    seed: int = 0,
    tasks: Sequence[str] = TASKS,
) -> list[GenEvalPrompt]:
    """``n_per_task`` prompts for each of ``tasks`` (in that order) in ``language``; deterministic in ``seed``.

    Prompt ``i`` of a task does not depend on ``n_per_task`` or the language (only its text does).
    """
    if n_per_task < 1:
        raise ConfigError(f"n_per_task={n_per_task}", hint="ask for at least one prompt per task")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ConfigError(f"tasks {unknown}", hint=f"use some of {', '.join(TASKS)}")
    out = []
    for task in tasks:
        for i in range(n_per_task):
            include, exclude = _sample(task, i, seed)
            draft = GenEvalPrompt(tag=task, include=include, exclude=exclude, prompt="-")
            out.append(reword(draft, language))
    return out


def write_world_metadata(
    folder: str | Path, languages: Iterable[str] = LANGUAGES, *, n_per_task: int = 100, seed: int = 0
) -> dict[str, Path]:
    """Write ``<folder>/<language>.jsonl`` (GenEval metadata) for each language; returns the paths by language."""
    return {
        lang: write_metadata(
            Path(folder) / f"{lang}.jsonl", world_geneval_prompts(lang, n_per_task=n_per_task, seed=seed)
        )
        for lang in languages
    }
