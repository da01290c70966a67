"""The state of the turn graph.  A dialogue is a LangGraph thread; one invocation runs one turn.

State holds references, not pixels: the image is a content hash into the memory's image store, so checkpoints stay
small and JSON-safe.  Every field says which node writes it; all fields use LangGraph's default reducer (the last
write wins).

Everything one turn writes before ``remember`` stores it lives in ONE typed value, :class:`TurnWork`
(``State.work``): ``resolve`` puts a fresh one there, the other nodes return an updated copy
(``dataclasses.replace``), so nothing of the previous turn can leak into the next one and no node resets fields by
hand.  Every node returns a :class:`TurnUpdate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypedDict

from regionreasoner.core.citations import Reference
from regionreasoner.core.types import Citation, Problem, RegionDraft, Sections, Turn, TurnStatus, Usage
from regionreasoner.policies.base import FinishReason

__all__ = ["BROKEN_FINISH", "InputState", "OutputState", "SectionTag", "State", "TurnUpdate", "TurnWork"]

SectionTag = Literal["scene", "focus", "think", "answer"]
"""A section of the structured action, in the order a turn writes them."""

BROKEN_FINISH: frozenset[FinishReason] = frozenset({"length", "eos"})
"""Finish reasons after which no further piece of the turn is generated (the parser records what is missing)."""


@dataclass(frozen=True, kw_only=True)
class TurnWork:
    """The turn in progress: what resolve prepared and what the section nodes and answer wrote so far.

    Immutable: a node returns ``dataclasses.replace(state.work, ...)``.  Sequences are tuples; a checkpoint restores
    them as lists, which ``__post_init__`` turns back into tuples (so every reader sees one type).
    """

    key: str = ""
    """The turn's idempotency key (the caller's ``key`` or a fresh one); also keys its trace span. resolve."""

    image_hash: str = ""
    """Content hash of the image version the turn runs on. resolve."""

    frame: str = ""
    """Frame spec of the policy (``core.frames.frame_from_spec``). resolve."""

    bounds: tuple[int, int] = (0, 0)
    """Extent ``(Mw, Mh)`` of the policy's frame for this image. resolve."""

    references: tuple[Reference, ...] = ()
    """The boxes the question cites (stored regions by name, inline boxes by index), in the policy's frame. resolve."""

    sections: tuple[SectionTag, ...] = ()
    """The sections this turn writes, in order (``focus`` only when something is cited). resolve."""

    rendered_question: str = ""
    """The question with region names and inline boxes rendered as ``bbox=[...]`` in the policy's frame. resolve."""

    prompt: str = ""
    """The rendered user prompt (template + rendered question). resolve."""

    text: str = ""
    """The assistant message so far; each section node appends its piece, tools append their responses."""

    finish: FinishReason | None = None
    """Finish reason of the last piece (None before the first). Section nodes, answer, tools."""

    tool_calls: int = 0
    """Tool calls made in this turn (bounded by the context's max_tool_iterations). tools."""

    problems: tuple[Problem, ...] = ()
    """Problems found so far (truncation, tool errors, parse problems). Section nodes, tools, answer."""

    usage: Usage = field(default_factory=Usage)
    """Token and time accounting summed over the turn's model calls. Section nodes, answer."""

    regions: tuple[RegionDraft, ...] = ()
    """Regions of the answer in original pixels (masks added by ground). answer, ground."""

    citations: tuple[Citation, ...] = ()
    """Boxes cited in <think>, checked against the references. answer."""

    parsed: Sections = field(default_factory=Sections)
    """The inner text of each section of the finished message. answer."""

    status: TurnStatus = TurnStatus.OK
    """``ok``, or ``failed`` when the answer is missing or has errors. answer."""

    def __post_init__(self) -> None:
        for name in ("bounds", "references", "sections", "problems", "regions", "citations"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        if not isinstance(self.status, TurnStatus):
            object.__setattr__(self, "status", TurnStatus(self.status))

    @property
    def referenced(self) -> list[str]:
        """Names of the stored regions the question cites, in order of mention."""
        return [r.region for r in self.references if r.region is not None]

    @property
    def broken(self) -> bool:
        """True when the last piece ended the turn early (token budget spent, or the model ended its message)."""
        return self.finish in BROKEN_FINISH


@dataclass(kw_only=True)
class InputState:
    """What a caller sends for one turn."""

    question: str
    """The user's question. It may name earlier regions ("the cup next to R1") or give a box inline as
    ``bbox=[x1, y1, x2, y2]`` in original-image pixels.  Written by the caller (resolve strips it)."""

    image: str | None = None
    """The picture, needed on a dialogue's first turn (later: a new image version): a content hash already in the
    memory, a ``data:image/...;base64,`` URL, or a path under ``$REGIONREASONER_IMAGE_ROOT``.  Written by the caller."""

    key: str | None = None
    """Idempotency key of the turn (storing the same key twice is a no-op); None: resolve makes one."""


@dataclass(kw_only=True)
class OutputState:
    """What an invocation returns."""

    turn: Turn | None = None
    """The stored turn (regions named R1, R2, ..., sections, citations, status, usage). Written by remember
    (resolve clears it)."""

    dialogue_id: str = ""
    """The dialogue (= thread id). Written by resolve."""


@dataclass(kw_only=True)
class State(InputState, OutputState):
    """The full state of a turn in progress."""

    work: TurnWork = field(default_factory=TurnWork)
    """The turn in progress; see :class:`TurnWork`. resolve writes a fresh one, the other nodes updated copies."""


class TurnUpdate(TypedDict, total=False):
    """What a node returns: the state fields it writes (LangGraph merges them; the last write wins)."""

    question: str
    dialogue_id: str
    work: TurnWork
    turn: Turn | None
