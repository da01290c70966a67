"""Questions about the synthetic world in six languages and code-switched mixes."""

from __future__ import annotations

import numpy as np
import pytest

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.relations import Relation
from regionreasoner.core.world import (
    ANY_LANGUAGE,
    CODE_SWITCHED,
    COLOURS,
    CONTEXT_PLACEHOLDER,
    KINDS,
    LANGUAGES,
    POSITION_WORDS,
    RELATIONS,
    SIZES,
    TEXTURES,
    CodeSwitch,
    Expression,
    SyntheticDialogue,
    draw_code_switch,
    make_dialogue,
    make_scene,
    question_templates,
    referring_attributes,
    referring_expression,
    relational_attributes,
    relational_expression,
    render_expression,
    render_question,
    vocabulary,
)

EXPECTED_KEYS = {
    "colour": set(COLOURS),
    "kind": set(KINDS),
    "texture": set(TEXTURES),
    "size": set(SIZES),
    "position": set(POSITION_WORDS),
    "relation": {r.value for r in RELATIONS},
}

ALL = Expression(kind="star", size="small", colour="green", texture="striped")


def _dialogues(language: str, seeds: range = range(25)) -> list[SyntheticDialogue]:
    return [make_dialogue(make_scene(s), seed=(s, 5), n_turns=5, language=language) for s in seeds]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_world_word_is_translated(language: str) -> None:
    table = vocabulary(language)
    assert {c: set(words) for c, words in table.items()} == EXPECTED_KEYS
    assert all(word.strip() for words in table.values() for word in words.values())
    if language != "en":  # nothing left in English by mistake (French orange/triangle are the same word)
        english = vocabulary("en")
        same = {w for c in ("colour", "kind", "texture", "size") for k, w in table[c].items() if w == english[c][k]}
        assert same <= {"orange", "triangle", "ring"}, same


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_combination_renders(language: str) -> None:
    for kind in KINDS:
        for size in (None, *SIZES):
            for colour in (None, *COLOURS):
                for texture in (None, *TEXTURES):
                    expression = Expression(kind=kind, size=size, colour=colour, texture=texture)
                    text = render_expression(expression, language)
                    assert text and "{" not in text and "  " not in text and text == text.strip()


@pytest.mark.parametrize(
    ("expression", "language", "text"),
    [
        (Expression(kind="star", colour="green", texture="striped"), "fr", "l'étoile verte rayée"),
        (Expression(kind="circle", size="small", colour="red", texture="striped"), "fr", "le petit cercle rouge rayé"),
        (Expression(kind="cross", size="large", colour="blue", texture="dotted"), "fr", "la grande croix bleue à pois"),
        (Expression(kind="ring", size="medium", colour="purple"), "fr", "l'anneau violet de taille moyenne"),
        (Expression(kind="square", colour="orange", position="leftmost"), "fr", "le carré orange le plus à gauche"),
        (Expression(kind="star", position="topmost"), "fr", "l'étoile la plus haute"),
        (Expression(kind="square", size="small", colour="red"), "nl", "het kleine rode vierkant"),
        (Expression(kind="circle", colour="yellow", texture="checkered"), "nl", "de gele geruite cirkel"),
        (Expression(kind="cross", size="medium", colour="orange"), "nl", "het middelgrote oranje kruis"),
        (Expression(kind="ring", position="lowest", colour="pink"), "nl", "de onderste roze ring"),
        (Expression(kind="circle", size="small", colour="red"), "zh", "红色小圆形"),
        (Expression(kind="star", colour="green", texture="striped"), "zh", "带条纹的绿色星形"),
        (Expression(kind="square", position="leftmost", size="medium"), "zh", "最左边的中等大小的正方形"),
        (Expression(kind="circle", size="small", colour="green"), "hi", "छोटा हरा वृत्त"),
        (Expression(kind="star", colour="yellow", texture="solid"), "hi", "पीला सादा तारा"),
        (Expression(kind="circle", colour="red", texture="striped"), "fa", "دایره\u200cی قرمز راه\u200cراه"),
        (Expression(kind="square", size="large", colour="blue"), "fa", "مربع بزرگ آبی"),
        (Expression(kind="ring", position="topmost"), "fa", "بالاترین حلقه"),
        (Expression(kind="circle", size="small", colour="red", position="lowest"), "en", "the lowest small red circle"),
    ],
)
def test_known_renderings(expression: Expression, language: str, text: str) -> None:
    assert render_expression(expression, language) == text


@pytest.mark.parametrize(
    ("language", "relation", "template", "question"),
    [
        ("zh", Relation.ABOVE, 0, "找出在" + CONTEXT_PLACEHOLDER + "上方的带条纹的绿色小星形。"),
        ("zh", Relation.OVERLAPPING, 2, "哪个带条纹的绿色小星形与" + CONTEXT_PLACEHOLDER + "重叠？"),
        ("fr", Relation.LEFT_OF, 0, "Trouvez la petite étoile verte rayée à gauche de " + CONTEXT_PLACEHOLDER + "."),
        ("fr", Relation.TOUCHING, 2, "Quelle petite étoile verte rayée touche " + CONTEXT_PLACEHOLDER + " ?"),
        (
            "nl",
            Relation.NEXT_TO,
            1,
            "Zoek de kleine groene gestreepte ster die zich naast " + CONTEXT_PLACEHOLDER + " bevindt.",
        ),
        ("nl", Relation.TOUCHING, 0, "Vind de kleine groene gestreepte ster die " + CONTEXT_PLACEHOLDER + " raakt."),
        ("hi", Relation.INSIDE, 0, CONTEXT_PLACEHOLDER + " के अंदर वाला छोटा हरा धारीदार तारा ढूँढिए।"),
        ("hi", Relation.BELOW, 2, "कौन-सा छोटा हरा धारीदार तारा " + CONTEXT_PLACEHOLDER + " के नीचे है?"),
        (
            "fa",
            Relation.ABOVE,
            1,
            "ستاره\u200cی کوچک سبز راه\u200cراهی را که بالای " + CONTEXT_PLACEHOLDER + " است پیدا کن.",
        ),
        (
            "en",
            Relation.LEFT_OF,
            1,
            "Locate the small green striped star that is to the left of " + CONTEXT_PLACEHOLDER + ".",
        ),
    ],
)
def test_known_questions(language: str, relation: Relation, template: int, question: str) -> None:
    assert render_question(ALL, language, relation=relation, template=template) == question


def test_dutch_which_drops_the_e_before_het_words() -> None:
    square = Expression(kind="square", size="small", colour="red")
    assert render_question(square, "nl", relation=Relation.TOUCHING, template=2).startswith(
        "Welk klein rood vierkant raakt"
    )
    assert render_question(ALL, "nl", relation=Relation.ABOVE, template=2).startswith("Welke kleine groene")


def test_persian_relative_marker_follows_the_last_word() -> None:
    forms = {
        Expression(kind="star"): "ستاره\u200cای را که",
        Expression(kind="circle", colour="blue"): "دایره\u200cی آبی\u200cای را که",
        Expression(kind="square", colour="red"): "مربع قرمزی را که",
    }
    for expression, start in forms.items():
        assert render_question(expression, "fa", relation=Relation.INSIDE, template=1).startswith(start)


@pytest.mark.parametrize("language", LANGUAGES)
def test_templates_and_questions_cite_the_box_once(language: str) -> None:
    assert all(CONTEXT_PLACEHOLDER not in t for t in question_templates(language, relational=False))
    relational = question_templates(language, relational=True)
    assert len(relational) >= 3 and all(t.count(CONTEXT_PLACEHOLDER) == 1 for t in relational)
    for relation in RELATIONS:
        for template in range(len(relational)):
            question = render_question(ALL, language, relation=relation, template=template)
            assert question.count(CONTEXT_PLACEHOLDER) == 1 and "{pre}" not in question and "  " not in question
    for template in range(len(question_templates(language, relational=False))):
        question = render_question(ALL, language, template=template)
        assert CONTEXT_PLACEHOLDER not in question and "{" not in question


def test_english_output_and_choice_are_unchanged() -> None:
    for seed in range(20):
        scene = make_scene(seed)
        rng_a, rng_b = np.random.default_rng(seed), np.random.default_rng(seed)
        for obj in scene.objects:
            expression = referring_attributes(scene, obj, rng_a)
            assert (None if expression is None else str(expression)) == referring_expression(scene, obj, rng_b)
            cited = scene.objects[0].box
            relational = relational_attributes(scene, obj, Relation.LEFT_OF, cited, rng_a)
            english = relational_expression(scene, obj, Relation.LEFT_OF, cited, rng_b)
            assert (None if relational is None else str(relational)) == english


def test_english_dialogue_is_the_language_free_one() -> None:
    for seed in range(30):
        scene = make_scene(seed)
        plain = make_dialogue(scene, seed=seed, n_turns=5)
        english = make_dialogue(scene, seed=seed, n_turns=5, language="en")
        assert plain.turns == english.turns
        assert all(t.language == "en" and t.languages == ("en",) for t in plain.turns)


def test_a_known_english_dialogue() -> None:
    """Pinned from the English-only generator, before languages existed."""
    dialogue = make_dialogue(make_scene(0), seed=0, n_turns=3)
    assert [t.question for t in dialogue.turns] == [
        "Find the square.",
        "Point out the medium star.",
        "Locate the ring that is to the right of " + CONTEXT_PLACEHOLDER + ".",
    ]


@pytest.mark.parametrize("language", [*LANGUAGES[1:], CODE_SWITCHED, ANY_LANGUAGE])
def test_targets_and_relations_do_not_depend_on_the_language(language: str) -> None:
    for english, other in zip(_dialogues("en"), _dialogues(language), strict=True):
        assert len(english.turns) == len(other.turns)
        for e, o in zip(english.turns, other.turns, strict=True):
            assert (e.target, e.relation, e.context_from_turn, e.expression) == (
                o.target,
                o.relation,
                o.context_from_turn,
                o.expression,
            )
            assert o.question.count(CONTEXT_PLACEHOLDER) == (0 if o.relation is None else 1)
            if o.language == "en":
                assert o.question == e.question


@pytest.mark.parametrize("language", LANGUAGES[1:])
def test_single_language_dialogues_are_in_that_language(language: str) -> None:
    for dialogue in _dialogues(language, range(10)):
        for turn in dialogue.turns:
            assert turn.language == language and turn.languages == (language,)
            kind = vocabulary(language)["kind"][dialogue.target(dialogue.turns.index(turn)).kind]
            assert kind in turn.question


def test_any_draws_every_language_and_mix() -> None:
    used = {t.language for d in _dialogues(ANY_LANGUAGE, range(40)) for t in d.turns}
    assert used == {*LANGUAGES, CODE_SWITCHED}


def test_code_switched_questions_use_two_languages() -> None:
    turns = [t for d in _dialogues(CODE_SWITCHED, range(40)) for t in d.turns]
    assert len(turns) > 100 and {t.language for t in turns} == {CODE_SWITCHED}
    matrices = set()
    for turn in turns:
        matrix, donor = turn.languages
        matrices.add(matrix)
        assert matrix != donor
        expression = _expression(turn.expression)
        switched = [a for a, v in expression.attributes.items() if vocabulary(donor)[a][v] in turn.question]
        assert switched, turn.question
        pure = {
            render_question(expression, matrix, relation=turn.relation, template=i)
            for i in range(len(question_templates(matrix, relational=turn.relation is not None)))
        }
        assert turn.question not in pure
    assert matrices == set(LANGUAGES)


def _expression(english: str) -> Expression:
    words = english.split()
    values: dict[str, str | None] = {"position": None, "size": None, "colour": None, "texture": None}
    for word in words[:-1]:
        for name, vocab in (("position", POSITION_WORDS), ("size", SIZES), ("colour", COLOURS), ("texture", TEXTURES)):
            if word in vocab:
                values[name] = word
    return Expression(kind=words[-1], **values)


def test_draw_code_switch_is_deterministic_and_switches_a_different_word() -> None:
    for seed in range(50):
        a = draw_code_switch(ALL, np.random.default_rng(seed))
        assert a == draw_code_switch(ALL, np.random.default_rng(seed))
        assert a.switched and set(a.switched) <= set(ALL.attributes)
        text = render_expression(ALL, a)
        assert text != render_expression(ALL, a.matrix)
        assert all(vocabulary(a.donor)[n][ALL.attributes[n]] in text for n in a.switched)


def test_chinese_matrix_spaces_words_of_other_scripts() -> None:
    switch = CodeSwitch(matrix="zh", donor="en", switched=("colour",))
    assert render_question(ALL, switch, template=0) == "找出带条纹的 green 小星形。"
    switch = CodeSwitch(matrix="fr", donor="zh", switched=("kind",))
    assert render_expression(ALL, switch) == "la petite 星形 verte rayée"  # French gender of the concept


@pytest.mark.parametrize("language", [*LANGUAGES[1:], CODE_SWITCHED, ANY_LANGUAGE])
def test_dialogues_are_deterministic_by_seed(language: str) -> None:
    first = _dialogues(language, range(8))
    again = _dialogues(language, range(8))
    assert [d.turns for d in first] == [d.turns for d in again]
    other = [make_dialogue(make_scene(s), seed=(s, 6), n_turns=5, language=language) for s in range(8)]
    assert [d.turns for d in first] != [d.turns for d in other]


def test_bad_arguments_raise_config_errors() -> None:
    scene = make_scene(0)
    with pytest.raises(ConfigError, match="use one of"):
        make_dialogue(scene, seed=0, n_turns=2, language="de")
    with pytest.raises(ConfigError, match="CodeSwitch"):
        render_expression(ALL, CODE_SWITCHED)
    with pytest.raises(ConfigError, match=r"use 0\.\.3"):
        render_question(ALL, "fr", template=4)
    with pytest.raises(ConfigError, match="no words"):
        render_question(ALL, "fr", relation=Relation.NEAR)
    with pytest.raises(ConfigError):
        vocabulary("mix")
    with pytest.raises(ConfigError):
        Expression(kind="hexagon")
    with pytest.raises(ConfigError):
        CodeSwitch(matrix="fr", donor="fr", switched=("kind",))
    with pytest.raises(ConfigError):
        CodeSwitch(matrix="fr", donor="nl", switched=())
