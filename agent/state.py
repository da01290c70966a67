"""The state of the turn graph.  A dialogue is a LangGraph thread; one invocation runs one turn.

State holds references, not pixels: the image is a content hash into the memory's image store, so checkpoints stay
small and JSON-safe.  Every field says which node writes it; all fields use LangGraph's default reducer (the last
write wins), and ``resolve`` resets every per-turn field at the start of a turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from regionreasoner.core.types import Citation, Problem, RegionDraft, Sections, Turn, Usage

__all__ = ["InputState", "OutputState", "State"]


@dataclass(kw_only=True)
class InputState:
    """What a caller sends for one turn."""

    question: str
    """The user's question. It may name earlier regions ("the cup next to R1") or give a box inline as
    ``bbox=[x1, y1, x2, y2]`` in original-image pixels.  Written by the caller."""

    image: str | None = None
    """The picture, needed on a dialogue's first turn (later: a new image version): a content hash already in the
    memory, a ``data:image/...;base64,`` URL, or a path under ``$REGIONREASONER_IMAGE_ROOT``.  Written by the caller."""

    key: str | None = None
    """Idempotency key of the turn (storing the same key twice is a no-op); None: resolve makes one."""


@dataclass(kw_only=True)
class OutputState:
    """What an invocation returns."""

    turn: Turn | None = None
    """The stored turn (regions named R1, R2, ..., sections, citations, status, usage). Written by remember."""

    dialogue_id: str = ""
    """The dialogue (= thread id). Written by resolve."""


@dataclass(kw_only=True)
class State(InputState, OutputState):
    """The full state of a turn in progress."""

    image_hash: str = ""
    """Content hash of the image version this turn runs on. Written by resolve."""

    turn_key: str = ""
    """The turn's idempotency key (``key`` or a fresh one); also keys its trace span. Written by resolve."""

    rendered_question: str = ""
    """The question with region names and inline boxes rendered as ``bbox=[...]`` in the policy's frame. resolve."""

    referenced: list[str] = field(default_factory=list)
    """Region ids the question names, in order of mention. Written by resolve."""

    references: dict[str, list[int]] = field(default_factory=dict)
    """Policy-frame boxes the question cites: region ids, and ``inline:<i>`` for inline boxes. Written by resolve."""

    sections: list[str] = field(default_factory=list)
    """The sections this turn writes, in order (``focus`` only when something is cited). Written by resolve."""

    frame: str = ""
    """Frame spec of the policy. Written by resolve."""

    bounds: list[int] = field(default_factory=list)
    """Extent ``[Mw, Mh]`` of the policy's frame for this image. Written by resolve."""

    prompt: str = ""
    """The rendered user prompt (template + rendered question). Written by resolve."""

    text: str = ""
    """The assistant message so far; each section node appends its piece, tools append their responses."""

    finish: str = ""
    """Finish reason of the last piece (stop, length, eos, constraint). Written by the section nodes."""

    tool_calls: int = 0
    """Tool calls made in this turn (bounded by the context's max_tool_iterations). Written by tools."""

    problems: list[Problem] = field(default_factory=list)
    """Problems found so far (truncation, tool errors, parse problems). Written by section nodes and answer."""

    usage: Usage = field(default_factory=Usage)
    """Token and time accounting summed over the turn's model calls. Written by the section nodes."""

    regions: list[RegionDraft] = field(default_factory=list)
    """Regions of the answer in original pixels (masks added by ground). Written by answer and ground."""

    citations: list[Citation] = field(default_factory=list)
    """Boxes cited in <think>, checked against the references. Written by answer."""

    parsed_sections: Sections = field(default_factory=Sections)
    """The inner text of each section of the finished message. Written by answer."""

    status: str = "ok"
    """``ok`` or ``failed`` (the answer is missing or has errors). Written by answer."""
