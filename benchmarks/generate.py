"""NeoBabel sampling cost, measured side by side in one run; prints one JSON line.

* ``cfg_batched_step_ms_p50`` / ``cfg_two_forwards_step_ms_p50`` / ``cfg_batched_over_two``: one MaskGIT step with
  classifier-free guidance (w=5), the conditional and the unconditional sequence run as ONE batch of 2 against two
  forwards of 1 (the ``batched_cfg=False`` path), on a small-but-not-tiny random Gemma-2 (``cfg_model`` states its
  sizes: hidden, layers, heads, text vocabulary, the real 8192-code head, N codes, sequence length L).  Steps are
  timed by the sampler's callback (mask building excluded), the two paths back to back in each of ``--reps`` runs
  of ``--steps`` steps; the ratio is the median of the per-rep ratios (goal <= 0.6).
* ``tiny_s_per_image``: the tiny random generator of the tests (32² px, 64 codes, generator.json's 8 steps, w=5),
  ``Generator.generate`` of one prompt, median; ``tiny_s_per_image_batch4``: per image in a batch of 4.
* ``--real`` (a CUDA GPU): the released architecture with random weights built on the device in bfloat16
  (Gemma-2 2B config, vocab 264203; MAGVIT-v2 released config in float32), at 256² (N=256, T=12) and 512²
  (N=1024, T=50): one CFG step batched and as two forwards, seconds per image (sampling + VQ decode), peak memory.

Usage (about a minute on 2 cores): ``.venv/bin/python benchmarks/generate.py [--reps 5] [--steps 4] [--real]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from transformers.utils import logging as hf_logging

from regionreasoner.tools.generate.generator import Generator, build_tiny_generator
from regionreasoner.tools.generate.model import GEMMA2_2B_IT, NeoBabel, NeoBabelConfig
from regionreasoner.tools.generate.prompting import build_t2i_batch
from regionreasoner.tools.generate.sampler import SamplerSettings, sample_codes


def step_times(model: NeoBabel, n: int, max_seq: int, *, batched: bool, steps: int, batch: int = 1) -> list[float]:
    """Seconds of each sampler step after the first (callback timestamps), w=5, ``batch`` prompts."""
    layout = model.layout
    tokens = torch.full((batch, n), layout.mask_id, device=model.device)
    cond = build_t2i_batch([[2, 10, 11, 12]] * batch, tokens, layout, max_seq)
    uncond = build_t2i_batch([[]] * batch, tokens, layout, max_seq)
    stamps: list[float] = []

    def tick(_: object) -> None:
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    with torch.inference_mode():
        sample_codes(
            model,
            cond,
            layout=layout,
            num_image_tokens=n,
            uncond_input_ids=uncond,
            settings=SamplerSettings(timesteps=steps + 1, guidance_scale=5.0, batched_cfg=batched),
            generator=torch.Generator(model.device).manual_seed(0),
            callback=tick,
        )
    return [b - a for a, b in itertools.pairwise(stamps)]


def compare(model: NeoBabel, n: int, max_seq: int, reps: int, steps: int) -> dict[str, float]:
    """Batched vs two-forward CFG steps, back to back in each rep (order alternating); medians and paired ratio.

    The ratio is the median over reps of (batched median / two-forward median) within the rep, so that load
    drifting on a shared machine between reps cancels out.
    """
    step_times(model, n, max_seq, batched=True, steps=1)  # warm-up: allocations, kernels
    step_times(model, n, max_seq, batched=False, steps=1)
    one: list[float] = []
    two: list[float] = []
    ratios: list[float] = []
    for r in range(reps):
        order = (True, False) if r % 2 == 0 else (False, True)
        got = {b: step_times(model, n, max_seq, batched=b, steps=steps) for b in order}
        one += got[True]
        two += got[False]
        ratios.append(statistics.median(got[True]) / statistics.median(got[False]))
    a, b = statistics.median(one) * 1e3, statistics.median(two) * 1e3
    return {"batched_ms": round(a, 2), "two_forwards_ms": round(b, 2), "ratio": round(statistics.median(ratios), 3)}


def small_model(args: argparse.Namespace) -> tuple[NeoBabel, dict[str, Any]]:
    """A random Gemma-2 NeoBabel of ``--hidden`` x ``--layers`` with the real 8192-code head."""
    config = NeoBabelConfig.tiny(
        args.text_vocab,
        codebook_size=8192,
        num_vq_tokens=args.codes,
        hidden_size=args.hidden,
        num_layers=args.layers,
        num_heads=args.heads,
    )
    assert config.llm_config is not None
    head_dim = args.hidden // args.heads
    config.llm_config.update(intermediate_size=4 * args.hidden, head_dim=head_dim, query_pre_attn_scalar=head_dim)
    torch.manual_seed(0)
    model = NeoBabel(config).eval()
    params = sum(p.numel() for p in model.parameters())
    sizes = {
        "hidden": args.hidden,
        "layers": args.layers,
        "heads": args.heads,
        "text_vocab": args.text_vocab,
        "codebook": 8192,
        "codes_N": args.codes,
        "seq_len_L": args.max_seq + 1 + args.codes + 2,
        "params_M": round(params / 1e6, 2),
    }
    return model, sizes


def tiny_per_image(reps: int) -> dict[str, float]:
    """Seconds per image of the tiny test generator: one prompt, and a batch of four."""
    with tempfile.TemporaryDirectory() as tmp:
        gen = Generator.from_pretrained(build_tiny_generator(Path(tmp) / "tiny"), device="cpu")
        gen.generate(["warm-up"], seed=0)
        single, batch4 = [], []
        for r in range(reps):
            t0 = time.perf_counter()
            gen.generate(["a red ball left of a blue box"], seed=r)
            single.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            gen.generate(["a red ball", "een rode bal", "une balle rouge", "一个红色的球"], seed=r)
            batch4.append((time.perf_counter() - t0) / 4)
    med = statistics.median
    return {"s_per_image": round(med(single), 4), "s_per_image_batch4": round(med(batch4), 4)}


def real(reps: int, layers: int | None) -> dict[str, Any]:
    """The released sizes on the GPU in bfloat16.

    ``layers`` shrinks Gemma-2 for a CPU smoke run of this code path: then 256² only, one step per image.
    """
    from regionreasoner.tools.generate.magvit import Magvit, MagvitConfig

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    llm = dict(GEMMA2_2B_IT) if layers is None else {**GEMMA2_2B_IT, "num_hidden_layers": layers}
    config = NeoBabelConfig(vocab_size=264203, llm_vocab_size=256000, num_vq_tokens=1024, llm_config=llm)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    with torch.device(device):
        model = NeoBabel(config, dtype=dtype).eval()
        vq = Magvit(MagvitConfig()).eval()
    built = time.perf_counter() - t0
    out: dict[str, Any] = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "dtype": str(dtype).removeprefix("torch."),
        "params_B": round(sum(p.numel() for p in model.parameters()) / 1e9, 3),
        "build_s": round(built, 1),
    }
    sizes = ((256, 12), (512, 50)) if layers is None else ((256, 1),)
    for res, steps in sizes:
        n = (res // 16) ** 2
        cmp = compare(model, n, 512, reps, 4 if layers is None else 1)
        layout = model.layout
        tokens = torch.full((1, n), layout.mask_id, device=device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times = []
        for r in range(max(1, reps // 2)):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            with torch.inference_mode():
                codes = sample_codes(
                    model,
                    build_t2i_batch([[2, 10, 11]], tokens, layout, 512),
                    layout=layout,
                    num_image_tokens=n,
                    uncond_input_ids=build_t2i_batch([[]], tokens, layout, 512),
                    settings=SamplerSettings(timesteps=steps, guidance_scale=5.0),
                    generator=torch.Generator(device).manual_seed(r),
                )
                vq.decode_code(codes)
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        peak = round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else None
        out[f"{res}px"] = {
            "N": n,
            "L": 513 + n + 2,
            "steps": steps,
            **cmp,
            "s_per_image": round(statistics.median(times), 3),
            "peak_gib": peak,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per run")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--text-vocab", type=int, default=2048)
    parser.add_argument("--codes", type=int, default=256, help="N (256 = a 256² image)")
    parser.add_argument("--max-seq", type=int, default=128, help="max_seq_length (PT-1: 128, later: 512)")
    parser.add_argument("--real", action="store_true", help="also time the released sizes (needs CUDA)")
    parser.add_argument("--real-layers", type=int, default=None, help="shrink Gemma-2 (CPU smoke run of --real)")
    args = parser.parse_args()
    hf_logging.disable_progress_bar()
    if args.real and not torch.cuda.is_available() and args.real_layers is None:
        sys.exit("--real needs a CUDA GPU (or --real-layers 1 for a CPU smoke run of the code path)")
    model, sizes = small_model(args)
    cfg = compare(model, args.codes, args.max_seq, args.reps, args.steps)
    out: dict[str, Any] = {
        "cfg_batched_step_ms_p50": cfg["batched_ms"],
        "cfg_two_forwards_step_ms_p50": cfg["two_forwards_ms"],
        "cfg_batched_over_two": cfg["ratio"],
        "cfg_model": sizes,
    }
    del model
    tiny = tiny_per_image(args.reps)
    out |= {"tiny_s_per_image": tiny["s_per_image"], "tiny_s_per_image_batch4": tiny["s_per_image_batch4"]}
    if args.real:
        out["real"] = real(args.reps, args.real_layers)
    out |= {"reps": args.reps, "steps": args.steps, "cpu_threads": torch.get_num_threads()}
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
