"""The one interface every policy backend implements: a batch of requests in, completions out.

A request is a chat (system/user messages with image slots), the assistant text written so far
(``assistant_prefix``: the four sections of a turn are one assistant message produced in four resumable pieces),
stop strings, an optional constraint (:class:`TurnConstraint`, or a raw JSON schema / EBNF grammar) and sampling
settings.  A completion carries the new text, token counts (prompt, cached, generated), the finish reason and
timings.  Backends: ``TransformersPolicy`` (local weights), ``ScriptedPolicy`` (tests and apps' own tests), and the
vLLM/OpenAI-compatible ones.  Heavy imports live inside each backend, never here.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cachetools import LRUCache

from regionreasoner.core.errors import ConfigError, PromptTooLongError
from regionreasoner.core.frames import Frame
from regionreasoner.core.images import LoadedImage

__all__ = [
    "SECTION_CHAR_LIMITS",
    "Completion",
    "DeltaCallback",
    "FinishReason",
    "ImageSlot",
    "Message",
    "Policy",
    "PolicyRequest",
    "PreparedImages",
    "SamplingParams",
    "Timings",
    "ToolSpec",
    "TurnConstraint",
    "prompt_too_long",
]

FinishReason = Literal["stop", "length", "eos", "constraint"]
"""``stop``: a stop string matched; ``length``: max_new_tokens reached; ``eos``: the model ended its message;
``constraint``: the constraint's language is complete (e.g. after ``</answer>``)."""

DeltaCallback = Callable[[str], None]
"""Receives generated text as it is decoded (for streaming UIs)."""

SECTION_CHAR_LIMITS: Mapping[str, int] = {"scene": 1000, "focus": 600, "think": 2000}
"""Default longest free text, in characters, of each constrained section."""


@dataclass(frozen=True)
class ImageSlot:
    """Where image ``index`` of :attr:`PolicyRequest.images` sits in a message."""

    index: int = 0


@dataclass(frozen=True)
class Message:
    """A chat message: a role and parts that are text or image slots, in order."""

    role: Literal["system", "user", "assistant"]
    parts: tuple[str | ImageSlot, ...]

    @property
    def text(self) -> str:
        """The text parts joined (image slots dropped)."""
        return "".join(p for p in self.parts if isinstance(p, str))


@dataclass(frozen=True, kw_only=True)
class SamplingParams:
    """Decoding settings. ``temperature == 0`` is greedy decoding."""

    max_new_tokens: int = 2048
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    ignore_eos: bool = False
    """Keep generating past the end-of-message token (for throughput benchmarks)."""

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens={self.max_new_tokens}: set it >= 1")
        if self.temperature < 0:
            raise ConfigError(f"temperature={self.temperature}: set it >= 0 (0 is greedy)")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p={self.top_p}: set it in (0, 1]")
        if self.top_k < 0:
            raise ConfigError(f"top_k={self.top_k}: set it >= 0 (0 disables it)")

    @property
    def greedy(self) -> bool:
        """True for greedy decoding."""
        return self.temperature == 0


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the turn grammar sees it: its ``name`` and the JSON schema of its arguments (as JSON text)."""

    name: str
    schema: str

    @classmethod
    def of(cls, name: str, schema: Mapping[str, Any]) -> ToolSpec:
        """A spec from a schema mapping (serialised with sorted keys, so equal schemas give equal specs)."""
        return cls(name=name, schema=json.dumps(schema, sort_keys=True))


@dataclass(frozen=True, kw_only=True)
class TurnConstraint:
    """Constrained decoding of a whole turn, described independently of any backend.

    The language: each of ``sections`` in order, separated by ``separator``; free-text sections are
    ``<tag>`` + 1..limit characters without ``<`` + ``</tag>`` (so they can neither close nor open another section);
    ``answer`` is ``<answer>[obj, ...]</answer>`` with 1..``max_objects`` objects
    ``{"bbox_2d": [x1,y1,x2,y2], "point_2d": [x,y]}`` of integers within ``bounds`` (the frame extent ``(Mw, Mh)``).
    With ``ordered`` (where the backend can enforce it) corners are ordered and the point lies in its box.
    """

    sections: tuple[str, ...] = ("scene", "focus", "think", "answer")
    bounds: tuple[int, int] = (840, 840)
    max_objects: int = 8
    char_limits: Mapping[str, int] = field(default_factory=lambda: dict(SECTION_CHAR_LIMITS))
    separator: str = "\n"
    ordered: bool = True
    tools: tuple[ToolSpec, ...] = ()
    """Tools ``<think>`` may call: a think piece may end in ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``
    whose name is one of these and whose arguments follow that tool's JSON schema."""
    max_tool_calls: int = 0
    """Most tool calls in the turn; once made, ``<think>`` can only close."""

    def __post_init__(self) -> None:
        if self.max_tool_calls < 0:
            raise ConfigError(f"TurnConstraint.max_tool_calls={self.max_tool_calls}: set it >= 0")
        if self.max_tool_calls and not self.tools:
            raise ConfigError("TurnConstraint.max_tool_calls > 0 needs tools", hint="pass tools=(ToolSpec(...), ...)")
        if not self.sections or self.sections[-1] != "answer":
            raise ConfigError(f"TurnConstraint.sections={self.sections}: the last section must be 'answer'")
        unknown = [s for s in self.sections if s not in ("scene", "focus", "think", "answer")]
        if unknown:
            raise ConfigError(f"TurnConstraint.sections has unknown tags {unknown}: use scene, focus, think, answer")
        if self.bounds[0] < 1 or self.bounds[1] < 1:
            raise ConfigError(f"TurnConstraint.bounds={self.bounds}: both must be >= 1")
        if self.max_objects < 1:
            raise ConfigError(f"TurnConstraint.max_objects={self.max_objects}: set it >= 1")
        for tag in self.sections[:-1]:
            if self.char_limits.get(tag, 0) < 1:
                raise ConfigError(f"TurnConstraint.char_limits[{tag!r}] must be >= 1 character")

    def limit(self, tag: str) -> int:
        """Longest free text of ``tag`` in characters."""
        return int(self.char_limits[tag])


@dataclass(frozen=True, kw_only=True)
class PolicyRequest:
    """One generation request; see the module docstring.

    ``assistant_prefix`` is the assistant message written so far (empty at the start of a turn); generation
    continues it.  ``stop`` strings end generation and are kept at the end of :attr:`Completion.text`.
    At most one of ``constraint``, ``json_schema`` and ``grammar`` (EBNF) is set; they constrain the whole
    assistant message, prefix included.
    """

    messages: tuple[Message, ...]
    images: tuple[LoadedImage, ...] = ()
    assistant_prefix: str = ""
    stop: tuple[str, ...] = ()
    constraint: TurnConstraint | None = None
    json_schema: Mapping[str, Any] | None = None
    grammar: str | None = None
    sampling: SamplingParams = SamplingParams()

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.constraint, self.json_schema, self.grammar)) > 1:
            raise ConfigError("set at most one of constraint, json_schema and grammar on a PolicyRequest")
        slots = [p.index for m in self.messages for p in m.parts if isinstance(p, ImageSlot)]
        if sorted(slots) != list(range(len(self.images))):
            raise ConfigError(
                f"image slots {slots} do not match the {len(self.images)} images given",
                hint="use ImageSlot(0), ImageSlot(1), ... once each",
            )


@dataclass(frozen=True, kw_only=True)
class Timings:
    """Wall times of a call in milliseconds."""

    prefill_ms: float = 0.0
    decode_ms: float = 0.0
    total_ms: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Completion:
    """The result of one request.

    ``text`` is only the newly generated text (not the prefix); when a stop string ended generation it is the end
    of ``text``.  ``prompt_tokens`` counts every input token the call needed (prompt, image tokens and prefix),
    ``cached_tokens`` those served from a KV or prefix cache, ``generated_tokens`` the new tokens.
    """

    text: str
    finish_reason: FinishReason
    stop: str | None = None
    prompt_tokens: int = 0
    cached_tokens: int = 0
    generated_tokens: int = 0
    timings: Timings = Timings()
    token_ids: tuple[int, ...] | None = None


def prompt_too_long(model: str, prompt_tokens: int, context_tokens: int, setting: str) -> PromptTooLongError:
    """The error every backend raises, before generating, for a prompt that leaves no room in the model's context.

    ``setting`` names where the context length is set (``max_model_len=``, ``--max-model-len``), for the hint.
    """
    return PromptTooLongError(
        f"the prompt is {prompt_tokens} tokens but {model} has a context of {context_tokens} tokens",
        prompt_tokens=prompt_tokens,
        context_tokens=context_tokens,
        hint=f"shorten the question (or use a smaller image), or serve a longer context ({setting})",
    )


class PreparedImages:
    """Images prepared for a policy's frame (and their PNG data URLs), kept by content hash.

    Every piece of a turn sends the same image; preparing it (a resize and a re-hash) and encoding it once per turn
    instead of once per call is what this cache is for.  The least recently used of more than ``size`` are dropped.
    Thread-safe: the caches are read and written under one lock; the work itself runs outside it (two threads
    preparing the same new image both do the work once, and the results are equal).
    """

    def __init__(self, prepare: Callable[[LoadedImage], LoadedImage], size: int = 16) -> None:
        self._prepare = prepare
        self._images: LRUCache[str, LoadedImage] = LRUCache(maxsize=size)
        self._urls: LRUCache[str, str] = LRUCache(maxsize=size)
        self._lock = threading.Lock()

    def get(self, image: LoadedImage) -> LoadedImage:
        """``image`` prepared for the frame."""
        with self._lock:
            hit = self._images.get(image.hash)
        if hit is not None:
            return hit
        prepared = self._prepare(image)
        with self._lock:
            self._images[image.hash] = prepared
        return prepared

    def data_url(self, image: LoadedImage) -> str:
        """The prepared image as a ``data:image/png;base64,...`` URL."""
        with self._lock:
            hit = self._urls.get(image.hash)
        if hit is not None:
            return hit
        url = self.get(image).to_data_url()
        with self._lock:
            self._urls[image.hash] = url
        return url


class Policy(ABC):
    """A vision-language policy behind one interface.

    Subclasses set :attr:`name` and :attr:`frame` (the coordinate frame the model answers in) and implement
    :meth:`complete_batch`.  ``prompt_template`` names the template in :data:`regionreasoner.core.prompts.PROMPTS`
    the agent renders questions with.
    """

    name: str = "policy"
    frame: Frame
    prompt_template: str = "regionreasoner-eval"

    def complete(self, request: PolicyRequest, *, on_delta: DeltaCallback | None = None) -> Completion:
        """Serve one request; ``on_delta`` receives text as it is generated, where the backend can stream."""
        (completion,) = self.complete_batch([request])
        if on_delta is not None and completion.text:
            on_delta(completion.text)
        return completion

    @abstractmethod
    def complete_batch(self, requests: Sequence[PolicyRequest]) -> list[Completion]:
        """Serve several independent requests (batched where the backend can)."""

    def prepare_image(self, image: LoadedImage) -> LoadedImage:
        """The image as the model must see it (resized for fixed-size frames); original pixels otherwise."""
        size = self.frame.resized_image_size(image.size)
        if size is None or size == image.size:
            return image
        from PIL import Image

        from regionreasoner.core.images import load_image

        return load_image(image.image.resize(size, Image.Resampling.BILINEAR))

    def close(self) -> None:  # noqa: B027 - a no-op is the right default for backends holding nothing
        """Release what the backend holds between calls (sessions, connections); each backend says what.  Idempotent."""

    def __enter__(self) -> Policy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
