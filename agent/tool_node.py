"""The ``tools`` node: run the ``<tool_call>`` that ended a think piece, append its ``<tool_response>``.

Frames are the agent's business, not the tools': a tool speaks original-image pixels only.  So this node

* maps a ``bbox_2d`` argument from the policy's frame to original pixels before the call (of image 1, or of the zoom
  named by an ``"image": k`` argument, through that zoom's crop box);
* renders the tool's ``detections`` into the policy's frame (of image 1) as JSON in the response;
* stores a returned image (a zoom) and adds it to the turn as image ``k`` (the policy sees it with the prompt from
  the next piece on), with its crop box in original pixels so that later boxes about it map back;
* resolves a ``region`` argument (``"R1"``) to the stored region, and stores a new image version a tool made
  (generate, inpaint) for ``remember`` to record: the response names its version number, and later turns run on it
  (:mod:`regionreasoner.agent.tool_versions`).

Every defect of a call (any text, any JSON, an unknown tool, bad arguments, a tool that raises a ToolError or runs
past its time limit) becomes an ``error: ...`` observation and a ``tool_error`` warning; the turn goes on.  Every call
is an ``execute_tool`` span with the tool's name, its arguments, its duration and its outcome.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from langgraph.runtime import Runtime

from regionreasoner.agent.context import Context, live, resources
from regionreasoner.agent.state import State, TurnUpdate, TurnWork
from regionreasoner.agent.tool_versions import next_version_number, resolve_region_argument, store_version
from regionreasoner.agent.tracing import TurnTracing
from regionreasoner.core.errors import ToolError
from regionreasoner.core.frames import Frame
from regionreasoner.core.geometry import Box
from regionreasoner.core.protocol import parse_tool_call
from regionreasoner.core.types import Problem, ProblemKind, Severity, VersionDraft
from regionreasoner.memory import RegionMemory
from regionreasoner.policies.base import ToolSpec
from regionreasoner.policies.grammar import TOOL_RESPONSE_CLOSE, TOOL_RESPONSE_OPEN
from regionreasoner.tools.base import Crop, Tool, ToolResult

__all__ = [
    "IMAGE_ARGUMENT",
    "context_tools",
    "node_context",
    "node_tracing",
    "policy_schema",
    "tool_specs",
    "tools",
]

IMAGE_ARGUMENT = "image"
"""The argument a call adds to say which image of the turn its ``bbox_2d`` is about (1: the question's image)."""

MAX_DETECTIONS_SHOWN = 10


def node_context(runtime: Runtime[Context]) -> Context:
    """The run's context (the default one when the caller gave none)."""
    return runtime.context if runtime.context is not None else Context()


def node_tracing(ctx: Context) -> TurnTracing:
    """The tracing helper of a run: the app's tracer provider, else the global one."""
    app = live(ctx)
    return TurnTracing(app.tracer_provider if app else None, capture_sections=ctx.capture_sections)


def context_tools(ctx: Context) -> list[Tool]:
    """The tools of an in-process context (a served graph has none)."""
    app = live(ctx)
    return list(app.tools) if app else []


def policy_schema(tool: Tool) -> dict[str, Any]:
    """The argument schema the policy writes to: the tool's, plus ``"image": k`` when it takes a ``bbox_2d``."""
    schema = dict(tool.inputs)
    properties = dict(schema.get("properties", {}))
    if "bbox_2d" in properties:
        properties[IMAGE_ARGUMENT] = {"type": "integer", "minimum": 1}
    schema["properties"] = properties
    return schema


def tool_specs(ctx: Context) -> tuple[ToolSpec, ...]:
    """The turn grammar's view of the context's tools (names and policy-facing schemas)."""
    return tuple(ToolSpec.of(t.name, policy_schema(t)) for t in context_tools(ctx))


def _image_box(work: TurnWork, number: int, frame: Frame, sizes: Sequence[tuple[int, int]], box: Box) -> Box:
    """``box`` (policy frame of image ``number``) in original pixels of image 1."""
    if number == 1:
        return frame.box_from_model(box, sizes[0])
    _, crop_box = work.zooms[number - 2]
    in_crop = frame.box_from_model(box, sizes[number - 1])
    return Crop(box=Box(*crop_box), size=sizes[number - 1]).to_original(in_crop)


def _arguments(
    raw: Mapping[str, Any], work: TurnWork, frame: Frame, sizes: Sequence[tuple[int, int]]
) -> dict[str, Any]:
    """The call's arguments as the tool takes them: ``bbox_2d`` in original pixels, ``image`` consumed."""
    arguments = dict(raw)
    number = arguments.pop(IMAGE_ARGUMENT, 1)
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= len(sizes):
        raise ToolError(f"image {number!r} is not an image of this turn", hint=f"images are 1..{len(sizes)}")
    box = arguments.get("bbox_2d")
    if box is None:
        return arguments
    if not (
        isinstance(box, list)
        and len(box) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in box)
    ):
        raise ToolError("bbox_2d must be four finite numbers [x1, y1, x2, y2]", hint="write it as in the answer")
    mapped = _image_box(work, number, frame, sizes, Box(*(float(v) for v in box)))
    arguments["bbox_2d"] = [mapped.x1, mapped.y1, mapped.x2, mapped.y2]
    return arguments


def _observation(result: ToolResult, frame: Frame, size: tuple[int, int]) -> str:
    """The response text: the tool's text, then its detections as JSON in the policy's frame of image 1."""
    text = result.text
    if result.detections:
        shown = [
            {"label": d.label, "bbox_2d": list(frame.box_to_model(d.box, size)), "score": round(d.score, 2)}
            for d in result.detections[:MAX_DETECTIONS_SHOWN]
        ]
        # The JSON replaces the tool's summary: it holds the labels and scores too, and the boxes in the frame the
        # policy writes its answer in.
        more = f" (the best {len(shown)})" if len(result.detections) > len(shown) else ""
        text = f"{len(result.detections)} found{more}: {json.dumps(shown, ensure_ascii=False)}"
    return text


def _plain(text: str) -> str:
    """Observation text that cannot open or close a tag (the turn grammar allows no ``<`` in a response)."""
    return text.replace("<", "&lt;")


def tools(state: State, runtime: Runtime[Context]) -> TurnUpdate:
    """Run the tool call that ended the last think piece and append its response to the assistant message."""
    ctx = node_context(runtime)
    tr = node_tracing(ctx)
    work = state.work
    with tr.node(work.key, "tools"):
        start, end = work.text.rfind("<tool_call>"), work.text.rfind("</tool_call>")
        raw = work.text[start + len("<tool_call>") : end].strip() if 0 <= start < end else ""
        problems, zooms, versions = work.problems, work.zooms, work.versions
        with tr.tool_call("unknown", raw) as span:
            try:
                observation, zooms, versions = _run(work, ctx, raw, span, state.dialogue_id)
                span.set_attribute("regionreasoner.tool.outcome", "ok")
            except ToolError as exc:
                # parse_tool_call, Tool.__call__ and the mapping above raise nothing else for any model text.
                observation = f"error: {exc}"
                problems += (Problem(kind=ProblemKind.TOOL_ERROR, severity=Severity.WARNING, message=str(exc)),)
                span.set_attributes({"regionreasoner.tool.outcome": "error", "regionreasoner.tool.error": str(exc)})
        text = work.text + TOOL_RESPONSE_OPEN + _plain(observation) + TOOL_RESPONSE_CLOSE
        update = replace(
            work,
            text=text,
            tool_calls=work.tool_calls + 1,
            problems=problems,
            zooms=zooms,
            versions=versions,
            finish="stop",
        )
        return {"work": update}


Zooms = tuple[tuple[str, tuple[float, ...]], ...]


def _run(
    work: TurnWork, ctx: Context, raw: str, span: Any, dialogue_id: str
) -> tuple[str, Zooms, tuple[VersionDraft, ...]]:
    """Parse, map, run one call; its observation text, and the turn's zooms and image versions after it."""
    call = parse_tool_call(raw)
    name = call.name if len(call.name) <= 64 else call.name[:61] + "..."  # model-made: bound it
    span.update_name(f"execute_tool {name}")
    span.set_attribute("gen_ai.tool.name", name)
    by_name = {t.name: t for t in context_tools(ctx)}
    if call.name not in by_name:
        raise ToolError(f"no tool named {name!r}", hint=f"tools: {sorted(by_name)}")
    res = resources()
    policy, memory = res.policy(ctx), res.memory(ctx)
    sizes = _sizes(res, memory, work)
    tool = by_name[call.name]
    arguments = resolve_region_argument(_arguments(call.arguments, work, policy.frame, sizes), res, memory, dialogue_id)
    # An editing tool builds on the newest version of the turn (two inpaints in one turn chain); the others see
    # the image the turn started on, the one the policy sees.
    on = work.current_image if tool.edits_image else work.image_hash
    result = tool(res.image(memory, on), arguments)
    observation = _observation(result, policy.frame, sizes[0])
    zooms, versions = work.zooms, work.versions
    if result.image is not None and result.crop is not None:
        stored = memory.put_image(result.image)
        zooms += ((stored.hash, tuple(result.crop.box)),)
        observation = f"image {len(zooms) + 1}: {observation}"
    if result.new_version is not None:
        number = next_version_number(memory, dialogue_id, work)
        version = store_version(result.new_version, tool.name, memory, on)
        versions += (version,)
        w, h = result.new_version.image.size
        observation = f"image version {number} ({w}x{h} px): {observation}; later turns run on it"
        span.set_attributes(
            {
                "regionreasoner.image.version": number,
                "regionreasoner.image.hash": version.image,
                "regionreasoner.image.parent": version.parent or "",
            }
        )
    return observation, zooms, versions


def _sizes(res: Any, memory: RegionMemory, work: TurnWork) -> list[tuple[int, int]]:
    """``(width, height)`` of the turn's images: the question's, then each zoom's."""
    sizes = []
    for image_hash in (work.image_hash, *(h for h, _ in work.zooms)):
        info = res.image_info(memory, image_hash)
        sizes.append((info.width, info.height))
    return sizes
