"""OpenAIPolicy's HTTP behaviour against a local fake server: request body, retries with backoff, 4xx errors."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from PIL import Image

from regionreasoner.core.errors import ConfigError, PolicyError
from regionreasoner.core.frames import FixedResizeFrame, NormalizedFrame, SmartResizeFrame
from regionreasoner.core.images import load_image
from regionreasoner.policies.base import ImageSlot, Message, PolicyRequest, SamplingParams, TurnConstraint
from regionreasoner.policies.openai_policy import OpenAIPolicy, default_frame_for_name

Reply = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]


def ok(text: str, finish: str = "stop", stop_reason: str | None = None) -> tuple[int, dict[str, Any]]:
    choice = {"message": {"role": "assistant", "content": text}, "finish_reason": finish, "stop_reason": stop_reason}
    usage = {"prompt_tokens": 50, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 32}}
    return 200, {"choices": [choice], "usage": usage}


@pytest.fixture
def server() -> Iterator[tuple[str, list[dict[str, Any]], list[Reply]]]:
    bodies: list[dict[str, Any]] = []
    replies: list[Reply] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            bodies.append(body)
            status, data = replies.pop(0)(body)
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", bodies, replies
    httpd.shutdown()
    httpd.server_close()


def req(prefix: str = "", stop: tuple[str, ...] = ("</scene>",)) -> PolicyRequest:
    image = load_image(Image.new("RGB", (64, 48), (200, 0, 0)))
    return PolicyRequest(
        messages=(Message("user", (ImageSlot(0), "find it")),),
        images=(image,),
        assistant_prefix=prefix,
        stop=stop,
        sampling=SamplingParams(max_new_tokens=30, seed=3),
    )


def test_request_body_and_completion(server: tuple[str, list[dict[str, Any]], list[Reply]]) -> None:
    url, bodies, replies = server
    replies.append(lambda b: ok("<scene> red </scene>", stop_reason="</scene>"))
    policy = OpenAIPolicy(url, "rr", frame="fixed:840x840")
    c = policy.complete(req())
    assert c.text == "<scene> red </scene>" and c.finish_reason == "stop" and c.stop == "</scene>"
    assert (c.prompt_tokens, c.cached_tokens, c.generated_tokens) == (50, 32, 7)
    body = bodies[0]
    assert body["model"] == "rr" and body["max_tokens"] == 30 and body["seed"] == 3
    assert body["stop"] == ["</scene>"] and body["include_stop_str_in_output"] is True
    image_part, text_part = body["messages"][0]["content"]
    assert image_part["image_url"]["url"].startswith("data:image/png;base64,")
    assert load_image(image_part["image_url"]["url"]).size == (840, 840)  # prepared for the 840x840 frame
    assert text_part == {"type": "text", "text": "find it"}
    assert "continue_final_message" not in body


def test_continues_the_assistant_message_and_restores_a_dropped_stop(
    server: tuple[str, list[dict[str, Any]], list[Reply]],
) -> None:
    url, bodies, replies = server
    replies.append(lambda b: ok("\n<focus> a ball", stop_reason="</focus>"))
    c = OpenAIPolicy(url, "rr").complete(req(prefix="<scene> x </scene>", stop=("</focus>",)))
    assert c.text == "\n<focus> a ball</focus>"
    assert bodies[0]["messages"][-1] == {"role": "assistant", "content": "<scene> x </scene>"}
    assert bodies[0]["continue_final_message"] is True and bodies[0]["add_generation_prompt"] is False


def test_retries_5xx_with_backoff_then_succeeds(server: tuple[str, list[dict[str, Any]], list[Reply]]) -> None:
    url, bodies, replies = server
    replies += [lambda b: (503, {"error": "busy"}), lambda b: (502, {"error": "gateway"}), lambda b: ok("done")]
    c = OpenAIPolicy(url, "rr", retries=3, backoff=0.01).complete(req(stop=()))
    assert c.text == "done" and len(bodies) == 3


def test_4xx_is_a_clear_error_without_retries(server: tuple[str, list[dict[str, Any]], list[Reply]]) -> None:
    url, bodies, replies = server
    replies.append(lambda b: (400, {"error": {"message": "max_tokens is too large"}}))
    with pytest.raises(PolicyError, match=r"400.*max_tokens is too large"):
        OpenAIPolicy(url, "rr", retries=3, backoff=0.01).complete(req())
    assert len(bodies) == 1


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    policy = OpenAIPolicy(f"http://127.0.0.1:{port}", "rr", retries=2, backoff=0.01, timeout=2)
    with pytest.raises(PolicyError, match=r"after 3 attempts.*is the server running"):
        policy.complete(req())


def test_constrained_turn_needs_a_tokenizer(server: tuple[str, list[dict[str, Any]], list[Reply]]) -> None:
    url, _, _ = server
    r = PolicyRequest(messages=(Message("user", ("x",)),), constraint=TurnConstraint(bounds=(840, 840)))
    with pytest.raises(ConfigError, match="tokenizer="):
        OpenAIPolicy(url, "rr").complete(r)


def test_frames_from_names() -> None:
    assert default_frame_for_name("lmsdss/RegionReasoner-7B") == FixedResizeFrame(840, 840)
    assert isinstance(default_frame_for_name("Qwen/Qwen2.5-VL-7B-Instruct"), SmartResizeFrame)
    assert default_frame_for_name("Qwen/Qwen3-VL-8B-Instruct") == NormalizedFrame(1000)
    smart = OpenAIPolicy("http://127.0.0.1:1", "Qwen2.5-VL")
    prepared = smart.prepare_image(load_image(Image.new("RGB", (1000, 700))))
    assert prepared.size == smart.frame.model_size((1000, 700)) and prepared.width % 28 == 0


def test_frame_follows_the_local_rules_when_the_checkpoint_is_at_hand(tiny_qwen25: object, tiny_qwen3: object) -> None:
    from regionreasoner.policies.transformers_policy import TransformersPolicy

    for path in (tiny_qwen25, tiny_qwen3):
        remote = OpenAIPolicy("http://127.0.0.1:1", "served-name", tokenizer=str(path))
        assert remote.frame == TransformersPolicy(path).frame  # type: ignore[arg-type]
