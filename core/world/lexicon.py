"""The word tables of the synthetic world in its six languages (data only; :mod:`.languages` does the grammar).

:data:`WORDS` holds the **base form** of every world word (a dictionary form: masculine singular, uninflected),
keyed by language, then by category (``"size"``, ``"colour"``, ``"texture"``, ``"kind"``, ``"position"``), then by
the English value of :mod:`~regionreasoner.core.world.scene` / :data:`~.words.POSITION_WORDS`.  The smaller tables
hold what the renderers need to inflect them: French genders and feminine forms, Dutch de/het and the -e forms,
the Persian words whose ezafe is written, and :data:`RELATION_FORMS`, each relation said around the cited box.
Persian strings spell the zero-width non-joiner as an escape (U+200C).
"""

from __future__ import annotations

from dataclasses import dataclass

from regionreasoner.core.relations import Relation
from regionreasoner.core.world.scene import COLOURS, KINDS, SIZES, TEXTURES
from regionreasoner.core.world.words import POSITION_WORDS, RELATIONS

__all__ = ["RELATION_FORMS", "WORDS", "RelationForms", "Span"]

_ZWNJ = "\u200c"

_ENGLISH: dict[str, dict[str, str]] = {
    "size": {s: s for s in SIZES},
    "colour": {c: c for c in COLOURS},
    "texture": {t: t for t in TEXTURES},
    "kind": {k: k for k in KINDS},
    "position": {p: p for p in POSITION_WORDS},
}

WORDS: dict[str, dict[str, dict[str, str]]] = {
    "en": _ENGLISH,
    "zh": {
        "size": {"small": "小", "medium": "中等", "large": "大"},
        "colour": {
            "red": "红色",
            "green": "绿色",
            "blue": "蓝色",
            "yellow": "黄色",
            "purple": "紫色",
            "orange": "橙色",
            "pink": "粉色",
        },
        "texture": {"solid": "纯色", "striped": "条纹", "dotted": "圆点", "checkered": "格子"},
        "kind": {
            "circle": "圆形",
            "square": "正方形",
            "triangle": "三角形",
            "star": "星形",
            "ring": "圆环",
            "cross": "十字",
        },
        "position": {"leftmost": "最左边", "rightmost": "最右边", "topmost": "最上面", "lowest": "最下面"},
    },
    "nl": {
        "size": {"small": "klein", "medium": "middelgroot", "large": "groot"},
        "colour": {
            "red": "rood",
            "green": "groen",
            "blue": "blauw",
            "yellow": "geel",
            "purple": "paars",
            "orange": "oranje",
            "pink": "roze",
        },
        "texture": {"solid": "effen", "striped": "gestreept", "dotted": "gestippeld", "checkered": "geruit"},
        "kind": {
            "circle": "cirkel",
            "square": "vierkant",
            "triangle": "driehoek",
            "star": "ster",
            "ring": "ring",
            "cross": "kruis",
        },
        "position": {
            "leftmost": "meest links",
            "rightmost": "meest rechts",
            "topmost": "bovenste",
            "lowest": "onderste",
        },
    },
    "fr": {
        "size": {"small": "petit", "medium": "moyen", "large": "grand"},
        "colour": {
            "red": "rouge",
            "green": "vert",
            "blue": "bleu",
            "yellow": "jaune",
            "purple": "violet",
            "orange": "orange",
            "pink": "rose",
        },
        "texture": {"solid": "uni", "striped": "rayé", "dotted": "à pois", "checkered": "à carreaux"},
        "kind": {
            "circle": "cercle",
            "square": "carré",
            "triangle": "triangle",
            "star": "étoile",
            "ring": "anneau",
            "cross": "croix",
        },
        "position": {
            "leftmost": "le plus à gauche",
            "rightmost": "le plus à droite",
            "topmost": "le plus haut",
            "lowest": "le plus bas",
        },
    },
    "hi": {
        "size": {"small": "छोटा", "medium": "मध्यम", "large": "बड़ा"},
        "colour": {
            "red": "लाल",
            "green": "हरा",
            "blue": "नीला",
            "yellow": "पीला",
            "purple": "बैंगनी",
            "orange": "नारंगी",
            "pink": "गुलाबी",
        },
        "texture": {"solid": "सादा", "striped": "धारीदार", "dotted": "बिंदीदार", "checkered": "चेकदार"},
        "kind": {
            "circle": "वृत्त",
            "square": "वर्ग",
            "triangle": "त्रिभुज",
            "star": "तारा",
            "ring": "छल्ला",
            "cross": "क्रॉस",
        },
        "position": {
            "leftmost": "सबसे बाईं ओर वाला",
            "rightmost": "सबसे दाईं ओर वाला",
            "topmost": "सबसे ऊपर वाला",
            "lowest": "सबसे नीचे वाला",
        },
    },
    "fa": {
        "size": {"small": "کوچک", "medium": "متوسط", "large": "بزرگ"},
        "colour": {
            "red": "قرمز",
            "green": "سبز",
            "blue": "آبی",
            "yellow": "زرد",
            "purple": "بنفش",
            "orange": "نارنجی",
            "pink": "صورتی",
        },
        "texture": {
            "solid": "ساده",
            "striped": f"راه{_ZWNJ}راه",
            "dotted": f"خال{_ZWNJ}خالی",
            "checkered": "شطرنجی",
        },
        "kind": {
            "circle": "دایره",
            "square": "مربع",
            "triangle": "مثلث",
            "star": "ستاره",
            "ring": "حلقه",
            "cross": "صلیب",
        },
        "position": {
            "leftmost": f"چپ{_ZWNJ}ترین",
            "rightmost": f"راست{_ZWNJ}ترین",
            "topmost": "بالاترین",
            "lowest": f"پایین{_ZWNJ}ترین",
        },
    },
}
"""Base forms: ``WORDS[language][category][english_value]``."""

FR_FEMININE_KINDS: frozenset[str] = frozenset({"star", "cross"})
"""Kinds whose French noun is feminine (étoile, croix); the others are masculine."""

FR_FEMININE: dict[str, str] = {
    "vert": "verte",
    "bleu": "bleue",
    "violet": "violette",
    "uni": "unie",
    "rayé": "rayée",
    "petit": "petite",
    "grand": "grande",
    "le plus à gauche": "la plus à gauche",
    "le plus à droite": "la plus à droite",
    "le plus haut": "la plus haute",
    "le plus bas": "la plus basse",
}
"""Feminine forms of French adjectives that change (rouge, jaune, orange, rose, à pois, à carreaux do not)."""

FR_PRENOMINAL_SIZES: frozenset[str] = frozenset({"small", "large"})
"""Sizes said before the French noun (petit, grand); medium follows it as "de taille moyenne"."""

NL_HET_KINDS: frozenset[str] = frozenset({"square", "cross"})
"""Kinds whose Dutch noun takes "het" (het vierkant, het kruis); the others take "de"."""

NL_INFLECTED: dict[str, str] = {
    "klein": "kleine",
    "middelgroot": "middelgrote",
    "groot": "grote",
    "rood": "rode",
    "groen": "groene",
    "blauw": "blauwe",
    "geel": "gele",
    "paars": "paarse",
    "gestreept": "gestreepte",
    "gestippeld": "gestippelde",
    "geruit": "geruite",
    "meest links": "meest linkse",
    "meest rechts": "meest rechtse",
}
"""Dutch attributive -e forms (oranje, roze, effen do not change)."""

FA_SILENT_H: frozenset[str] = frozenset({"دایره", "ستاره", "حلقه", "ساده"})
"""Persian words ending in a silent h: their ezafe is written (دایره‌ی), their relative -i is ‌ای."""

ZH_TEXTURE_MODIFIERS: dict[str, str] = {
    "solid": "纯色的",
    "striped": "带条纹的",
    "dotted": "带圆点的",
    "checkered": "格子图案的",
}
"""How a Chinese noun phrase says its texture (before the colour): 带条纹的红色圆形."""

Span = tuple[str, str]
"""Words before and after the cited box (each with its own spacing)."""


@dataclass(frozen=True)
class RelationForms:
    """One relation said around the cited box, in the three shapes the templates use."""

    adjunct: Span
    """Attached to the noun phrase: "above <box>", "在<box>上方" (before 的), "<box> के ऊपर वाला"."""
    clause: Span
    """A relative clause, or its predicate where the template supplies the relative word: "qui touche <box>"."""
    predicate: Span
    """After "which X": "se trouve au-dessus de <box>", "<box> के ऊपर है"."""


def _same(before: str, after: str = "") -> RelationForms:
    return RelationForms(adjunct=(before, after), clause=(before, after), predicate=(before, after))


_FR_PREP = {
    Relation.ABOVE: "au-dessus de",
    Relation.BELOW: "en dessous de",
    Relation.LEFT_OF: "à gauche de",
    Relation.RIGHT_OF: "à droite de",
    Relation.INSIDE: "à l'intérieur de",
    Relation.NEXT_TO: "à côté de",
}
_NL_PREP = {
    Relation.ABOVE: "boven",
    Relation.BELOW: "onder",
    Relation.LEFT_OF: "links van",
    Relation.RIGHT_OF: "rechts van",
    Relation.INSIDE: "in",
    Relation.NEXT_TO: "naast",
}
_HI_POST = {
    Relation.ABOVE: ("के ऊपर", "के ऊपर"),
    Relation.BELOW: ("के नीचे", "के नीचे"),
    Relation.LEFT_OF: ("के बाईं ओर", "के बाईं ओर"),
    Relation.RIGHT_OF: ("के दाईं ओर", "के दाईं ओर"),
    Relation.INSIDE: ("के अंदर", "के अंदर"),
    Relation.NEXT_TO: ("के बगल", "के बगल में"),
}
_FA_PREP = {
    Relation.ABOVE: "بالای",
    Relation.BELOW: "پایین",
    Relation.LEFT_OF: "سمت چپ",
    Relation.RIGHT_OF: "سمت راست",
    Relation.INSIDE: "داخل",
    Relation.NEXT_TO: "کنار",
}

RELATION_FORMS: dict[str, dict[Relation, RelationForms]] = {
    "en": {rel: _same(f"{rel.phrase} ") for rel in RELATIONS},
    "zh": {
        Relation.ABOVE: _same("在", "上方"),
        Relation.BELOW: _same("在", "下方"),
        Relation.LEFT_OF: _same("在", "左边"),
        Relation.RIGHT_OF: _same("在", "右边"),
        Relation.INSIDE: _same("在", "里面"),
        Relation.OVERLAPPING: _same("与", "重叠"),
        Relation.TOUCHING: _same("与", "接触"),
        Relation.NEXT_TO: _same("在", "旁边"),
    },
    "nl": {
        **{
            rel: RelationForms(
                adjunct=(f"{p} ", ""),
                clause=(f"{{rel_pron}} zich {p} ", " bevindt"),
                predicate=(f"bevindt zich {p} ", ""),
            )
            for rel, p in _NL_PREP.items()
        },
        Relation.OVERLAPPING: RelationForms(
            adjunct=("{rel_pron} met ", " overlapt"),
            clause=("{rel_pron} met ", " overlapt"),
            predicate=("overlapt met ", ""),
        ),
        Relation.TOUCHING: RelationForms(
            adjunct=("{rel_pron} ", " raakt"), clause=("{rel_pron} ", " raakt"), predicate=("raakt ", "")
        ),
    },
    "fr": {
        **{
            rel: RelationForms(
                adjunct=(f"{p} ", ""), clause=(f"qui se trouve {p} ", ""), predicate=(f"se trouve {p} ", "")
            )
            for rel, p in _FR_PREP.items()
        },
        Relation.OVERLAPPING: RelationForms(
            adjunct=("qui chevauche ", ""), clause=("qui chevauche ", ""), predicate=("chevauche ", "")
        ),
        Relation.TOUCHING: RelationForms(
            adjunct=("qui touche ", ""), clause=("qui touche ", ""), predicate=("touche ", "")
        ),
    },
    "hi": {
        **{
            rel: RelationForms(adjunct=("", f" {adj} वाला"), clause=("", f" {pred} है"), predicate=("", f" {pred} है"))
            for rel, (adj, pred) in _HI_POST.items()
        },
        Relation.OVERLAPPING: RelationForms(
            adjunct=("", " से ओवरलैप करने वाला"), clause=("", " से ओवरलैप करता है"), predicate=("", " से ओवरलैप करता है")
        ),
        Relation.TOUCHING: RelationForms(
            adjunct=("", " को छूने वाला"), clause=("", " को छूता है"), predicate=("", " को छूता है")
        ),
    },
    "fa": {
        **{
            rel: RelationForms(adjunct=(f"{p} ", ""), clause=(f"{p} ", " است"), predicate=(f"{p} ", " است"))
            for rel, p in _FA_PREP.items()
        },
        Relation.OVERLAPPING: RelationForms(
            adjunct=("همپوشان با ", ""), clause=("با ", " همپوشانی دارد"), predicate=("با ", " همپوشانی دارد")
        ),
        Relation.TOUCHING: RelationForms(
            adjunct=("در تماس با ", ""), clause=("با ", " در تماس است"), predicate=("با ", " در تماس است")
        ),
    },
}
"""``RELATION_FORMS[language][relation]``: the words around the cited box (the eight relations of
:data:`~.words.RELATIONS`).  Dutch spans hold ``{rel_pron}`` (die/dat, by the noun's gender)."""
