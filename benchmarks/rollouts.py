"""Rollout throughput for GRPO: generated tokens per second, transformers ``generate`` vs vLLM, in one run.

Runs in the vLLM environment (``make test-vllm`` builds it; ``.venv-vllm/bin/python benchmarks/rollouts.py``): the
same prompts (a question with an image, as the training data has them) through ``model.generate`` (batched, left
padding, sampling, the way TRL's plain-generate rollouts call it) and through ``vllm.LLM.generate`` (the engine
TRL's colocate mode runs in-process), every completion forced to exactly ``--tokens`` new tokens so both sides
produce the same amount.  Prints one JSON line.  Defaults: the tiny random Qwen2.5-VL on CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any


def _prompts(n: int) -> list[dict[str, Any]]:
    from PIL import Image

    image = Image.new("RGB", (224, 224), (200, 30, 30))
    return [{"text": f"Where is the red shape number {i}? Answer with a box.", "image": image} for i in range(n)]


def _chat(processor: Any, text: str) -> str:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
    return str(processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


def _generate(model: Any, processor: Any, prompts: list[dict[str, Any]], tokens: int) -> float:
    import torch

    processor.tokenizer.padding_side = "left"
    texts = [_chat(processor, p["text"]) for p in prompts]
    inputs = processor(text=texts, images=[p["image"] for p in prompts], padding=True, return_tensors="pt")
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(
            **inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=True, temperature=1.0, top_k=0
        )
    seconds = time.perf_counter() - start
    assert out.shape[1] - inputs["input_ids"].shape[1] == tokens
    return len(prompts) * tokens / seconds


def _vllm(llm: Any, processor: Any, prompts: list[dict[str, Any]], tokens: int) -> float:
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=tokens, min_tokens=tokens, temperature=1.0, ignore_eos=True)
    requests = [{"prompt": _chat(processor, p["text"]), "multi_modal_data": {"image": p["image"]}} for p in prompts]
    start = time.perf_counter()
    outputs = llm.generate(requests, params, use_tqdm=False)
    seconds = time.perf_counter() - start
    assert all(len(o.outputs[0].token_ids) == tokens for o in outputs)
    return len(prompts) * tokens / seconds


def main() -> None:
    """Measure both backends ``--reps`` times, interleaved, and print the medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="checkpoint folder ('tiny': the tiny random Qwen2.5-VL)")
    parser.add_argument("--completions", type=int, default=32, help="completions per measurement (8 prompts x 4)")
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per completion")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    from regionreasoner.policies.vllm_policy import configure_vllm_environment

    configure_vllm_environment()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import AutoModelForImageTextToText
    from vllm import LLM

    from regionreasoner.trainers.processing import load_processor, model_path

    path = model_path(args.model)
    processor = load_processor(path)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    llm = LLM(path, dtype="float32", max_model_len=4096, limit_mm_per_prompt={"image": 1}, seed=0)
    prompts = _prompts(args.completions)
    _generate(model, processor, prompts[:2], 4)  # warm both up (first calls compile and allocate)
    _vllm(llm, processor, prompts[:2], 4)
    hf, vl = [], []
    for _ in range(args.reps):
        hf.append(_generate(model, processor, prompts, args.tokens))
        vl.append(_vllm(llm, processor, prompts, args.tokens))
    record = {
        "model": args.model,
        "completions": args.completions,
        "tokens_per_completion": args.tokens,
        "generate_tokens_per_s_p50": round(statistics.median(hf), 1),
        "vllm_tokens_per_s_p50": round(statistics.median(vl), 1),
        "vllm_over_generate": round(statistics.median(vl) / statistics.median(hf), 2),
        "reps": args.reps,
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
