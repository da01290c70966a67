"""``TurnGate``: at most N turns run at once, at most M wait; beyond that a 429 with Retry-After.

Turns run in worker threads (the agent's API is synchronous).  A slot is held until the worker finishes, even when
the request that started it has timed out or its client went away, so the bound is on work really running, not on
open requests.  Turns of one dialogue run one after another in this process (a per-dialogue lock), so two requests
racing on one dialogue do not both compute a turn that only one can store.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from regionreasoner.agent.server.problems import OverloadedError, UnavailableError

__all__ = ["TurnGate"]


class TurnGate:
    """Bounded concurrency with a bounded queue.  ``slots`` running, ``queue`` waiting, waits up to ``timeout_s``."""

    def __init__(self, *, slots: int, queue: int, timeout_s: float, retry_after_s: int) -> None:
        self.slots = slots
        self.queue = queue
        self.timeout_s = timeout_s
        self.retry_after_s = retry_after_s
        self.running = 0
        self.waiting = 0
        self.draining = False
        self._semaphore: asyncio.Semaphore | None = None
        self._idle: asyncio.Event | None = None
        self._dialogue_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _parts(self) -> tuple[asyncio.Semaphore, asyncio.Event]:
        # Created on first use, inside the server's event loop.
        if self._semaphore is None or self._idle is None:
            self._semaphore = asyncio.Semaphore(self.slots)
            self._idle = asyncio.Event()
            self._idle.set()
        return self._semaphore, self._idle

    def _refuse(self, why: str) -> OverloadedError:
        return OverloadedError(
            f"the server is busy ({why}: {self.running} turns running, {self.waiting} waiting)",
            hint=f"retry after {self.retry_after_s} s",
            retry_after=self.retry_after_s,
        )

    @asynccontextmanager
    async def slot(self, dialogue_id: str) -> AsyncIterator[None]:
        """Hold a turn slot (and the dialogue's lock) for the body; raises OverloadedError or UnavailableError."""
        if self.draining:
            raise UnavailableError("the server is shutting down", hint="retry on another server or in a moment")
        semaphore, idle = self._parts()
        lock = self._dialogue_locks.get(dialogue_id)
        if lock is None:
            lock = asyncio.Lock()
            self._dialogue_locks[dialogue_id] = lock
        busy = semaphore.locked() or lock.locked()
        if busy and self.waiting >= self.queue:
            raise self._refuse("queue full")
        self.waiting += 1
        acquired_lock = acquired_slot = False
        try:
            async with asyncio.timeout(self.timeout_s):
                await lock.acquire()
                acquired_lock = True
                await semaphore.acquire()
                acquired_slot = True
        except TimeoutError:
            if acquired_lock:
                lock.release()
            raise self._refuse(f"no slot within {self.timeout_s:g} s") from None
        finally:
            self.waiting -= 1
        assert acquired_slot
        self.running += 1
        idle.clear()
        try:
            yield
        finally:
            self.running -= 1
            semaphore.release()
            lock.release()
            if self.running == 0:
                idle.set()

    async def drain(self, grace_s: float) -> bool:
        """Refuse new turns and wait up to ``grace_s`` for running ones; True when none is left running."""
        self.draining = True
        _, idle = self._parts()
        try:
            async with asyncio.timeout(grace_s):
                await idle.wait()
        except TimeoutError:
            return False
        return True
