"""Multi-round dialogues from grounding samples: decompose multi-object problems, chain RegionReasoner rounds.

:func:`decompose` turns a VisionReasoner-style sample with N named objects (``"'a' and 'b'"``) into N rounds:
round 1 asks for the first object; round k cites an earlier round's box as ``bbox=[x1, y1, x2, y2]`` with the
relation word that holds between the two boxes (:func:`choose_relation`).  Boxes are converted to the policy's
frame first (``frame.box_to_model``, integers), and the relation is computed on those integers, so the stated
relation holds for the numbers the prompt shows.  The reference is the previous round's box; when no relation of
:data:`RELATION_PRIORITY` holds, earlier rounds are tried, and when none works the round is asked without one.

:func:`chain_rounds` groups RegionReasoner train samples (already one round each) into dialogues: a sample whose
``bbox=[...]`` equals a target box of another sample on the same image follows that sample.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from regionreasoner.core.citations import find_question_boxes, render_bbox, render_question
from regionreasoner.core.frames import Frame
from regionreasoner.core.geometry import Box
from regionreasoner.core.relations import DEFAULT_TOLERANCES, Relation, Tolerances, find_relations, holds
from regionreasoner.trainers.data.records import Box4, Dialogue, Round, SourceSample, Target

__all__ = [
    "RELATION_PRIORITY",
    "chain_rounds",
    "choose_relation",
    "decompose",
    "later_question",
    "policy_targets",
]

RELATION_PRIORITY: tuple[Relation, ...] = (
    Relation.INSIDE,
    Relation.TOUCHING,
    Relation.OVERLAPPING,
    Relation.NEXT_TO,
    Relation.ABOVE,
    Relation.BELOW,
    Relation.LEFT_OF,
    Relation.RIGHT_OF,
)
"""The relation words of the RegionReasoner training prompt and talk (reference §7), most specific first: the first
that holds is the one a question states.  "near" is left out (it is not in that vocabulary)."""


def choose_relation(
    target: Sequence[float], reference: Sequence[float], tol: Tolerances = DEFAULT_TOLERANCES
) -> Relation | None:
    """The first relation of :data:`RELATION_PRIORITY` such that "target REL reference" holds, or None.

    Both boxes are xyxy in one frame (the policy's).

    >>> choose_relation((0, 0, 10, 10), (14, 0, 24, 10))
    <Relation.NEXT_TO: 'next_to'>
    >>> choose_relation((2, 2, 4, 4), (0, 0, 10, 10))
    <Relation.INSIDE: 'inside'>
    """
    a, b = Box(*(float(v) for v in target)), Box(*(float(v) for v in reference))
    return next((r for r in RELATION_PRIORITY if holds(r, a, b, tol)), None)


def later_question(phrase: str, relation: Relation | None, reference: Box4 | None) -> str:
    """The question of a later round: ``"Also find the standing dog, next to bbox=[0, 457, 374, 672]."``.

    Without a relation: ``"Also find the standing dog."`` (the talk's example, reference §7).
    """
    if relation is None or reference is None:
        return f"Also find {phrase}."
    return f"Also find {phrase}, {relation.phrase} {render_bbox(reference)}."


def policy_targets(sample: SourceSample, frame: Frame) -> tuple[Target, ...]:
    """The sample's objects as integers in ``frame`` (boxes and points from stored-image pixels)."""
    out = []
    for obj in sample.objects:
        point = None if obj.point is None else frame.point_to_model(obj.point, sample.image_size)
        out.append(Target(box=frame.box_to_model(obj.box, sample.image_size), point=point, phrase=obj.phrase))
    return tuple(out)


def _policy_size(sample: SourceSample, frame: Frame) -> tuple[int, int]:
    return frame.resized_image_size(sample.image_size) or sample.image_size


def decompose(sample: SourceSample, frame: Frame, *, tol: Tolerances = DEFAULT_TOLERANCES) -> Dialogue:
    """One dialogue from a sample: one round per named object, or a single round when the objects are not named.

    A sample whose problem does not name its objects one by one (one phrase for several boxes, or counts that do not
    match) stays one round with its problem and every object, as VisionReasoner trains it.
    """
    targets = policy_targets(sample, frame)
    rounds: list[Round] = []
    if len(targets) == 1 or any(t.phrase is None for t in targets):
        rounds.append(Round(question=sample.problem, targets=targets))
    else:
        for k, target in enumerate(targets):
            phrase = target.phrase or ""
            if k == 0:
                rounds.append(Round(question=phrase, targets=(target,)))
                continue
            cited, relation = None, None
            for j in range(k - 1, -1, -1):
                relation = choose_relation(target.box, targets[j].box, tol)
                if relation is not None:
                    cited = j
                    break
            reference = None if cited is None else targets[cited].box
            rounds.append(
                Round(
                    question=later_question(phrase, relation, reference),
                    targets=(target,),
                    reference=reference,
                    context_from_round=cited,
                    relation=relation,
                )
            )
    return Dialogue(
        id=sample.id,
        source=sample.source,
        image=sample.image,
        image_size=_policy_size(sample, frame),
        frame=frame,
        rounds=tuple(rounds),
        original_size=sample.original_size or sample.image_size,
    )


def _round_of(sample: SourceSample, frame: Frame) -> Round:
    """A RegionReasoner sample as a round: its inline boxes re-rendered in ``frame``, its stated relation."""
    inline = [frame.box_to_model(Box(*qb.coords), sample.image_size) for qb in find_question_boxes(sample.problem)]
    question = render_question(sample.problem, {}, inline) if inline else sample.problem
    relations = [r for r in find_relations(sample.problem) if r in RELATION_PRIORITY]
    return Round(
        question=question,
        targets=policy_targets(sample, frame),
        reference=inline[0] if inline else None,
        relation=relations[0] if relations else None,
    )


def _image_key(sample: SourceSample) -> str:
    return str(sample.image) if isinstance(sample.image, Path) else f"memory:{id(sample.image)}"


def chain_rounds(samples: Iterable[SourceSample], frame: Frame) -> list[Dialogue]:
    """Group one-round samples into dialogues.

    Samples with a ``dialogue_id`` (the official JSON this package writes) form that dialogue, ordered by ``round``.
    Others are grouped by image: a sample follows the first other sample on its image whose solution holds its first
    ``bbox=[...]`` (compared as integers in ``frame``), and samples that follow none start a dialogue; rounds keep
    file order within a dialogue, parents first.  A round's ``context_from_round`` is the round whose target its
    reference is.  In official mode the grouping changes nothing (each round is fed alone).
    """
    groups: dict[str, list[SourceSample]] = {}
    for sample in samples:
        key = f"dialogue:{sample.dialogue_id}" if sample.dialogue_id is not None else f"image:{_image_key(sample)}"
        groups.setdefault(key, []).append(sample)
    dialogues: list[Dialogue] = []
    for key, group in groups.items():
        if key.startswith("dialogue:"):
            ordered = sorted(group, key=lambda s: s.round)
            dialogues.append(_dialogue(ordered, [_round_of(s, frame) for s in ordered], frame))
            continue
        rounds = [_round_of(s, frame) for s in group]
        parent: dict[int, int] = {}
        for i, r in enumerate(rounds):
            if r.reference is None:
                continue
            for j, other in enumerate(rounds):
                if j != i and any(t.box == r.reference for t in other.targets) and not _reaches(parent, j, i):
                    parent[i] = j
                    break
        for root in (i for i in range(len(group)) if i not in parent):
            members = _descendants(root, parent)
            dialogues.append(_dialogue([group[m] for m in members], [rounds[m] for m in members], frame))
    return dialogues


def _dialogue(samples: Sequence[SourceSample], rounds: Sequence[Round], frame: Frame) -> Dialogue:
    """One dialogue of ``rounds`` (in order); each cites the latest earlier round whose target is its reference."""
    chained = []
    for k, r in enumerate(rounds):
        cited = next(
            (
                j
                for j in range(k - 1, -1, -1)
                if r.reference is not None and r.reference in [t.box for t in rounds[j].targets]
            ),
            None,
        )
        chained.append(
            Round(
                question=r.question,
                targets=r.targets,
                reference=r.reference,
                context_from_round=cited,
                relation=r.relation,
            )
        )
    first = samples[0]
    return Dialogue(
        id=first.dialogue_id or first.id,
        source=first.source,
        image=first.image,
        image_size=_policy_size(first, frame),
        frame=frame,
        rounds=tuple(chained),
        original_size=first.original_size or first.image_size,
    )


def _reaches(parent: dict[int, int], start: int, goal: int) -> bool:
    """True when following parents from ``start`` meets ``goal`` (linking ``goal`` under ``start`` makes a cycle)."""
    node: int | None = start
    while node is not None:
        if node == goal:
            return True
        node = parent.get(node)
    return False


def _descendants(root: int, parent: dict[int, int]) -> list[int]:
    """``root`` and every sample under it, parents before children, file order among siblings."""
    out = [root]
    for node in out:
        out.extend(sorted(child for child, p in parent.items() if p == node))
    return out
