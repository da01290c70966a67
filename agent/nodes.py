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
from regionreasoner.agent.tool_node import context_tools, node_context, node_tracing, tool_specs, tools
from regionreasoner.agent.tracing import TurnTracing, span_attributes
from regionreasoner.core.answer_map import coordinate_rule, map_answer
from regionreasoner.core.citations import match_references
from regionreasoner.core.frames import Frame
from regionreasoner.core.geometry import Box, Point
from regionreasoner.core.prompts import PROMPTS, get_prompt
from regionreasoner.core.protocol import parse_action
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

__all__ = ["answer", "ground", "remember", "resolve", "section_node", "tools"]


class Node(Protocol):
    """A node of the turn graph: the state and the runtime in, the fields it writes out."""

    def __call__(self, state: State, runtime: Runtime[Context]) -> TurnUpdate: ...


_SURROGATE = re.compile("[\ud800-\udfff]")
"""A lone surrogate code point (valid in a Python str, invalid in UTF-8)."""


def _system(policy: Policy) -> str:
    return type(policy).__name__.removesuffix("Policy").lower() or "policy"


def resolve(state: State, runtime: Runtime[Context]) -> TurnUpdate:
    """Make the turn key, open the turn span, prepare the turn (:func:`regionreasoner.agent.resolve.resolve_turn`)."""
    ctx = node_context(runtime)
    tr = node_tracing(ctx)
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


def _generate(
    work: TurnWork, ctx: Context, tr: TurnTracing, tag: SectionTag, stop: tuple[str, ...]
) -> Completion | Problem:
    """One model call continuing the turn's message; a policy that fails gives the ``policy_fault`` Problem.

    A policy that fails (server down, timeouts, out of memory, a backend bug) fails the turn, not the process: the
    turn is recorded as failed with that problem (and no key, so asking again with the key runs it again), and
    ``ask()`` raises PolicyError after storing it (docs/reliability.md, "Faults").  Errors about the request itself
    (PromptTooLongError, ConfigError) are the caller's to fix and are raised here, with nothing stored.
    """
    from langgraph.errors import GraphBubbleUp

    from regionreasoner.core.errors import PolicyError, RegionReasonerError

    res = resources()
    policy, memory = res.policy(ctx), res.memory(ctx)
    # A zoom made earlier in the turn joins the user message as image 2, 3, ...: the policy sees it from the next
    # piece on (the prompt and images are then encoded once more; pieces after that reuse them again).
    images = tuple(res.image(memory, h) for h in (work.image_hash, *(z for z, _ in work.zooms)))
    parts = _user_parts(work.prompt, policy.prompt_template)
    for k in range(1, len(images)):
        parts += [f"\nImage {k + 1}, the zoom of tool call {k}:", ImageSlot(k)]
    specs = tool_specs(ctx)
    request = PolicyRequest(
        messages=(Message("user", tuple(parts)),),
        images=images,
        assistant_prefix=work.text,
        stop=stop,
        constraint=ctx.constraint(
            work.sections, work.bounds, tools=specs, max_tool_calls=ctx.max_tool_iterations if specs else 0
        ),
        sampling=ctx.sampling(),
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
    except PolicyError as exc:
        message = str(exc)
    except RegionReasonerError as exc:
        exc.add_note(f"in <{tag}> of turn {work.key!r}; nothing of the turn is stored")
        raise
    except GraphBubbleUp:
        raise  # LangGraph's own control flow (interrupts), not a failure
    except Exception as exc:
        # WHY: no builtin exception may escape the public API; a backend's untyped one is a policy fault too.
        message = f"{type(policy).__name__} raised {type(exc).__name__}: {exc}"
    else:
        return completion
    return Problem(
        kind=ProblemKind.POLICY_FAULT,
        severity=Severity.ERROR,
        message=f"the policy failed in <{tag}>: {message}"[:2000],
        section=tag,
    )


def _user_parts(prompt: str, template: str) -> list[str | ImageSlot]:
    """The user message: the image where the template's placeholder (``<image>``) stands, else before the text.

    The training prompt of RegionReasoner holds ``<image>``, which the official data loader replaces with the
    image's vision tokens; sending it as text would show the model a literal "<image>" it never saw in training.
    """
    split = get_prompt(template).split_at_image(prompt) if template in PROMPTS else None
    if split is None:
        return [ImageSlot(0), prompt]
    before, after = split
    return [*([before] if before else []), ImageSlot(0), *([after] if after else [])]


def _faulted(work: TurnWork, fault: Problem) -> TurnWork:
    """``work`` ended by a policy fault: no more model calls; answer records it as a failed turn."""
    return replace(work, fault=True, problems=(*work.problems, fault), status=TurnStatus.FAILED)


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
        ctx = node_context(runtime)
        tr = node_tracing(ctx)
        work = state.work
        with tr.node(work.key, tag):
            if work.broken or tag not in work.sections:
                return {}
            stop: tuple[str, ...] = (f"</{tag}>",)
            if tag == "think" and context_tools(ctx) and work.tool_calls < ctx.max_tool_iterations:
                stop += ("</tool_call>",)
            outcome = _generate(work, ctx, tr, tag, stop)
            if isinstance(outcome, Problem):
                return {"work": _faulted(work, outcome)}
            return {"work": _after_piece(work, ctx, tag, outcome)}

    node.__name__ = tag
    node.__doc__ = f"Write the <{tag}> section (continuing the turn's assistant message)."
    return node


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
    ctx = node_context(runtime)
    tr = node_tracing(ctx)
    work = state.work
    with tr.node(work.key, "answer") as span:
        if not work.broken:
            outcome = _generate(work, ctx, tr, "answer", ("</answer>",))
            work = (
                _faulted(work, outcome) if isinstance(outcome, Problem) else _after_piece(work, ctx, "answer", outcome)
            )
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
        # A turn the policy failed in is recorded with that fault only: the parser's complaints about the missing
        # rest of the message would bury the cause.
        found = () if work.fault else (*parsed.problems, *cite_problems, *mapped.problems)
        problems = (*work.problems, *found)
        ok = not work.fault and parsed.ok and not any(p.severity is Severity.ERROR for p in problems)
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
    ctx = node_context(runtime)
    tr = node_tracing(ctx)
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
    ctx = node_context(runtime)
    tr = node_tracing(ctx)
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
                versions=list(work.versions),
                referenced=work.referenced,
                citations=list(work.citations),
                status=work.status,
                problems=list(work.problems),
                usage=work.usage,
                model=policy.name,
                trace_id=trace_id if trace_id and trace_id != "0" * 32 else None,
                # A turn the policy failed in is stored without its key: the key stays free, so asking again with
                # it runs the turn again instead of replaying the failure.
                key=None if work.fault else work.key,
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
                "regionreasoner.image.versions": [v.number for v in turn.versions],
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
