"""Bounded concurrency under real uvicorn: 429 with Retry-After beyond the queue, retries complete, shutdown drains."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from server_helpers import ALICE, LiveServer, Made, auth, png_data_url


def _dialogues(url: str, n: int) -> list[str]:
    return [
        httpx.post(f"{url}/v1/dialogues", json={"image": png_data_url()}, headers=auth(ALICE)).json()["id"]
        for _ in range(n)
    ]


def test_beyond_slots_and_queue_requests_get_429_and_retries_complete(
    make_app: Callable[..., Made], live: Callable[[Any], LiveServer]
) -> None:
    made = make_app(delay=0.15, max_concurrent_turns=1, max_queued_turns=1, queue_timeout_s=20)
    with live(made.app) as server:
        ids = _dialogues(server.url, 4)
        answers: dict[str, httpx.Response] = {}

        def ask(d: str) -> None:
            answers[d] = httpx.post(
                f"{server.url}/v1/dialogues/{d}/turns",
                json={"question": "right of bbox=[1, 1, 9, 9]"},
                headers=auth(ALICE),
                timeout=60,
            )

        threads = [threading.Thread(target=ask, args=(d,)) for d in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(r.status_code for r in answers.values())
        assert codes.count(200) == 2 and codes.count(429) == 2, codes  # one running, one queued, two refused
        refused = [d for d, r in answers.items() if r.status_code == 429]
        for d in refused:
            r = answers[d]
            assert r.headers["Retry-After"] == "1" and r.json()["kind"] == "OverloadedError"
            for _ in range(50):
                r = httpx.post(
                    f"{server.url}/v1/dialogues/{d}/turns",
                    json={"question": "right of bbox=[1, 1, 9, 9]"},
                    headers=auth(ALICE),
                    timeout=60,
                )
                if r.status_code != 429:
                    break
                time.sleep(float(r.headers["Retry-After"]) / 10)
            assert r.status_code == 200
        turns = [len(made.agent.memory.turns(d)) for d in ids]
        assert turns == [1, 1, 1, 1]  # none lost, none doubled
        text = httpx.get(f"{server.url}/metrics").text
        assert 'regionreasoner_errors_total{kind="OverloadedError"} 2.0' in text


def test_shutdown_lets_the_turn_in_flight_finish_and_be_stored(
    make_app: Callable[..., Made], live: Callable[[Any], LiveServer]
) -> None:
    made = make_app(delay=0.4)
    server = live(made.app).__enter__()
    d = _dialogues(server.url, 1)[0]
    result: dict[str, httpx.Response] = {}
    thread = threading.Thread(
        target=lambda: result.setdefault(
            "r",
            httpx.post(
                f"{server.url}/v1/dialogues/{d}/turns",
                json={"question": "right of bbox=[1, 1, 9, 9]"},
                headers=auth(ALICE),
                timeout=60,
            ),
        )
    )
    thread.start()
    time.sleep(0.5)  # the turn is running (each of its model calls takes 0.4 s)
    server.__exit__(None, None, None)  # what SIGTERM does: stop accepting, finish open requests, run the lifespan end
    thread.join()
    assert result["r"].status_code == 200
    assert len(made.agent.memory.turns(d)) == 1
    assert made.app.state.rr.gate.draining


def test_a_turn_past_the_timeout_is_504_and_stored_when_done(
    make_app: Callable[..., Made], live: Callable[[Any], LiveServer]
) -> None:
    made = make_app(delay=0.3, turn_timeout_s=0.2)
    with live(made.app) as server:
        d = _dialogues(server.url, 1)[0]
        r = httpx.post(
            f"{server.url}/v1/dialogues/{d}/turns",
            json={"question": "right of bbox=[1, 1, 9, 9]", "key": "k1"},
            headers=auth(ALICE),
            timeout=60,
        )
        assert r.status_code == 504 and r.json()["kind"] == "TimeoutError_" and "GET" in r.json()["hint"]
        for _ in range(100):
            if made.agent.memory.turns(d):
                break
            time.sleep(0.1)
        assert [t.key for t in made.agent.memory.turns(d)] == ["k1"]  # the slot was held until it finished


def test_a_policy_failure_is_502_with_the_recorded_turn(make_app: Callable[..., Made]) -> None:
    from fastapi.testclient import TestClient

    from regionreasoner.core.errors import PolicyError

    made = make_app()

    def down(*args: object, **kwargs: object) -> None:
        raise PolicyError("the model server refused the connection", hint="start it")

    made.agent.policy.complete = down  # type: ignore[method-assign,assignment]
    client = TestClient(made.app, raise_server_exceptions=False)
    d = client.post("/v1/dialogues", json={"image": png_data_url()}, headers=auth(ALICE)).json()["id"]
    r = client.post(f"/v1/dialogues/{d}/turns", json={"question": "right of bbox=[1, 1, 9, 9]"}, headers=auth(ALICE))
    assert r.status_code == 502 and r.json()["kind"] == "PolicyError" and r.json()["turn"] == 0
    assert "refused" in r.json()["detail"] and "Traceback" not in r.text
    assert made.agent.memory.turns(d)[0].status.value == "failed"
