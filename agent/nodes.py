"""The nodes of the turn graph (``resolve`` lives in :mod:`regionreasoner.agent.resolve`).

Each section node continues the one assistant message of the turn with its piece (stopping at its closing tag);
``answer`` writes the answer, parses the whole message and maps boxes to original pixels; ``ground`` adds masks;
``remember`` stores the turn in one transaction.  A piece that breaks (token budget spent, model ended early)
leaves the rest of the turn to the parser: the turn is recorded as failed with its problems, and the dialogue goes on.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from regionreasoner.agent.context import Context, live, resources
from regionreasoner.agent.resolve import resolve_turn
from regionreasoner.agent.state import State
from regionreasoner.agent.tracing import TurnTracing, span_attributes
from regionreasoner.core.citations import check_citations
from regionreasoner.core.errors import ToolError
from regionreasoner.core.geometry import Box, Point
from regionreasoner.core.protocol import parse_action
from regionreasoner.core.types import (
    Citation,
    Problem,
    ProblemKind,
    RegionDraft,
    Severity,
    TurnDraft,
    TurnStatus,
    Usage,
)
from regionreasoner.policies.base import Completion, ImageSlot, Message, Policy, PolicyRequest
from regionreasoner.tools.base import Tool

__all__ = ["answer", "ground", "remember", "resolve", "section_node", "tools"]

_BROKEN = ("length", "eos")


def _context(runtime: Runtime[Context]) -> Context:
    return runtime.context if runtime.context is not None else Context()


def _tracing(ctx: Context) -> TurnTracing:
    app = live(ctx)
    return TurnTracing(app.tracer_provider if app else None, capture_sections=ctx.capture_sections)


def _tools(ctx: Context) -> list[Tool]:
    app = live(ctx)
    return app.tools if app else []


def _system(policy: Policy) -> str:
    return type(policy).__name__.removesuffix("Policy").lower() or "policy"


def resolve(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Open the turn span and prepare the turn (see :func:`~regionreasoner.agent.resolve.resolve_turn`)."""
    ctx = _context(runtime)
    tr = _tracing(ctx)
    key = state.key or uuid.uuid4().hex
    tr.start_turn(key, {"regionreasoner.question": state.question if ctx.capture_sections else ""})
    with tr.node(key, "resolve") as span:
        update = resolve_turn(state, ctx)
        update["turn_key"] = key
        span.set_attributes(
            span_attributes(
                {
                    "regionreasoner.dialogue.id": update["dialogue_id"],
                    "regionreasoner.frame": update["frame"],
                    "regionreasoner.references": update["referenced"],
                }
            )
        )
    turn_span = tr.turn_span(key)
    if turn_span is not None:
        turn_span.set_attributes(
            {"regionreasoner.dialogue.id": update["dialogue_id"], "regionreasoner.frame": update["frame"]}
        )
    return update


def _generate(state: State, ctx: Context, tr: TurnTracing, tag: str, stop: tuple[str, ...]) -> tuple[Completion, str]:
    res = resources()
    policy, memory = res.policy(ctx), res.memory(ctx)
    image = res.image(memory, state.image_hash)
    request = PolicyRequest(
        messages=(Message("user", (ImageSlot(0), state.prompt)),),
        images=(image,),
        assistant_prefix=state.text,
        stop=stop,
        constraint=ctx.constraint(tuple(state.sections), (state.bounds[0], state.bounds[1])),
        sampling=ctx.sampling(),
    )
    writer = get_stream_writer()
    request_attrs = {"gen_ai.request.max_tokens": ctx.max_new_tokens, "gen_ai.request.temperature": ctx.temperature}
    with tr.model_call(system=_system(policy), model=policy.name, section=tag, request=request_attrs) as span:
        completion = policy.complete(
            request, on_delta=lambda delta: writer({"type": "delta", "section": tag, "text": delta})
        )
        span.set_attributes(
            {
                "gen_ai.usage.input_tokens": completion.prompt_tokens,
                "gen_ai.usage.output_tokens": completion.generated_tokens,
                "gen_ai.response.finish_reasons": [completion.finish_reason],
                "regionreasoner.usage.cached_tokens": completion.cached_tokens,
            }
        )
        tr.section_event(span, tag, completion.text)
    return completion, policy.name


def _after_piece(state: State, ctx: Context, tag: str, completion: Completion) -> dict[str, Any]:
    problems = list(state.problems)
    if completion.finish_reason == "length":
        problems.append(
            Problem(
                kind=ProblemKind.TRUNCATED,
                severity=Severity.ERROR,
                message=f"<{tag}> did not finish within max_new_tokens={ctx.max_new_tokens}",
                section=tag,
            )
        )
    usage = state.usage + Usage(
        prompt_tokens=completion.prompt_tokens,
        cached_tokens=completion.cached_tokens,
        generated_tokens=completion.generated_tokens,
        model_calls=1,
        latency_ms=completion.timings.total_ms,
    )
    return {
        "text": state.text + completion.text,
        "finish": completion.finish_reason,
        "problems": problems,
        "usage": usage,
    }


def section_node(tag: str) -> Any:
    """The node that writes free-text section ``tag`` (scene, focus or think)."""

    def node(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
        ctx = _context(runtime)
        tr = _tracing(ctx)
        with tr.node(state.turn_key, tag):
            if state.finish in _BROKEN or tag not in state.sections:
                return {}
            stop: tuple[str, ...] = (f"</{tag}>",)
            if tag == "think" and _tools(ctx) and state.tool_calls < ctx.max_tool_iterations:
                stop += ("</tool_call>",)
            completion, _ = _generate(state, ctx, tr, tag, stop)
            return _after_piece(state, ctx, tag, completion)

    node.__name__ = tag
    node.__doc__ = f"Write the <{tag}> section (continuing the turn's assistant message)."
    return node


def tools(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Run the tool call that ended the last think piece and append its response to the assistant message."""
    ctx = _context(runtime)
    tr = _tracing(ctx)
    with tr.node(state.turn_key, "tools"):
        start, end = state.text.rfind("<tool_call>"), state.text.rfind("</tool_call>")
        problems = list(state.problems)
        raw = state.text[start + len("<tool_call>") : end].strip() if 0 <= start < end else ""
        with tr.tool_call("unknown", raw) as span:
            try:
                call = json.loads(raw)
                if not isinstance(call, dict) or not isinstance(call.get("name"), str):
                    raise ToolError('a tool call is {"name": ..., "arguments": {...}}')
                span.update_name(f"execute_tool {call['name']}")
                span.set_attribute("gen_ai.tool.name", call["name"])
                by_name = {t.name: t for t in _tools(ctx)}
                if call["name"] not in by_name:
                    raise ToolError(f"no tool named {call['name']!r}", hint=f"tools: {sorted(by_name)}")
                res = resources()
                image = res.image(res.memory(ctx), state.image_hash)
                observation = by_name[call["name"]](image, call.get("arguments") or {}).text
            except (json.JSONDecodeError, ToolError) as exc:
                observation = f"error: {exc}"
                problems.append(Problem(kind=ProblemKind.TOOL_ERROR, severity=Severity.WARNING, message=str(exc)))
                span.set_attribute("regionreasoner.tool.error", str(exc))
        text = state.text + f"\n<tool_response>{observation}</tool_response>\n"
        return {"text": text, "tool_calls": state.tool_calls + 1, "problems": problems, "finish": "stop"}


def _region_drafts(objects: list[Any], size: tuple[int, int], policy: Policy) -> list[RegionDraft]:
    w, h = size
    drafts = []
    for obj in objects:
        box = policy.frame.box_from_model(obj.box, size).clip(w, h)
        point = policy.frame.point_from_model(obj.point, size) if obj.point is not None else None
        if point is not None:
            point = Point(min(max(point.x, 0.0), w), min(max(point.y, 0.0), h))
        drafts.append(RegionDraft(box=box, point=point, label=obj.label))
    return drafts


def _think_warning(kind: ProblemKind, what: str) -> Problem:
    return Problem(kind=kind, severity=Severity.WARNING, message=f"<think> {what}", section="think")


def answer(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Write <answer>, parse the whole message, map boxes to original pixels and check citations."""
    ctx = _context(runtime)
    tr = _tracing(ctx)
    with tr.node(state.turn_key, "answer") as span:
        update: dict[str, Any] = {}
        if state.finish not in _BROKEN:
            completion, _ = _generate(state, ctx, tr, "answer", ("</answer>",))
            update = _after_piece(state, ctx, "answer", completion)
        text = update.get("text", state.text)
        problems: list[Problem] = list(update.get("problems", state.problems))
        res = resources()
        policy, memory = res.policy(ctx), res.memory(ctx)
        info = res.image_info(memory, state.image_hash)
        size = (info.width, info.height)
        parsed = parse_action(
            text,
            bounds=(state.bounds[0], state.bounds[1]),
            expect_focus=bool(state.references),
            required=tuple(s for s in state.sections if s != "focus"),
            max_objects=ctx.max_objects,
        )
        problems.extend(parsed.problems)
        checks, missing = check_citations(parsed.citations, state.references)
        citations = []
        for c in checks:
            box = policy.frame.box_from_model(c.model_box, size).clip(*size)
            if not box.is_valid():
                continue
            region = c.region if c.region and c.region.startswith("R") else None
            citations.append(Citation(model_box=c.model_box, box=box, region=region, verified=c.verified))
            if not c.verified:
                cited = [int(v) for v in c.model_box]
                problems.append(
                    _think_warning(
                        ProblemKind.HALLUCINATED_CITATION, f"cites bbox={cited}, which the question does not"
                    )
                )
        if state.references and missing and not any(c.verified for c in checks):
            problems.append(
                _think_warning(
                    ProblemKind.MISSING_CITATION, f"does not cite the referenced box of {', '.join(missing)}"
                )
            )
        ok = parsed.ok and not any(p.severity is Severity.ERROR for p in problems)
        regions = _region_drafts(parsed.objects, size, policy) if ok else []
        span.set_attributes(
            {"regionreasoner.turn.status": "ok" if ok else "failed", "regionreasoner.region.count": len(regions)}
        )
        return {
            **update,
            "text": text,
            "problems": problems,
            "regions": regions,
            "citations": citations,
            "parsed_sections": parsed.sections,
            "status": TurnStatus.OK.value if ok else TurnStatus.FAILED.value,
        }


def ground(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Add masks to the answer's regions when a segmenter is configured (box + point prompts)."""
    ctx = _context(runtime)
    tr = _tracing(ctx)
    with tr.node(state.turn_key, "ground"):
        app = live(ctx)
        segmenter = app.segmenter if app else None
        if segmenter is None or not state.regions:
            return {}
        res = resources()
        image = res.image(res.memory(ctx), state.image_hash)
        boxes: list[Box] = [r.box for r in state.regions]
        points: list[Point | None] = [r.point for r in state.regions]
        with tr.tool_call(type(segmenter).__name__, json.dumps([list(b) for b in boxes])):
            masks = segmenter.segment(image, boxes, points)
        return {"regions": [r.model_copy(update={"mask": m}) for r, m in zip(state.regions, masks, strict=True)]}


def remember(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Store the turn (regions named R(n+1).., citations) in one transaction; idempotent per turn key."""
    ctx = _context(runtime)
    tr = _tracing(ctx)
    t0 = time.perf_counter()
    with tr.node(state.turn_key, "remember"):
        res = resources()
        memory, policy = res.memory(ctx), res.policy(ctx)
        turn_span = tr.turn_span(state.turn_key)
        trace_id = f"{turn_span.get_span_context().trace_id:032x}" if turn_span is not None else None
        draft = TurnDraft(
            question=state.question,
            rendered_question=state.rendered_question,
            image=state.image_hash,
            frame=state.frame,
            sections=state.parsed_sections,
            raw_text=state.text,
            regions=state.regions,
            referenced=state.referenced,
            citations=state.citations,
            status=TurnStatus(state.status),
            problems=state.problems,
            usage=state.usage,
            model=policy.name,
            trace_id=trace_id if trace_id and trace_id != "0" * 32 else None,
            key=state.turn_key,
        )
        turn = memory.append_turn(state.dialogue_id, draft)
    tr.end_turn(
        state.turn_key,
        span_attributes(
            {
                "regionreasoner.dialogue.id": turn.dialogue_id,
                "regionreasoner.turn.index": turn.index,
                "regionreasoner.turn.status": turn.status.value,
                "regionreasoner.region.ids": [r.id for r in turn.regions],
                "regionreasoner.region.count": len(turn.regions),
                "regionreasoner.references": turn.referenced,
                "regionreasoner.citations.verified": sum(c.verified for c in turn.citations),
                "regionreasoner.citations.hallucinated": sum(not c.verified for c in turn.citations),
                "regionreasoner.problems": [p.kind.value for p in turn.problems],
                "gen_ai.usage.input_tokens": turn.usage.prompt_tokens,
                "gen_ai.usage.output_tokens": turn.usage.generated_tokens,
                "regionreasoner.usage.cached_tokens": turn.usage.cached_tokens,
                "regionreasoner.remember_ms": (time.perf_counter() - t0) * 1e3,
            }
        ),
    )
    return {"turn": turn}
