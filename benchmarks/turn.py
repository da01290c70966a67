"""Cost of the turn machinery, measured side by side in one run; prints one JSON line.

* ``p1_split_vs_oneshot``: a turn written as four resumable pieces (scene, focus, think, answer; KV reused between
  them) against one-shot generation of the same tokens, tiny random Qwen2.5-VL, greedy, constrained.  The two are
  interleaved; the ratio is of medians.  The pieces are checked to produce exactly the one-shot tokens.
* ``p2_overhead_ms_p50``: wall time per turn of the whole graph with ScriptedPolicy (so the model costs nothing):
  LangGraph with SQLite checkpoints, parsing, the SQLite region memory, OpenTelemetry spans to a JSON-lines file.
  ``p2_parts_ms_p50`` splits a turn, measured on a third agent interleaved with the first, into ``graph_dispatch``
  (LangGraph's own work: wall time minus the node spans and the checkpoint write), ``checkpoint_write`` (the
  checkpointer's put/put_writes), ``sql_transaction`` (the memory's append_turn), ``parse`` (parse_action) and
  ``nodes_other`` (the rest of the nodes' bodies); ``tracing`` is the difference to an interleaved agent whose
  tracer provider makes no spans.  ``p2_langgraph_floor_ms_p50`` is LangGraph alone (six trivial nodes in a chain,
  the same State schema, SQLite checkpointer and durability), interleaved: the part no change here can remove.
* ``p4_round7_vs_round1``: turn time of round 7 over round 1 of one dialogue (tiny model, every round citing the
  previous region, so all rounds have the same four sections); medians over several dialogues.

Usage: ``.venv/bin/python benchmarks/turn.py [--reps 9] [--dialogues 3]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers.utils import logging as hf_logging

from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.demo_scene import demo_scene
from regionreasoner.agent.tracing import configure_tracing
from regionreasoner.core.frames import FixedResizeFrame
from regionreasoner.core.images import load_image
from regionreasoner.core.prompts import get_prompt
from regionreasoner.core.protocol import AnswerObject, format_action
from regionreasoner.policies.base import ImageSlot, Message, PolicyRequest, SamplingParams, TurnConstraint
from regionreasoner.policies.scripted import ScriptedPolicy
from regionreasoner.policies.tiny import tiny_model_path
from regionreasoner.policies.transformers_policy import TransformersPolicy

LIMITS = {"scene": 200, "focus": 120, "think": 300}


def ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


def p1(policy: TransformersPolicy, reps: int) -> dict[str, float]:
    image = load_image(demo_scene()[0])
    prompt = get_prompt(policy.prompt_template).render("find the ball to the left of bbox=[300, 500, 420, 640]")
    spec = TurnConstraint(bounds=policy.frame.model_size(image.size), char_limits=LIMITS, max_objects=2)

    def request(prefix: str = "", stop: tuple[str, ...] = ()) -> PolicyRequest:
        return PolicyRequest(
            messages=(Message("user", (ImageSlot(0), prompt)),),
            images=(image,),
            assistant_prefix=prefix,
            stop=stop,
            constraint=spec,
            sampling=SamplingParams(max_new_tokens=2048),
        )

    def oneshot() -> tuple[float, tuple[int, ...]]:
        policy.reset_sessions()
        t0 = time.perf_counter()
        c = policy.complete(request())
        return ms(t0), c.token_ids or ()

    def pieces() -> tuple[float, tuple[int, ...]]:
        policy.reset_sessions()
        text, ids = "", []
        t0 = time.perf_counter()
        for stop in ("</scene>", "</focus>", "</think>", None):
            c = policy.complete(request(text, (stop,) if stop else ()))
            text += c.text
            ids += list(c.token_ids or ())
        return ms(t0), tuple(ids)

    oneshot(), pieces()  # warm-up: grammar compilation, allocator
    a, b = [], []
    for _ in range(reps):
        ta, ids_a = oneshot()
        tb, ids_b = pieces()
        if ids_a != ids_b:
            raise SystemExit("four pieces produced other tokens than one-shot generation")
        a.append(ta)
        b.append(tb)
    return {
        "p1_split_vs_oneshot": round(statistics.median(b) / statistics.median(a), 3),
        "p1_oneshot_ms": round(statistics.median(a), 1),
        "p1_split_ms": round(statistics.median(b), 1),
        "p1_tokens": len(ids_a),
    }


def _scripted_agent(d: Path, name: str, turns: int, provider: Any) -> tuple[RegionAgent, Any]:
    """An agent on ScriptedPolicy (the model costs nothing) with its own memory, checkpoints and tracer provider."""
    frame = FixedResizeFrame(840, 840)
    image, objects = demo_scene()
    ball = next(o for o in objects if o.name == "red ball")
    text = format_action(
        scene="a park",
        think="the ball",
        objects=[
            AnswerObject(frame.box_to_model(ball.box, image.size), frame.point_to_model(ball.box.center, image.size))
        ],
    )
    (d / name).mkdir()
    agent = RegionAgent(
        ScriptedPolicy([text] * turns), memory=f"sqlite:///{d}/{name}/memory.db", tracer_provider=provider
    )
    return agent, agent.dialogue(image)


class _Timer:
    """Accumulates the wall time of wrapped callables, per part and per turn."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = {}

    def wrap(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.parts[part] = self.parts.get(part, 0.0) + ms(t0)

        return timed

    def take(self) -> dict[str, float]:
        out, self.parts = self.parts, {}
        return out


def _langgraph_floor(d: Path) -> Callable[[], None]:
    """One invocation of LangGraph alone: the floor under P2.

    The turn's six nodes in a chain, doing nothing, on the same State schema, SQLite checkpointer (WAL) and
    durability as the agent, on one thread.
    """
    from langgraph.graph import END, START, StateGraph

    from regionreasoner.agent.checkpoint import make_checkpointer
    from regionreasoner.agent.state import InputState, OutputState, State, TurnWork
    from regionreasoner.memory import RegionMemory

    names = ["resolve", "scene", "think", "answer", "ground", "remember"]
    b = StateGraph(State, input_schema=InputState, output_schema=OutputState)
    for name in names:
        b.add_node(name, (lambda s: {"work": TurnWork(key="k")}) if name == "resolve" else (lambda s: {}))
    b.add_edge(START, names[0])
    for x, y in itertools.pairwise(names):
        b.add_edge(x, y)
    b.add_edge(names[-1], END)
    (d / "floor").mkdir()
    graph = b.compile(checkpointer=make_checkpointer(RegionMemory(f"sqlite:///{d}/floor/memory.db")))
    config: Any = {"configurable": {"thread_id": "floor"}}
    return lambda: graph.invoke(InputState(question="q"), config, durability="exit")


def p2(turns: int) -> dict[str, Any]:
    """Framework overhead per turn, and where it goes (see the module docstring)."""
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import NoOpTracerProvider

    import regionreasoner.agent.nodes as nodes

    warm = 10
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        traced = configure_tracing(jsonl_path=d / "trace.jsonl")
        full, full_dlg = _scripted_agent(d, "full", turns + warm, traced)
        quiet, quiet_dlg = _scripted_agent(d, "untraced", turns + warm, NoOpTracerProvider())  # no spans at all
        # The instrumented agent: the same set-up, with timers around the parts and spans kept in memory.
        spans = InMemorySpanExporter()
        traced_mem = configure_tracing(jsonl_path=d / "trace-parts.jsonl")
        traced_mem.add_span_processor(SimpleSpanProcessor(spans))
        parts, parts_dlg = _scripted_agent(d, "parts", turns + warm, traced_mem)
        timer = _Timer()
        ck = parts.checkpointer
        ck.put, ck.put_writes = timer.wrap("checkpoint_write", ck.put), timer.wrap("checkpoint_write", ck.put_writes)
        parts.memory.append_turn = timer.wrap("sql_transaction", parts.memory.append_turn)  # type: ignore[method-assign]
        parse = nodes.parse_action
        nodes.parse_action = timer.wrap("parse", parse)  # type: ignore[assignment]
        floor = _langgraph_floor(d)
        totals: dict[str, list[float]] = {"full": [], "untraced": [], "parts": [], "floor": []}
        breakdown: list[dict[str, float]] = []
        try:
            for i in range(turns + warm):
                t0 = time.perf_counter()
                floor()
                if i >= warm:
                    totals["floor"].append(ms(t0))
                for name, dialogue in (("full", full_dlg), ("untraced", quiet_dlg), ("parts", parts_dlg)):
                    spans.clear()
                    t0 = time.perf_counter()
                    dialogue.ask("Find the red ball.")
                    total = ms(t0)
                    if i < warm:  # the first turns warm caches
                        timer.take()
                        continue
                    totals[name].append(total)
                    if name == "parts":
                        measured = timer.take()
                        node_ms = sum(
                            (s.end_time - s.start_time) / 1e6
                            for s in spans.get_finished_spans()
                            if s.name.startswith("regionreasoner.node") and s.end_time and s.start_time
                        )
                        ckpt = measured.get("checkpoint_write", 0.0)
                        breakdown.append(
                            {
                                "graph_dispatch": total - node_ms - ckpt,
                                "checkpoint_write": ckpt,
                                "sql_transaction": measured.get("sql_transaction", 0.0),
                                "parse": measured.get("parse", 0.0),
                                "nodes_other": node_ms
                                - measured.get("sql_transaction", 0.0)
                                - measured.get("parse", 0.0),
                            }
                        )
        finally:
            nodes.parse_action = parse
        for agent, provider in ((full, traced), (quiet, None), (parts, traced_mem)):
            if provider is not None:
                provider.shutdown()
            agent.close()
    med = {k: statistics.median(v) for k, v in totals.items()}
    part_ms = {k: round(statistics.median(b[k] for b in breakdown), 3) for k in breakdown[0]}
    # Tracing runs partly in the batch processor's thread, so it is measured as the difference of two agents
    # interleaved turn by turn: one exporting every span to JSON lines, one whose provider makes no spans at all.
    part_ms["tracing"] = round(med["full"] - med["untraced"], 3)
    return {
        "p2_overhead_ms_p50": round(med["full"], 2),
        "p2_overhead_ms_p90": round(sorted(totals["full"])[int(0.9 * len(totals["full"]))], 2),
        "p2_untraced_ms_p50": round(med["untraced"], 2),
        "p2_parts_ms_p50": part_ms,
        "p2_langgraph_floor_ms_p50": round(med["floor"], 2),
        "p2_over_floor": round(med["full"] / med["floor"], 2),
    }


def p4(policy: TransformersPolicy, dialogues: int) -> dict[str, float]:
    image, _ = demo_scene()
    rounds: list[list[float]] = [[] for _ in range(7)]
    tokens: list[list[int]] = [[] for _ in range(7)]
    with tempfile.TemporaryDirectory() as d:
        agent = RegionAgent(policy, memory=f"sqlite:///{d}/memory.db", char_limits=LIMITS, max_objects=1)
        for n in range(dialogues + 1):
            dialogue = agent.dialogue(image)
            for r in range(7):
                question = (
                    "Find the thing next to bbox=[250, 330, 320, 400]." if r == 0 else f"Find the thing next to R{r}."
                )
                t0 = time.perf_counter()
                turn = dialogue.ask(question)
                if n > 0:  # the first dialogue warms up
                    rounds[r].append(ms(t0))
                    tokens[r].append(turn.usage.generated_tokens)
        agent.close()
    med = [statistics.median(x) for x in rounds]
    return {
        "p4_round7_vs_round1": round(med[6] / med[0], 3),
        "p4_round_ms": [round(m, 1) for m in med],  # type: ignore[dict-item]
        "p4_round_tokens": [statistics.median(t) for t in tokens],  # type: ignore[dict-item]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--turns", type=int, default=60)
    parser.add_argument("--dialogues", type=int, default=3)
    args = parser.parse_args()
    hf_logging.disable_progress_bar()
    policy = TransformersPolicy(tiny_model_path("qwen2.5-vl"), frame="fixed:840x840")
    out: dict[str, object] = {}
    out.update(p1(policy, args.reps))
    out.update(p2(args.turns))
    out.update(p4(policy, args.dialogues))
    out["model"] = "tiny random Qwen2.5-VL (0.8 M parameters), CPU, float32"
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
