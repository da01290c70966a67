"""The demo's dialogue: a synthetic-world scene the embedded model never saw, three questions, and their answers.

The scene comes from :data:`DEMO_SEED`, a seed outside every training stream (training scenes are drawn from
``(seed, index, attempt, 7)`` with seeds 0 and 1, the held-out benchmark from ``(2026, index, attempt)``).  Turn 1 is
an English referring question, turn 2 a French question citing turn 1's region (``R1``), turn 3 an English question
citing an earlier turn's region (the world's dialogue picks which); each comes with its target's ground-truth box,
so the demo can say whether each answer is right.  Then the Dutch request of :data:`DEMO_EDIT` repaints turn 1's
region with a green star (the generator trained here), :func:`edit_check` finds it with the world's exact segmenter,
and a last English question asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.geometry import Box, iou
from regionreasoner.core.world import CONTEXT_PLACEHOLDER, Scene, make_dialogue, make_scene
from regionreasoner.core.world.languages import render_question
from regionreasoner.core.world.words import Expression

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "DEMO_EDIT",
    "DEMO_LANGUAGES",
    "DEMO_SEED",
    "DemoEdit",
    "DemoTurn",
    "demo_dialogue",
    "edit_check",
    "region_check",
]

DEMO_SEED = (20261202, 4)
"""The demo scene's seed (held out: no training or benchmark stream draws it)."""

DEMO_LANGUAGES = ("en", "fr", "en")
"""The language of each demo turn."""

HIT_IOU = 0.5
"""A found region is right when its box has at least this IoU with the target's."""


@dataclass(frozen=True)
class DemoTurn:
    """One demo question: its text (citing ``R<k>`` placeholders), the target's words and ground-truth box."""

    question: str
    """With ``{cited}`` where the cited turn's region name goes (relation turns)."""
    target: str
    """The target's English words ("the small red circle")."""
    box: Box
    """The target's exact box, original pixels."""
    cites: int | None
    """0-based index of the cited turn, or None."""
    language: str


@dataclass(frozen=True)
class DemoEdit:
    """The demo's inpainting request: repaint a cited turn's region with a shape the scene does not hold."""

    request: str
    """What the user says, with ``{cited}`` where the region's name goes."""
    prompt: str
    """What the generator is asked for (the request's object, in the request's language)."""
    kind: str
    colour: str
    cites: int
    """0-based index of the turn whose region is repainted."""
    language: str
    question: str
    """The follow-up question (English) that asks for the new object."""


DEMO_EDIT = DemoEdit(
    request="vervang {cited} door een groene ster",
    prompt="een groene ster",
    kind="star",
    colour="green",
    cites=0,
    language="nl",
    question=render_question(Expression(kind="star", colour="green"), "en"),
)
"""Turn 4 (Dutch: "replace R1 with a green star") and turn 5 (English: where is the green star?)."""


def edit_check(image: Image.Image, box: Box, kind: str, colour: str) -> tuple[bool, Box | None]:
    """``(found, box)``: whether the world's exact segmenter finds a ``colour`` ``kind`` centred inside ``box``.

    ``box`` is the repainted region (original pixels); the returned box is the new object's, or None.
    """
    from regionreasoner.core.world.exact import WorldSegmenter

    for obj in WorldSegmenter().segment(image):
        if (obj.kind, obj.colour) != (kind, colour):
            continue
        cx, cy = (obj.box.x1 + obj.box.x2) / 2, (obj.box.y1 + obj.box.y2) / 2
        if box.x1 <= cx <= box.x2 and box.y1 <= cy <= box.y2:
            return True, obj.box
    return False, None


def demo_dialogue() -> tuple[Scene, list[DemoTurn]]:
    """The demo scene (320x240 pixels) and its three turns (see the module docstring)."""
    scene = make_scene(DEMO_SEED, size=(320, 240), n_objects=(6, 8))
    by_language = {
        lang: make_dialogue(scene, seed=DEMO_SEED, n_turns=3, relation_share=1.0, language=lang)
        for lang in set(DEMO_LANGUAGES)
    }
    if any((o.kind, o.colour) == (DEMO_EDIT.kind, DEMO_EDIT.colour) for o in scene.objects):
        raise ConfigError("the demo scene already holds the object the edit paints", hint="choose another DEMO_SEED")
    english = by_language["en"]
    if len(english.turns) < 3:
        raise ConfigError("the demo scene holds fewer than three questions", hint="choose another DEMO_SEED")
    turns = []
    for k, lang in enumerate(DEMO_LANGUAGES):
        turn = by_language[lang].turns[k]
        obj = scene.object(turn.target)
        turns.append(
            DemoTurn(
                question=turn.question.replace(CONTEXT_PLACEHOLDER, "{cited}"),
                target=f"the {turn.expression}",
                box=obj.box,
                cites=turn.context_from_turn,
                language=lang,
            )
        )
    return scene, turns


def region_check(found: Box | None, target: Box) -> tuple[bool, float]:
    """``(right, IoU)`` of a found box (original pixels) against the target's; no box is wrong with IoU 0."""
    if found is None:
        return False, 0.0
    overlap = iou(found, target)
    return overlap >= HIT_IOU, overlap
