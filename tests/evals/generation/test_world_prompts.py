"""Synthetic m-GenEval prompts: GenEval's format, deterministic, the same content in six correct languages."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.world import LANGUAGES, CodeSwitch
from regionreasoner.evals.generation.meta import TASKS, read_metadata
from regionreasoner.evals.generation.world_prompts import content_of, world_geneval_prompts, write_world_metadata
from regionreasoner.evals.generation.world_words import Thing, world_prompt

RED_CIRCLE = [Thing("circle", "red")]
THREE_STARS = [Thing("star", count=3, counted=True)]
LEFT_OF = [Thing("circle"), Thing("square")]
TWO_COLOURED = [Thing("star", "green"), Thing("square", "orange")]

# (things, relation) -> the expected prompt per language: genders, -e forms, obliques, ezafe, measure words.
EXPECTED = {
    "en": (
        "a photo of a red circle",
        "a photo of three stars",
        "a photo of a circle left of a square",
        "a photo of a green star and an orange square",
    ),
    "zh": (
        "一个红色圆形的照片",
        "三个星形的照片",
        "一个圆形在一个正方形左边的照片",
        "一个绿色星形和一个橙色正方形的照片",
    ),
    "nl": (
        "een foto van een rode cirkel",
        "een foto van drie sterren",
        "een foto van een cirkel links van een vierkant",
        "een foto van een groene ster en een oranje vierkant",
    ),
    "fr": (
        "une photo d'un cercle rouge",
        "une photo de trois étoiles",
        "une photo d'un cercle à gauche d'un carré",
        "une photo d'une étoile verte et d'un carré orange",
    ),
    "hi": (
        "एक लाल वृत्त की तस्वीर",
        "तीन तारों की तस्वीर",
        "एक वर्ग के बाईं ओर एक वृत्त की तस्वीर",
        "एक हरे तारे और एक नारंगी वर्ग की तस्वीर",
    ),
    "fa": (
        "عکسی از یک دایره\u200cی قرمز",
        "عکسی از سه ستاره",
        "عکسی از یک دایره سمت چپ یک مربع",
        "عکسی از یک ستاره\u200cی سبز و یک مربع نارنجی",
    ),
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_prompts_are_said_correctly(language: str) -> None:
    said = (
        world_prompt(RED_CIRCLE, language),
        world_prompt(THREE_STARS, language),
        world_prompt(LEFT_OF, language, relation="left of"),
        world_prompt(TWO_COLOURED, language),
    )
    assert said == EXPECTED[language]


def test_more_grammar() -> None:
    assert world_prompt([Thing("square", "red")], "nl") == "een foto van een rood vierkant"  # het-word after een
    assert world_prompt([Thing("cross", "blue")], "fr") == "une photo d'une croix bleue"
    assert world_prompt([Thing("ring", "yellow")], "hi") == "एक पीले छल्ले की तस्वीर"
    assert world_prompt([Thing("star")], "fr") == "une photo d'une étoile"
    assert world_prompt([Thing("square", counted=True)], "en") == "a photo of one square"
    assert world_prompt([Thing("cross", count=2, counted=True)], "en") == "a photo of two crosses"
    assert world_prompt([Thing("star"), Thing("ring")], "fr", relation="below") == (
        "une photo d'une étoile en dessous d'un anneau"
    )
    assert world_prompt([Thing("circle"), Thing("star")], "zh", relation="above") == "一个圆形在一个星形上方的照片"


def test_code_switched_words_come_from_the_donor() -> None:
    switch = CodeSwitch(matrix="en", donor="nl", switched=("colour", "kind"))
    assert world_prompt(RED_CIRCLE, switch) == "a photo of a rood cirkel"
    back = CodeSwitch(matrix="zh", donor="en", switched=("colour", "kind"))
    assert world_prompt(RED_CIRCLE, back) == "一个 red circle 的照片"


def test_bad_things_are_config_errors() -> None:
    with pytest.raises(ConfigError):
        Thing("dog")
    with pytest.raises(ConfigError):
        Thing("circle", "red", count=2)
    with pytest.raises(ConfigError):
        world_prompt(LEFT_OF, "en", relation="near")


def test_tasks_counts_and_determinism() -> None:
    prompts = world_geneval_prompts("en", n_per_task=8, seed=3)
    assert Counter(p.tag for p in prompts) == dict.fromkeys(TASKS, 8)
    assert prompts == world_geneval_prompts("en", n_per_task=8, seed=3)
    assert prompts[:3] == world_geneval_prompts("en", n_per_task=3, seed=3)[:3]  # index i does not depend on N
    assert prompts != world_geneval_prompts("en", n_per_task=8, seed=4)
    counting = [p for p in prompts if p.tag == "counting"]
    assert [p.include[0].count for p in counting] == [1, 2, 3, 4, 1, 2, 3, 4]
    assert all(p.exclude[0].count == p.include[0].count + 1 for p in counting)
    for p in prompts:
        if p.tag in ("two_object", "color_attr", "position"):
            assert len({c.cls for c in p.include}) == 2
        if p.tag == "position":
            assert p.include[1].position is not None and p.include[1].position[1] == 0
        if p.tag == "color_attr":
            assert len({c.color for c in p.include}) == 2


def test_languages_share_content_and_files_are_geneval_metadata(tmp_path: Path) -> None:
    paths = write_world_metadata(tmp_path, n_per_task=3)
    assert sorted(paths) == sorted(LANGUAGES)
    sets = {lang: read_metadata(path) for lang, path in paths.items()}
    for prompts in sets.values():
        assert [(p.tag, p.include, p.exclude) for p in prompts] == [(p.tag, p.include, p.exclude) for p in sets["en"]]
        assert all(content_of(p) == content_of(q) for p, q in zip(prompts, sets["en"], strict=True))
    assert sets["en"][0].prompt != sets["zh"][0].prompt
