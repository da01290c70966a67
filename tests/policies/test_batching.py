"""BatchingPolicy merges concurrent calls into batches and keeps every caller's own answer."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from regionreasoner.core.errors import ConfigError, PolicyError
from regionreasoner.core.frames import PixelFrame
from regionreasoner.policies.base import Completion, Message, Policy, PolicyRequest
from regionreasoner.policies.batching import BatchingPolicy


class EchoPolicy(Policy):
    """An explicit fake: answers each request with its own text, records batch sizes, fails on 'boom'."""

    name = "echo"
    frame = PixelFrame()

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def complete_batch(self, requests: Sequence[PolicyRequest]) -> list[Completion]:
        self.sizes.append(len(requests))
        time.sleep(0.01)
        if any(r.messages[0].text == "boom" for r in requests):
            raise PolicyError("boom")
        return [Completion(text=r.messages[0].text, finish_reason="eos") for r in requests]


def ask(policy: Policy, text: str) -> str:
    return policy.complete(PolicyRequest(messages=(Message("user", (text,)),))).text


def test_concurrent_calls_become_batches() -> None:
    inner = EchoPolicy()
    policy = BatchingPolicy(inner, max_batch=4, wait_ms=50)
    answers: dict[int, str] = {}

    def worker(i: int) -> None:
        answers[i] = ask(policy, f"q{i}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    policy.close()
    assert answers == {i: f"q{i}" for i in range(8)}
    assert sum(inner.sizes) == 8 and max(inner.sizes) > 1 and max(inner.sizes) <= 4


def test_errors_reach_the_caller_and_the_worker_survives() -> None:
    policy = BatchingPolicy(EchoPolicy(), wait_ms=1)
    with pytest.raises(PolicyError, match="boom"):
        ask(policy, "boom")
    assert ask(policy, "fine") == "fine"
    policy.close()
    with pytest.raises(ConfigError, match="closed"):
        ask(policy, "late")
    with pytest.raises(ConfigError):
        BatchingPolicy(EchoPolicy(), max_batch=0)
