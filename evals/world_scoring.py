"""Scoring a run on the synthetic world: Acc@0.5, parse, citation and scene precision, per round and per language.

:func:`score_world` reads a benchmark folder written by :func:`~regionreasoner.evals.synthetic.generate_benchmark`
(``synthetic.json`` with its per-turn languages, ``scenes.json`` with every object's attributes) and the
``results.jsonl`` the runner wrote for it, and judges every turn:

* **Acc@0.5**: the turn's *first* predicted box has IoU >= 0.5 with the GT box (original pixels);
* **parse**: the answer parsed into at least one box;
* **citation** (turns citing an earlier turn only): every ``bbox=[...]`` of the rendered question (the policy's
  frame) is cited in ``<think>`` with the same integers, the rule of ``Turn.citations[].verified``;
* **scene precision**: the ``<scene>`` text names at least one object (``(size) (colour) (texture) kind`` in the
  world's words, singular) and every object it names is in the scene (some object has every attribute named).

:func:`check_goals` compares a :class:`WorldSummary` with :class:`WorldGoals` and returns the failed goals.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from regionreasoner.core.citations import find_cited_boxes, find_question_boxes
from regionreasoner.core.errors import ConfigError, InputError
from regionreasoner.core.world import CODE_SWITCHED, COLOURS, KINDS, LANGUAGES, SIZES, TEXTURES
from regionreasoner.evals.metrics import max_box_iou
from regionreasoner.evals.regiondial import load_regiondial
from regionreasoner.evals.results import TurnResult, read_results
from regionreasoner.evals.synthetic import load_languages

__all__ = [
    "WORLD_DEFINITIONS",
    "JudgedTurn",
    "LanguageRow",
    "Mention",
    "WorldGoals",
    "WorldObject",
    "WorldRow",
    "WorldSummary",
    "check_goals",
    "cites_reference",
    "first_box_hit",
    "judge_turn",
    "load_scenes",
    "scene_is_precise",
    "scene_mentions",
    "score_world",
    "summarise_world",
]

WORLD_DEFINITIONS: dict[str, str] = {
    "acc50": "Acc@0.5: share of turns whose first predicted box has IoU >= 0.5 with the GT box (original pixels).",
    "parse_rate": "Parse rate: share of turns whose answer parsed into at least one box.",
    "citation_rate": "Citation rate: share of turns citing an earlier turn whose <think> cites every bbox=[...] "
    "of the rendered question with the same integers (the rule of Turn.citations[].verified).",
    "scene_precision": "Scene precision: share of turns whose <scene> names at least one object "
    "('(size) (colour) (texture) kind' in the world's words) and only objects of the scene.",
    "languages": "Per language: Acc@0.5 over all rounds; 'mix' is the code-switched group.",
}


@dataclass(frozen=True)
class WorldObject:
    """An object of ``scenes.json``: its attribute words."""

    id: int
    kind: str
    colour: str
    texture: str
    size: str


class Mention(NamedTuple):
    """An object named in a scene text; None for an attribute the text leaves out."""

    size: str | None
    colour: str | None
    texture: str | None
    kind: str

    def matches(self, obj: WorldObject) -> bool:
        """True when ``obj`` has every attribute the mention names."""
        named = (self.size, self.colour, self.texture, self.kind)
        values = (obj.size, obj.colour, obj.texture, obj.kind)
        return all(word is None or word == value for word, value in zip(named, values, strict=True))


def _words(vocabulary: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(vocabulary, key=len, reverse=True))


_MENTION = re.compile(
    rf"\b(?:({_words(SIZES)})\s+)?(?:({_words(COLOURS)})\s+)?(?:({_words(TEXTURES)})\s+)?({_words(KINDS)})\b",
    re.IGNORECASE,
)


def scene_mentions(text: str) -> list[Mention]:
    """Objects named in ``text`` as ``(size) (colour) (texture) kind`` (world words, singular), in order.

    >>> [m.kind for m in scene_mentions("A small red circle above a striped square; two stars.")]
    ['circle', 'square']
    >>> scene_mentions("a large dotted ring")
    [Mention(size='large', colour=None, texture='dotted', kind='ring')]
    """
    return [
        Mention(
            m[1].lower() if m[1] else None, m[2].lower() if m[2] else None, m[3].lower() if m[3] else None, m[4].lower()
        )
        for m in _MENTION.finditer(text)
    ]


def scene_is_precise(text: str | None, objects: Sequence[WorldObject]) -> bool:
    """True when ``text`` names at least one object and every object it names is among ``objects``."""
    mentions = scene_mentions(text or "")
    return bool(mentions) and all(any(m.matches(o) for o in objects) for m in mentions)


def cites_reference(rendered_question: str, think: str | None) -> bool:
    """True when ``think`` cites every inline ``bbox=[...]`` of ``rendered_question`` with the same integers.

    False when the question shows no box (nothing to cite) or there is no ``<think>``.

    >>> cites_reference("Find the star above bbox=[10, 20, 30, 40].", "It is above bbox=[10, 20, 30, 40].")
    True
    >>> cites_reference("Find the star above bbox=[10, 20, 30, 40].", "It is above bbox=[10, 20, 30, 41].")
    False
    """
    referenced = [qb.coords for qb in find_question_boxes(rendered_question)]
    cited = set(find_cited_boxes(think or ""))
    return bool(referenced) and all(box in cited for box in referenced)


def first_box_hit(result: TurnResult) -> bool:
    """True when the turn's first predicted box has IoU >= 0.5 with its GT box."""
    return max_box_iou(result.pred_boxes[:1], result.gt_box) >= 0.5


def load_scenes(path: str | Path) -> dict[int | str, list[WorldObject]]:
    """The objects of every image of a ``scenes.json``, by image id."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p} does not exist", hint="pass a folder written by `regionreasoner-eval synthetic`")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        return {
            scene["image_id"]: [
                WorldObject(int(o["id"]), str(o["kind"]), str(o["colour"]), str(o["texture"]), str(o["size"]))
                for o in scene["objects"]
            ]
            for scene in data
        }
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"{p} is not a scenes.json of the synthetic benchmark: {exc!r}", hint="write the folder again"
        ) from exc


class WorldRow(BaseModel):
    """The world metrics of one round (``label`` "R1", ...) or of every turn (``label`` "All"); rates in [0, 1]."""

    model_config = ConfigDict(frozen=True)

    label: str
    round: int | None = Field(description="1-based round; None for the pooled row")
    turns: int
    acc50: float = Field(description="first predicted box IoU >= 0.5")
    parse_rate: float = Field(description="answer parsed into at least one box")
    citing_turns: int = Field(description="turns citing an earlier turn")
    citation_rate: float | None = Field(description="of the citing turns; None when there are none")
    scene_precision: float = Field(description="<scene> names objects, all present")


class LanguageRow(BaseModel):
    """Acc@0.5 of the turns of one language, all rounds pooled."""

    model_config = ConfigDict(frozen=True)

    language: str
    turns: int
    acc50: float


class WorldSummary(BaseModel):
    """Per-round rows (R1 first), the pooled row, and per-language rows (:data:`LANGUAGES` order, then mix)."""

    model_config = ConfigDict(frozen=True)

    rounds: list[WorldRow]
    all: WorldRow
    languages: list[LanguageRow]
    definitions: dict[str, str] = Field(default_factory=lambda: dict(WORLD_DEFINITIONS))

    def language(self, name: str) -> LanguageRow | None:
        """The row of language ``name``, or None when no turn has it."""
        return next((row for row in self.languages if row.language == name), None)


@dataclass(frozen=True)
class JudgedTurn:
    """One turn's verdicts (see the module docstring); ``cited`` is False for a turn that cites nothing."""

    round: int
    language: str
    hit: bool
    parsed: bool
    cites: bool
    cited: bool
    scene: bool


def _row(label: str, round_: int | None, turns: Sequence[JudgedTurn]) -> WorldRow:
    n = len(turns)
    citing = [t for t in turns if t.cites]
    return WorldRow(
        label=label,
        round=round_,
        turns=n,
        acc50=sum(t.hit for t in turns) / n if n else 0.0,
        parse_rate=sum(t.parsed for t in turns) / n if n else 0.0,
        citing_turns=len(citing),
        citation_rate=sum(t.cited for t in citing) / len(citing) if citing else None,
        scene_precision=sum(t.scene for t in turns) / n if n else 0.0,
    )


def judge_turn(result: TurnResult, language: str, objects: Sequence[WorldObject]) -> JudgedTurn:
    """The verdicts of one turn in ``language`` on an image holding ``objects``."""
    sections = result.sections
    cites = result.context_from_turn is not None
    return JudgedTurn(
        round=result.round,
        language=language,
        hit=first_box_hit(result),
        parsed=bool(result.pred_boxes),
        cites=cites,
        cited=cites and cites_reference(result.rendered_question, sections.think if sections else None),
        scene=scene_is_precise(sections.scene if sections else None, objects),
    )


def summarise_world(judged: Sequence[JudgedTurn]) -> WorldSummary:
    """The per-round, pooled and per-language rows of judged turns."""
    rounds = sorted({t.round for t in judged})
    order = [*LANGUAGES, CODE_SWITCHED]
    languages = sorted({t.language for t in judged}, key=order.index)
    lang_rows = []
    for lang in languages:
        group = [t for t in judged if t.language == lang]
        lang_rows.append(LanguageRow(language=lang, turns=len(group), acc50=sum(t.hit for t in group) / len(group)))
    return WorldSummary(
        rounds=[_row(f"R{r}", r, [t for t in judged if t.round == r]) for r in rounds],
        all=_row("All", None, judged),
        languages=lang_rows,
    )


def score_world(bench_dir: str | Path, results: str | Path) -> WorldSummary:
    """Judge every turn of ``results`` (a runner's JSON lines) against the benchmark folder ``bench_dir``.

    Raises :class:`InputError` when the results hold no turn, or a turn the benchmark does not have (another
    benchmark's run), and when a turn has no recorded sections (a results file older than the ``sections`` field).
    """
    bench = Path(bench_dir)
    items = load_regiondial(bench / "synthetic.json")
    languages = load_languages(bench / "synthetic.json")
    scenes = load_scenes(bench / "scenes.json")
    judged: list[JudgedTurn] = []
    for result in read_results(results):
        i, t = result.dialogue_index, result.turn
        if (
            i >= len(items)
            or t >= len(items[i].turns)
            or items[i].image_id != result.image_id
            or items[i].turns[t].question != result.question
        ):
            raise InputError(
                f"{results}: turn {t} of dialogue {i} (image {result.image_id!r}) is not in {bench}",
                hint="score a run of this benchmark folder (a rerun into the same folder needs the same arguments)",
            )
        if result.sections is None:
            raise InputError(
                f"{results}: turn {t} of dialogue {i} has no recorded sections",
                hint="run the benchmark again with this version (older results files lack them)",
            )
        judged.append(judge_turn(result, languages[i][t], scenes.get(result.image_id, [])))
    if not judged:
        raise InputError(f"{results} holds no results", hint="run the benchmark first")
    return summarise_world(judged)


# ------------------------------------------------------------------------------------------------ goals


@dataclass(frozen=True, kw_only=True)
class WorldGoals:
    """What a model should reach on the synthetic world (rates in [0, 1]); see :func:`check_goals`."""

    round1_acc: float = 0.90
    """Acc@0.5 of round 1, at least."""
    later_round_acc: float = 0.80
    """Acc@0.5 of every later round (2, 3, ...), at least."""
    parse_rate: float = 1.0
    """Parse rate over all turns, at least."""
    citation_rate: float = 0.95
    """Citation rate over all citing turns, at least."""
    scene_precision: float = 0.90
    """Scene precision over all turns, at least."""
    language_gap: float = 0.05
    """Largest Acc@0.5 difference between two of the six single languages present, at most."""
    mix_gap: float = 0.10
    """Acc@0.5 of the single-language turns (pooled) minus that of the code-switched ones, at most."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"WorldGoals.{f.name}={value}: use a rate between 0 and 1")


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def check_goals(summary: WorldSummary, goals: WorldGoals | None = None, *, margin: float = 0.0) -> list[str]:
    """The goals ``summary`` misses, one sentence each (empty: all met).

    ``margin`` (a rate, e.g. 0.02 for two points) loosens every goal: it is subtracted from every minimum and added
    to every gap limit.  Goals without turns to measure (no citing turn, fewer than two languages, no mix turn) are
    not checked.
    """
    goals = goals or WorldGoals()
    if not 0.0 <= margin < 1.0:
        raise ConfigError(f"margin={margin}: use a rate between 0 and 1, e.g. 0.02 for two points")
    failed: list[str] = []

    def at_least(name: str, value: float | None, goal: float) -> None:
        if value is not None and value < goal - margin:
            failed.append(f"{name} is {_pct(value)}, below the goal of {_pct(goal)} (margin {_pct(margin)})")

    def at_most(name: str, value: float, goal: float) -> None:
        if value > goal + margin:
            failed.append(f"{name} is {_pct(value)}, above the limit of {_pct(goal)} (margin {_pct(margin)})")

    for row in summary.rounds:
        if row.round == 1:
            at_least("round 1 Acc@0.5", row.acc50, goals.round1_acc)
        else:
            at_least(f"round {row.round} Acc@0.5", row.acc50, goals.later_round_acc)
    at_least("the parse rate", summary.all.parse_rate, goals.parse_rate)
    at_least("the citation rate", summary.all.citation_rate, goals.citation_rate)
    at_least("scene precision", summary.all.scene_precision, goals.scene_precision)
    single = [row for row in summary.languages if row.language != CODE_SWITCHED]
    if len(single) >= 2:
        best, worst = max(single, key=lambda r: r.acc50), min(single, key=lambda r: r.acc50)
        at_most(
            f"the language gap ({best.language} {_pct(best.acc50)} vs {worst.language} {_pct(worst.acc50)})",
            best.acc50 - worst.acc50,
            goals.language_gap,
        )
    mix = summary.language(CODE_SWITCHED)
    if mix is not None and single:
        pooled = sum(r.acc50 * r.turns for r in single) / sum(r.turns for r in single)
        at_most(
            f"the mix gap (single languages {_pct(pooled)} vs mix {_pct(mix.acc50)})", pooled - mix.acc50, goals.mix_gap
        )
    return failed
