"""``ServeSettings``: what the HTTP server enforces (auth, limits, image roots, concurrency), checked when built."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from regionreasoner.core.errors import ConfigError

__all__ = ["TOKENS_ENV", "ServeSettings", "load_tokens", "principal_of"]

TOKENS_ENV = "REGIONREASONER_TOKENS"
"""Comma-separated bearer tokens, each optionally ``name=token`` (the name is the principal that owns dialogues)."""

MIN_TOKEN_CHARS = 16
"""Shorter tokens are refused: a bearer token is a password and must not be guessable."""


def principal_of(token: str) -> str:
    """The principal of an unnamed token: ``token-`` + the first 12 hex digits of its sha256 (never the token)."""
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:12]


def load_tokens(text: str, *, origin: str) -> dict[str, str]:
    """Parse tokens (``name=token`` or ``token``, separated by commas or newlines; ``#`` starts a comment).

    Returns token -> principal.  ``origin`` names where the text came from, for the messages.
    """
    tokens: dict[str, str] = {}
    for raw in text.replace(",", "\n").splitlines():
        item = raw.split("#", 1)[0].strip()
        if not item:
            continue
        name, sep, token = item.partition("=")
        if not sep:
            name, token = "", name
        name, token = name.strip(), token.strip()
        if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
            raise ConfigError(
                f"{origin}: a token of {len(token)} characters is refused",
                hint=f"use tokens of at least {MIN_TOKEN_CHARS} characters without blanks, e.g. from "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
            )
        if token in tokens:
            raise ConfigError(f"{origin}: a token is listed twice", hint="list each token once")
        tokens[token] = name or principal_of(token)
    return tokens


@dataclass(frozen=True, kw_only=True)
class ServeSettings:
    """The server's promises.  Sizes are bytes, times seconds, pixels width x height.

    ``auth=False`` serves without tokens (everyone is the principal ``"local"``); the CLI allows it on loopback
    only.  With ``auth=True`` at least one token is needed.
    """

    tokens: dict[str, str] = field(default_factory=dict, metadata={"description": "bearer token -> principal"})
    auth: bool = field(default=True, metadata={"description": "require a bearer token on /v1 routes"})
    max_body_bytes: int = field(default=16 * 2**20, metadata={"description": "largest request body (413 beyond)"})
    max_image_pixels: int = field(
        default=40_000_000, metadata={"description": "largest image, width x height, checked before decoding"}
    )
    image_roots: tuple[Path, ...] = field(
        default=(), metadata={"description": "folders whose files an image path may name (none: paths refused)"}
    )
    max_concurrent_turns: int = field(default=4, metadata={"description": "turns running at once"})
    max_queued_turns: int = field(default=16, metadata={"description": "turns waiting beyond those (429 beyond)"})
    queue_timeout_s: float = field(default=30.0, metadata={"description": "longest wait for a turn slot (then 429)"})
    turn_timeout_s: float = field(default=300.0, metadata={"description": "longest a request waits for its turn"})
    retry_after_s: int = field(default=1, metadata={"description": "Retry-After sent with 429"})
    shutdown_grace_s: float = field(default=30.0, metadata={"description": "how long shutdown waits for turns"})
    cors_origins: tuple[str, ...] = field(default=(), metadata={"description": "allowed CORS origins (none: off)"})
    ui: bool = field(default=False, metadata={"description": "serve the web page at /ui"})
    trace_buffer: int = field(default=256, metadata={"description": "traces kept in memory for /trace routes"})

    def __post_init__(self) -> None:
        if self.auth and not self.tokens:
            raise ConfigError(
                "the server requires bearer tokens and none is configured",
                hint=f"set {TOKENS_ENV}=name=<token>, pass --token-file, or serve on loopback with --no-auth",
            )
        for name in ("max_body_bytes", "max_image_pixels", "max_concurrent_turns", "trace_buffer"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name}={value!r}: set it to an integer >= 1")
        if not isinstance(self.max_queued_turns, int) or self.max_queued_turns < 0:
            raise ConfigError(f"max_queued_turns={self.max_queued_turns!r}: set it to an integer >= 0")
        for name in ("queue_timeout_s", "turn_timeout_s", "shutdown_grace_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}={getattr(self, name)!r}: set it to a number of seconds > 0")
        if self.retry_after_s < 1:
            raise ConfigError(f"retry_after_s={self.retry_after_s!r}: set it >= 1")
        for root in self.image_roots:
            if not Path(root).is_dir():
                raise ConfigError(f"image root {str(root)!r} is not a folder", hint="name existing folders")

    @property
    def roots(self) -> tuple[Path, ...]:
        """The image roots, resolved (symlinks followed), so a path is checked against where it really lies."""
        return tuple(Path(r).expanduser().resolve() for r in self.image_roots)

    @classmethod
    def tokens_from_env(cls, environ: dict[str, str] | None = None) -> dict[str, str]:
        """Tokens in :data:`TOKENS_ENV` (empty when unset)."""
        text = (environ if environ is not None else os.environ).get(TOKENS_ENV, "")
        return load_tokens(text, origin=TOKENS_ENV) if text.strip() else {}
