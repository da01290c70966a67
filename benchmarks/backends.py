"""TransformersPolicy against VLLMPolicy on the same tiny weights, measured side by side; prints one JSON line.

Runs in the vLLM environment (``make test-vllm`` builds it): ``.venv-vllm/bin/python benchmarks/backends.py``.

* ``tok_s_transformers_b1`` / ``tok_s_vllm_b1``: one request, ``--tokens`` new tokens (end-of-message ignored),
  generated tokens per second of wall time; ``..._b8``: eight requests (four image sizes) in one batch.
* ``split_vs_oneshot_vllm``: a constrained turn in four pieces (scene, focus, think, answer) against the same turn in
  one call, on vLLM (interleaved repetitions, ratio of medians; the tokens must be identical).
* ``prefix_hit_rate_vllm``: of the prompt tokens of a turn's 2nd to 4th pieces, the share vLLM served from its prefix
  cache (``RequestOutput.num_cached_tokens`` summed over the pieces' engine calls).

Both backends run float32 on the CPU (this machine has AVX2 but no AVX-512 BF16, where bf16 only costs conversions);
torch uses both cores, and vLLM's OpenMP threads are bound to both cores (``VLLM_CPU_OMP_THREADS_BIND=0-1``; its
default on 2 cores reserves one core and computes on the other).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "0-1")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--vllm-dtype", default="float32", help="float32 or bfloat16")
    args = parser.parse_args()

    from transformers.utils import logging as hf_logging

    from regionreasoner.agent.demo_scene import demo_scene
    from regionreasoner.core.images import load_image
    from regionreasoner.core.prompts import get_prompt
    from regionreasoner.policies.base import ImageSlot, Message, PolicyRequest, SamplingParams, TurnConstraint
    from regionreasoner.policies.tiny import tiny_model_path
    from regionreasoner.policies.transformers_policy import TransformersPolicy
    from regionreasoner.policies.vllm_policy import VLLMPolicy, configure_vllm_environment

    configure_vllm_environment()

    hf_logging.disable_progress_bar()
    path = tiny_model_path("qwen2.5-vl")
    hf = TransformersPolicy(path, frame="fixed:840x840", section_limits="grammar")
    vl = VLLMPolicy(path, frame="fixed:840x840", dtype=args.vllm_dtype, max_model_len=4096, max_num_seqs=8)
    scene = load_image(demo_scene()[0])
    images = [load_image(scene.image.resize(s)) for s in ((640, 480), (480, 360), (320, 240), (800, 600))]
    prompt = get_prompt("regionreasoner-eval").render("find the ball to the left of bbox=[300, 500, 420, 640]")

    def free(image: object, n: int) -> PolicyRequest:
        return PolicyRequest(
            messages=(Message("user", (ImageSlot(0), prompt)),),
            images=(image,),  # type: ignore[arg-type]
            sampling=SamplingParams(max_new_tokens=n, ignore_eos=True),
        )

    def tok_s(policy: object, requests: list[PolicyRequest]) -> float:
        policy.reset_sessions()  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        out = policy.complete_batch(requests)  # type: ignore[attr-defined]
        return sum(c.generated_tokens for c in out) / (time.perf_counter() - t0)

    b1 = [free(images[0], args.tokens)]
    b8 = [free(images[i % 4], args.tokens) for i in range(8)]
    tok_s(hf, b1), tok_s(vl, b1), tok_s(vl, b8)  # warm-up
    rates: dict[str, list[float]] = {"transformers_b1": [], "vllm_b1": [], "transformers_b8": [], "vllm_b8": []}
    for _ in range(args.reps):
        rates["transformers_b1"].append(tok_s(hf, b1))
        rates["vllm_b1"].append(tok_s(vl, b1))
        rates["transformers_b8"].append(tok_s(hf, b8))
        rates["vllm_b8"].append(tok_s(vl, b8))

    spec = TurnConstraint(bounds=(840, 840), char_limits={"scene": 200, "focus": 120, "think": 300}, max_objects=2)

    def turn(prefix: str = "", stop: tuple[str, ...] = ()) -> PolicyRequest:
        return PolicyRequest(
            messages=(Message("user", (ImageSlot(0), prompt)),),
            images=(scene,),
            assistant_prefix=prefix,
            stop=stop,
            constraint=spec,
            sampling=SamplingParams(max_new_tokens=2048),
        )

    oneshot, split, hits = [], [], []
    for rep in range(args.reps + 1):
        vl.reset_sessions()
        t0 = time.perf_counter()
        one = vl.complete(turn())
        t_one = time.perf_counter() - t0
        vl.reset_sessions()
        text, ids, later = "", [], []
        t0 = time.perf_counter()
        for i, stop in enumerate(("</scene>", "</focus>", "</think>", None)):
            piece = vl.complete(turn(text, (stop,) if stop else ()))
            text += piece.text
            ids += list(piece.token_ids or ())
            if i:
                later.append(piece)
        t_split = time.perf_counter() - t0
        if ids != list(one.token_ids or ()):
            raise SystemExit("four pieces on vLLM produced other tokens than one call")
        if rep:  # the first repetition warms the grammar caches
            oneshot.append(t_one)
            split.append(t_split)
            hits.append(sum(p.cached_tokens for p in later) / sum(p.prompt_tokens for p in later))

    out = {f"tok_s_{k}": round(statistics.median(v), 1) for k, v in rates.items()}
    out["split_vs_oneshot_vllm"] = round(statistics.median(split) / statistics.median(oneshot), 3)
    out["prefix_hit_rate_vllm"] = round(statistics.median(hits), 3)
    out["tokens_per_request"] = args.tokens
    out["turn_tokens"] = len(one.token_ids or ())
    out["vllm_dtype"] = args.vllm_dtype
    out["vllm_omp_bind"] = os.environ["VLLM_CPU_OMP_THREADS_BIND"]
    out["model"] = "tiny random Qwen2.5-VL (0.8 M parameters), CPU"
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
