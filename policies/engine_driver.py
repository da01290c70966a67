"""Driving engines that take one grammar per request (vLLM, OpenAI-compatible servers) through a turn.

Such an engine cannot keep a token-level constraint between calls, so a constrained request is served as a chain of
engine calls, one per segment of :class:`~regionreasoner.policies.constraints.TurnMachine` (each section, then the
answer's pieces), each call given the segment's grammar and ending when that grammar is complete.  The language is
exactly the one ``TransformersPolicy`` enforces token by token: corners ordered, points inside boxes, sections
within their limits.  :class:`RowDriver` holds one request's progress; backends batch the calls of many drivers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from regionreasoner.core.errors import PolicyError
from regionreasoner.policies.base import Completion, FinishReason, PolicyRequest, Timings
from regionreasoner.policies.constraints import TurnMachine

__all__ = ["EngineCall", "EngineResult", "RowDriver"]


@dataclass(frozen=True)
class EngineCall:
    """One engine request: continue ``prefix`` (text) / ``prefix_ids`` under ``grammar`` or until a stop string."""

    prefix: str
    prefix_ids: tuple[int, ...] | None
    grammar: str | None
    stop: tuple[str, ...]
    max_tokens: int


@dataclass(frozen=True)
class EngineResult:
    """What an engine returned for one call (``text`` includes a matched stop string)."""

    text: str
    token_ids: tuple[int, ...] | None
    finish: Literal["stop", "length", "eos"]
    generated_tokens: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    seconds: float = 0.0


@dataclass
class RowDriver:
    """Progress of one request through its engine calls.

    ``machine`` is the turn's segment machine (already advanced over the request's prefix), or None for free
    decoding (one engine call with the request's stop strings).  ``prefix_ids`` are the prompt's token ids of the
    text so far when the backend keeps them (exact continuation), else None (the engine re-tokenizes text).
    """

    request: PolicyRequest
    machine: TurnMachine | None
    prefix_ids: tuple[int, ...] | None = None
    text: str = ""
    ids: list[int] = field(default_factory=list)
    finish: FinishReason | None = None
    stop_hit: str | None = None
    prompt_tokens: int = 0
    cached_tokens: int = 0
    seconds: float = 0.0
    calls: int = 0
    generated: int = 0
    """Tokens generated so far (as the engine counts them)."""

    def next_call(self) -> EngineCall | None:
        """The next engine call, or None when the request is finished."""
        if self.finish is not None:
            return None
        remaining = self.request.sampling.max_new_tokens - self.generated
        if remaining <= 0:
            self.finish = "length"
            return None
        prefix_ids = None if self.prefix_ids is None else (*self.prefix_ids, *self.ids)
        grammar = self.machine.ebnf if self.machine is not None else None
        stop = () if self.machine is not None else self.request.stop
        return EngineCall(
            prefix=self.request.assistant_prefix + self.text,
            prefix_ids=prefix_ids,
            grammar=grammar,
            stop=stop,
            max_tokens=remaining,
        )

    def feed(self, result: EngineResult) -> None:
        """Take an engine result: advance the machine, check stop strings, decide whether the request is done."""
        self.calls += 1
        self.prompt_tokens += result.prompt_tokens
        self.cached_tokens += result.cached_tokens
        self.seconds += result.seconds
        self.generated += result.generated_tokens
        if result.token_ids is not None:
            self.ids.extend(result.token_ids)
        before = len(self.text)
        self.text += result.text
        if self.machine is not None:
            # Token ids replay exactly what the engine's grammar matched; decoded text can be lossy (a token that
            # ends inside a multi-byte character decodes to U+FFFD), so it is only the fallback.
            if result.token_ids is not None:
                accepted = all(self.machine.accept_token(t) for t in result.token_ids)
            else:
                accepted = self.machine.accept_text(result.text)
            if not accepted:
                raise PolicyError(
                    "the engine's output does not follow the grammar it was given",
                    hint="the server must support structured outputs with EBNF grammars (vLLM: xgrammar backend)",
                )
            if result.finish == "length":
                self.finish = "length"
                return
        for s in self.request.stop:
            at = self.text.find(s, max(0, before - len(s) + 1))
            if at >= 0:
                self.text = self.text[: at + len(s)]
                self.finish, self.stop_hit = "stop", s
                return
        if self.machine is not None:
            if self.machine.done:
                self.finish = "constraint"
            return
        self.finish = "length" if result.finish == "length" else "eos" if result.finish == "eos" else "stop"

    def completion(self) -> Completion:
        """The request's completion (token ids when the engine gave them)."""
        return Completion(
            text=self.text,
            finish_reason=self.finish or "length",
            stop=self.stop_hit,
            prompt_tokens=self.prompt_tokens,
            cached_tokens=self.cached_tokens,
            generated_tokens=self.generated,
            timings=Timings(total_ms=self.seconds * 1e3, decode_ms=self.seconds * 1e3),
            token_ids=tuple(self.ids) if self.prefix_ids is not None else None,
        )
