"""Training dialogues from the synthetic world (:mod:`regionreasoner.core.world`), with ground-truth traces.

Each round's trace is a complete assistant turn (:func:`~regionreasoner.core.protocol.format_action`):

* ``<scene>`` names every object present ("The image shows 5 shapes on a light grey background: a small red
  striped circle, ...", left to right);
* ``<focus>`` (relation rounds only) says what lies inside the cited region: the cited object and any other object
  with at least half of its visible pixels inside the box; it does not name the target;
* ``<think>`` cites the reference exactly as the question writes it (``bbox=[...]``, policy frame), states the
  relation it applies ("target is to the left of the reference"), compares the look-alikes and names the target;
* ``<answer>`` holds the target's box (tight box of its visible mask) and an interior point
  (:func:`~regionreasoner.core.world.inner_point`), integers in the policy frame.

The world's ``<box>{context_bbox}</box>`` placeholder is replaced by ``bbox=[...]`` of the cited round's target box in
the policy frame.  Everything is a pure function of the seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from regionreasoner.core.citations import render_bbox
from regionreasoner.core.errors import ConfigError
from regionreasoner.core.frames import Frame
from regionreasoner.core.protocol import format_action
from regionreasoner.core.relations import holds
from regionreasoner.core.world import (
    CONTEXT_PLACEHOLDER,
    Scene,
    SceneObject,
    SyntheticDialogue,
    describe,
    inner_point,
    make_dialogue,
    make_scene,
)
from regionreasoner.trainers.data.records import Dialogue, Round, Target
from regionreasoner.trainers.data.short_traces import FOCUS_SHARE, left_to_right, objects_inside, short_trace_for

__all__ = [
    "FOCUS_SHARE",
    "TRACE_STYLES",
    "TraceStyle",
    "build_synthetic",
    "focus_text",
    "scene_text",
    "synthetic_dialogue",
    "trace_for",
]


def _a(words: str) -> str:
    return ("an " if words[:1] in "aeiou" else "a ") + words


def _listing(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def scene_text(scene: Scene) -> str:
    """The ``<scene>`` text: how many shapes, and each one's full description, left to right."""
    names = [_a(describe(o)) for o in left_to_right(scene)]
    noun = "shape" if len(names) == 1 else "shapes"
    return f"The image shows {len(names)} {noun} on a light grey background: {_listing(names)}."


def focus_text(scene: Scene, cited: SceneObject) -> str:
    """The ``<focus>`` text: what is visible inside the cited object's box (original pixels)."""
    names = [_a(describe(o)) for o in (cited, *objects_inside(scene, cited))]
    return f"Inside the reference region there is {_listing(names)}."


def trace_for(dialogue: SyntheticDialogue, turn_index: int, frame: Frame) -> tuple[str, Round]:
    """The ground-truth trace and the :class:`Round` of turn ``turn_index`` (policy frame)."""
    scene, turn = dialogue.scene, dialogue.turns[turn_index]
    size = scene.size
    target = scene.object(turn.target)
    box = frame.box_to_model(target.box, size)
    answer = Target(box=box, point=frame.point_to_model(inner_point(target.mask), size), phrase=turn.expression)
    full = describe(target)
    lookalikes = [o for o in scene.objects if o is not target and _shares_words(o, turn.expression)]
    if turn.context_from_turn is None or turn.relation is None:
        think = (
            f"The question asks for the {turn.expression}. Comparing the shapes in the image, "
            f"the {full} is the only one that matches, so it is the target."
        )
        text = format_action(scene=scene_text(scene), think=think, objects=[answer.to_answer()])
        return text, Round(question=turn.question, targets=(answer,), trace=text)
    cited = dialogue.target(turn.context_from_turn)
    reference = frame.box_to_model(cited.box, size)
    ref = render_bbox(reference)
    rel = turn.relation.phrase
    others = [o for o in lookalikes if not holds(turn.relation, o.box, cited.box)]
    compare = (
        f" The {_listing([describe(o) for o in others])} also {'match' if len(others) > 1 else 'matches'} the words"
        f" but {'are' if len(others) > 1 else 'is'} not {rel} the reference."
        if others
        else ""
    )
    think = (
        f"The reference box is {ref}, which holds the {describe(cited)}. The question asks for the "
        f"{turn.expression} {rel} it, so I apply the relation 'target is {rel} the reference' and search the "
        f"scene around {ref}.{compare} The {full} is {rel} the reference, so it is the target."
    )
    text = format_action(
        scene=scene_text(scene), focus=focus_text(scene, cited), think=think, objects=[answer.to_answer()]
    )
    question = turn.question.replace(CONTEXT_PLACEHOLDER, ref)
    return text, Round(
        question=question,
        targets=(answer,),
        reference=reference,
        context_from_round=turn.context_from_turn,
        relation=turn.relation,
        trace=text,
    )


def _shares_words(obj: SceneObject, expression: str) -> bool:
    """True when every attribute word of ``expression`` (position words aside) describes ``obj``."""
    words = set(describe(obj).split())
    named = [w for w in expression.split() if w not in ("leftmost", "rightmost", "topmost", "lowest")]
    return all(w in words for w in named)


TraceStyle = Literal["full", "short"]
"""``full``: the traces above (for the RegionReasoner prompt); ``short``: the embedded model's
(:mod:`~regionreasoner.trainers.data.short_traces`)."""

TRACE_STYLES: tuple[TraceStyle, ...] = ("full", "short")


def synthetic_dialogue(
    dialogue: SyntheticDialogue, frame: Frame, dialogue_id: str, *, style: TraceStyle = "full"
) -> Dialogue:
    """A world dialogue as a training :class:`Dialogue` with a trace of ``style`` on every round."""
    if style not in TRACE_STYLES:
        raise ConfigError(f"unknown trace style {style!r}", hint=f"use one of {list(TRACE_STYLES)}")
    trace = short_trace_for if style == "short" else trace_for
    rounds = tuple(trace(dialogue, k, frame)[1] for k in range(len(dialogue.turns)))
    size = dialogue.scene.size
    return Dialogue(
        id=dialogue_id,
        source="synthetic",
        image=dialogue.scene.image,
        image_size=frame.resized_image_size(size) or size,
        frame=frame,
        rounds=rounds,
        original_size=size,
    )


def build_synthetic(
    count: int,
    seed: int,
    frame: Frame,
    *,
    size: tuple[int, int] | Sequence[tuple[int, int]] = (320, 240),
    rounds: tuple[int, int] = (2, 5),
    relation_share: float = 0.6,
    style: TraceStyle = "full",
    language: str = "en",
) -> list[Dialogue]:
    """``count`` dialogues of ``rounds = (min, max)`` turns on ``size = (W, H)`` scenes; ids ``synthetic_<seed>_<i>``.

    ``size`` may be a list of sizes: dialogue ``i`` uses ``size[i % len(size)]`` (varied canvases).  Questions are in
    ``language`` (a language of :data:`~regionreasoner.core.world.LANGUAGES`, ``mix`` or ``any``,
    see :func:`~regionreasoner.core.world.make_dialogue`); traces are of ``style``.  A scene that cannot hold the
    drawn number of turns is redrawn (up to 50 times), as the benchmark writer does.
    """
    lo, hi = rounds
    sizes = _sizes(size)
    if count < 1:
        raise ConfigError(f"count={count}: use at least 1")
    if not 1 <= lo <= hi <= 12:
        raise ConfigError(f"rounds={rounds}: use 1 <= min <= max <= 12")
    return [
        synthetic_dialogue(
            _world_dialogue(seed, i, sizes[i % len(sizes)], lo, hi, relation_share, language),
            frame,
            f"synthetic_{seed}_{i}",
            style=style,
        )
        for i in range(count)
    ]


def _sizes(size: tuple[int, int] | Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """One ``(W, H)`` or a list of them, as a list."""
    if len(size) == 2 and all(isinstance(v, int) for v in size):
        return [(int(size[0]), int(size[1]))]  # type: ignore[arg-type]
    return [(int(w), int(h)) for w, h in size]  # type: ignore[misc]


def _world_dialogue(
    seed: int, index: int, size: tuple[int, int], lo: int, hi: int, relation_share: float, language: str = "en"
) -> SyntheticDialogue:
    for attempt in range(50):
        rng = np.random.default_rng([seed, index, attempt, 7])
        n_turns = int(rng.integers(lo, hi + 1))
        n_objects = (max(4, n_turns + 1), min(24, max(8, n_turns + 4)))
        scene = make_scene((seed, index, attempt, 7), size=size, n_objects=n_objects)
        dialogue = make_dialogue(
            scene, seed=(seed, index, attempt, 8), n_turns=n_turns, relation_share=relation_share, language=language
        )
        if len(dialogue.turns) == n_turns:
            return dialogue
    raise ConfigError(
        f"could not build a {lo}..{hi}-turn dialogue for scene {index} in 50 attempts",
        hint="use fewer rounds or a larger image size",
    )
