"""Short ground-truth traces for the embedded model: the four sections in as few tokens as they can be written.

The full traces (:func:`~regionreasoner.trainers.data.synthetic.trace_for`) are written for 7B models reading the
RegionReasoner prompt; a model of a few million parameters trained in an hour on two CPU cores needs every token to
count.  Each section keeps its job (docs/embedded-model.md):

* ``<scene>``: how many shapes, and each one's colour and kind, left to right ("5 shapes: red circle, ...");
* ``<focus>`` (relation rounds): what lies inside the cited box ("inside: blue square");
* ``<think>``: the target in English attribute words, whatever the question's language (so the model's reasoning
  normalises six languages to one), and in relation rounds the cited box exactly as the question writes it and
  the relation applied ("reference bbox=[12, 40, 30, 61], a blue square; target: the red circle to the left of it");
* ``<answer>``: the target's box and interior point, integers in the policy frame.
"""

from __future__ import annotations

from collections.abc import Sequence

from regionreasoner.core.citations import render_bbox
from regionreasoner.core.frames import Frame
from regionreasoner.core.protocol import format_action
from regionreasoner.core.world import CONTEXT_PLACEHOLDER, Scene, SceneObject, SyntheticDialogue, inner_point
from regionreasoner.trainers.data.records import Round, Target

__all__ = ["FOCUS_SHARE", "left_to_right", "objects_inside", "short_focus", "short_scene", "short_trace_for"]

FOCUS_SHARE = 0.5
"""An object other than the cited one is named in ``<focus>`` when this share of its visible pixels is in the box."""


def left_to_right(scene: Scene) -> list[SceneObject]:
    """The scene's objects by box centre, left to right (ties by draw order): the order ``<scene>`` names them."""
    return sorted(scene.objects, key=lambda o: (o.box.center.x, o.id))


def objects_inside(scene: Scene, cited: SceneObject) -> list[SceneObject]:
    """Objects other than ``cited`` with at least :data:`FOCUS_SHARE` of their visible pixels in its box."""
    x1, y1, x2, y2 = (int(v) for v in cited.box)
    return [
        o
        for o in scene.objects
        if o is not cited and o.area > 0 and int(o.mask[y1:y2, x1:x2].sum()) >= FOCUS_SHARE * o.area
    ]


def _name(obj: SceneObject) -> str:
    return f"{obj.colour} {obj.kind}"


def _listing(names: Sequence[str]) -> str:
    return ", ".join(names)


def short_scene(scene: Scene) -> str:
    """``"N shapes: colour kind, ..."``, left to right by box centre (ties by draw order)."""
    objects = left_to_right(scene)
    noun = "shape" if len(objects) == 1 else "shapes"
    return f"{len(objects)} {noun}: {_listing([_name(o) for o in objects])}"


def short_focus(scene: Scene, cited: SceneObject) -> str:
    """``"inside: colour kind, ..."``: the cited object, then others with half their visible pixels in its box."""
    return "inside: " + _listing([_name(o) for o in (cited, *objects_inside(scene, cited))])


def short_trace_for(dialogue: SyntheticDialogue, turn_index: int, frame: Frame) -> tuple[str, Round]:
    """The short trace and the :class:`Round` of turn ``turn_index`` (boxes in ``frame``).

    The round's question is the turn's, its cited box rendered as ``bbox=[...]`` of the cited turn's target.
    """
    scene, turn = dialogue.scene, dialogue.turns[turn_index]
    size = scene.size
    target = scene.object(turn.target)
    answer = Target(
        box=frame.box_to_model(target.box, size),
        point=frame.point_to_model(inner_point(target.mask), size),
        phrase=turn.expression,
    )
    if turn.context_from_turn is None or turn.relation is None:
        text = format_action(
            scene=short_scene(scene), think=f"target: the {turn.expression}", objects=[answer.to_answer()]
        )
        return text, Round(question=turn.question, targets=(answer,), trace=text)
    cited = dialogue.target(turn.context_from_turn)
    reference = frame.box_to_model(cited.box, size)
    ref = render_bbox(reference)
    think = f"reference {ref}, a {_name(cited)}; target: the {turn.expression} {turn.relation.phrase} it"
    text = format_action(
        scene=short_scene(scene), focus=short_focus(scene, cited), think=think, objects=[answer.to_answer()]
    )
    return text, Round(
        question=turn.question.replace(CONTEXT_PLACEHOLDER, ref),
        targets=(answer,),
        reference=reference,
        context_from_round=turn.context_from_turn,
        relation=turn.relation,
        trace=text,
    )
