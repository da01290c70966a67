"""``ScriptedPolicy``: serves pre-written turns through exactly the path a model's output takes.

Each script entry is the whole assistant message of one turn (all four sections).  A request with an empty
``assistant_prefix`` starts the next entry; every request is answered with the continuation of that entry after its
prefix, up to and including the first stop string (or to the end).  So the graph's nodes, the parser, citations,
failures and memory see a scripted turn exactly as they would see a model's.  Useful for app developers' own tests
and for ours; the text is served as written, so a malformed script produces a failed turn, as a model would.

``PiecePolicy`` serves one scripted piece per request instead, for dialogues with tool calls: the agent appends the
tool responses itself, so a script cannot know the full assistant message in advance.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from regionreasoner.core.errors import ConfigError, PolicyError
from regionreasoner.core.frames import FixedResizeFrame, Frame, frame_from_spec
from regionreasoner.policies.base import Completion, DeltaCallback, Policy, PolicyRequest

__all__ = ["PiecePolicy", "ScriptedPolicy"]


class ScriptedPolicy(Policy):
    """Replays ``turns`` (one full assistant message per turn) in order.

    ``frame`` is the frame the scripted coordinates are written in (default 840x840, as RegionReasoner).  Token
    counts are whitespace-separated words (there is no tokenizer).  ``requests`` records every request served
    (the last 10000 when ``repeat``).  ``repeat=True`` starts over after the last turn, for load tests and servers
    whose turns come from many dialogues at once; concurrent turns may then interleave, which is only safe when the
    texts they can draw share their prefixes (use one text, or texts of the same sections).
    """

    def __init__(
        self,
        turns: Sequence[str],
        *,
        frame: Frame | str | None = None,
        name: str = "scripted",
        prompt_template: str = "regionreasoner-eval",
        repeat: bool = False,
    ) -> None:
        if isinstance(turns, str):
            raise ConfigError("ScriptedPolicy takes a list of turn texts, not one string", hint="wrap it: [text]")
        if repeat and not turns:
            raise ConfigError("ScriptedPolicy(repeat=True) needs at least one turn text", hint="pass [text, ...]")
        self.turns = list(turns)
        self.repeat = repeat
        self.frame = frame_from_spec(frame) if isinstance(frame, str) else frame or FixedResizeFrame(840, 840)
        self.name = name
        self.prompt_template = prompt_template
        self.requests: list[PolicyRequest] = []
        self._next = 0
        self._current: str | None = None
        self._lock = threading.Lock()

    @property
    def remaining(self) -> int:
        """Turns not started yet."""
        return len(self.turns) - self._next

    def _serve(self, request: PolicyRequest) -> Completion:
        prefix = request.assistant_prefix
        if prefix == "":
            if self._next >= len(self.turns) and self.repeat:
                self._next = 0
                del self.requests[:-10000]
            if self._next >= len(self.turns):
                raise PolicyError(
                    f"ScriptedPolicy has no turn left (all {len(self.turns)} were served)",
                    hint="add a text per turn the dialogue asks",
                )
            self._current = self.turns[self._next]
            self._next += 1
        script = self._current
        if script is None or not script.startswith(prefix):
            raise PolicyError(
                "the request's assistant prefix is not a prefix of the scripted turn",
                hint="a scripted turn can only be continued from its own text",
            )
        rest = script[len(prefix) :]
        hits = [(rest.find(s), s) for s in request.stop if s and rest.find(s) >= 0]
        if hits:
            at, stop = min(hits)
            text, finish, matched = rest[: at + len(stop)], "stop", stop
        else:
            text, finish, matched = rest, "eos", None
        words_in = sum(len(m.text.split()) for m in request.messages) + len(prefix.split())
        return Completion(
            text=text,
            finish_reason=finish,  # type: ignore[arg-type]
            stop=matched,
            prompt_tokens=words_in,
            cached_tokens=len(prefix.split()),
            generated_tokens=len(text.split()),
        )

    def complete(self, request: PolicyRequest, *, on_delta: DeltaCallback | None = None) -> Completion:
        """Serve one request from the script."""
        with self._lock:
            self.requests.append(request)
            completion = self._serve(request)
        if on_delta is not None and completion.text:
            on_delta(completion.text)
        return completion

    def complete_batch(self, requests: Sequence[PolicyRequest]) -> list[Completion]:
        """Serve requests in order."""
        return [self.complete(r) for r in requests]


class PiecePolicy(Policy):
    """Serves the next scripted piece per request, in order; ``requests`` records every request served.

    ``turns`` holds one list of pieces per turn; a request with an empty ``assistant_prefix`` starts the next turn.
    Each later request's prefix must end with the piece served last, or hold a tool response after it (the agent
    appends those), so a script out of step with the agent fails with :class:`PolicyError`.  ``frame`` as for
    :class:`ScriptedPolicy`; token counts are whitespace-separated words.
    """

    def __init__(
        self,
        turns: Sequence[Sequence[str]],
        *,
        frame: Frame | str | None = None,
        name: str = "pieces",
        prompt_template: str = "regionreasoner-eval",
    ) -> None:
        if isinstance(turns, str) or any(isinstance(t, str) for t in turns):
            raise ConfigError("PiecePolicy takes a list of turns, each a list of pieces", hint="wrap them: [[a, b]]")
        self.turns = [list(t) for t in turns]
        self.frame = frame_from_spec(frame) if isinstance(frame, str) else frame or FixedResizeFrame(840, 840)
        self.name = name
        self.prompt_template = prompt_template
        self.requests: list[PolicyRequest] = []
        self._turn, self._piece = -1, 0
        self._lock = threading.Lock()

    def _serve(self, request: PolicyRequest) -> str:
        if request.assistant_prefix == "":
            self._turn, self._piece = self._turn + 1, 0
        if not 0 <= self._turn < len(self.turns) or self._piece >= len(self.turns[self._turn]):
            raise PolicyError("PiecePolicy has no piece left for this request", hint="add a piece per request")
        pieces = self.turns[self._turn]
        if self._piece:
            last, prefix = pieces[self._piece - 1], request.assistant_prefix
            if not (prefix.endswith(last) or "</tool_response>" in prefix[-300:]):
                raise PolicyError(
                    "the request's assistant prefix does not end with the piece served last",
                    hint="script the pieces in the order the agent asks for them",
                )
        self._piece += 1
        return pieces[self._piece - 1]

    def complete(self, request: PolicyRequest, *, on_delta: DeltaCallback | None = None) -> Completion:
        """Serve the next piece."""
        with self._lock:
            self.requests.append(request)
            text = self._serve(request)
        if on_delta is not None and text:
            on_delta(text)
        return Completion(text=text, finish_reason="stop", prompt_tokens=1, generated_tokens=len(text.split()))

    def complete_batch(self, requests: Sequence[PolicyRequest]) -> list[Completion]:
        """Serve requests in order."""
        return [self.complete(r) for r in requests]
