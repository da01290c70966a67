"""Typed records of the training data: source samples, multi-round dialogues, and the rows a trainer reads.

Frames: a :class:`SourceSample` holds boxes and points in **pixels of its stored image** (floats, xyxy); a
:class:`Dialogue` and everything below it hold **integers in the policy's frame** (``Dialogue.frame``, by default
``fixed:840x840``), exactly as the prompt shows them and the answer JSON writes them.  The policy-frame image is the
stored image resized to ``frame.resized_image_size`` when the frame has one (840x840), else the stored image.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image

from regionreasoner.core.answer import AnswerObject
from regionreasoner.core.citations import render_bbox
from regionreasoner.core.frames import Frame
from regionreasoner.core.geometry import Box, Point
from regionreasoner.core.protocol import format_answer
from regionreasoner.core.relations import Relation

__all__ = [
    "Box4",
    "Dialogue",
    "FeedMode",
    "ImageInput",
    "Message",
    "Role",
    "Round",
    "Source",
    "SourceObject",
    "SourceSample",
    "Target",
    "TrainRecord",
]

Source = Literal["visionreasoner", "regionreasoner", "synthetic"]
"""Where samples come from: VisionReasoner-style single-turn samples, RegionReasoner's train JSON, the synthetic
world (:mod:`regionreasoner.core.world`)."""

FeedMode = Literal["official", "multiturn"]
"""How a dialogue is fed: ``official`` (each round an independent single-turn sample, the reference box written into
its question) or ``multiturn`` (earlier rounds' questions and answers kept as conversation messages)."""

Role = Literal["system", "user", "assistant"]

ImageInput = Path | Image.Image
"""An image file, or an image in memory (the synthetic world's)."""

Box4 = tuple[int, int, int, int]
"""xyxy integers in the policy's frame."""


@dataclass(frozen=True, kw_only=True)
class SourceObject:
    """One annotated object of a source sample, in pixels of the sample's stored image."""

    box: Box
    point: Point | None = None
    phrase: str | None = None
    """The words naming it, when the sample's problem names its objects one by one."""


@dataclass(frozen=True, kw_only=True, eq=False)
class SourceSample:
    """A sample as a loader read it: the problem, its objects, and the image they are annotated on."""

    id: str
    source: Source
    image: ImageInput
    image_size: tuple[int, int]
    """``(W, H)`` of the stored image, the pixels of every box and point here."""
    problem: str
    """The question as written (``"'a' and 'b'"``, or a RegionReasoner round with ``bbox=[...]``)."""
    objects: tuple[SourceObject, ...]
    original_size: tuple[int, int] | None = None
    """``(img_width, img_height)`` of the image before the source's offline resize, when the source records it."""
    dialogue_id: str | None = None
    """The dialogue this round belongs to, when the file says (the official JSON this package writes does)."""
    round: int = 0
    """0-based position in that dialogue."""


@dataclass(frozen=True, kw_only=True)
class Target:
    """One object a round asks for: its box and point as integers in the policy's frame."""

    box: Box4
    point: tuple[int, int] | None = None
    phrase: str | None = None

    def to_json(self) -> dict[str, list[int]]:
        """``{"bbox_2d": [...], "point_2d": [...]}`` (the point only when there is one)."""
        item = {"bbox_2d": list(self.box)}
        if self.point is not None:
            item["point_2d"] = list(self.point)
        return item

    def to_answer(self) -> AnswerObject:
        """The target as a parsed answer object (policy frame)."""
        point = None if self.point is None else (float(self.point[0]), float(self.point[1]))
        return AnswerObject(
            box=(float(self.box[0]), float(self.box[1]), float(self.box[2]), float(self.box[3])), point=point
        )


@dataclass(frozen=True, kw_only=True)
class Round:
    """One round of a dialogue (policy frame).

    ``question`` already carries the reference as ``bbox=[x1, y1, x2, y2]`` (the same integers as ``reference``), so
    it is the official single-turn ``problem``.  ``trace`` is the ground-truth assistant text (all four sections)
    when the source has one (the synthetic world), else None.
    """

    question: str
    targets: tuple[Target, ...]
    reference: Box4 | None = None
    """The cited box, as the question writes it."""
    context_from_round: int | None = None
    """0-based index of the earlier round whose target ``reference`` is (None: not an earlier round's box)."""
    relation: Relation | None = None
    """The relation "target REL reference" the question states."""
    trace: str | None = None

    def solution(self) -> str:
        """The official ``solution`` string: ``json.dumps`` of the targets' ``bbox_2d``/``point_2d`` list."""
        return json.dumps([t.to_json() for t in self.targets])

    def answer_text(self) -> str:
        """What the assistant said this round: the trace, or ``<answer>[...]</answer>`` when there is none."""
        if self.trace is not None:
            return self.trace
        return f"<answer>{format_answer([t.to_answer() for t in self.targets])}</answer>"

    @property
    def reference_text(self) -> str | None:
        """``bbox=[...]`` of the reference, as the question writes it."""
        return None if self.reference is None else render_bbox(self.reference)


@dataclass(frozen=True, kw_only=True, eq=False)
class Dialogue:
    """Rounds about one image, in the policy's ``frame``; ``image`` is already in the policy's image size."""

    id: str
    source: Source
    image: ImageInput
    image_size: tuple[int, int]
    """``(W, H)`` of ``image``."""
    frame: Frame
    rounds: tuple[Round, ...]
    original_size: tuple[int, int] | None = None
    """``(W, H)`` of the image the annotations were first made on (``img_width``/``img_height``)."""


@dataclass(frozen=True, kw_only=True)
class Message:
    """A chat message; ``image`` puts one image placeholder (``{"type": "image"}``) after ``lead``, before ``text``.

    ``lead`` is the text a template writes before its image (the embedded model's question-first template); it is
    empty for templates that open with the image, whose content stays ``[image, text]``.
    """

    role: Role
    text: str
    image: bool = False
    lead: str = ""

    def to_dict(self) -> dict[str, object]:
        """TRL's conversational form: ``{"role": ..., "content": [lead?, {"type": "image"}?, {"type": "text"}?]}``."""
        content: list[dict[str, str]] = [{"type": "text", "text": self.lead}] if self.lead else []
        if self.image:
            content.append({"type": "image"})
        if self.text or not content:  # no empty text block after a question-first image (the agent sends none)
            content.append({"type": "text", "text": self.text})
        return {"role": self.role, "content": content}


@dataclass(frozen=True, kw_only=True, eq=False)
class TrainRecord:
    """One training row: a round of a dialogue, fed in ``mode``.

    ``prompt`` is the conversation up to this round's question (one image placeholder, in the first user message);
    ``completion`` the ground-truth assistant message (None without a trace).  ``problem`` and ``solution`` are the
    official fields (the reward reads them); coordinates are in ``frame`` (a spec such as ``fixed:840x840``).
    """

    id: str
    dialogue_id: str
    round: int
    mode: FeedMode
    source: Source
    problem: str
    solution: str
    prompt: tuple[Message, ...]
    completion: tuple[Message, ...] | None
    image: ImageInput
    image_size: tuple[int, int]
    frame: str
    reference: Box4 | None = None
    context_from_round: int | None = None
    relation: Relation | None = None
    original_size: tuple[int, int] | None = None
