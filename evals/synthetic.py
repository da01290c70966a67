"""The synthetic benchmark: :mod:`regionreasoner.core.world` dialogues written in the RegionDial-Bench layout.

The world (scenes, words, dialogues) lives in :mod:`regionreasoner.core.world`; its names are re-exported here.
Every question has exact ground truth and an unambiguous answer (see :mod:`regionreasoner.core.world.dialogue`).

:func:`generate_benchmark` writes ``images/<image_id>.png``, ``synthetic.json`` (RegionDial-Bench layout, image paths
relative to the folder, masks as COCO RLE, so the same runner scores it) and ``scenes.json`` (every object's
attributes and box).  All of it is a pure function of the seed.

With ``language`` other than ``"en"`` every turn of ``synthetic.json`` also carries ``"language"`` (one of
:data:`LANGUAGES`, or ``"mix"`` for a code-switched turn); the RegionDial reader ignores the key, and
:func:`load_languages` reads it back (a turn without it is English, so ``language="en"`` writes the original layout,
byte for byte).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from regionreasoner.core.errors import ConfigError, InputError
from regionreasoner.core.masks import encode_rle
from regionreasoner.core.world import (
    ATTRIBUTES,
    CODE_SWITCHED,
    DIALOGUE_LANGUAGES,
    LANGUAGES,
    POSITION_WORDS,
    RELATIONS,
    Scene,
    SyntheticDialogue,
    SyntheticTurn,
    describe,
    make_dialogue,
    make_scene,
    referring_expression,
    relational_expression,
)
from regionreasoner.evals.regiondial import BenchDialogue, BenchTurn, dialogue_to_json, write_regiondial

__all__ = [
    "ATTRIBUTES",
    "CODE_SWITCHED",
    "DIALOGUE_LANGUAGES",
    "LANGUAGES",
    "POSITION_WORDS",
    "RELATIONS",
    "SyntheticDialogue",
    "SyntheticTurn",
    "describe",
    "generate_benchmark",
    "load_languages",
    "make_dialogue",
    "referring_expression",
    "relational_expression",
    "to_bench",
]


def to_bench(dialogue: SyntheticDialogue, image_id: int | str, image_path: str) -> BenchDialogue:
    """``dialogue`` as a :class:`BenchDialogue` (GT box and visible mask of each target, original pixels)."""
    turns = []
    for turn in dialogue.turns:
        obj = dialogue.scene.object(turn.target)
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
    language: str = "en",
) -> Path:
    """Write a synthetic benchmark folder and return the path of its ``synthetic.json``.

    ``n_images`` images of ``size = (width, height)`` pixels, each with one dialogue of ``rounds = (min, max)``
    turns (inclusive) in ``language`` (see :data:`DIALOGUE_LANGUAGES`).  Image ids are 1..n_images; files are
    ``images/<id>.png``.  Same arguments, same bytes.
    """
    lo, hi = rounds
    if language not in DIALOGUE_LANGUAGES:
        raise ConfigError(f"language={language!r}: use one of {', '.join(DIALOGUE_LANGUAGES)}")
    if n_images < 1:
        raise ConfigError(f"n_images={n_images}: use at least 1")
    if seed < 0:
        raise ConfigError(f"seed={seed}: use a non-negative integer")
    if not 1 <= lo <= hi <= 12:
        raise ConfigError(f"rounds={rounds}: use 1 <= min <= max <= 12")
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    dialogues: list[BenchDialogue] = []
    languages: list[list[str]] = []
    scenes: list[dict[str, object]] = []
    for i in range(n_images):
        image_id = i + 1
        dialogue = _dialogue_for(seed, i, size, lo, hi, relation_share, language)
        dialogue.scene.image.save(out / "images" / f"{image_id}.png", format="PNG")
        dialogues.append(to_bench(dialogue, image_id, f"images/{image_id}.png"))
        if language != "en":  # English writes the original layout: no language keys
            languages.append([turn.language for turn in dialogue.turns])
        scenes.append(_scene_json(image_id, dialogue.scene))
    (out / "scenes.json").write_text("[\n" + ",\n".join(json.dumps(s) for s in scenes) + "\n]\n", encoding="utf-8")
    if language == "en":
        return write_regiondial(out / "synthetic.json", dialogues)
    return _write_with_languages(out / "synthetic.json", dialogues, languages)


def _write_with_languages(path: Path, dialogues: list[BenchDialogue], languages: list[list[str]]) -> Path:
    """:func:`write_regiondial`'s layout with ``"language"`` added to every turn."""
    lines = []
    for dialogue, langs in zip(dialogues, languages, strict=True):
        item = dialogue_to_json(dialogue)
        for turn, lang in zip(item["conversational_turns"], langs, strict=True):
            turn["language"] = lang
        lines.append(json.dumps(item, ensure_ascii=False))
    path.write_text("[\n" + ",\n".join(lines) + "\n]\n", encoding="utf-8")
    return path


def load_languages(path: str | Path) -> list[list[str]]:
    """The language of every turn of a benchmark file, per dialogue in file order (a turn without one: ``"en"``).

    Raises :class:`InputError` for a language outside :data:`LANGUAGES` and ``"mix"``.
    """
    p = Path(path)
    data = json.loads(p.read_text(encoding="utf-8"))
    known = (*LANGUAGES, CODE_SWITCHED)
    out: list[list[str]] = []
    for index, item in enumerate(data):
        langs = [str(turn.get("language", "en")) for turn in item["conversational_turns"]]
        for t, lang in enumerate(langs):
            if lang not in known:
                raise InputError(
                    f"{p}: item {index} turn {t} has language {lang!r}",
                    hint=f"use one of {', '.join(known)}, or drop the key for English",
                )
        out.append(langs)
    return out


def _dialogue_for(
    seed: int, index: int, size: tuple[int, int], lo: int, hi: int, relation_share: float, language: str
) -> SyntheticDialogue:
    for attempt in range(50):
        rng = np.random.default_rng([seed, index, attempt])
        n_turns = int(rng.integers(lo, hi + 1))
        n_objects = (max(4, n_turns + 1), min(24, max(8, n_turns + 4)))
        scene = make_scene((seed, index, attempt), size=size, n_objects=n_objects)
        dialogue = make_dialogue(
            scene,
            seed=(seed, index, attempt, 1),
            n_turns=n_turns,
            relation_share=relation_share,
            language=language,
        )
        if len(dialogue.turns) == n_turns:
            return dialogue
    raise ConfigError(
        f"could not build a {lo}..{hi}-turn dialogue for image {index + 1} in 50 attempts",
        hint="use fewer rounds or a larger image size",
    )
