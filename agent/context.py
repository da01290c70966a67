"""Runtime configuration of the turn graph: a typed :class:`Context`, read by nodes as ``runtime.context``.

Every field has a description (LangGraph Studio shows them).  :class:`Context` holds plain settings, which a graph
served by ``langgraph dev`` receives as JSON (``model``, ``memory_url``) and turns into objects once per process
through :func:`resources`; apps running in-process pass an :class:`AppContext`, which adds live objects
(``policy``, ``memory``, ``segmenter``, ``tools``, ``tracer_provider``).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache

from regionreasoner.core.answer_map import ANSWER_PROTOCOLS, AnswerProtocol
from regionreasoner.core.errors import ConfigError
from regionreasoner.core.images import LoadedImage
from regionreasoner.core.types import ImageInfo
from regionreasoner.policies.base import SECTION_CHAR_LIMITS, SamplingParams, TurnConstraint

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from regionreasoner.memory import RegionMemory
    from regionreasoner.policies.base import Policy
    from regionreasoner.tools.base import Segmenter, Tool

__all__ = [
    "MODEL_ENV",
    "TINY_MODEL",
    "AppContext",
    "Context",
    "Resources",
    "load_policy",
    "resources",
    "untrained_warning",
]

logger = logging.getLogger(__name__)

TINY_MODEL = "tiny"
"""``model`` value that selects the tiny random Qwen2.5-VL checkpoint built offline (untrained)."""

MODEL_ENV = "REGIONREASONER_MODEL"
"""Environment variable naming the checkpoint a served graph (and the CLI) loads by default."""


@dataclass(kw_only=True)
class Context:
    """How a turn runs: which policy and memory, decoding limits, tools, tracing."""

    model: str = field(
        default_factory=lambda: os.environ.get(MODEL_ENV, TINY_MODEL),
        metadata={"description": "checkpoint folder or hub id; 'tiny' builds an untrained tiny Qwen2.5-VL"},
    )
    memory_url: str | None = field(
        default_factory=lambda: os.environ.get("REGIONREASONER_MEMORY_URL"),
        metadata={"description": "region memory URL (sqlite:///..., postgresql+psycopg://...); None: default file"},
    )
    frame: str | None = field(default=None, metadata={"description": "coordinate frame override, e.g. fixed:840x840"})
    prompt_template: str | None = field(default=None, metadata={"description": "prompt template name override"})
    constrained: bool = field(default=True, metadata={"description": "grammar-constrained decoding of every section"})
    max_new_tokens: int = field(default=2048, metadata={"description": "token budget of one piece (node call)"})
    temperature: float = field(default=0.0, metadata={"description": "0 is greedy decoding"})
    seed: int | None = field(default=None, metadata={"description": "sampling seed"})
    max_objects: int = field(default=8, metadata={"description": "most answer objects a turn may return"})
    answer_protocol: AnswerProtocol = field(
        default="regionreasoner",
        metadata={
            "description": "answer -> regions: 'regionreasoner' (exact pixels, slightly out-of-frame clipped) or "
            "'official' (the released eval: int(v * W/840 + 0.5), out-of-frame kept; docs/evaluation.md)"
        },
    )
    char_limits: dict[str, int] = field(
        default_factory=lambda: dict(SECTION_CHAR_LIMITS),
        metadata={"description": "longest free text per section, in characters (constrained decoding)"},
    )
    max_tool_iterations: int = field(default=3, metadata={"description": "think -> tools -> think rounds per turn"})
    capture_sections: bool = field(default=True, metadata={"description": "record section texts as span events"})

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens={self.max_new_tokens}: set it >= 1")
        if self.temperature < 0:
            raise ConfigError(f"temperature={self.temperature}: set it >= 0 (0 is greedy)")
        if self.max_objects < 1:
            raise ConfigError(f"max_objects={self.max_objects}: set it >= 1")
        if self.answer_protocol not in ANSWER_PROTOCOLS:
            raise ConfigError(
                f"answer_protocol={self.answer_protocol!r}: use one of {', '.join(map(repr, ANSWER_PROTOCOLS))}"
            )
        if self.max_tool_iterations < 0:
            raise ConfigError(f"max_tool_iterations={self.max_tool_iterations}: set it >= 0")
        for tag, limit in self.char_limits.items():
            if limit < 1:
                raise ConfigError(f"char_limits[{tag!r}]={limit}: set it >= 1 character")

    def sampling(self) -> SamplingParams:
        """Sampling settings of one node call."""
        return SamplingParams(max_new_tokens=self.max_new_tokens, temperature=self.temperature, seed=self.seed)

    def constraint(self, sections: tuple[str, ...], bounds: tuple[int, int]) -> TurnConstraint | None:
        """The turn constraint for these sections and frame extent, or None when decoding is free."""
        if not self.constrained:
            return None
        limits = {**SECTION_CHAR_LIMITS, **self.char_limits}
        return TurnConstraint(sections=sections, bounds=bounds, max_objects=self.max_objects, char_limits=limits)


@dataclass(kw_only=True)
class AppContext(Context):
    """A :class:`Context` with live objects, for apps running the graph in-process (``RegionAgent`` uses it).

    A served graph receives plain settings only; these fields override them when set.
    """

    policy: Policy | None = field(default=None, metadata={"description": "a live policy (overrides model)"})
    memory: RegionMemory | None = field(default=None, metadata={"description": "a live memory (overrides memory_url)"})
    segmenter: Segmenter | None = field(default=None, metadata={"description": "masks from boxes and points"})
    tools: list[Tool] = field(default_factory=list, metadata={"description": "tools the think section may call"})
    tracer_provider: TracerProvider | None = field(
        default=None, metadata={"description": "OpenTelemetry provider (None: the global one)"}
    )


def live(ctx: Context) -> AppContext | None:
    """``ctx`` when it carries live objects."""
    return ctx if isinstance(ctx, AppContext) else None


class Resources:
    """Policies and memories built from plain settings, once per process (for served graphs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._policies: dict[tuple[str, str | None, str | None], Policy] = {}
        self._memories: dict[str | None, RegionMemory] = {}
        # Stored images are immutable, so both caches are keyed by content hash and never go stale; sizes bound the
        # memory (a decoded image is a few MB, an ImageInfo a few hundred bytes).
        self._images: LRUCache[str, LoadedImage] = LRUCache(maxsize=8)
        self._infos: LRUCache[str, ImageInfo] = LRUCache(maxsize=4096)

    def policy(self, ctx: Context) -> Policy:
        """``ctx.policy``, or the policy of ``ctx.model`` (loaded on first use)."""
        if (app := live(ctx)) is not None and app.policy is not None:
            return app.policy
        key = (ctx.model, ctx.frame, ctx.prompt_template)
        with self._lock:
            if key not in self._policies:
                self._policies[key] = load_policy(ctx.model, frame=ctx.frame, prompt_template=ctx.prompt_template)
            return self._policies[key]

    def memory(self, ctx: Context) -> RegionMemory:
        """``ctx.memory``, or the memory at ``ctx.memory_url`` (opened on first use)."""
        if (app := live(ctx)) is not None and app.memory is not None:
            return app.memory
        from regionreasoner.memory import RegionMemory

        with self._lock:
            if ctx.memory_url not in self._memories:
                self._memories[ctx.memory_url] = RegionMemory(ctx.memory_url)
            return self._memories[ctx.memory_url]

    def image_info(self, memory: RegionMemory, image_hash: str) -> ImageInfo:
        """A stored image's size and parent (immutable once stored, so cached by hash)."""
        with self._lock:
            info = self._infos.get(image_hash)
        if info is None:
            info = memory.image_info(image_hash)
            with self._lock:
                self._infos[image_hash] = info
        return info

    def image(self, memory: RegionMemory, image_hash: str) -> LoadedImage:
        """A stored image by hash, kept in a small LRU cache (each node of a turn needs it)."""
        with self._lock:
            loaded = self._images.get(image_hash)
        if loaded is None:
            loaded = memory.load_image(image_hash)
            with self._lock:
                self._images[image_hash] = loaded
        return loaded


def untrained_warning(model: str) -> str:
    """The warning logged when ``model`` (a name or folder) has random, untrained weights."""
    return (
        f"model {model!r} is the tiny RANDOM, UNTRAINED Qwen2.5-VL: its words are noise and its boxes guesses. "
        f"Point at real weights with {MODEL_ENV}=/path/to/RegionReasoner-7B (served graph, CLI), --model (CLI) "
        "or RegionAgent.from_pretrained('/path/or/hub-id')"
    )


def is_untrained(model: str) -> bool:
    """True for ``"tiny"`` and for checkpoint folders marked as untrained (without building or loading anything)."""
    from regionreasoner.policies.tiny import is_untrained_checkpoint

    return model == TINY_MODEL or is_untrained_checkpoint(Path(model))


def load_policy(model: str, *, warn_untrained: bool = True, **kwargs: Any) -> Policy:
    """A :class:`~regionreasoner.policies.transformers_policy.TransformersPolicy` for ``model`` ('tiny' allowed).

    Loading untrained weights logs :func:`untrained_warning` unless ``warn_untrained`` is False (the demo says so
    in its own words).  Keyword arguments that are None are left to the policy's defaults.
    """
    from regionreasoner.policies.tiny import tiny_model_path
    from regionreasoner.policies.transformers_policy import TransformersPolicy

    path = tiny_model_path("qwen2.5-vl") if model == TINY_MODEL else model
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    policy = TransformersPolicy(path, **kwargs)
    if warn_untrained and policy.untrained:
        logger.warning(untrained_warning(model))
    return policy


_RESOURCES = Resources()


def resources() -> Resources:
    """The process-wide resource cache (used when a Context carries names instead of live objects)."""
    return _RESOURCES
