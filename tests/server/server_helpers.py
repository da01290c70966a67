"""Helpers of the HTTP server tests (imported by name: conftest.py puts this folder on sys.path)."""

from __future__ import annotations

import base64
import io
import socket
import threading
import time
from pathlib import Path
from typing import Any

from PIL import Image

from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.server import ServeSettings, create_app
from regionreasoner.agent.server.spans import SpanBuffer
from regionreasoner.agent.tracing import configure_tracing
from regionreasoner.core.protocol import AnswerObject, format_action
from regionreasoner.policies.base import Completion, DeltaCallback, PolicyRequest
from regionreasoner.policies.scripted import ScriptedPolicy

ALICE, BOB = "alice-token-0123456789abcdef", "bob-token-0123456789abcdef"
TOKENS = {ALICE: "alice", BOB: "bob"}

TURN = format_action(
    scene="shapes on a plain ground",
    focus="the cited shape",
    think="the reference is bbox=[84, 84, 252, 252]; the target lies right of it",
    objects=[AnswerObject(box=(420, 84, 588, 252), point=(504, 168))],
)
"""One turn text served for every turn: every question cites something (a region or an inline box)."""


class SlowPolicy(ScriptedPolicy):
    """A ScriptedPolicy whose every call takes ``delay`` seconds (to hold turn slots in the load tests)."""

    def __init__(self, turns: list[str], delay: float, **kwargs: Any) -> None:
        super().__init__(turns, **kwargs)
        self.delay = delay

    def complete(self, request: PolicyRequest, *, on_delta: DeltaCallback | None = None) -> Completion:
        time.sleep(self.delay)
        return super().complete(request, on_delta=on_delta)


def png_data_url(size: tuple[int, int] = (320, 240), colour: str = "white") -> str:
    """A PNG data URL of a plain image with a red square."""
    image = Image.new("RGB", size, colour)
    image.paste((220, 30, 30), (32, 32, 96, 96))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def auth(token: str) -> dict[str, str]:
    """The Authorization header of ``token``."""
    return {"Authorization": f"Bearer {token}"}


class Made:
    """An app with its agent and span buffer."""

    def __init__(self, tmp: Path, *, delay: float = 0.0, **settings: Any) -> None:
        provider = configure_tracing()
        self.spans = SpanBuffer()
        provider.add_span_processor(self.spans)
        policy = SlowPolicy([TURN], delay, repeat=True) if delay else ScriptedPolicy([TURN], repeat=True)
        self.agent = RegionAgent(policy, memory=f"sqlite:///{tmp}/memory.db", tracer_provider=provider)
        settings.setdefault("tokens", dict(TOKENS))
        self.settings = ServeSettings(**settings)
        self.app = create_app(self.agent, self.settings, spans=self.spans)


class LiveServer:
    """uvicorn serving an app in a background thread on 127.0.0.1 (for tests that need real concurrency)."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline:
                raise AssertionError("uvicorn did not start within 30 s")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
