"""What every route needs: the server's state, the caller's principal, and ownership checks."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request

from regionreasoner.agent.server.gate import TurnGate
from regionreasoner.agent.server.metrics import Metrics
from regionreasoner.agent.server.problems import AuthError, ServerError
from regionreasoner.agent.server.settings import ServeSettings
from regionreasoner.agent.server.spans import SpanBuffer
from regionreasoner.core.errors import DialogueNotFoundError, InputError
from regionreasoner.core.images import load_image
from regionreasoner.core.types import is_image_hash

if TYPE_CHECKING:
    import asyncio

    from regionreasoner.agent.api import RegionAgent

__all__ = ["LOCAL_PRINCIPAL", "PathNotAllowedError", "ServerState", "principal", "server_state"]

LOCAL_PRINCIPAL = "local"
"""The principal of every request when auth is off (``regionreasoner ui`` on loopback)."""


class PathNotAllowedError(ServerError):
    """An image path outside every configured image root (or paths are off)."""

    status = 403


@dataclass
class ServerState:
    """The app's agent and what guards it; ``app.state.rr``."""

    agent: RegionAgent
    settings: ServeSettings
    spans: SpanBuffer | None
    gate: TurnGate
    metrics: Metrics = field(default_factory=Metrics)
    owns_agent: bool = False
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _digests: list[tuple[bytes, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # Tokens are compared as sha256 digests: equal lengths, so compare_digest's time says nothing about them.
        self._digests = [(hashlib.sha256(t.encode()).digest(), who) for t, who in self.settings.tokens.items()]

    def principal_for(self, authorization: str | None) -> str:
        """The principal of an ``Authorization`` header value; AuthError when missing or unknown."""
        if not self.settings.auth:
            return LOCAL_PRINCIPAL
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("this route needs a bearer token", hint="send 'Authorization: Bearer <token>'")
        digest = hashlib.sha256(token.strip().encode()).digest()
        found: str | None = None
        for known, who in self._digests:  # every token is compared, found or not: no early exit to time
            if hmac.compare_digest(known, digest):
                found = who
        if found is None:
            raise AuthError("the bearer token is not known to this server", hint="ask the operator for a token")
        return found

    def own(self, dialogue_id: str, who: str) -> None:
        """DialogueNotFoundError unless ``who`` owns ``dialogue_id`` (or auth is off); others learn nothing."""
        owner = self.agent.memory.dialogue_owner(dialogue_id)
        if self.settings.auth and owner != who:
            raise DialogueNotFoundError(f"no dialogue {dialogue_id!r}", hint="list yours with GET /v1/dialogues")

    def image_hash(self, value: str) -> str:
        """Store (or find) the image a create request names; refuses paths outside the roots before reading."""
        memory = self.agent.memory
        limits = {"max_pixels": self.settings.max_image_pixels, "max_bytes": self.settings.max_body_bytes}
        if is_image_hash(value):
            return memory.image_info(value).hash
        if value.startswith("data:"):
            return memory.put_image(load_image(value, **limits)).hash
        roots = self.settings.roots
        if not roots:
            raise PathNotAllowedError(
                "this server reads no image paths", hint="upload the image, or send it as a data URL"
            )
        try:
            path = Path(value).expanduser().resolve()
        except (OSError, RuntimeError, ValueError):
            raise PathNotAllowedError(f"image path {value[:80]!r} cannot be resolved", hint="check it") from None
        if not any(path.is_relative_to(root) for root in roots):
            raise PathNotAllowedError(
                f"image path {value[:80]!r} is outside the server's image roots", hint="use a file under one of them"
            )
        return memory.put_image(load_image(path, **limits)).hash


def server_state(request: Request) -> ServerState:
    """The app's :class:`ServerState`."""
    state = request.app.state.rr
    assert isinstance(state, ServerState)
    return state


def principal(request: Request) -> str:
    """The caller's principal (dependency of every /v1 route); also refuses query parameters the route lacks."""
    who = server_state(request).principal_for(request.headers.get("authorization"))
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is not None:
        # A misspelt parameter (?turns=1 for ?turn=1) would otherwise be ignored silently and answer something else.
        known = {p.alias for p in dependant.query_params} | {
            p.alias for d in dependant.dependencies for p in d.query_params
        }
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            raise InputError(
                f"unknown query parameter {unknown[0][:40]!r}",
                hint=f"this route takes {sorted(known) or 'no query parameters'}",
            )
    return who
