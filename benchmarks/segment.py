"""Masks for many regions of one image: embed once and decode all prompts in one call, against re-embedding per region.

Both run side by side in one process on the same image and the same prompts, interleaved over ``--reps`` repeats
(medians reported):

* ``embed_once_ms_p50``: ``set_image`` (one encoder run) + one ``predict`` of all ``--regions`` box+point prompts
  (one decoder forward), what :class:`~regionreasoner.tools.segment.Sam2Segmenter` does for a turn.
* ``per_region_ms_p50``: for each region, a cold cache, ``set_image`` + ``predict`` of that one region: what a
  segmenter without the embedding cache and batching would cost.
* ``speedup``: their ratio (goal: >= 8 for 16 regions).  ``encoder_ms_p50`` is one image embedding;
  ``decoder_ms_per_region_batched`` is a warm 16-prompt ``predict`` divided by 16 (upsampling to the image's size
  included), ``decoder_ms_single`` a warm 1-prompt ``predict``.

The default model is a tiny random SAM2 (tools/tiny.py) at the real input size (1024² pixels, so the encoder's
share of the cost is like the real model's; widths 32..256 instead of Hiera-tiny's 96..768).  ``--checkpoint PATH``
runs a real folder instead.  The encoder/decoder calls are counted to check each side does what it claims.

Usage (about 80 s): ``.venv/bin/python benchmarks/segment.py [--reps 3] [--regions 16] [--checkpoint PATH]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers.utils import logging as hf_logging

from regionreasoner.core.geometry import Box, Point
from regionreasoner.core.images import load_image
from regionreasoner.tools.segment import Sam2Segmenter
from regionreasoner.tools.tiny import build_tiny_sam2


def ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


def regions(n: int, width: int, height: int) -> tuple[list[Box], list[list[Point]]]:
    """``n`` boxes on a grid over the image, each with its centre as the positive point."""
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    w, h = width / cols, height / rows
    boxes = [Box(c * w + 4, r * h + 4, (c + 1) * w - 4, (r + 1) * h - 4) for r in range(rows) for c in range(cols)][:n]
    return boxes, [[b.center] for b in boxes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--regions", type=int, default=16)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--image-size", type=int, default=1024, help="input size of the tiny model")
    parser.add_argument("--hidden-size", type=int, default=32, help="first-stage width of the tiny model")
    parser.add_argument("--checkpoint", type=Path, default=None, help="a real SAM2 folder instead of the tiny model")
    args = parser.parse_args()
    hf_logging.disable_progress_bar()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        if args.checkpoint is None:
            folder = build_tiny_sam2(Path(tmp) / "sam2", image_size=args.image_size, hidden_size=args.hidden_size)
            model = f"tiny random SAM2, {args.image_size}² input, hidden_size {args.hidden_size}"
        else:
            folder, model = args.checkpoint, str(args.checkpoint)
        seg = Sam2Segmenter(folder, cache_size=1)
        rng = np.random.default_rng(0)
        image = load_image(rng.integers(0, 256, (args.height, args.width, 3), dtype=np.uint8))
        boxes, points = regions(args.regions, args.width, args.height)
        seg.predict(image, boxes, points)  # warm-up: load, first-call allocations
        seg.predict(image, boxes[:1], points[:1])

        once, per_region, encoder, batched, single = [], [], [], [], []
        for _ in range(args.reps):
            seg.clear_cache()
            enc0, dec0 = seg.encoder_calls, seg.decoder_calls
            t0 = time.perf_counter()
            seg.set_image(image)
            encoder.append(ms(t0))
            seg.predict(image, boxes, points)
            once.append(ms(t0))
            assert (seg.encoder_calls - enc0, seg.decoder_calls - dec0) == (1, 1)

            enc0, dec0 = seg.encoder_calls, seg.decoder_calls
            t0 = time.perf_counter()
            for box, point in zip(boxes, points, strict=True):
                seg.clear_cache()
                seg.set_image(image)
                seg.predict(image, [box], [point])
            per_region.append(ms(t0))
            assert (seg.encoder_calls - enc0, seg.decoder_calls - dec0) == (len(boxes), len(boxes))

            t0 = time.perf_counter()  # warm cache from here on: decoder (and upsampling) only
            seg.predict(image, boxes, points)
            batched.append(ms(t0) / len(boxes))
            t0 = time.perf_counter()
            seg.predict(image, boxes[:1], points[:1])
            single.append(ms(t0))

        params = sum(p.numel() for p in seg._model.parameters())
        med = statistics.median
        out = {
            "regions": len(boxes),
            "image": f"{args.width}x{args.height}",
            "embed_once_ms_p50": round(med(once), 1),
            "per_region_ms_p50": round(med(per_region), 1),
            "speedup": round(med(per_region) / med(once), 2),
            "encoder_ms_p50": round(med(encoder), 1),
            "decoder_ms_per_region_batched": round(med(batched), 2),
            "decoder_ms_single": round(med(single), 2),
            "reps": args.reps,
            "model": f"{model} ({params / 1e6:.2f} M parameters), CPU float32, torch threads {torch.get_num_threads()}",
        }
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
