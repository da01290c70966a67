"""Runtime configuration of the turn graph: a typed :class:`Context`, read by nodes as ``runtime.context``.

Two kinds of settings, kept apart because a served graph takes :class:`Context` from its clients as JSON:

* **Server configuration** (:class:`ServerConfig`): which model, frame and prompt template, which memory, where image
  paths may point, and the bounds of every per-request value.  Read once per process from ``REGIONREASONER_*``
  environment variables (:meth:`ServerConfig.from_env`), never from a request; a served graph turns it into one
  policy and one memory (:class:`Resources`).
* **Per-request context** (:class:`Context`): only what is safe for a client to tune (sampling, section lengths,
  answer size, constrained decoding, tracing detail), type-checked on construction and checked against the server's
  bounds before the turn opens the memory.  Any other name, ``model`` or ``memory_url`` included, is a
  :class:`~regionreasoner.core.errors.ConfigError`.

Apps running in-process pass an :class:`AppContext`, which adds live objects (``policy``, ``memory``, ``segmenter``,
``tools``, ``tracer_provider``) and is trusted: the server's bounds do not apply to it.  docs/reliability.md ("What a
client controls") is the threat model.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from cachetools import LRUCache

from regionreasoner.core.answer_map import ANSWER_PROTOCOLS, AnswerProtocol
from regionreasoner.core.errors import ConfigError
from regionreasoner.core.images import LoadedImage
from regionreasoner.core.types import ImageInfo
from regionreasoner.policies.base import SECTION_CHAR_LIMITS, SamplingParams, ToolSpec, TurnConstraint
from regionreasoner.policies.embedded import DEFAULT_MODEL, EMBEDDED_MODEL, TINY_MODEL, resolve_model

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from regionreasoner.memory import RegionMemory
    from regionreasoner.policies.base import Policy
    from regionreasoner.tools.base import Segmenter, Tool

__all__ = [
    "DEFAULT_MODEL",
    "EMBEDDED_MODEL",
    "FRAME_ENV",
    "IMAGE_ROOT_ENV",
    "MEMORY_URL_ENV",
    "MODEL_ENV",
    "PROMPT_TEMPLATE_ENV",
    "SERVER_SETTINGS",
    "TINY_MODEL",
    "AppContext",
    "Context",
    "Resources",
    "ServerConfig",
    "load_policy",
    "resources",
    "untrained_warning",
]

logger = logging.getLogger(__name__)

"""``model`` value that selects the tiny random Qwen2.5-VL checkpoint built offline (untrained)."""

MODEL_ENV = "REGIONREASONER_MODEL"
"""Environment variable naming the checkpoint a served graph (and the CLI) loads by default."""
MEMORY_URL_ENV = "REGIONREASONER_MEMORY_URL"
"""Environment variable naming a served graph's region memory (unset: the default SQLite file)."""
FRAME_ENV = "REGIONREASONER_FRAME"
"""Environment variable overriding the served model's coordinate frame (e.g. ``fixed:840x840``)."""
PROMPT_TEMPLATE_ENV = "REGIONREASONER_PROMPT_TEMPLATE"
"""Environment variable overriding the served model's prompt template."""
IMAGE_ROOT_ENV = "REGIONREASONER_IMAGE_ROOT"
"""Environment variable naming the folder a served graph may read image paths from (unset: no paths)."""

SERVER_SETTINGS: Mapping[str, str] = {
    "model": MODEL_ENV,
    "memory_url": MEMORY_URL_ENV,
    "frame": FRAME_ENV,
    "prompt_template": PROMPT_TEMPLATE_ENV,
    "image_root": IMAGE_ROOT_ENV,
}
"""Settings a request may not choose, each with the environment variable the server takes it from."""

_MAX_SEED = 2**63 - 1
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_LIMIT_ENVS: Mapping[str, str] = {
    "max_new_tokens": "REGIONREASONER_MAX_NEW_TOKENS",
    "max_objects": "REGIONREASONER_MAX_OBJECTS",
    "max_section_chars": "REGIONREASONER_MAX_SECTION_CHARS",
    "max_temperature": "REGIONREASONER_MAX_TEMPERATURE",
    "max_tool_iterations": "REGIONREASONER_MAX_TOOL_ITERATIONS",
    "max_question_chars": "REGIONREASONER_MAX_QUESTION_CHARS",
}


def _show(value: object) -> str:
    """``value`` for a message: short, and safe for any int (a huge one has no decimal ``str``)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"<a {value.bit_length()}-bit number>"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _int(name: str, value: object, *, low: int, high: int | None = None) -> int:
    """``value`` when it is a whole number in ``low..high`` (a bool is not one), else a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}={_show(value)}: set it to a whole number >= {low}")
    if value < low or (high is not None and value > high):
        span = f">= {low}" if high is None else f"in {low}..{high}"
        raise ConfigError(f"{name}={_show(value)}: set it {span}")
    return value


def _float(name: str, value: object, *, low: float) -> float:
    """``value`` as a float when it is a finite number >= ``low`` (a bool is not one), else a ConfigError."""
    try:
        number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    except OverflowError:  # an int too large for a float
        number = math.inf
    if not math.isfinite(number):
        raise ConfigError(f"{name}={_show(value)}: set it to a finite number >= {low}")
    if number < low:
        raise ConfigError(f"{name}={_show(value)}: set it >= {low}")
    return number


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{name}={_show(value)}: set it to true or false")
    return value


@dataclass(kw_only=True)
class Context:
    """How a turn runs, as a request may set it: decoding limits, answer size, tracing detail.

    Which model, memory, frame and prompt template serve the turn is server configuration (:class:`ServerConfig`):
    those names are refused here.  Every value is type-checked on construction (a served graph builds this from a
    client's JSON), so a wrong one is a ConfigError naming the fix, never a TypeError from deep inside a turn.
    """

    constrained: bool = field(default=True, metadata={"description": "grammar-constrained decoding of every section"})
    max_new_tokens: int = field(
        default=2048, metadata={"description": "token budget of one piece (node call); at most the server's limit"}
    )
    temperature: float = field(
        default=0.0, metadata={"description": "0 is greedy decoding; at most the server's limit (2.0 by default)"}
    )
    seed: int | None = field(default=None, metadata={"description": "sampling seed, 0..2**63-1"})
    max_objects: int = field(
        default=8, metadata={"description": "most answer objects a turn may return; at most the server's limit"}
    )
    answer_protocol: AnswerProtocol = field(
        default="regionreasoner",
        metadata={
            "description": "answer -> regions: 'regionreasoner' (exact pixels, slightly out-of-frame clipped) or "
            "'official' (the released eval: int(v * W/840 + 0.5), out-of-frame kept; docs/evaluation.md)"
        },
    )
    char_limits: dict[str, int] = field(
        default_factory=lambda: dict(SECTION_CHAR_LIMITS),
        metadata={
            "description": "longest free text per section (scene, focus, think), in characters (constrained "
            "decoding); each at most the server's limit"
        },
    )
    max_tool_iterations: int = field(
        default=3, metadata={"description": "think -> tools -> think rounds per turn; at most the server's limit"}
    )
    capture_sections: bool = field(default=True, metadata={"description": "record section texts as span events"})

    def __new__(cls, *args: object, **kwargs: object) -> Self:
        """Refuse names that are not fields with a ConfigError saying where the setting belongs.

        LangGraph builds a served context as ``Context(**request_json)``: without this, a name that is not a field
        would be a TypeError from the generated ``__init__``.
        """
        if args:
            raise ConfigError(f"{cls.__name__} takes keyword arguments only", hint="e.g. Context(max_new_tokens=256)")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - names)
        for name in unknown:
            if name in SERVER_SETTINGS:
                raise ConfigError(
                    f"{name} is server configuration, not a per-request setting",
                    hint=f"set {SERVER_SETTINGS[name]} where the server starts; in-process, pass it to "
                    "RegionAgent.from_pretrained(...) or RegionAgent(policy, memory=...)",
                )
        if unknown:
            raise ConfigError(f"unknown context fields {unknown}", hint=f"use {sorted(names)}")
        return super().__new__(cls)

    def __post_init__(self) -> None:
        self.constrained = _bool("constrained", self.constrained)
        self.max_new_tokens = _int("max_new_tokens", self.max_new_tokens, low=1)
        self.temperature = _float("temperature", self.temperature, low=0.0)
        if self.seed is not None:
            self.seed = _int("seed", self.seed, low=0, high=_MAX_SEED)
        self.max_objects = _int("max_objects", self.max_objects, low=1)
        if not isinstance(self.answer_protocol, str) or self.answer_protocol not in ANSWER_PROTOCOLS:
            raise ConfigError(
                f"answer_protocol={_show(self.answer_protocol)}: use one of {', '.join(map(repr, ANSWER_PROTOCOLS))}"
            )
        if not isinstance(self.char_limits, Mapping):
            raise ConfigError(
                f"char_limits={_show(self.char_limits)}: pass an object of section -> characters",
                hint='e.g. {"scene": 400, "think": 800}',
            )
        limits: dict[str, int] = {}
        for tag, limit in self.char_limits.items():
            if tag not in SECTION_CHAR_LIMITS:
                raise ConfigError(f"char_limits has no section {_show(tag)}", hint=f"use {sorted(SECTION_CHAR_LIMITS)}")
            limits[tag] = _int(f"char_limits[{tag!r}]", limit, low=1)
        self.char_limits = limits
        self.max_tool_iterations = _int("max_tool_iterations", self.max_tool_iterations, low=0)
        self.capture_sections = _bool("capture_sections", self.capture_sections)

    def sampling(self) -> SamplingParams:
        """Sampling settings of one node call."""
        return SamplingParams(max_new_tokens=self.max_new_tokens, temperature=self.temperature, seed=self.seed)

    def constraint(
        self,
        sections: tuple[str, ...],
        bounds: tuple[int, int],
        *,
        tools: tuple[ToolSpec, ...] = (),
        max_tool_calls: int = 0,
    ) -> TurnConstraint | None:
        """The turn constraint for these sections and frame extent (and tools ``<think>`` may call), or None."""
        if not self.constrained:
            return None
        limits = {**SECTION_CHAR_LIMITS, **self.char_limits}
        return TurnConstraint(
            sections=sections,
            bounds=bounds,
            max_objects=self.max_objects,
            char_limits=limits,
            tools=tools,
            max_tool_calls=max_tool_calls,
        )


@dataclass(kw_only=True)
class AppContext(Context):
    """A :class:`Context` with live objects, for apps running the graph in-process (``RegionAgent`` uses it).

    Trusted: the server's bounds do not apply.  A field left None falls back to the server's resource.
    """

    policy: Policy | None = field(default=None, metadata={"description": "a live policy (None: the server's)"})
    memory: RegionMemory | None = field(default=None, metadata={"description": "a live memory (None: the server's)"})
    segmenter: Segmenter | None = field(default=None, metadata={"description": "masks from boxes and points"})
    tools: list[Tool] = field(default_factory=list, metadata={"description": "tools the think section may call"})
    tracer_provider: TracerProvider | None = field(
        default=None, metadata={"description": "OpenTelemetry provider (None: the global one)"}
    )
    settings: ServerConfig | None = field(
        default=None,
        metadata={"description": "limits and image root of this app's turns (None: the defaults, no image paths)"},
    )


def live(ctx: Context) -> AppContext | None:
    """``ctx`` when it carries live objects."""
    return ctx if isinstance(ctx, AppContext) else None


def _server_error(env: str, value: object, exc: ConfigError) -> ConfigError:
    return ConfigError(f"{env}={value!r}: {exc}")


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """What a served graph serves with and how far a request may go: set by whoever starts the server.

    :meth:`from_env` reads it from ``REGIONREASONER_*`` variables, once per process (:func:`resources`).  Every
    value is checked on construction, without loading or creating anything; a message names the variable to fix.
    The bounds may only be raised above the per-request defaults (a request that sets nothing stays valid).
    """

    model: str = field(
        default=DEFAULT_MODEL,
        metadata={
            "description": f"{MODEL_ENV}: checkpoint folder or hub id; 'tiny' (unset) the untrained tiny model, "
            "'embedded' the small model trained here"
        },
    )
    memory_url: str | None = field(
        default=None, metadata={"description": f"{MEMORY_URL_ENV}: region memory URL; None: the default SQLite file"}
    )
    frame: str | None = field(
        default=None, metadata={"description": f"{FRAME_ENV}: coordinate frame override, e.g. fixed:840x840"}
    )
    prompt_template: str | None = field(
        default=None, metadata={"description": f"{PROMPT_TEMPLATE_ENV}: prompt template name override"}
    )
    image_root: Path | None = field(
        default=None, metadata={"description": f"{IMAGE_ROOT_ENV}: folder image paths may lie under (None: no paths)"}
    )
    max_new_tokens: int = field(default=2048, metadata={"description": "most max_new_tokens a request may ask for"})
    max_objects: int = field(default=32, metadata={"description": "most max_objects a request may ask for"})
    max_section_chars: int = field(default=4000, metadata={"description": "most char_limits[section] a request sets"})
    max_temperature: float = field(default=2.0, metadata={"description": "highest temperature a request may set"})
    max_tool_iterations: int = field(default=3, metadata={"description": "most max_tool_iterations of a request"})
    max_question_chars: int = field(default=4000, metadata={"description": "longest question a turn may ask"})

    def __post_init__(self) -> None:
        _check_model(self.model)
        if self.memory_url is not None:
            _check_memory_url(self.memory_url)
        if self.frame is not None:
            from regionreasoner.core.frames import frame_from_spec

            try:
                frame_from_spec(self.frame)
            except ConfigError as exc:
                raise _server_error(FRAME_ENV, self.frame, exc) from None
        if self.prompt_template is not None:
            from regionreasoner.core.prompts import get_prompt

            try:
                get_prompt(self.prompt_template)
            except ConfigError as exc:
                raise _server_error(PROMPT_TEMPLATE_ENV, self.prompt_template, exc) from None
        if self.image_root is not None and not Path(self.image_root).is_dir():
            raise ConfigError(
                f"{IMAGE_ROOT_ENV}={str(self.image_root)!r} is not a folder",
                hint=f"set it to an existing folder the served graph may read images from, or unset {IMAGE_ROOT_ENV}",
            )
        floor = Context()
        for name in ("max_new_tokens", "max_objects", "max_tool_iterations"):
            _int(_LIMIT_ENVS[name], getattr(self, name), low=getattr(floor, name))
        _int(_LIMIT_ENVS["max_section_chars"], self.max_section_chars, low=max(SECTION_CHAR_LIMITS.values()))
        _float(_LIMIT_ENVS["max_temperature"], self.max_temperature, low=0.0)
        _int(_LIMIT_ENVS["max_question_chars"], self.max_question_chars, low=1)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerConfig:
        """The configuration in ``environ`` (default ``os.environ``); an empty variable counts as unset."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        values: dict[str, Any] = {
            "model": get(MODEL_ENV) or DEFAULT_MODEL,
            "memory_url": get(MEMORY_URL_ENV),
            "frame": get(FRAME_ENV),
            "prompt_template": get(PROMPT_TEMPLATE_ENV),
        }
        if (root := get(IMAGE_ROOT_ENV)) is not None:
            values["image_root"] = Path(root).expanduser().resolve()
        for name, variable in _LIMIT_ENVS.items():
            if (text := get(variable)) is None:
                continue
            number: Callable[[str], float] = float if name == "max_temperature" else int
            try:
                values[name] = number(text)
            except ValueError:
                kind = "a number" if name == "max_temperature" else "a whole number"
                raise ConfigError(f"{variable}={text!r}: set it to {kind}") from None
        return cls(**values)

    def check(self, ctx: Context) -> None:
        """Raise ConfigError when a request's ``ctx`` goes past this server's bounds (before the turn starts)."""

        def over(name: str, value: float, limit: float, env: str) -> None:
            if value > limit:
                raise ConfigError(
                    f"{name}={_show(value)} is above this server's limit {limit}",
                    hint=f"ask for at most {limit}; the server sets the limit with {env}",
                )

        over("max_new_tokens", ctx.max_new_tokens, self.max_new_tokens, _LIMIT_ENVS["max_new_tokens"])
        over("temperature", ctx.temperature, self.max_temperature, _LIMIT_ENVS["max_temperature"])
        over("max_objects", ctx.max_objects, self.max_objects, _LIMIT_ENVS["max_objects"])
        over(
            "max_tool_iterations", ctx.max_tool_iterations, self.max_tool_iterations, _LIMIT_ENVS["max_tool_iterations"]
        )
        for tag, limit in ctx.char_limits.items():
            over(f"char_limits[{tag!r}]", limit, self.max_section_chars, _LIMIT_ENVS["max_section_chars"])


def _check_model(model: str) -> None:
    """``model`` is 'embedded', 'tiny', an existing folder or a hub id (``owner/name``); nothing is loaded."""
    if model in (EMBEDDED_MODEL, TINY_MODEL):
        return
    hint = (
        f"set {MODEL_ENV} to a checkpoint folder (config.json + *.safetensors), a hub id (owner/name), "
        f"'{EMBEDDED_MODEL}' or '{TINY_MODEL}'"
    )
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"{MODEL_ENV}={model!r} is a file, not a checkpoint folder", hint=hint)
        return
    if model.startswith((".", "/", "~")) or not _HUB_ID.fullmatch(model):
        raise ConfigError(f"{MODEL_ENV}={model!r}: no such folder", hint=hint)


def _check_memory_url(url: str) -> None:
    """``url`` is a supported memory URL; a SQLite file's path is not a folder nor under a file (nothing created)."""
    from regionreasoner.memory.engine import normalize_url, sqlite_path_problem

    shown = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)  # never a password in a message
    try:
        parsed = normalize_url(url)
    except ConfigError as exc:
        raise _server_error(MEMORY_URL_ENV, shown, exc) from None
    if (problem := sqlite_path_problem(parsed)) is not None:
        raise ConfigError(
            f"{MEMORY_URL_ENV}={shown!r}: {problem}",
            hint=f"set {MEMORY_URL_ENV}=sqlite:///path/to/memory.db, a file in a folder",
        )


_APP_SETTINGS = ServerConfig()
"""The limits of an in-process app's turns (the defaults; no image root)."""


class Resources:
    """The server's policy and memory, built from :class:`ServerConfig` once per process, and image caches.

    A request's plain :class:`Context` only selects how a turn runs; what it runs on comes from the server's
    configuration, so there is one policy and one memory per process whatever requests send.  Before a plain
    context is served, it is checked against the configuration's bounds (:meth:`ServerConfig.check`).  The image
    caches are LRU caches of fixed size.
    """

    def __init__(self, config: ServerConfig | None = None) -> None:
        self._lock = threading.Lock()
        self._config = config
        self._policy: Policy | None = None
        self._memory: RegionMemory | None = None
        # Stored images are immutable, so both caches are keyed by content hash and never go stale; sizes bound the
        # memory (a decoded image is a few MB, an ImageInfo a few hundred bytes).
        self._images: LRUCache[str, LoadedImage] = LRUCache(maxsize=8)
        self._infos: LRUCache[str, ImageInfo] = LRUCache(maxsize=4096)

    def settings(self, ctx: Context) -> ServerConfig:
        """The limits and image root a turn of ``ctx`` runs under.

        A served (plain) context gets the server's configuration (:attr:`config`, from the environment).  An
        in-process app (an :class:`AppContext`) is its own server: it gets the defaults and never depends on the
        environment's ``REGIONREASONER_*`` server variables being valid (it passes images through the API, so it
        reads no image paths).
        """
        app = live(ctx)
        if app is None:
            return self.config
        return app.settings if app.settings is not None else _APP_SETTINGS

    @property
    def config(self) -> ServerConfig:
        """The server configuration (read from the environment on first use, then kept)."""
        with self._lock:
            if self._config is None:
                self._config = ServerConfig.from_env()
            return self._config

    def _served(self, ctx: Context) -> ServerConfig:
        config = self.config
        if live(ctx) is None:
            config.check(ctx)
        return config

    def policy(self, ctx: Context) -> Policy:
        """``ctx.policy``, or the server's policy (loaded on first use)."""
        if (app := live(ctx)) is not None and app.policy is not None:
            return app.policy
        config = self._served(ctx)
        with self._lock:
            if self._policy is None:
                self._policy = load_policy(config.model, frame=config.frame, prompt_template=config.prompt_template)
            return self._policy

    def memory(self, ctx: Context) -> RegionMemory:
        """``ctx.memory``, or the server's memory (opened on first use)."""
        if (app := live(ctx)) is not None and app.memory is not None:
            return app.memory
        config = self._served(ctx)
        from regionreasoner.memory import RegionMemory

        with self._lock:
            if self._memory is None:
                self._memory = RegionMemory(config.memory_url)
            return self._memory

    def close(self) -> None:
        """Close the server's memory and policy, if opened (a later turn opens them again)."""
        with self._lock:
            memory, policy, self._memory, self._policy = self._memory, self._policy, None, None
            self._images.clear()
            self._infos.clear()
        if memory is not None:
            memory.close()
        if policy is not None:
            policy.close()

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
    """A :class:`~regionreasoner.policies.transformers_policy.TransformersPolicy` for ``model``.

    ``model`` is a folder, a hub id, or a name of :func:`~regionreasoner.policies.embedded.resolve_model`
    ('embedded', 'tiny').
    Loading untrained weights logs :func:`untrained_warning` unless ``warn_untrained`` is False (the demo says so
    in its own words).  Keyword arguments that are None are left to the policy's defaults.
    """
    from regionreasoner.policies.transformers_policy import TransformersPolicy

    path = resolve_model(model)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    policy = TransformersPolicy(path, **kwargs)
    if warn_untrained and policy.untrained:
        logger.warning(untrained_warning(model))
    return policy


_RESOURCES = Resources()


def resources() -> Resources:
    """The process-wide resources: the server's policy and memory (for contexts without live objects)."""
    return _RESOURCES
