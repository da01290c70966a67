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
from regionreasoner.core.errors import InputError
from regionreasoner.core.types import Citation, Problem, RegionDraft, Sections, Turn, TurnStatus, Usage, VersionDraft
from regionreasoner.policies.base import FinishReason

__all__ = [
    "BROKEN_FINISH",
    "MAX_KEY_CHARS",
    "InputState",
    "OutputState",
    "SectionTag",
    "State",
    "TurnUpdate",
    "TurnWork",
    "check_text",
]

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

    fault: bool = False
    """True when the policy failed (raised) in one of this turn's model calls: the turn ends, recorded as failed."""

    tool_calls: int = 0
    """Tool calls made in this turn (bounded by the context's max_tool_iterations). tools."""

    zooms: tuple[tuple[str, tuple[float, ...]], ...] = ()
    """Images a tool added to the turn (zooms), in order: each a stored image hash and the box of image 1 it shows
    ``(x1, y1, x2, y2)`` in original pixels.  The policy sees zoom ``i`` as image ``i + 2``. tools."""

    versions: tuple[VersionDraft, ...] = ()
    """Image versions a tool made in this turn (generate, inpaint), in order, each stored in the memory's image store
    already; remember records them as the dialogue's next versions, and the next turn runs on the last. tools."""

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
        for name in ("bounds", "references", "sections", "problems", "regions", "citations", "zooms", "versions"):
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
    def current_image(self) -> str:
        """The newest image version of the turn: the last one its tools made, else the one it runs on."""
        return self.versions[-1].image if self.versions else self.image_hash

    @property
    def broken(self) -> bool:
        """True when the turn ended early: token budget spent, the model ended its message, or the policy failed."""
        return self.fault or self.finish in BROKEN_FINISH


MAX_KEY_CHARS = 200
"""The longest turn key a caller may send."""


def check_text(name: str, value: object, *, optional: bool = False, max_chars: int | None = None) -> None:
    """Raise InputError unless ``value`` is a string that can be stored and sent on (None too when ``optional``).

    A lone surrogate (U+D800..U+DFFF alone, from a JSON escape) is not text: no database, JSON encoder or tokenizer
    takes it.  A NUL is refused too (Postgres text cannot hold one; a path with one cannot be opened).
    """
    if value is None and optional:
        return
    if not isinstance(value, str):
        kind = "null" if value is None else type(value).__name__
        raise InputError(
            f"{name} must be a string, got {kind}",
            hint=f"send {name} as a JSON string" + (" or leave it out" if optional else ""),
        )
    if max_chars is not None and len(value) > max_chars:
        raise InputError(f"{name} is {len(value)} characters, more than {max_chars}", hint=f"shorten the {name}")
    if "\x00" in value:
        raise InputError(
            f"{name} contains a NUL character (at {value.index(chr(0))})", hint=f"remove it from the {name}"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"{name} holds a lone surrogate (U+{ord(value[exc.start]):04X} at character {exc.start}): not text",
            hint=f"send the {name} as valid UTF-8 (a JSON \\ud8xx escape must be followed by its \\udcxx pair)",
        ) from None


@dataclass(kw_only=True)
class InputState:
    """What a caller sends for one turn, type-checked on construction (a served turn sends JSON of any shape).

    ``__post_init__`` raises :class:`~regionreasoner.core.errors.InputError` for a value that is not a string (a
    number, a dict, null for the question), a string with a lone surrogate or a NUL, an empty ``image`` or a key
    longer than :data:`MAX_KEY_CHARS`: LangGraph builds the state from the input before ``resolve`` runs, so a bad
    input ends there, before any node, model call or write.  An empty question and the question length cap are
    checked by ``resolve`` (the cap is server configuration).
    """

    question: str = ""
    """The user's question. It may name earlier regions ("the cup next to R1") or give a box inline as
    ``bbox=[x1, y1, x2, y2]`` in original-image pixels.  Written by the caller (resolve strips it); required (the
    default only lets a missing question end as resolve's "the question is empty" InputError)."""

    image: str | None = None
    """The picture, needed on a dialogue's first turn (later: a new image version): a content hash already in the
    memory, a ``data:image/...;base64,`` URL, or a path under ``$REGIONREASONER_IMAGE_ROOT``.  Written by the caller."""

    key: str | None = None
    """Idempotency key of the turn (storing the same key twice is a no-op); None: resolve makes one."""

    def __post_init__(self) -> None:
        check_text("question", self.question)
        check_text("image", self.image, optional=True)
        if self.image == "":
            raise InputError("image is empty", hint="send a data URL, a stored image hash or a path, or leave it out")
        check_text("key", self.key, optional=True, max_chars=MAX_KEY_CHARS)


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
    image: str | None
    key: str | None
    dialogue_id: str
    work: TurnWork
    turn: Turn | None
