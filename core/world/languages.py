"""Synthetic-world questions in six languages and code-switched mixes.

An :class:`~.words.Expression` (which attributes single the target out) is rendered with each language's grammar:
French gender, agreement, elision and adjective placement (l'étoile verte rayée, le petit cercle rouge), Dutch
de/het and the attributive -e (het kleine rode vierkant, welk klein rood vierkant), Chinese modifiers before the
noun with 的, Hindi adjectives before the noun and postpositions after the cited box, Persian noun-first ezafe
chains (دایره‌ی قرمز راه‌راه).  Templates per language (:func:`question_templates`) hold
:data:`~.dialogue.CONTEXT_PLACEHOLDER` once when relational; the English ones are the dialogue's originals.

A code-switched text (:class:`CodeSwitch`, language :data:`CODE_SWITCHED`) keeps the frame and word order of a
matrix language and takes one or more content words (size, colour, texture, kind) from a donor language in their
base form; :func:`draw_code_switch` draws one from an rng.  Word tables: :mod:`.lexicon`, :func:`vocabulary`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.relations import Relation
from regionreasoner.core.world import lexicon as lx
from regionreasoner.core.world.words import ATTRIBUTES, RELATIONS, Expression

__all__ = [
    "ANY_LANGUAGE",
    "CODE_SWITCHED",
    "LANGUAGES",
    "CodeSwitch",
    "draw_code_switch",
    "question_templates",
    "render_expression",
    "render_question",
    "vocabulary",
]

CONTEXT_PLACEHOLDER = "<box>{context_bbox}</box>"
"""Where a relation turn's question cites the earlier region (the RegionDial-Bench placeholder, character for
character); :mod:`.dialogue` re-exports it."""

LANGUAGES: tuple[str, ...] = ("en", "zh", "nl", "fr", "hi", "fa")
"""The single languages: English, Chinese (simplified), Dutch, French, Hindi, Persian."""

CODE_SWITCHED = "mix"
"""The language of a code-switched turn (matrix frame, some content words from a donor language)."""

ANY_LANGUAGE = "any"
"""For :func:`~.dialogue.make_dialogue`: each turn draws uniformly from :data:`LANGUAGES` and :data:`CODE_SWITCHED`."""

_CP = CONTEXT_PLACEHOLDER
_CONTENT = ("size", "colour", "texture", "kind")


@dataclass(frozen=True)
class CodeSwitch:
    """A code-switched rendering: the matrix language's frame with some content words from a donor language.

    ``matrix`` gives the template, word order and grammar; the ``switched`` attributes' words come from ``donor``
    in their base form.
    """

    matrix: str
    """One of :data:`LANGUAGES`: template, word order, function words."""
    donor: str
    """Another of :data:`LANGUAGES`: where the switched words come from."""
    switched: tuple[str, ...]
    """Attribute names (of ``size, colour, texture, kind``) whose words are the donor's, at least one."""

    def __post_init__(self) -> None:
        _check(self.matrix)
        _check(self.donor)
        if self.donor == self.matrix:
            raise ConfigError(f"donor={self.donor!r} equals the matrix language", hint="pick a different donor")
        if not self.switched or any(a not in _CONTENT for a in self.switched):
            raise ConfigError(f"switched={self.switched!r}", hint=f"name one or more of {', '.join(_CONTENT)}")

    @property
    def languages(self) -> tuple[str, str]:
        """``(matrix, donor)``."""
        return (self.matrix, self.donor)


@dataclass(frozen=True)
class _Word:
    value: str
    """The English value ("red")."""
    text: str
    """Base form in the language it is written in."""
    native: bool
    """Written in the matrix language (so its grammar may inflect it)."""


_Words = dict[str, _Word]
_Slots = dict[str, str]


def _check(language: str) -> None:
    if language not in LANGUAGES:
        raise ConfigError(
            f"language={language!r} is not a single language",
            hint=f"use one of {', '.join(LANGUAGES)}, or a CodeSwitch for {CODE_SWITCHED!r}",
        )


def _words(expression: Expression, language: str | CodeSwitch) -> tuple[str, _Words]:
    switch = language if isinstance(language, CodeSwitch) else None
    matrix = switch.matrix if switch else str(language)
    _check(matrix)
    out: _Words = {}
    for name, value in expression.attributes.items():
        donor = switch is not None and name in switch.switched
        lang = switch.donor if switch is not None and donor else matrix
        out[name] = _Word(value=value, text=lx.WORDS[lang][name][value], native=not donor)
    if expression.position is not None:
        position = expression.position
        out["position"] = _Word(value=position, text=lx.WORDS[matrix]["position"][position], native=True)
    return matrix, out


def _text(words: _Words, name: str, inflect: Callable[[str], str] | None = None) -> str | None:
    word = words.get(name)
    if word is None:
        return None
    return inflect(word.text) if inflect is not None and word.native else word.text


def _join(*parts: str | None) -> str:
    return " ".join(p for p in parts if p)


def _en(words: _Words) -> _Slots:
    expr = _join(*(_text(words, n) for n in ("position", *ATTRIBUTES)))
    return {"expr": expr, "np": f"the {expr}"}


_FR_VOWELS = "aeiouyàâäéèêëîïôöùûüœ"


def _fr(words: _Words, kind: str) -> _Slots:
    feminine = kind in lx.FR_FEMININE_KINDS

    def agree(word: str) -> str:
        return lx.FR_FEMININE.get(word, word) if feminine else word

    # petit/grand go before the noun, medium after it as "de taille moyenne" (a donor word takes the same place).
    size = words.get("size")
    before = _text(words, "size", agree) if size and size.value in lx.FR_PRENOMINAL_SIZES else None
    medium = None
    if size and before is None:
        medium = "de taille moyenne" if size.native else f"de taille {size.text}"
    bare = _join(
        before,
        _text(words, "kind"),
        _text(words, "colour", agree),
        _text(words, "texture", agree),
        medium,
        _text(words, "position", agree),
    )
    article = "la" if feminine else "le"
    np_ = f"l'{bare}" if bare[0].lower() in _FR_VOWELS else f"{article} {bare}"
    return {"np": np_, "which": f"{'Quelle' if feminine else 'Quel'} {bare}"}


def _nl(words: _Words, kind: str) -> _Slots:
    het = kind in lx.NL_HET_KINDS

    def inflect(word: str) -> str:
        return lx.NL_INFLECTED.get(word, word)

    def phrase(inflected: bool) -> str:
        adjective = inflect if inflected else None
        return _join(
            _text(words, "position", inflect),
            *(_text(words, n, adjective) for n in ("size", "colour", "texture")),
            _text(words, "kind"),
        )

    # After "het"/"de" adjectives take -e; after "welk" (het-words) they do not, after "welke" (de-words) they do.
    which = f"Welk {phrase(False)}" if het else f"Welke {phrase(True)}"
    return {"np": f"{'het' if het else 'de'} {phrase(True)}", "which": which, "rel_pron": "dat" if het else "die"}


def _zh(words: _Words, kind: str) -> _Slots:
    size, texture = words.get("size"), words.get("texture")
    position = _text(words, "position")
    # 中等大小的 leads; 小/大 (or a donor size word) sit right before the noun; a texture is a 的-phrase.
    medium = "中等大小的" if size and size.native and size.value == "medium" else None
    near_noun = size.text if size and medium is None else None
    modifier = lx.ZH_TEXTURE_MODIFIERS[texture.value] if texture and texture.native else None
    parts = (
        f"{position}的" if position else None,
        medium,
        modifier,
        _text(words, "colour"),
        texture.text if texture and not texture.native else None,
        near_noun,
        _text(words, "kind"),
    )
    np_ = "".join(p for p in parts if p)
    return {"np": np_, "which": f"哪个{np_}"}


def _hi(words: _Words, kind: str) -> _Slots:
    # Every Hindi kind noun is masculine and the templates keep the noun phrase in the direct case, so the base
    # (masculine direct singular) forms are the right ones: छोटा हरा वृत्त, सबसे ऊपर वाला ...
    np_ = _join(*(_text(words, n) for n in ("position", *ATTRIBUTES)))
    return {"np": np_, "which": f"कौन-सा {np_}"}


def _fa_ezafe(word: str) -> str:
    return f"{word}\u200cی" if word in lx.FA_SILENT_H else word


def _fa_relative(word: str, native: bool) -> str:
    if not native:
        return f"{word} ای"
    return f"{word}\u200cای" if word in lx.FA_SILENT_H or word.endswith("ی") else f"{word}ی"


def _fa(words: _Words, kind: str) -> _Slots:
    chain = [words[n] for n in ("kind", "size", "colour", "texture") if n in words]
    position = _text(words, "position")

    def phrase(last: Callable[[_Word], str]) -> str:
        linked = [_fa_ezafe(w.text) if w.native else w.text for w in chain[:-1]]
        return _join(position, *linked, last(chain[-1]))

    plain = phrase(lambda w: w.text)
    return {
        "np": plain,
        "np_ez": phrase(lambda w: _fa_ezafe(w.text) if w.native else w.text),
        "np_rel": phrase(lambda w: _fa_relative(w.text, w.native)),
        "which": f"کدام {plain}",
    }


_GRAMMARS: dict[str, Callable[[_Words, str], _Slots]] = {
    "en": lambda words, kind: _en(words),
    "zh": _zh,
    "nl": _nl,
    "fr": _fr,
    "hi": _hi,
    "fa": _fa,
}

_PLAIN: dict[str, tuple[str, ...]] = {
    "en": ("Find the {expr}.", "Locate the {expr}.", "Where is the {expr}?", "Point out the {expr}."),
    "zh": ("找出{np}。", "{np}在哪里？", "请指出{np}。", "定位{np}。"),
    "nl": ("Vind {np}.", "Zoek {np}.", "Waar is {np}?", "Wijs {np} aan."),
    "fr": ("Trouvez {np}.", "Localisez {np}.", "Où se trouve {np} ?", "Montrez {np}."),
    "hi": ("{np} ढूँढिए।", "{np} कहाँ है?", "{np} दिखाइए।", "{np} खोजिए।"),
    "fa": ("{np} را پیدا کن.", "{np} کجاست؟", "{np} را نشان بده.", "{np} را مشخص کن."),
}

_Template = tuple[str, str]
"""(relation form: adjunct, clause or predicate; text with {pre} CONTEXT_PLACEHOLDER {post})."""

_RELATIONAL: dict[str, tuple[_Template, ...]] = {
    "en": (
        ("adjunct", "Find the {expr} {pre}" + _CP + "{post}."),
        ("clause", "Locate the {expr} that is {pre}" + _CP + "{post}."),
        ("predicate", "Which {expr} is {pre}" + _CP + "{post}?"),
    ),
    "zh": (
        ("adjunct", "找出{pre}" + _CP + "{post}的{np}。"),
        ("adjunct", "请指出{pre}" + _CP + "{post}的{np}。"),
        ("predicate", "{which}{pre}" + _CP + "{post}？"),
        ("adjunct", "{pre}" + _CP + "{post}的{np}在哪里？"),
    ),
    "nl": (
        ("adjunct", "Vind {np} {pre}" + _CP + "{post}."),
        ("clause", "Zoek {np} {pre}" + _CP + "{post}."),
        ("predicate", "{which} {pre}" + _CP + "{post}?"),
        ("adjunct", "Waar is {np} {pre}" + _CP + "{post}?"),
    ),
    "fr": (
        ("adjunct", "Trouvez {np} {pre}" + _CP + "{post}."),
        ("clause", "Localisez {np} {pre}" + _CP + "{post}."),
        ("predicate", "{which} {pre}" + _CP + "{post} ?"),
        ("adjunct", "Montrez {np} {pre}" + _CP + "{post}."),
    ),
    "hi": (
        ("adjunct", "{pre}" + _CP + "{post} {np} ढूँढिए।"),
        ("clause", "वह {np} ढूँढिए जो {pre}" + _CP + "{post}।"),
        ("predicate", "{which} {pre}" + _CP + "{post}?"),
        ("adjunct", "{pre}" + _CP + "{post} {np} कहाँ है?"),
    ),
    "fa": (
        ("adjunct", "{np_ez} {pre}" + _CP + "{post} را پیدا کن."),
        ("clause", "{np_rel} را که {pre}" + _CP + "{post} پیدا کن."),
        ("predicate", "{which} {pre}" + _CP + "{post}؟"),
        ("adjunct", "{np_ez} {pre}" + _CP + "{post} کجاست؟"),
    ),
}

_SLOT = re.compile(r"\{(\w+)\}")
_HAN = "\u3400-\u9fff"
_OTHER = "A-Za-z\u00c0-\u024f\u0600-\u06ff\u0900-\u097f"
_HAN_BOUNDARY = re.compile(f"(?<=[{_HAN}])(?=[{_OTHER}])|(?<=[{_OTHER}])(?=[{_HAN}])")


def _fill(text: str, slots: _Slots) -> str:
    # One pass, so a slot's value is never filled again and the placeholder's {context_bbox} survives.
    return _SLOT.sub(lambda m: slots.get(m.group(1), m.group(0)), text)


def _slots(expression: Expression, language: str | CodeSwitch) -> tuple[str, _Slots]:
    matrix, words = _words(expression, language)
    return matrix, _GRAMMARS[matrix](words, expression.kind)


def _finish(matrix: str, text: str) -> str:
    # Chinese has no spaces, except around words of another script in a code-switched phrase.
    return _HAN_BOUNDARY.sub(" ", text) if matrix == "zh" else text


def render_expression(expression: Expression, language: str | CodeSwitch) -> str:
    """``expression`` as a definite noun phrase in ``language`` (one of :data:`LANGUAGES`, or a :class:`CodeSwitch`).

    E.g. "the small red circle", "l'étoile verte rayée", "het kleine rode vierkant", "带条纹的红色小圆形",
    "छोटा लाल वृत्त", "دایره‌ی کوچک قرمز".
    """
    matrix, slots = _slots(expression, language)
    return _finish(matrix, slots["np"])


def question_templates(language: str, *, relational: bool) -> tuple[str, ...]:
    """The plain or relational question templates of ``language`` (English: the dialogue's originals, in order).

    Relational ones hold :data:`CONTEXT_PLACEHOLDER` once, with ``{pre}``/``{post}`` for the relation's words
    around it.
    """
    _check(language)
    return tuple(text for _, text in _RELATIONAL[language]) if relational else _PLAIN[language]


def render_question(
    expression: Expression, language: str | CodeSwitch, *, relation: Relation | None = None, template: int = 0
) -> str:
    """A question about ``expression`` in ``language`` (one of :data:`LANGUAGES`, or a :class:`CodeSwitch`).

    Plain when ``relation`` is None, else citing :data:`CONTEXT_PLACEHOLDER` once ("target REL cited");
    ``template`` indexes :func:`question_templates` of the (matrix) language.
    """
    matrix, slots = _slots(expression, language)
    count = len(_PLAIN[matrix] if relation is None else _RELATIONAL[matrix])
    if not 0 <= template < count:
        raise ConfigError(f"template={template} for {matrix!r}", hint=f"use 0..{count - 1}")
    if relation is None:
        return _finish(matrix, _fill(_PLAIN[matrix][template], slots))
    if relation not in lx.RELATION_FORMS[matrix]:
        raise ConfigError(f"relation={relation.value!r} has no words", hint=f"use one of {', '.join(RELATIONS)}")
    form, text = _RELATIONAL[matrix][template]
    forms = lx.RELATION_FORMS[matrix][relation]
    pre, post = {"adjunct": forms.adjunct, "clause": forms.clause, "predicate": forms.predicate}[form]
    return _finish(matrix, _fill(text.replace("{pre}", pre).replace("{post}", post), slots))


def draw_code_switch(expression: Expression, rng: np.random.Generator) -> CodeSwitch:
    """A code switch for ``expression``, deterministic in ``rng``.

    A matrix language, then a donor (another language) and a non-empty subset of the expression's content words
    whose donor word differs from the matrix word (so at least one word visibly switches).
    """
    matrix = LANGUAGES[int(rng.integers(len(LANGUAGES)))]
    donors = [lang for lang in LANGUAGES if lang != matrix]
    attributes = expression.attributes
    for index in rng.permutation(len(donors)):
        donor = donors[int(index)]
        differ = [n for n, v in attributes.items() if lx.WORDS[donor][n][v] != lx.WORDS[matrix][n][v]]
        if differ:
            count = 1 + int(rng.integers(len(differ)))
            chosen = {differ[int(i)] for i in rng.permutation(len(differ))[:count]}
            return CodeSwitch(matrix=matrix, donor=donor, switched=tuple(n for n in _CONTENT if n in chosen))
    # Chinese kind words differ from every other language's, so some donor always qualifies.
    raise ConfigError(f"no donor language has a different word for {expression}", hint="report this as a bug")


def vocabulary(language: str) -> dict[str, dict[str, str]]:
    """Every world word of ``language`` in its base form: ``{category: {english: word}}``.

    Categories: size, colour, texture, kind, position and relation (a relation as its adjunct phrase, "…" marking
    the cited box, keyed by its :class:`~regionreasoner.core.relations.Relation` value).
    """
    _check(language)
    table = {category: dict(words) for category, words in lx.WORDS[language].items()}
    table["relation"] = {
        rel.value: _fill(f"{pre}…{post}".strip(), {"rel_pron": "die"})
        for rel, (pre, post) in ((r, lx.RELATION_FORMS[language][r].adjunct) for r in RELATIONS)
    }
    return table
