"""Cost of the turn machinery, measured side by side in one run; prints one JSON line.

* ``p1_split_vs_oneshot``: a turn written as four resumable pieces (scene, focus, think, answer; KV reused between
  them) against one-shot generation of the same tokens, tiny random Qwen2.5-VL, greedy, constrained.  The two are
  interleaved; the ratio is of medians.  The pieces are checked to produce exactly the one-shot tokens.
* ``p2_overhead_ms_p50``: wall time per turn of the whole graph with ScriptedPolicy (so the model costs nothing):
  LangGraph with SQLite checkpoints, parsing, the SQLite region memory, OpenTelemetry spans to a JSON-lines file.
* ``p4_round7_vs_round1``: turn time of round 7 over round 1 of one dialogue (tiny model, every round citing the
  previous region, so all rounds have the same four sections); medians over several dialogues.

Usage: ``.venv/bin/python benchmarks/turn.py [--reps 9] [--dialogues 3]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

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


def p2(turns: int) -> dict[str, float]:
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
    with tempfile.TemporaryDirectory() as d:
        provider = configure_tracing(jsonl_path=Path(d) / "trace.jsonl")
        agent = RegionAgent(
            ScriptedPolicy([text] * (turns + 10)), memory=f"sqlite:///{d}/memory.db", tracer_provider=provider
        )
        dialogue = agent.dialogue(image)
        times = []
        for i in range(turns + 10):
            t0 = time.perf_counter()
            dialogue.ask("Find the red ball.")
            if i >= 10:  # first turns warm caches
                times.append(ms(t0))
        provider.shutdown()
        agent.close()
    return {
        "p2_overhead_ms_p50": round(statistics.median(times), 2),
        "p2_overhead_ms_p90": round(sorted(times)[int(0.9 * len(times))], 2),
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
