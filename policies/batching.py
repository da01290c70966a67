"""``BatchingPolicy``: merges concurrent ``complete`` calls from several threads into ``complete_batch`` calls.

The agent runs one turn at a time per dialogue; an evaluation runs many dialogues in worker threads.  Each worker's
node calls ``complete``; this wrapper collects the calls that arrive within ``wait_ms`` of each other (at most
``max_batch``) and serves them with one ``complete_batch`` of the wrapped policy, so vLLM (and TransformersPolicy's
padded batches) see batches across dialogues while every dialogue keeps its own order.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future

from regionreasoner.core.errors import ConfigError
from regionreasoner.policies.base import Completion, DeltaCallback, Policy, PolicyRequest

__all__ = ["BatchingPolicy"]


class BatchingPolicy(Policy):
    """Wraps ``policy``; see the module docstring.  Streaming callbacks are called once per completion."""

    def __init__(self, policy: Policy, *, max_batch: int = 8, wait_ms: float = 5.0) -> None:
        if max_batch < 1 or wait_ms < 0:
            raise ConfigError(f"max_batch={max_batch}, wait_ms={wait_ms}: need max_batch >= 1 and wait_ms >= 0")
        self.inner = policy
        self.name = policy.name
        self.frame = policy.frame
        self.prompt_template = policy.prompt_template
        self.max_batch = max_batch
        self.wait = wait_ms / 1000.0
        self.batches: list[int] = []
        """Sizes of the batches served so far (for reports and tests)."""
        self._pending: list[tuple[PolicyRequest, Future[Completion]]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._worker = threading.Thread(target=self._loop, name="batching-policy", daemon=True)
        self._worker.start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed and not self._pending:
                    return
                self._cond.wait_for(lambda: len(self._pending) >= self.max_batch or self._closed, timeout=self.wait)
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            self.batches.append(len(batch))
            try:
                results = self.inner.complete_batch([r for r, _ in batch])
            except BaseException as exc:  # every waiting caller gets the error, the worker stays alive
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                future.set_result(result)

    def complete(self, request: PolicyRequest, *, on_delta: DeltaCallback | None = None) -> Completion:
        """Queue the request and wait for its completion (served in a batch with concurrent requests)."""
        future: Future[Completion] = Future()
        with self._cond:
            if self._closed:
                raise ConfigError("BatchingPolicy is closed")
            self._pending.append((request, future))
            self._cond.notify_all()
        completion = future.result()
        if on_delta is not None and completion.text:
            on_delta(completion.text)
        return completion

    def complete_batch(self, requests: Sequence[PolicyRequest]) -> list[Completion]:
        """Serve a batch directly (bypassing the queue)."""
        return self.inner.complete_batch(requests)

    def close(self) -> None:
        """Stop the worker (pending requests are served first); the wrapped policy stays open."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._worker.join(timeout=60)
