"""GenEval-style captions of the synthetic world in its six languages, and their code-switched mixes.

Shared by the generation evals (synthetic m-GenEval prompts) and the generator's training captions
(:mod:`regionreasoner.trainers.generator`); it moved here from ``evals/generation/world_words.py``, which
re-exports it.

The world's word tables (:mod:`regionreasoner.core.world.lexicon`: colours, kinds, genders, the Dutch -e forms,
the Persian ezafe, the relation phrases) are reused as they are; this module adds only what GenEval prompts need and
the world lacks: count words (1-4), plural nouns, the "a photo of" frames, the Hindi oblique forms (the noun phrase
stands before की), and English's GenEval relation words ("left of", not "to the left of").

    en  a photo of a red circle            a photo of three stars        a photo of a circle left of a square
    zh  一个红色圆形的照片                   三个星形的照片                 一个圆形在一个正方形左边的照片
    nl  een foto van een rode cirkel       een foto van drie sterren     een foto van een cirkel links van een vierkant
    fr  une photo d'un cercle rouge        une photo de trois étoiles    une photo d'un cercle à gauche d'un carré
    hi  एक लाल वृत्त की तस्वीर                 तीन तारों की तस्वीर               एक वर्ग के बाईं ओर एक वृत्त की तस्वीर
    fa  عکسی از یک دایره‌ی قرمز             عکسی از سه ستاره              عکسی از یک دایره سمت چپ یک مربع

A :class:`~regionreasoner.core.world.languages.CodeSwitch` keeps the matrix language's frame and takes the switched
words (``colour``, ``kind``) from the donor in their base form, uninflected, as the world's own mixes do.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.relations import Relation
from regionreasoner.core.world import lexicon as lx
from regionreasoner.core.world.languages import LANGUAGES, CodeSwitch
from regionreasoner.core.world.scene import COLOURS, KINDS

__all__ = ["COUNT_WORDS", "MAX_COUNT", "PLURALS", "Thing", "position_relation", "world_phrase", "world_prompt"]

MAX_COUNT = 4
"""Counting prompts ask for 1..MAX_COUNT objects."""

COUNT_WORDS: dict[str, tuple[str, ...]] = {
    "en": ("one", "two", "three", "four"),
    "zh": ("一个", "两个", "三个", "四个"),
    "nl": ("één", "twee", "drie", "vier"),
    "fr": ("un", "deux", "trois", "quatre"),
    "hi": ("एक", "दो", "तीन", "चार"),
    "fa": ("یک", "دو", "سه", "چهار"),
}
"""Count words 1..4 (French "un" becomes "une" before a feminine noun; Chinese carries the measure word 个)."""

PLURALS: dict[str, dict[str, str]] = {
    "en": {
        "circle": "circles",
        "square": "squares",
        "triangle": "triangles",
        "star": "stars",
        "ring": "rings",
        "cross": "crosses",
    },
    "nl": {
        "circle": "cirkels",
        "square": "vierkanten",
        "triangle": "driehoeken",
        "star": "sterren",
        "ring": "ringen",
        "cross": "kruisen",
    },
    "fr": {
        "circle": "cercles",
        "square": "carrés",
        "triangle": "triangles",
        "star": "étoiles",
        "ring": "anneaux",
        "cross": "croix",
    },
    # Hindi: the oblique plural (before की); Chinese and Persian keep the singular after a count word.
    "hi": {"circle": "वृत्तों", "square": "वर्गों", "triangle": "त्रिभुजों", "star": "तारों", "ring": "छल्लों", "cross": "क्रॉसों"},
}
"""Plural nouns of the kinds, by language and English kind."""

_HI_OBLIQUE: dict[str, str] = {"तारा": "तारे", "छल्ला": "छल्ले", "हरा": "हरे", "नीला": "नीले", "पीला": "पीले"}
"""Hindi oblique singular of the world words that change (-ā nouns and adjectives); the others stay."""

_HI_POSTPOSITIONS: dict[Relation, str] = {
    Relation.LEFT_OF: "के बाईं ओर",
    Relation.RIGHT_OF: "के दाईं ओर",
    Relation.ABOVE: "के ऊपर",
    Relation.BELOW: "के नीचे",
}
"""The lexicon's Hindi relation words without its वाला (here the phrase is adverbial)."""

_RELATIONS: dict[str, Relation] = {
    "left of": Relation.LEFT_OF,
    "right of": Relation.RIGHT_OF,
    "above": Relation.ABOVE,
    "below": Relation.BELOW,
}

_VOWELS = "aeiouàâäéèêëîïôöùûüœ"
_HAN = "\u3400-\u9fff"
_OTHER = "A-Za-z\u00c0-\u024f\u0600-\u06ff\u0900-\u097f"
_HAN_BOUNDARY = re.compile(f"(?<=[{_HAN}])(?=[{_OTHER}])|(?<=[{_OTHER}])(?=[{_HAN}])")


@dataclass(frozen=True)
class Thing:
    """``count`` objects of ``kind``, optionally of one ``colour`` (a prompt's noun phrase, language-free)."""

    kind: str
    """One of :data:`~regionreasoner.core.world.KINDS`."""
    colour: str | None = None
    """A key of :data:`~regionreasoner.core.world.COLOURS`, or None."""
    count: int = 1
    """1..:data:`MAX_COUNT`; a colour is said only for a single object (as in GenEval's tasks)."""
    counted: bool = False
    """Say the count word even for one object ("one circle", not "a circle"): counting prompts."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"kind={self.kind!r} is not a world kind", hint=f"use one of {', '.join(KINDS)}")
        if self.colour is not None and self.colour not in COLOURS:
            raise ConfigError(f"colour={self.colour!r}", hint=f"use one of {', '.join(COLOURS)}")
        if not 1 <= self.count <= MAX_COUNT:
            raise ConfigError(f"count={self.count}", hint=f"use 1..{MAX_COUNT}")
        if self.colour is not None and (self.count > 1 or self.counted):
            raise ConfigError("a coloured, counted thing", hint="GenEval prompts colour single objects only")

    @property
    def says_count(self) -> bool:
        """Whether the noun phrase starts with a count word."""
        return self.counted or self.count > 1


def position_relation(name: str) -> Relation:
    """The :class:`~regionreasoner.core.relations.Relation` of a GenEval position word ("left of", ...)."""
    if name not in _RELATIONS:
        raise ConfigError(f"position {name!r}", hint=f"use one of {', '.join(_RELATIONS)}")
    return _RELATIONS[name]


@dataclass(frozen=True)
class _Words:
    """One thing's words in a matrix language: each word's text and whether the matrix grammar may inflect it."""

    kind: str
    kind_native: bool
    colour: str | None
    colour_native: bool


def _words(thing: Thing, matrix: str, switch: CodeSwitch | None) -> _Words:
    def word(category: str, value: str) -> tuple[str, bool]:
        donor = switch is not None and category in switch.switched
        return lx.WORDS[switch.donor if switch and donor else matrix][category][value], not donor

    kind, kind_native = word("kind", thing.kind)
    colour, colour_native = word("colour", thing.colour) if thing.colour else (None, True)
    return _Words(kind, kind_native, colour, colour_native)


def _plural(language: str, thing: Thing, w: _Words) -> str:
    """The noun after a count word: plural for two or more (a donor word stays in its base form)."""
    return PLURALS[language][thing.kind] if thing.count > 1 and w.kind_native else w.kind


def _en(thing: Thing, w: _Words) -> str:
    if thing.says_count:
        return f"{COUNT_WORDS['en'][thing.count - 1]} {_plural('en', thing, w)}"
    words = " ".join(x for x in (w.colour, w.kind) if x)
    return f"{'an' if words[0].lower() in _VOWELS else 'a'} {words}"


def _fr(thing: Thing, w: _Words) -> str:
    feminine = thing.kind in lx.FR_FEMININE_KINDS
    article = "une" if feminine else "un"
    if thing.says_count:
        count = article if thing.count == 1 else COUNT_WORDS["fr"][thing.count - 1]
        return f"{count} {_plural('fr', thing, w)}"
    colour = w.colour
    if colour and w.colour_native and feminine:
        colour = lx.FR_FEMININE.get(colour, colour)
    return " ".join(x for x in (article, w.kind, colour) if x)


def _nl(thing: Thing, w: _Words) -> str:
    if thing.says_count:
        return f"{COUNT_WORDS['nl'][thing.count - 1]} {_plural('nl', thing, w)}"
    colour = w.colour
    # After "een", adjectives take -e before de-words only: een rode cirkel, een rood vierkant.
    if colour and w.colour_native and thing.kind not in lx.NL_HET_KINDS:
        colour = lx.NL_INFLECTED.get(colour, colour)
    return " ".join(x for x in ("een", colour, w.kind) if x)


def _zh(thing: Thing, w: _Words) -> str:
    parts = [COUNT_WORDS["zh"][thing.count - 1], *(x for x in (w.colour, w.kind) if x)]
    # Han words join without spaces; two donor words in another script keep one ("red circle").
    out = parts[0]
    for before, word in itertools.pairwise(parts):
        out += " " + word if not re.search(f"[{_HAN}]$", before) and not re.match(f"[{_HAN}]", word) else word
    return out


def _hi(thing: Thing, w: _Words) -> str:
    """The oblique noun phrase (it stands before की or के)."""
    if thing.count > 1:
        return f"{COUNT_WORDS['hi'][thing.count - 1]} {_plural('hi', thing, w)}"
    noun = _HI_OBLIQUE.get(w.kind, w.kind) if w.kind_native else w.kind
    colour = _HI_OBLIQUE.get(w.colour, w.colour) if w.colour and w.colour_native else w.colour
    return " ".join(x for x in (COUNT_WORDS["hi"][0], colour, noun) if x)


def _fa(thing: Thing, w: _Words) -> str:
    if w.colour is None:
        return f"{COUNT_WORDS['fa'][thing.count - 1]} {w.kind}"
    noun = f"{w.kind}\u200cی" if w.kind_native and w.kind in lx.FA_SILENT_H else w.kind
    return f"یک {noun} {w.colour}"


_NOUN_PHRASES = {"en": _en, "fr": _fr, "nl": _nl, "zh": _zh, "hi": _hi, "fa": _fa}


def _fr_de(phrase: str) -> str:
    return f"d'{phrase}" if phrase[0].lower() in _VOWELS else f"de {phrase}"


def _frame(matrix: str, phrases: Sequence[str], relation: Relation | None) -> str:
    a = phrases[0]
    if relation is not None:
        b = phrases[1]
        if matrix == "en":
            return f"a photo of {a} {next(k for k, v in _RELATIONS.items() if v is relation)} {b}"
        if matrix == "hi":
            return f"{b} {_HI_POSTPOSITIONS[relation]} {a} की तस्वीर"
        pre, post = lx.RELATION_FORMS[matrix][relation].adjunct
        if matrix == "zh":
            return f"{a}{pre}{b}{post}的照片"
        if matrix == "fr":
            return f"une photo {_fr_de(a)} {pre.removesuffix('de ')}{_fr_de(b)}"
        return {"nl": f"een foto van {a} {pre}{b}", "fa": f"عکسی از {a} {pre}{b}"}[matrix]
    if len(phrases) == 2:
        b = phrases[1]
        return {
            "en": f"a photo of {a} and {b}",
            "zh": f"{a}和{b}的照片",
            "nl": f"een foto van {a} en {b}",
            "fr": f"une photo {_fr_de(a)} et {_fr_de(b)}",
            "hi": f"{a} और {b} की तस्वीर",
            "fa": f"عکسی از {a} و {b}",
        }[matrix]
    return {
        "en": f"a photo of {a}",
        "zh": f"{a}的照片",
        "nl": f"een foto van {a}",
        "fr": f"une photo {_fr_de(a)}",
        "hi": f"{a} की तस्वीर",
        "fa": f"عکسی از {a}",
    }[matrix]


def world_prompt(things: Sequence[Thing], language: str | CodeSwitch, *, relation: str | None = None) -> str:
    """The prompt for one or two ``things`` in ``language`` (one of the world's LANGUAGES, or a CodeSwitch).

    With ``relation`` (a GenEval position word) there must be two things: "things[0] <relation> things[1]".
    Counting prompts have one thing with ``count`` >= 1; "a photo of one circle" names the count.
    """
    switch = language if isinstance(language, CodeSwitch) else None
    matrix = switch.matrix if switch else str(language)
    if matrix not in LANGUAGES:
        raise ConfigError(f"language={language!r}", hint=f"use one of {', '.join(LANGUAGES)} or a CodeSwitch")
    if not 1 <= len(things) <= 2 or (relation is not None and len(things) != 2):
        raise ConfigError(f"{len(things)} things", hint="pass one or two things; a relation needs two")
    rel = position_relation(relation) if relation is not None else None
    phrases = [_NOUN_PHRASES[matrix](thing, _words(thing, matrix, switch)) for thing in things]
    text = _frame(matrix, phrases, rel)
    return _HAN_BOUNDARY.sub(" ", text) if matrix == "zh" else text


def world_phrase(thing: Thing, language: str | CodeSwitch) -> str:
    """The bare noun phrase of one ``thing`` without a frame ("a red circle", "een rode cirkel", "一个红色圆形").

    What an inpainting request names ("vervang R1 door een groene ster").  Hindi's phrase is the direct form
    ("एक हरा तारा"), not the oblique one that stands before की in a prompt.
    """
    switch = language if isinstance(language, CodeSwitch) else None
    matrix = switch.matrix if switch else str(language)
    if matrix not in LANGUAGES:
        raise ConfigError(f"language={language!r}", hint=f"use one of {', '.join(LANGUAGES)} or a CodeSwitch")
    words = _words(thing, matrix, switch)
    if matrix == "hi" and thing.count == 1:
        text = " ".join(x for x in (COUNT_WORDS["hi"][0], words.colour, words.kind) if x)
    else:
        text = _NOUN_PHRASES[matrix](thing, words)
    return _HAN_BOUNDARY.sub(" ", text) if matrix == "zh" else text
