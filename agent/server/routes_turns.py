"""Routes that run turns (blocking and streamed, through the :class:`TurnGate`) and read them back."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from opentelemetry import context as otel_context
from opentelemetry import propagate
from sse_starlette import EventSourceResponse, ServerSentEvent

from regionreasoner.agent.api import StreamEvent
from regionreasoner.agent.server.deps import ServerState, principal, server_state
from regionreasoner.agent.server.problems import PROBLEM_RESPONSES, TimeoutError_, problem_response
from regionreasoner.agent.server.schemas import AskRequest, SpanOut, ToolCallList, ToolCallOut, TraceOut, TurnList
from regionreasoner.core.errors import PolicyError, TurnNotFoundError
from regionreasoner.core.frames import frame_from_spec
from regionreasoner.core.types import Turn

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["turns"], responses=PROBLEM_RESPONSES)

State = Annotated[ServerState, Depends(server_state)]
Who = Annotated[str, Depends(principal)]
Index = Annotated[int, PathParam(ge=0, le=10**6, description="0-based turn index")]
T = TypeVar("T")


def _in_context(fn: Callable[[], T], request: Request) -> Callable[[], T]:
    """``fn`` run under the request's W3C trace context, so the turn's spans are children of the caller's span."""
    carrier = propagate.extract(dict(request.headers))

    def call() -> T:
        token = otel_context.attach(carrier)
        try:
            return fn()
        finally:
            otel_context.detach(token)

    return call


async def _start(rr: ServerState, dialogue_id: str, fn: Callable[[], T]) -> asyncio.Task[T]:
    """Take a turn slot (429 now, when none comes), then run ``fn`` in a worker thread that holds it to the end."""
    stack = AsyncExitStack()
    await stack.enter_async_context(rr.gate.slot(dialogue_id))
    rr.metrics.running.set(rr.gate.running)

    async def job() -> T:
        async with stack:
            started = time.perf_counter()
            try:
                return await anyio.to_thread.run_sync(fn)
            finally:
                rr.metrics.turn_seconds.observe(time.perf_counter() - started)
                rr.metrics.running.set(rr.gate.running - 1)

    task = asyncio.create_task(job())
    # Kept until done: the turn finishes (and is stored) even if its request timed out or its client left.
    rr.tasks.add(task)
    task.add_done_callback(rr.tasks.discard)
    return task


def _count(rr: ServerState, turn: Turn) -> None:
    rr.metrics.turns.labels(status=turn.status.value).inc()


@router.post("/dialogues/{dialogue_id}/turns", response_model=Turn, summary="ask a question (blocking)")
async def ask(dialogue_id: str, body: AskRequest, request: Request, rr: State, who: Who) -> Turn:
    """Run one turn and return it as stored; a failed turn is a 200 with its status and problems."""
    await run_in_threadpool(rr.own, dialogue_id, who)
    session = rr.agent.dialogue(id=dialogue_id)

    def run() -> Turn:
        try:
            turn = session.ask(body.question, key=body.key)
        except PolicyError as exc:
            if isinstance(exc.turn, Turn):
                _count(rr, exc.turn)
            raise
        _count(rr, turn)
        return turn

    task = await _start(rr, dialogue_id, _in_context(run, request))
    try:
        return await asyncio.wait_for(asyncio.shield(task), rr.settings.turn_timeout_s)
    except TimeoutError:
        raise TimeoutError_(
            f"the turn took longer than {rr.settings.turn_timeout_s:g} s; it goes on and is stored when done",
            hint=f"read it later with GET /v1/dialogues/{dialogue_id}/turns, or ask again with the same key",
        ) from None


def _event(item: StreamEvent) -> ServerSentEvent:
    if item.kind == "delta":
        data = json.dumps({"section": item.section, "text": item.text}, ensure_ascii=False)
    elif item.kind == "node":
        data = json.dumps({"node": item.node})
    else:
        assert item.turn is not None
        data = item.turn.model_dump_json()
    return ServerSentEvent(data=data, event=item.kind)


@router.post(
    "/dialogues/{dialogue_id}/turns:stream",
    summary="ask a question (server-sent events)",
    responses={200: {"content": {"text/event-stream": {}}, "description": "delta, node, turn and error events"}},
)
async def ask_stream(dialogue_id: str, body: AskRequest, request: Request, rr: State, who: Who) -> EventSourceResponse:
    """Run one turn, streaming ``delta`` (section text), ``node`` (a node finished), then ``turn`` or ``error``."""
    await run_in_threadpool(rr.own, dialogue_id, who)
    session = rr.agent.dialogue(id=dialogue_id)
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

    def produce() -> None:
        # The worker thread hands events to the event loop; the queue is unbounded, but a turn's events are few
        # (a delta per generated piece), so a slow client cannot make it grow without end.
        try:
            for item in session.stream(body.question, key=body.key):
                if item.kind == "turn" and item.turn is not None:
                    _count(rr, item.turn)
                loop.call_soon_threadsafe(queue.put_nowait, ("event", item))
        except BaseException as exc:  # handed to the stream as an error event; the thread must not die silently
            if isinstance(exc, PolicyError) and isinstance(exc.turn, Turn):
                _count(rr, exc.turn)
            loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, ("end", None))

    await _start(rr, dialogue_id, _in_context(produce, request))

    async def events() -> AsyncIterator[ServerSentEvent]:
        while True:
            kind, value = await queue.get()
            if kind == "end":
                return
            if kind == "error":
                problem = problem_response(value, request_id=request.state.request_id)
                yield ServerSentEvent(data=bytes(problem.body).decode(), event="error")
            else:
                yield _event(value)

    return EventSourceResponse(events(), ping=15)


@router.get("/dialogues/{dialogue_id}/turns", response_model=TurnList, summary="the dialogue's turns")
def turns(dialogue_id: str, rr: State, who: Who) -> TurnList:
    """The stored turns, first first."""
    rr.own(dialogue_id, who)
    return TurnList(turns=rr.agent.memory.turns(dialogue_id))


@router.get("/dialogues/{dialogue_id}/turns/{index}", response_model=Turn, summary="one turn")
def turn(dialogue_id: str, index: Index, rr: State, who: Who) -> Turn:
    """Turn ``index`` (0-based)."""
    rr.own(dialogue_id, who)
    return rr.agent.memory.turn(dialogue_id, index)


@router.get("/dialogues/{dialogue_id}/turns/{index}/trace", response_model=TraceOut, summary="a turn's spans")
def trace(dialogue_id: str, index: Index, rr: State, who: Who) -> TraceOut:
    """The spans of the turn's trace that this server process kept (TurnNotFoundError when none is kept)."""
    rr.own(dialogue_id, who)
    stored = rr.agent.memory.turn(dialogue_id, index)
    kept = rr.spans.spans(stored.trace_id) if rr.spans is not None and stored.trace_id else None
    if kept is None or stored.trace_id is None:
        raise TurnNotFoundError(
            f"the trace of turn {index} is not kept by this server process",
            hint="read it from your OpenTelemetry collector (the turn's trace_id), or ask the server that ran it",
        )
    return TraceOut(trace_id=stored.trace_id, spans=[SpanOut.model_validate(s) for s in kept])


_CALL = re.compile(r"<tool_call>(.*?)</tool_call>\s*(?:<tool_response>(.*?)</tool_response>)?", re.S)


@router.get("/dialogues/{dialogue_id}/turns/{index}/tools", response_model=ToolCallList, summary="a turn's tool calls")
def tool_calls(dialogue_id: str, index: Index, rr: State, who: Who) -> ToolCallList:
    """The tool calls the turn's ``<think>`` made, with the responses; zoom calls link their crop."""
    from regionreasoner.core.errors import ToolError
    from regionreasoner.core.tool_calls import parse_tool_call

    rr.own(dialogue_id, who)
    stored = rr.agent.memory.turn(dialogue_id, index)
    size = rr.agent.memory.image_info(stored.image)
    calls: list[ToolCallOut] = []
    for match in _CALL.finditer(stored.raw_text):
        try:
            call = parse_tool_call(match.group(1))
        except ToolError:
            calls.append(ToolCallOut(name="(unreadable)", arguments={}, response=match.group(2)))
            continue
        crop = None
        box = call.arguments.get("bbox_2d")
        if (
            call.name == "zoom"
            and isinstance(box, list)
            and len(box) == 4
            and all(isinstance(v, int | float) for v in box)
        ):
            x1, y1, x2, y2 = frame_from_spec(stored.frame).box_from_model(tuple(box), (size.width, size.height))
            version = next((v.number for v in rr.agent.memory.versions(dialogue_id) if v.image == stored.image), None)
            crop = f"/v1/dialogues/{dialogue_id}/crop?box={x1:.1f},{y1:.1f},{x2:.1f},{y2:.1f}"
            if version is not None:
                crop += f"&version={version}"
        calls.append(ToolCallOut(name=call.name, arguments=dict(call.arguments), response=match.group(2), crop=crop))
    return ToolCallList(calls=calls)
