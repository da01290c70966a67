"""Request and response bodies of the HTTP API that are not the core types (Turn, Region, ... are served as is)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from regionreasoner.core.types import Dialogue, ImageVersion, Region, Turn

__all__ = [
    "AskRequest",
    "CreateDialogue",
    "DialogueList",
    "DialogueSummary",
    "ExportBundle",
    "InpaintRequest",
    "RegionList",
    "SpanOut",
    "ToolCallList",
    "ToolCallOut",
    "TraceOut",
    "TurnList",
    "VersionList",
]

_STRICT = ConfigDict(extra="forbid")


class CreateDialogue(BaseModel):
    """Start a dialogue about an image."""

    model_config = _STRICT

    image: str = Field(
        min_length=1,
        description="a data:image/...;base64 URL, a path under one of the server's image roots, or a stored hash",
    )
    title: str | None = Field(default=None, max_length=200)
    id: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$", description="default: random"
    )


class AskRequest(BaseModel):
    """One question of a turn."""

    model_config = _STRICT

    question: str = Field(min_length=1, max_length=20000, description="may name regions (R1) or boxes (bbox=[...])")
    key: str | None = Field(
        default=None, min_length=1, max_length=128, description="idempotency key: asking again with it replays"
    )


class InpaintRequest(BaseModel):
    """Repaint a region after a prompt (any of the six languages, or mixed)."""

    model_config = _STRICT

    region: str = Field(pattern=r"^R[1-9][0-9]{0,5}$", description="a region of the dialogue, e.g. R1")
    prompt: str = Field(min_length=1, max_length=2000)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)


class DialogueSummary(BaseModel):
    """A dialogue without its turns."""

    id: str
    title: str | None = None
    image: str = Field(description="hash of the image it started on")
    created_at: datetime
    turns: int = Field(ge=0)
    regions: int = Field(ge=0)

    @classmethod
    def of(cls, dialogue: Dialogue) -> DialogueSummary:
        """The summary of ``dialogue``."""
        return cls(
            id=dialogue.id,
            title=dialogue.title,
            image=dialogue.image,
            created_at=dialogue.created_at,
            turns=len(dialogue.turns),
            regions=len(dialogue.regions),
        )


class DialogueList(BaseModel):
    """The caller's dialogues, newest first."""

    dialogues: list[DialogueSummary]


class TurnList(BaseModel):
    """A dialogue's turns, first first."""

    turns: list[Turn]


class RegionList(BaseModel):
    """A dialogue's regions, R1 first; boxes and points in original pixels, masks COCO RLE."""

    regions: list[Region]


class VersionList(BaseModel):
    """A dialogue's image versions, 0 first."""

    versions: list[ImageVersion]


class SpanOut(BaseModel):
    """One span of a turn's trace (OpenTelemetry's JSON layout; times are Unix nanoseconds)."""

    model_config = ConfigDict(extra="allow")

    name: str
    context: dict[str, str | None]
    parent_id: str | None = None
    start_time_unix_nano: int | None = None
    end_time_unix_nano: int | None = None
    status: dict[str, str | None]
    attributes: dict[str, Any]
    events: list[dict[str, Any]] = Field(default_factory=list)


class TraceOut(BaseModel):
    """The spans of one turn's trace kept by this server process."""

    trace_id: str
    spans: list[SpanOut]


class ToolCallOut(BaseModel):
    """A tool call written in ``<think>`` and the response the agent appended."""

    name: str
    arguments: dict[str, Any]
    response: str | None = None
    crop: str | None = Field(default=None, description="URL of the zoomed crop, for zoom calls")


class ToolCallList(BaseModel):
    """A turn's tool calls in order."""

    calls: list[ToolCallOut]


class ExportBundle(BaseModel):
    """A whole dialogue in one download: turns, regions (masks RLE), versions and the traces this process kept."""

    dialogue: Dialogue
    regions: list[Region]
    versions: list[ImageVersion]
    traces: dict[str, list[SpanOut]]
