"""Time to score 4,115 turns (the size of RegionDial-Bench RefCOCOg) with 512x512 masks.

Prints one JSON line: ``{"turns": 4115, "seconds": ..., ...}``.  ``seconds`` is the path a benchmark run takes:
GT masks as COCO RLE (as loaded from the benchmark file), predicted masks as bool arrays (as a segmenter returns
them), through ``score_turn`` and the streaming ``RoundMetrics``.  The other paths are timed side by side in the same
run, on the same masks, and must give the same intersections and unions.  Only scoring is timed, not the
generation of the random masks.

    .venv/bin/python benchmarks/metrics.py
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import numpy as np

from regionreasoner.core.geometry import Box
from regionreasoner.core.masks import Rle, decode_rle, encode_rle, mask_to_box
from regionreasoner.evals.metrics import MaskLike, RoundMetrics, score_turn

TURNS = 4115
SIZE = 512
ROUNDS = [1580, 1580, 568, 269, 81, 28, 7, 1, 1]  # RefCOCOg turns per round


def _ellipse(rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    cx, cy = rng.uniform(40, SIZE - 40, 2)
    rx, ry = rng.uniform(10, 120, 2)
    y0, y1 = max(0, int(cy - ry)), min(SIZE, int(cy + ry) + 1)
    x0, x1 = max(0, int(cx - rx)), min(SIZE, int(cx + rx) + 1)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    mask[y0:y1, x0:x1] = ((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1.0
    return mask


def _turns(seed: int) -> Iterator[tuple[int, Box, Rle, list[Box], np.ndarray]]:
    """(round, GT box, GT RLE, predicted boxes, predicted mask); about 8% of the turns have no prediction."""
    rng = np.random.default_rng(seed)
    rounds = [r for r, n in enumerate(ROUNDS, start=1) for _ in range(n)]
    for round_ in rounds:
        gt = _ellipse(rng)
        gt_box = mask_to_box(gt)
        assert gt_box is not None
        if rng.random() < 0.08:
            yield round_, gt_box, encode_rle(gt), [], np.zeros_like(gt)
            continue
        shift = rng.integers(-25, 26, 2)
        pred = np.roll(gt, tuple(int(s) for s in shift), axis=(0, 1)) | (_ellipse(rng) if rng.random() < 0.2 else False)
        pred_box = mask_to_box(pred)
        yield round_, gt_box, encode_rle(gt), [pred_box] if pred_box is not None else [], pred


def main() -> None:
    """Generate the turns, time each scoring path on them, print one JSON line."""
    turns = list(_turns(0))
    gt_arrays = [decode_rle(t[2]) for t in turns]
    pred_rles = [encode_rle(t[4]) for t in turns]
    paths: dict[str, Callable[[int], tuple[MaskLike | None, MaskLike | None]]] = {
        "seconds": lambda i: (turns[i][2], turns[i][4]),  # GT RLE + predicted bool array (a benchmark run)
        "seconds_arrays": lambda i: (gt_arrays[i], turns[i][4]),  # both bool arrays
        "seconds_rle": lambda i: (turns[i][2], pred_rles[i]),  # both RLE, combined on runs
        "seconds_box_only": lambda i: (None, None),  # rasterised boxes
    }
    out: dict[str, float | int] = {"turns": len(turns)}
    counts: dict[str, list[tuple[int, int]]] = {}
    for name, masks in paths.items():
        metrics = RoundMetrics()
        seen: list[tuple[int, int]] = []
        start = time.perf_counter()
        for i, (round_, gt_box, _, pred_boxes, _) in enumerate(turns):
            gt_mask, pred_mask = masks(i)
            s = score_turn(gt_box, gt_mask, pred_boxes, pred_mask, (SIZE, SIZE))
            metrics.add(round_, intersection=s.intersection, union=s.union, hit=s.hit, box_iou=s.box_iou)
            seen.append((s.intersection, s.union))
        out[name] = round(time.perf_counter() - start, 4)
        counts[name] = seen
        summary = metrics.summary()
        assert summary.turns == TURNS and [r.count for r in summary.rounds] == ROUNDS
    assert counts["seconds"] == counts["seconds_arrays"] == counts["seconds_rle"], "scoring paths disagree"
    out["turns_per_second"] = round(len(turns) / float(out["seconds"]))
    out["mask_size"] = SIZE
    print(json.dumps(out))


if __name__ == "__main__":
    main()
