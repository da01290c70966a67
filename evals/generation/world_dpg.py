"""A synthetic m-DPG: DPG-Bench items about the world's shapes, and an exact VQA that answers their questions.

Each item is a synthetic GenEval prompt (its English text is the DPG ``text``; the other languages' texts are the
same prompt translated) with DPG-style propositions, in DPG-Bench's categories:

    entity - whole (circle)                 Is there a circle?                     dependency 0
    attribute - color (circle, red)         Is the circle red?                     the circle's entity
    other - count (star, ==3)               Are there three stars?                 the star's entity
    relation - spatial (circle, square, left of)   Is the circle left of the square?   both entities

:class:`ExactWorldVQA` answers exactly these questions ("yes"/"no") from the exact detector's objects.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from PIL import Image

from regionreasoner.core.errors import InputError
from regionreasoner.core.world.captions import COUNT_WORDS, PLURALS
from regionreasoner.evals.generation.dpg import DPGItem, DPGQuestion
from regionreasoner.evals.generation.exact import ExactWorldDetector, WorldObject
from regionreasoner.evals.generation.geneval import relative_position
from regionreasoner.evals.generation.meta import GenEvalPrompt
from regionreasoner.evals.generation.world_prompts import content_of

__all__ = ["ExactWorldVQA", "world_dpg_items"]

_SINGULAR = {plural: kind for kind, plural in PLURALS["en"].items()}
_NUMBERS = {word: n for n, word in enumerate(COUNT_WORDS["en"], start=1)}
_ENTITY = re.compile(r"^is there an? (\w+)\?$")
_COLOUR = re.compile(r"^is the (\w+) (\w+)\?$")
_COUNT = re.compile(r"^(?:are there (\w+) (\w+)|is there exactly (one) (\w+))\?$")
_RELATION = re.compile(r"^is the (\w+) (left of|right of|above|below) the (\w+)\?$")


def world_dpg_items(prompts: Sequence[GenEvalPrompt], *, prefix: str = "world") -> list[DPGItem]:
    """DPG items for English synthetic GenEval prompts: ``<prefix>_<index:05d>``, questions as in the module doc."""
    items = []
    for index, prompt in enumerate(prompts):
        content = content_of(prompt)
        questions: list[DPGQuestion] = []
        entity: list[int] = []
        for thing in content.things:
            pid = len(questions) + 1
            entity.append(pid)
            article = "an" if thing.kind[0] in "aeiou" else "a"
            questions.append(
                DPGQuestion(
                    pid, (), "entity", "whole", f"entity - whole ({thing.kind})", f"Is there {article} {thing.kind}?"
                )
            )
            if thing.colour is not None:
                questions.append(
                    DPGQuestion(
                        len(questions) + 1,
                        (pid,),
                        "attribute",
                        "color",
                        f"attribute - color ({thing.kind}, {thing.colour})",
                        f"Is the {thing.kind} {thing.colour}?",
                    )
                )
            if thing.counted:
                n = thing.count
                text = (
                    f"Are there {COUNT_WORDS['en'][n - 1]} {PLURALS['en'][thing.kind]}?"
                    if n > 1
                    else f"Is there exactly one {thing.kind}?"
                )
                questions.append(
                    DPGQuestion(
                        len(questions) + 1, (pid,), "other", "count", f"other - count ({thing.kind}, =={n})", text
                    )
                )
        if content.relation is not None:
            a, b = (t.kind for t in content.things)
            questions.append(
                DPGQuestion(
                    len(questions) + 1,
                    tuple(entity),
                    "relation",
                    "spatial",
                    f"relation - spatial ({a}, {b}, {content.relation})",
                    f"Is the {a} {content.relation} the {b}?",
                )
            )
        keywords = ", ".join(dict.fromkeys(t.kind for t in content.things))
        items.append(DPGItem(f"{prefix}_{index:05d}", prompt.prompt, keywords, tuple(questions)))
    return items


class ExactWorldVQA:
    """Answers the synthetic items' questions on a world image ("yes"/"no"), with the exact detector.

    An object question uses the detector's best-scoring object of that kind.  Any other question raises
    :class:`InputError`: this VQA knows only :func:`world_dpg_items`' templates.
    """

    def __init__(self, detector: ExactWorldDetector | None = None) -> None:
        self.detector = detector or ExactWorldDetector()
        self._cache: tuple[int, list[WorldObject]] | None = None

    def _objects(self, image: Image.Image) -> list[WorldObject]:
        key = hash(image.tobytes())
        if self._cache is None or self._cache[0] != key:  # the questions of one tile come one after another
            self._cache = (key, self.detector.segment(image))
        return self._cache[1]

    def answer(self, image: Image.Image, question: str) -> str:
        """The answer, "yes" or "no", to a synthetic item's question about ``image``."""
        q = " ".join(question.lower().split())
        objects = self._objects(image)

        def best(kind: str) -> WorldObject | None:
            return next((o for o in objects if o.kind == kind), None)  # segment() sorts by score

        if m := _ENTITY.match(q):
            found = best(m.group(1)) is not None
        elif m := _RELATION.match(q):
            a, b = best(m.group(1)), best(m.group(3))
            found = a is not None and b is not None and m.group(2) in relative_position(a.box, b.box)
        elif m := _COUNT.match(q):
            word, noun = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
            kind = _SINGULAR.get(noun, noun)
            found = sum(o.kind == kind for o in objects) == _NUMBERS.get(word, -1)
        elif m := _COLOUR.match(q):
            obj = best(m.group(1))
            found = obj is not None and obj.colour == m.group(2)
        else:
            raise InputError(f"the exact world VQA cannot answer {question!r}", hint="use a VQA model (--vqa hf)")
        return "yes" if found else "no"
