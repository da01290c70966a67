"""Region memory throughput and look-up latency at 100k regions, through the public API.

    .venv/bin/python benchmarks/memory.py            # 1,000 dialogues x 50 turns x 2 regions = 100,000 regions

Builds a fresh SQLite memory in a temporary folder, stores every turn with ``RegionMemory.append_turn`` (one
transaction per turn, full validation: image bounds, mask size, referenced and cited regions), then times
``get_region`` for random (dialogue, region) pairs.  Prints one JSON line:
``{"regions": 100000, "insert_per_s": ..., "lookup_ms_p50": ..., ...}`` where insert_per_s counts regions per
second.  Turns alternate between a first mention and a follow-up that references and cites an earlier region.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from regionreasoner.core.geometry import Box
from regionreasoner.core.masks import box_to_mask, encode_rle
from regionreasoner.core.types import Citation, RegionDraft, TurnDraft, Usage
from regionreasoner.memory import RegionMemory

WIDTH, HEIGHT = 640, 480


def _drafts(image: str, turns: int, per_turn: int, rng: random.Random) -> list[TurnDraft]:
    mask = encode_rle(box_to_mask(Box(40.0, 30.0, 200.0, 220.0), HEIGHT, WIDTH))
    out: list[TurnDraft] = []
    for t in range(turns):
        regions = []
        for _ in range(per_turn):
            x1, y1 = rng.uniform(0, WIDTH - 50), rng.uniform(0, HEIGHT - 50)
            box = (x1, y1, x1 + rng.uniform(5, 49), y1 + rng.uniform(5, 49))
            regions.append(
                RegionDraft(
                    box=box,
                    point=((box[0] + box[2]) / 2, (box[1] + box[3]) / 2),
                    mask=mask if not regions else None,
                    label="object",
                    score=rng.random(),
                )
            )
        cited = f"R{rng.randint(1, t * per_turn)}" if t % 2 and t else None
        out.append(
            TurnDraft(
                question=f"the object next to {cited}" if cited else "find the red object",
                rendered_question="the object next to bbox=[10, 20, 30, 40]" if cited else "find the red object",
                image=image,
                frame="fixed:840x840",
                sections={"scene": "a table with objects", "think": "bbox=[10, 20, 30, 40] ...", "answer": "[...]"},
                raw_text="<scene>...</scene><think>...</think><answer>[...]</answer>",
                referenced=[cited] if cited else [],
                citations=[
                    Citation(model_box=(10, 20, 30, 40), box=(7.6, 11.4, 22.9, 22.9), region=cited, verified=True)
                ]
                if cited
                else [],
                regions=regions,
                usage=Usage(prompt_tokens=900, generated_tokens=120, model_calls=4, latency_ms=812.5),
                model="bench",
                key=f"turn-{t}",
            )
        )
    return out


def _lookups(memory: RegionMemory, rng: random.Random, dialogues: int, per_dialogue: int, n: int) -> list[float]:
    """Milliseconds of ``n`` get_region calls on random (dialogue, region) pairs, after 100 warm-up calls."""
    pairs = [(f"bench-{rng.randrange(dialogues)}", f"R{rng.randint(1, per_dialogue)}") for _ in range(n + 100)]
    times = []
    for i, (dialogue_id, region_id) in enumerate(pairs):
        t0 = time.perf_counter()
        memory.get_region(dialogue_id, region_id)
        if i >= 100:
            times.append((time.perf_counter() - t0) * 1000.0)
    return sorted(times)


def run(folder: Path, args: argparse.Namespace) -> dict[str, object]:
    """Fill a fresh memory in ``folder`` and time it; returns the JSON record."""
    rng = random.Random(args.seed)
    with RegionMemory(f"sqlite:///{folder / 'memory.db'}", image_dir=folder / "images") as memory:
        pixels = [np.random.default_rng(i).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8) for i in range(10)]
        images = [memory.put_image(p).hash for p in pixels]
        drafts = {image: _drafts(image, args.turns, args.per_turn, rng) for image in images}
        plans = []
        for d in range(args.dialogues):
            image = images[d % len(images)]
            plans.append((memory.create_dialogue(image, id=f"bench-{d}").id, image))

        per_dialogue = args.turns * args.per_turn
        early = max(1, args.dialogues // 100)  # the look-up latency at 1% of the data, for the ratio
        stored = 0
        insert_s = 0.0
        early_times: list[float] = []
        for i, (dialogue_id, image) in enumerate(plans):
            start = time.perf_counter()
            for draft in drafts[image]:
                stored += len(memory.append_turn(dialogue_id, draft).regions)
            insert_s += time.perf_counter() - start
            if i + 1 == early:
                early_times = _lookups(memory, rng, early, per_dialogue, args.lookups)
        times = _lookups(memory, rng, args.dialogues, per_dialogue, args.lookups)
    return {
        "regions": stored,
        "insert_per_s": round(stored / insert_s, 1),
        "lookup_ms_p50": round(statistics.median(times), 4),
        "lookup_ms_p95": round(times[int(0.95 * (len(times) - 1))], 4),
        "lookup_p50_ratio_full_to_1pct": round(statistics.median(times) / statistics.median(early_times), 3),
        "turns": args.dialogues * args.turns,
        "dialogues": args.dialogues,
        "insert_s": round(insert_s, 1),
        "lookups": len(times),
        "backend": "sqlite",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dialogues", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=50, help="turns per dialogue")
    parser.add_argument("--per-turn", type=int, default=2, help="regions per turn")
    parser.add_argument("--lookups", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rr-bench-memory-") as tmp:
        record = run(Path(tmp), args)
    print(json.dumps(record))


if __name__ == "__main__":
    main()
