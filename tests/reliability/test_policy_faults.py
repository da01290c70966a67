"""Policy/server faults (issue 9, "the suite"): typed errors, bounded retries, the turn recorded as failed.

The fake OpenAI-compatible server times out, answers 5xx, cuts its body short, sends broken JSON or resets the
connection mid-response.

``OpenAIPolicy`` (plain httpx) runs against a fake server this test starts on 127.0.0.1 on an explicit free port
(``http.server`` in a thread, stopped afterwards; no network).  Every fault ends in a :class:`PolicyError` naming the
URL and the last failure, after a bounded number of requests (``retries + 1``, counted on the server; a 4xx and an
answer of the wrong shape are not retried).  Before the fix, a 200 with a truncated or non-JSON body escaped as
``json.JSONDecodeError`` and an answer without ``choices`` as ``KeyError``.

Through the agent, a model call that fails for an infrastructure reason mid-turn is recorded as a failed turn (problem
``policy_fault``, no regions, stored without its key) and ``ask()`` raises ``PolicyError`` naming the section, with
``.turn`` the stored record; asking again with the same key once the server is back runs the turn again (R1), and
the dialogue goes on.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image

from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.demo_scene import demo_scene
from regionreasoner.core.errors import PolicyError
from regionreasoner.core.images import load_image
from regionreasoner.core.protocol import AnswerObject, format_action
from regionreasoner.core.types import ProblemKind, TurnStatus
from regionreasoner.memory import RegionMemory
from regionreasoner.policies.base import Completion, DeltaCallback, ImageSlot, Message, PolicyRequest, SamplingParams
from regionreasoner.policies.openai_policy import OpenAIPolicy
from regionreasoner.policies.scripted import ScriptedPolicy

TURN = format_action(scene="a park", think="the ball", objects=[AnswerObject(box=(10, 10, 100, 100), point=(50, 50))])


@dataclass
class FakeServer:
    """What the fake server does with each request (``faults``, consumed in order; then it answers) and saw."""

    url: str
    faults: list[str] = field(default_factory=list)
    seen: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def stops(self) -> list[list[str]]:
        return [b.get("stop", []) for b in self.seen]


def _continuation(body: dict[str, Any]) -> str:
    """The scripted turn continued after the request's assistant prefix, up to and including its first stop."""
    messages = body["messages"]
    prefix = messages[-1]["content"] if body.get("continue_final_message") else ""
    rest = TURN[len(prefix) :] if TURN.startswith(prefix) else ""
    ends = [rest.find(s) + len(s) for s in body.get("stop", []) if s in rest]
    return rest[: min(ends)] if ends else rest


def _completion(text: str) -> bytes:
    choice = {"message": {"role": "assistant", "content": text}, "finish_reason": "stop", "stop_reason": None}
    usage = {"prompt_tokens": 50, "completion_tokens": len(text.split())}
    return json.dumps({"choices": [choice], "usage": usage}).encode()


def _reset(sock: socket.socket) -> None:
    """Close with an RST instead of a FIN (SO_LINGER 0): the client sees 'connection reset by peer'."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.fixture
def server(servers: SimpleNamespace) -> Iterator[FakeServer]:
    port = servers.free_port()
    fake = FakeServer(url=f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def send(self, status: int, payload: bytes, *, length: int | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload) if length is None else length))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            fake.seen.append(body)
            fault = fake.faults.pop(0) if fake.faults else "ok"
            good = _completion(_continuation(body))
            if fault == "ok":
                self.send(200, good)
            elif fault == "hang":  # longer than the client's timeout
                fake.release.wait(10)
                self.close_connection = True
            elif fault in ("500", "503"):
                self.send(int(fault), b'{"error": "overloaded"}')
            elif fault == "400":
                self.send(400, b'{"error": {"message": "max_tokens is too large"}}')
            elif fault == "truncated-json":  # a complete HTTP body holding half a JSON document
                self.send(200, good[: len(good) // 2])
            elif fault == "not-json":
                self.send(200, b"<html>502 Bad Gateway</html>")
            elif fault == "no-choices":
                self.send(200, b'{"object": "error", "message": "engine died"}')
            elif fault == "short-body":  # Content-Length promises more than arrives, then the server closes
                self.send(200, good[:20], length=len(good))
                self.close_connection = True
            elif fault == "reset-mid-body":  # headers and part of the body, then an RST
                self.send(200, good[:20], length=len(good))
                _reset(self.connection)
                self.close_connection = True
            elif fault == "reset-before-response":
                _reset(self.connection)
                self.close_connection = True
            else:
                raise AssertionError(f"unknown fault {fault!r}")

        def log_message(self, *args: object) -> None:
            pass

        def handle_one_request(self) -> None:
            try:
                super().handle_one_request()
            except OSError:  # the socket was reset on purpose
                self.close_connection = True

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def _request() -> PolicyRequest:
    return PolicyRequest(
        messages=(Message("user", (ImageSlot(0), "find it")),),
        images=(load_image(Image.new("RGB", (64, 48), (200, 0, 0))),),
        stop=("</scene>",),
        sampling=SamplingParams(max_new_tokens=30),
    )


def _policy(server: FakeServer, retries: int = 2) -> OpenAIPolicy:
    return OpenAIPolicy(server.url, "rr", frame="fixed:840x840", retries=retries, backoff=0.01, timeout=0.5)


RETRIED = {
    "hang": r"ReadTimeout",
    "500": r"HTTP 500",
    "503": r"HTTP 503",
    "truncated-json": r"HTTP 200 with a body that is not a JSON document \(JSONDecodeError",
    "not-json": r"HTTP 200 with a body that is not a JSON document \(JSONDecodeError",
    "short-body": r"RemoteProtocolError",
    "reset-mid-body": r"(ReadError|RemoteProtocolError)",
    "reset-before-response": r"(ReadError|RemoteProtocolError)",
}


@pytest.mark.parametrize("fault", sorted(RETRIED))
def test_a_fault_every_time_is_a_policy_error_after_bounded_retries(server: FakeServer, fault: str) -> None:
    server.faults = [fault] * 10
    policy = _policy(server, retries=2)
    t0 = time.monotonic()
    with pytest.raises(PolicyError, match=rf"failed after 3 attempts: {RETRIED[fault]}") as info:
        policy.complete(_request())
    assert info.value.hint
    assert len(server.seen) == 3, "retries must be bounded: retries + 1 requests"
    assert time.monotonic() - t0 < 10
    policy.close()


@pytest.mark.parametrize("fault", sorted(RETRIED))
def test_a_fault_once_is_retried_and_the_call_succeeds(server: FakeServer, fault: str) -> None:
    server.faults = [fault]
    policy = _policy(server, retries=2)
    completion = policy.complete(_request())
    assert completion.text == "<scene> a park </scene>" and len(server.seen) == 2
    policy.close()


@pytest.mark.parametrize(("fault", "match"), [("400", r"rejected the request with 400"), ("no-choices", "no choices")])
def test_answers_that_retrying_cannot_fix_are_not_retried(server: FakeServer, fault: str, match: str) -> None:
    server.faults = [fault] * 10
    policy = _policy(server, retries=3)
    with pytest.raises(PolicyError, match=match):
        policy.complete(_request())
    assert len(server.seen) == 1
    policy.close()


class BrokenPolicy(ScriptedPolicy):
    """An explicit fake backend with a bug: its think call raises a builtin exception."""

    def complete(self, request: PolicyRequest, *, on_delta: DeltaCallback | None = None) -> Completion:
        if "</think>" in request.stop:
            raise RuntimeError("CUDA out of memory")
        return super().complete(request, on_delta=on_delta)


def test_an_untyped_backend_failure_becomes_a_policy_error(tmp_path: Path) -> None:
    agent = RegionAgent(BrokenPolicy([TURN, TURN]), memory=f"sqlite:///{tmp_path}/memory.db")
    try:
        dlg = agent.dialogue(demo_scene()[0])
        with pytest.raises(PolicyError, match=r"failed in <think>: BrokenPolicy raised RuntimeError: CUDA out") as info:
            dlg.ask("Find the red ball.", key="k")
        assert "ask again" in (info.value.hint or "")
        # The turn is recorded as failed, with the fault as its one problem, and without its key.
        [failed] = dlg.turns()
        assert info.value.turn == failed and failed.status is TurnStatus.FAILED and failed.key is None
        assert [p.kind for p in failed.problems] == [ProblemKind.POLICY_FAULT] and failed.regions == []
        assert failed.sections.scene == "a park"  # what the policy wrote before it failed is kept
    finally:
        agent.close()


# --- through the agent ------------------------------------------------------------------------------------------


@pytest.fixture
def make_agent(tmp_path: Path) -> Iterator[Callable[[FakeServer], RegionAgent]]:
    agents: list[RegionAgent] = []

    def make(server: FakeServer) -> RegionAgent:
        memory = RegionMemory(f"sqlite:///{tmp_path}/memory.db", image_dir=tmp_path / "images")
        agent = RegionAgent(_policy(server, retries=1), memory=memory, constrained=False)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.close()


@pytest.mark.parametrize("fault", ["503", "reset-mid-body", "truncated-json", "hang"])
def test_a_server_failing_mid_turn_records_a_failed_turn_then_the_key_runs_it_again(
    server: FakeServer, make_agent: Callable[[FakeServer], RegionAgent], fault: str
) -> None:
    # The scene piece is served; every attempt of the think piece fails (retries=1: two attempts).
    server.faults = ["ok", fault, fault]
    agent = make_agent(server)
    dlg = agent.dialogue(demo_scene()[0], id="dlg")
    with pytest.raises(PolicyError, match=r"failed in <think>: .*failed after 2 attempts") as info:
        dlg.ask("Find the red ball.", key="k1")
    assert info.value.hint and "recorded as failed" in str(info.value)
    assert server.stops() == [["</scene>"], ["</think>"], ["</think>"]]
    # The failed turn is a record: status failed, the fault as its problem, no regions, no key.
    [failed] = dlg.turns()
    assert info.value.turn == failed and failed.index == 0 and failed.status is TurnStatus.FAILED
    assert [p.kind for p in failed.problems] == [ProblemKind.POLICY_FAULT] and failed.key is None
    assert dlg.regions() == []
    # The server is back: the same key runs the turn again from the start (scene, think, answer).
    turn = dlg.ask("Find the red ball.", key="k1")
    assert turn.status is TurnStatus.OK and turn.index == 1 and [r.id for r in turn.regions] == ["R1"]
    assert server.stops()[3:] == [["</scene>"], ["</think>"], ["</answer>"]]
    assert dlg.ask("Find the red ball.", key="k1") == turn and len(server.seen) == 6  # replay: no request
    assert [t.key for t in dlg.turns()] == [None, "k1"]
    # The dialogue goes on.
    second = dlg.ask("Find it again.", key="k2")
    assert second.index == 2 and [r.id for r in dlg.regions()] == ["R1", "R2"]
