"""The data that crosses module boundaries: regions, turns, dialogues, problems (pydantic v2).

Frames: every box and point in these types is in **original-image pixels** (continuous xyxy, after EXIF
transpose), except :attr:`Citation.model_box`, which is what the model wrote, in its own frame.  Turn indices are
0-based (the first turn of a dialogue has ``index == 0``); region ids are 1-based per dialogue (``R1``, ``R2``, ...).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, TypeGuard

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from regionreasoner.core.errors import InputError
from regionreasoner.core.geometry import Box, Point, as_box, as_point
from regionreasoner.core.masks import Rle

__all__ = [
    "IMAGE_HASH_PATTERN",
    "REGION_ID_PATTERN",
    "Citation",
    "Dialogue",
    "ImageInfo",
    "ImageVersion",
    "Problem",
    "ProblemKind",
    "Region",
    "RegionDraft",
    "Sections",
    "Severity",
    "Turn",
    "TurnDraft",
    "TurnStatus",
    "Usage",
    "VersionDraft",
    "check_image_hash",
    "is_image_hash",
    "region_number",
]

REGION_ID_PATTERN = re.compile(r"^R([1-9][0-9]*)$")
"""A region id: ``R`` followed by a positive integer without leading zeros."""

IMAGE_HASH_PATTERN = re.compile(r"[0-9a-f]{64}")
"""An image content hash: the sha256 hex digest of :func:`regionreasoner.core.images.image_hash`."""


def is_image_hash(value: object) -> TypeGuard[str]:
    """True when ``value`` is a string of 64 lowercase hex digits."""
    return isinstance(value, str) and IMAGE_HASH_PATTERN.fullmatch(value) is not None


def check_image_hash(value: str) -> str:
    """Return ``value`` if it is an image hash, else raise InputError naming the rule."""
    if not is_image_hash(value):
        raise InputError(
            f"{value!r} is not an image hash",
            hint="an image hash is 64 lowercase hex digits (sha256), as returned by put_image()",
        )
    return value


def region_number(region_id: str) -> int:
    """The integer of a region id (``"R12"`` -> 12); raises ValueError for anything else."""
    m = REGION_ID_PATTERN.match(region_id)
    if m is None:
        raise ValueError(f"{region_id!r} is not a region id: use R1, R2, ...")
    return int(m.group(1))


def _check_region_id(value: str) -> str:
    region_number(value)
    return value


def _check_hash(value: str) -> str:
    if not is_image_hash(value):
        raise ValueError(f"{value!r} is not an image hash: expected 64 lowercase hex digits (sha256)")
    return value


def _check_finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value}")
    return value


RegionId = Annotated[str, AfterValidator(_check_region_id)]
ImageHash = Annotated[str, AfterValidator(_check_hash)]
ValidBox = Annotated[Box, AfterValidator(as_box)]
ValidPoint = Annotated[Point, AfterValidator(as_point)]
FiniteFloat = Annotated[float, AfterValidator(_check_finite)]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class TurnStatus(StrEnum):
    """Outcome of a turn. ``failed``: the policy produced no usable answer (see the turn's problems)."""

    OK = "ok"
    FAILED = "failed"


class Severity(StrEnum):
    """``error`` makes the turn fail; ``warning`` is recorded and the turn still counts."""

    ERROR = "error"
    WARNING = "warning"


class ProblemKind(StrEnum):
    """What was wrong with a policy output (see :func:`regionreasoner.core.protocol.parse_action`)."""

    MISSING_TAG = "missing_tag"
    DUPLICATED_TAG = "duplicated_tag"
    UNCLOSED_TAG = "unclosed_tag"
    OUT_OF_ORDER_TAG = "out_of_order_tag"
    UNEXPECTED_TAG = "unexpected_tag"
    TEXT_OUTSIDE_TAGS = "text_outside_tags"
    INVALID_JSON = "invalid_json"
    TRAILING_TEXT = "trailing_text"
    NOT_A_LIST = "not_a_list"
    NOT_AN_OBJECT = "not_an_object"
    EMPTY_ANSWER = "empty_answer"
    MISSING_KEY = "missing_key"
    WRONG_ARITY = "wrong_arity"
    NOT_A_NUMBER = "not_a_number"
    NON_FINITE = "non_finite"
    NEGATIVE = "negative"
    OUT_OF_FRAME = "out_of_frame"
    INVERTED = "inverted"
    TOO_MANY_OBJECTS = "too_many_objects"
    POINT_OUTSIDE_BOX = "point_outside_box"
    HALLUCINATED_CITATION = "hallucinated_citation"
    MISSING_CITATION = "missing_citation"
    CITES_FAILED_TURN = "cites_failed_turn"
    TOOL_ERROR = "tool_error"
    TRUNCATED = "truncated"
    INVALID_TEXT = "invalid_text"
    POLICY_FAULT = "policy_fault"


class Problem(BaseModel):
    """One thing wrong with a policy output, with where it was found."""

    model_config = _FROZEN

    kind: ProblemKind
    severity: Severity
    message: str
    section: str | None = Field(default=None, description="tag name the problem is in (scene, focus, think, answer)")
    index: int | None = Field(default=None, description="0-based answer object index, for per-object problems")


class Sections(BaseModel):
    """The four sections of a turn, as the inner text of each tag (stripped), or None when absent."""

    model_config = _FROZEN

    scene: str | None = None
    focus: str | None = None
    think: str | None = None
    answer: str | None = None


class Usage(BaseModel):
    """Token and time accounting of a turn (summed over its model calls)."""

    model_config = _FROZEN

    prompt_tokens: int = Field(default=0, ge=0, description="prompt tokens sent, image tokens included")
    cached_tokens: int = Field(default=0, ge=0, description="prompt tokens served from a KV or prefix cache")
    generated_tokens: int = Field(default=0, ge=0)
    model_calls: int = Field(default=0, ge=0)
    latency_ms: float = Field(default=0.0, ge=0.0, description="wall time of the model calls, milliseconds")

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            generated_tokens=self.generated_tokens + other.generated_tokens,
            model_calls=self.model_calls + other.model_calls,
            latency_ms=self.latency_ms + other.latency_ms,
        )


class RegionDraft(BaseModel):
    """A region found by a turn before memory names it (original pixels)."""

    model_config = _FROZEN

    box: ValidBox
    point: ValidPoint | None = None
    mask: Rle | None = Field(default=None, description="COCO RLE of the mask, same size as the image")
    label: str | None = None
    score: FiniteFloat | None = None


class Region(RegionDraft):
    """A named region of a dialogue (R1, R2, ...), in original pixels of image ``image``."""

    id: RegionId
    dialogue_id: str
    turn: int = Field(ge=0, description="0-based index of the turn that found it")
    image: ImageHash


class Citation(BaseModel):
    """A box cited in the <think> section, checked against the regions the question referenced."""

    model_config = _FROZEN

    model_box: tuple[float, float, float, float] = Field(description="as written by the model, in its frame")
    box: ValidBox = Field(description="the same box in original pixels")
    region: RegionId | None = Field(default=None, description="the referenced region it matches, if any")
    verified: bool = Field(description="True when it equals the rendered box of a referenced region exactly")


class VersionDraft(BaseModel):
    """An image version a tool made during a turn, before memory numbers it.

    ``generate`` makes one without a parent; ``inpaint`` edits the current image (its ``parent``) at ``region``.
    """

    model_config = _FROZEN

    image: ImageHash = Field(description="the new image (stored with put_image first)")
    parent: ImageHash | None = Field(default=None, description="the image it was edited from; None: made anew")
    tool: str = Field(min_length=1, max_length=64, description="the tool that made it ('generate', 'inpaint')")
    prompt: str | None = Field(default=None, description="the prompt it was made from, as the policy wrote it")
    region: RegionId | None = Field(default=None, description="the region it edited (inpaint)")


class ImageVersion(BaseModel):
    """Version ``number`` of a dialogue's image: 0 is the image it started on, then one per new image, in order.

    A version comes from a tool (``tool`` set: ``generate``, ``inpaint``), from the caller sending another image with
    a turn (``tool`` None, ``turn`` set), or is the starting image (``number`` 0, ``turn`` None).
    """

    model_config = _FROZEN

    number: int = Field(ge=0)
    dialogue_id: str
    image: ImageHash
    parent: ImageHash | None = Field(default=None, description="the image it was edited from, if any")
    turn: int | None = Field(default=None, ge=0, description="0-based index of the turn that made it, if any")
    tool: str | None = Field(default=None, description="the tool that made it; None for a starting or sent image")
    prompt: str | None = None
    region: RegionId | None = Field(default=None, description="the region it edited (inpaint)")
    created_at: datetime


class _TurnCommon(BaseModel):
    """Fields shared by a turn before and after it is stored."""

    model_config = _FROZEN

    question: str = Field(description="the user's question as typed (may name regions: 'next to R1')")
    rendered_question: str = Field(description="the question the policy saw, regions rendered as bbox=[...]")
    image: ImageHash = Field(description="the image version the turn ran on")
    frame: str = Field(description="frame spec of the policy (see core.frames.frame_from_spec)")
    sections: Sections = Sections()
    raw_text: str = Field(default="", description="the whole assistant message as generated")
    referenced: list[RegionId] = Field(default_factory=list, description="regions the question cited")
    citations: list[Citation] = Field(default_factory=list)
    status: TurnStatus = TurnStatus.OK
    problems: list[Problem] = Field(default_factory=list)
    usage: Usage = Usage()
    model: str | None = Field(default=None, description="model name or path of the policy")
    trace_id: str | None = Field(default=None, description="OpenTelemetry trace id (32 hex digits)")
    key: str | None = Field(default=None, description="idempotency key: storing a draft twice under it is a no-op")


class TurnDraft(_TurnCommon):
    """Everything a turn produced, before memory assigns region ids and stores it."""

    regions: list[RegionDraft] = Field(default_factory=list, description="new regions, in answer order")
    versions: list[VersionDraft] = Field(default_factory=list, description="image versions its tools made, in order")
    index: int | None = Field(default=None, ge=0, description="explicit turn index; None appends after the last")


class Turn(_TurnCommon):
    """A stored turn: its index in the dialogue and the regions it found, named."""

    index: int = Field(ge=0)
    dialogue_id: str
    regions: list[Region] = Field(default_factory=list)
    versions: list[ImageVersion] = Field(
        default_factory=list, description="image versions its tools made, in order (the next turn runs on the last)"
    )
    created_at: datetime


class ImageInfo(BaseModel):
    """A stored image version: content hash, size, and the image it was edited from, if any."""

    model_config = _FROZEN

    hash: ImageHash
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    parent: ImageHash | None = None
    created_at: datetime | None = None


class Dialogue(BaseModel):
    """A dialogue about one image: its turns in order and every region they found."""

    model_config = _FROZEN

    id: str
    image: ImageHash = Field(description="the image the dialogue started on")
    created_at: datetime
    title: str | None = None
    owner: str | None = Field(
        default=None,
        description="who may read and write it: a principal name the server derives from an auth token; "
        "None: no owner (in-process use)",
    )
    turns: list[Turn] = Field(default_factory=list)

    @property
    def regions(self) -> list[Region]:
        """All regions of the dialogue, R1 first."""
        return [r for t in self.turns for r in t.regions]
