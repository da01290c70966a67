"""The nodes of the turn graph (``resolve`` lives in :mod:`regionreasoner.agent.resolve`).

Each section node continues the one assistant message of the turn with its piece (stopping at its closing tag);
``answer`` writes the answer, parses the whole message and maps boxes to original pixels; ``ground`` adds masks;
``remember`` stores the turn in one transaction.  A piece that breaks (token budget spent, model ended early)
leaves the rest of the turn to the parser: the turn is recorded as failed with its problems, and the dialogue goes on.

Every node returns a :class:`~regionreasoner.agent.state.TurnUpdate`; the turn in progress is the immutable
:class:`~regionreasoner.agent.state.TurnWork`, updated with ``dataclasses.replace``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from regionreasoner.agent.context import Context, live, resources
from regionreasoner.agent.resolve import resolve_turn
from regionreasoner.agent.state import SectionTag, State, TurnUpdate, TurnWork
from regionreasoner.agent.tracing import TurnTracing, span_attributes
from regionreasoner.core.answer_map import coordinate_rule, map_answer
from regionreasoner.core.citations import match_references
from regionreasoner.core.errors import ToolError
from regionreasoner.core.frames import Frame
from regionreasoner.core.geometry import Box, Point
from regionreasoner.core.protocol import parse_action, parse_tool_call
from regionreasoner.core.types import (
    Citation,
    Problem,
    ProblemKind,
    Severity,
    TurnDraft,
    TurnStatus,
    Usage,
)
from regionreasoner.policies.base import Completion, ImageSlot, Message, Policy, PolicyRequest
from regionreasoner.tools.base import Tool

__all__ = ["answer", "ground", "remember", "resolve", "section_node", "tools"]


class Node(Protocol):
    """A node of the turn graph: the state and the runtime in, the fields it writes out."""

    def __call__(self, state: State, runtime: Runtime[Context]) -> TurnUpdate: ...


_SURROGATE = re.compile("[\ud800-\udfff]")
"""A lone surrogate code point (valid in a Python str, invalid in UTF-8)."""


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


def resolve(state: State, runtime: Runtime[Context]) -> TurnUpdate:
    """Make the turn key, open the turn span, prepare the turn (:func:`regionreasoner.agent.resolve.resolve_turn`)."""
    ctx = _context(runtime)
    tr = _tracing(ctx)
    key = state.key or uuid.uuid4().hex  # the one place a turn key is made
    tr.start_turn(key, {"regionreasoner.question": state.question if ctx.capture_sections else ""})
    with tr.node(key, "resolve") as span:
        update = resolve_turn(state, ctx, key)
        work = update["work"]
        span.set_attributes(
            span_attributes(
                {
                    "regionreasoner.dialogue.id": update["dialogue_id"],
                    "regionreasoner.frame": work.frame,
                    "regionreasoner.references": work.referenced,
                    "regionreasoner.turn.replayed": update["turn"] is not None,
                }
            )
        )
    turn_span = tr.turn_span(key)
    if turn_span is not None:
        turn_span.set_attributes(
            {"regionreasoner.dialogue.id": update["dialogue_id"], "regionreasoner.frame": work.frame}
        )
    return update


def _generate(work: TurnWork, ctx: Context, tr: TurnTracing, tag: SectionTag, stop: tuple[str, ...]) -> Completion:
    res = resources()
    policy, memory = res.policy(ctx), res.memory(ctx)
    image = res.image(memory, work.image_hash)
    request = PolicyRequest(
        messages=(Message("user", (ImageSlot(0), work.prompt)),),
        images=(image,),
        assistant_prefix=work.text,
        stop=stop,
        constraint=ctx.constraint(work.sections, work.bounds),
        sampling=ctx.sampling(),
    )
    # A policy that fails (server down, timeouts, out of memory) fails the call, not the model: the turn is not
    # recorded (stored under its key, a failed turn would be replayed instead of re-run), the error is raised from
    # ask() with what to do, and nothing of the turn is stored (docs/reliability.md, "Faults").
    # Imported here: this fix was confined to this function (they may move to the module's imports).
    from langgraph.errors import GraphBubbleUp

    from regionreasoner.core.errors import PolicyError, RegionReasonerError

    unfinished = (
        f"the policy failed in <{tag}> of turn {work.key!r}; nothing of the turn is stored: "
        f"once the cause is fixed, ask again with key={work.key!r} to run it again"
    )
    writer = get_stream_writer()
    request_attrs = {"gen_ai.request.max_tokens": ctx.max_new_tokens, "gen_ai.request.temperature": ctx.temperature}
    try:
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
    except RegionReasonerError as exc:
        exc.add_note(unfinished)  # its type (PolicyError, PromptTooLongError, ...) and message stay as they are
        raise
    except GraphBubbleUp:
        raise  # LangGraph's own control flow (interrupts), not a failure
    except Exception as exc:
        # WHY: no builtin exception may escape the public API; a backend's untyped one becomes the typed PolicyError.
        raise PolicyError(
            f"{type(policy).__name__} failed in <{tag}> of turn {work.key!r}: {type(exc).__name__}: {exc}",
            hint=f"nothing of the turn is stored; once the cause is fixed, ask again with key={work.key!r}",
        ) from exc
    return completion


def _after_piece(work: TurnWork, ctx: Context, tag: SectionTag, completion: Completion) -> TurnWork:
    """``work`` with the piece appended, its usage added, and a truncation or invalid text recorded."""
    problems = work.problems
    piece = _SURROGATE.sub("\ufffd", completion.text)
    if piece != completion.text:
        # A lone surrogate is not valid Unicode: no database, JSON encoder or tokenizer takes it, so it would break the
        # turn at storage time, after the model ran. Replace it where model text enters the agent, and say so.
        problems += (
            Problem(
                kind=ProblemKind.INVALID_TEXT,
                severity=Severity.WARNING,
                message=f"<{tag}> held invalid Unicode (a lone surrogate), replaced with U+FFFD",
                section=tag,
            ),
        )
    if completion.finish_reason == "length":
        problems += (
            Problem(
                kind=ProblemKind.TRUNCATED,
                severity=Severity.ERROR,
                message=f"<{tag}> did not finish within max_new_tokens={ctx.max_new_tokens}",
                section=tag,
            ),
        )
    usage = work.usage + Usage(
        prompt_tokens=completion.prompt_tokens,
        cached_tokens=completion.cached_tokens,
        generated_tokens=completion.generated_tokens,
        model_calls=1,
        latency_ms=completion.timings.total_ms,
    )
    return replace(work, text=work.text + piece, finish=completion.finish_reason, problems=problems, usage=usage)


def section_node(tag: SectionTag) -> Node:
    """The node that writes free-text section ``tag`` (scene, focus or think)."""

    def node(state: State, runtime: Runtime[Context]) -> TurnUpdate:
        ctx = _context(runtime)
        tr = _tracing(ctx)
        work = state.work
        with tr.node(work.key, tag):
            if work.broken or tag not in work.sections:
                return {}
            stop: tuple[str, ...] = (f"</{tag}>",)
            if tag == "think" and _tools(ctx) and work.tool_calls < ctx.max_tool_iterations:
                stop += ("</tool_call>",)
            return {"work": _after_piece(work, ctx, tag, _generate(work, ctx, tr, tag, stop))}

    node.__name__ = tag
    node.__doc__ = f"Write the <{tag}> section (continuing the turn's assistant message)."
    return node


def tools(state: State, runtime: Runtime[Context]) -> TurnUpdate:
    """Run the tool call that ended the last think piece and append its response to the assistant message."""
    ctx = _context(runtime)
    tr = _tracing(ctx)
    work = state.work
    with tr.node(work.key, "tools"):
        start, end = work.text.rfind("<tool_call>"), work.text.rfind("</tool_call>")
        problems = work.problems
        raw = work.text[start + len("<tool_call>") : end].strip() if 0 <= start < end else ""
        with tr.tool_call("unknown", raw) as span:
            try:
                # Every defect of the call (any text, any JSON) is a ToolError: it goes back to the policy as an
                # observation and the turn goes on (parse_tool_call and Tool.__call__ raise nothing else).
                call = parse_tool_call(raw)
                name = call.name if len(call.name) <= 64 else call.name[:61] + "..."  # model-made: bound it
                span.update_name(f"execute_tool {name}")
                span.set_attribute("gen_ai.tool.name", name)
                by_name = {t.name: t for t in _tools(ctx)}
                if call.name not in by_name:
                    raise ToolError(f"no tool named {name!r}", hint=f"tools: {sorted(by_name)}")
                res = resources()
                image = res.image(res.memory(ctx), work.image_hash)
                observation = by_name[call.name](image, call.arguments).text
            except ToolError as exc:
                observation = f"error: {exc}"
                problems += (Problem(kind=ProblemKind.TOOL_ERROR, severity=Severity.WARNING, message=str(exc)),)
                span.set_attribute("regionreasoner.tool.error", str(exc))
        text = work.text + f"\n<tool_response>{observation}</tool_response>\n"
        return {"work": replace(work, text=text, tool_calls=work.tool_calls + 1, problems=problems, finish="stop")}


def _think_warning(kind: ProblemKind, what: str) -> Problem:
    return Problem(kind=kind, severity=Severity.WARNING, message=f"<think> {what}", section="think")


def _citations(
    work: TurnWork, cited: Sequence[tuple[float, float, float, float]], frame: Frame, size: tuple[int, int]
) -> tuple[list[Citation], list[Problem]]:
    """The cited boxes checked against the turn's references, and the warnings they raise."""
    matches, missing = match_references(cited, work.references)
    citations: list[Citation] = []
    problems: list[Problem] = []
    for m in matches:
        box = frame.box_from_model(m.model_box, size).clip(*size)
        if not box.is_valid():
            continue
        ref = m.reference
        citations.append(
            Citation(model_box=m.model_box, box=box, region=ref.region if ref else None, verified=m.verified)
        )
        if not m.verified:
            cited_box = [int(v) for v in m.model_box]
            problems.append(
                _think_warning(
                    ProblemKind.HALLUCINATED_CITATION, f"cites bbox={cited_box}, which the question does not"
                )
            )
    if work.references and missing and not any(m.verified for m in matches):
        names = ", ".join(r.label for r in missing)
        problems.append(_think_warning(ProblemKind.MISSING_CITATION, f"does not cite the referenced box of {names}"))
    return citations, problems


def answer(state: State, runtime: Runtime[Context]) -> TurnUpdate:
    """Write <answer>, parse the whole message, map boxes to original pixels and check citations."""
    ctx = _context(runtime)
    tr = _tracing(ctx)
    work = state.work
    with tr.node(work.key, "answer") as span:
        if not work.broken:
            work = _after_piece(work, ctx, "answer", _generate(work, ctx, tr, "answer", ("</answer>",)))
        res = resources()
        policy, memory = res.policy(ctx), res.memory(ctx)
        info = res.image_info(memory, work.image_hash)
        size = (info.width, info.height)
        parsed = parse_action(
            work.text,
            bounds=work.bounds,
            expect_focus=bool(work.references),
            required=tuple(s for s in work.sections if s != "focus"),
            max_objects=ctx.max_objects,
            coordinates=coordinate_rule(ctx.answer_protocol),
        )
        citations, cite_problems = _citations(work, parsed.citations, policy.frame, size)
        mapped = map_answer(parsed.objects, policy.frame, size, ctx.answer_protocol)
        problems = (*work.problems, *parsed.problems, *cite_problems, *mapped.problems)
        ok = parsed.ok and not any(p.severity is Severity.ERROR for p in problems)
        regions = mapped.regions if ok else []
        status = TurnStatus.OK if ok else TurnStatus.FAILED
        span.set_attributes({"regionreasoner.turn.status": status.value, "regionreasoner.region.count": len(regions)})
        work = replace(
            work,
            problems=problems,
            regions=tuple(regions),
            citations=tuple(citations),
            parsed=parsed.sections,
            status=status,
        )
        return {"work": work}


def ground(state: State, runtime: Runtime[Context]) -> TurnUpdate:
    """Add masks to the answer's regions when a segmenter is configured (box + point prompts)."""
    ctx = _context(runtime)
    tr = _tracing(ctx)
    work = state.work
    with tr.node(work.key, "ground"):
        app = live(ctx)
        segmenter = app.segmenter if app else None
        # Regions that already carry a mask keep it (the official protocol stores an empty mask for an answer
        # without points, as the released evaluation does).
        todo = [i for i, r in enumerate(work.regions) if r.mask is None]
        if segmenter is None or not todo:
            return {}
        res = resources()
        image = res.image(res.memory(ctx), work.image_hash)
        boxes: list[Box] = [work.regions[i].box for i in todo]
        points: list[Point | None] = [work.regions[i].point for i in todo]
        with tr.tool_call(type(segmenter).__name__, json.dumps([list(b) for b in boxes])):
            masks = segmenter.segment(image, boxes, points)
        regions = list(work.regions)
        for i, mask in zip(todo, masks, strict=True):
            regions[i] = regions[i].model_copy(update={"mask": mask})
        return {"work": replace(work, regions=tuple(regions))}


def remember(state: State, runtime: Runtime[Context]) -> TurnUpdate:
    """Store the turn (regions named R(n+1).., citations) in one transaction; idempotent per turn key.

    A turn whose key resolve found stored already (``state.turn``, asked again after a crash) is returned as stored:
    nothing is written, and the turn's span ends like any other.
    """
    ctx = _context(runtime)
    tr = _tracing(ctx)
    work = state.work
    t0 = time.perf_counter()
    with tr.node(work.key, "remember"):
        if state.turn is not None and state.turn.key == work.key:
            turn = state.turn
        else:
            res = resources()
            memory, policy = res.memory(ctx), res.policy(ctx)
            turn_span = tr.turn_span(work.key)
            trace_id = f"{turn_span.get_span_context().trace_id:032x}" if turn_span is not None else None
            draft = TurnDraft(
                question=state.question,
                rendered_question=work.rendered_question,
                image=work.image_hash,
                frame=work.frame,
                sections=work.parsed,
                raw_text=work.text,
                regions=list(work.regions),
                referenced=work.referenced,
                citations=list(work.citations),
                status=work.status,
                problems=list(work.problems),
                usage=work.usage,
                model=policy.name,
                trace_id=trace_id if trace_id and trace_id != "0" * 32 else None,
                key=work.key,
            )
            turn = memory.append_turn(state.dialogue_id, draft)
    tr.end_turn(
        work.key,
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
    # The turn's inputs are cleared with its end: LangGraph keeps a channel's value until it is written again, so a
    # served run that leaves out `question` or `key` would otherwise re-ask the previous turn's question or key.
    return {"turn": turn, "question": "", "image": None, "key": None}
