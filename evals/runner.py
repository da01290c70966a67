"""Running a benchmark (RegionDial-Bench, RefCOCO, the synthetic one) through the agent.

One dialogue per benchmark item, through :class:`~regionreasoner.agent.api.RegionAgent`: each turn's
``<box>{context_bbox}</box>`` placeholder is filled with the **predicted** box of the cited turn (its first region),
or the cited turn's **ground-truth** box when that turn produced none (the official rule, reference §3.3).  How the
box enters the question is the ``protocol``:

* ``regionreasoner`` (default, correct frames): the cited region's name (``R3``), or the GT box inline as
  ``bbox=[x1, y1, x2, y2]`` in original pixels; the agent renders either in the policy's frame, as it was trained.
* ``official``: ``str([x1, y1, x2, y2])`` in original pixels pasted as text, as the released script does (which puts
  original-pixel boxes into a prompt whose image is 840x840); pair it with unconstrained decoding and an agent with
  ``answer_protocol="official"`` to reproduce it.  The boxes scored and cited are then the released code's mapping
  of the turn's answer text (:func:`~regionreasoner.core.answer_map.official_answer`: integer pixels, unclipped),
  not the stored regions, which memory keeps inside the image.

Results are JSON lines of :class:`~regionreasoner.evals.results.TurnResult`, appended as turns finish; a rerun skips
the turns already in the file (and reuses turns already stored in the run's memory), so an interrupted run resumes.
Dialogues run in ``workers`` threads; wrap the policy in :class:`~regionreasoner.policies.batching.BatchingPolicy` so
their concurrent calls become batches.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from regionreasoner.agent.api import RegionAgent
from regionreasoner.core.answer_map import official_answer
from regionreasoner.core.errors import ConfigError, InputError
from regionreasoner.core.frames import frame_from_spec
from regionreasoner.core.geometry import Box, Point
from regionreasoner.core.images import load_image
from regionreasoner.core.masks import decode_rle
from regionreasoner.core.types import Turn
from regionreasoner.evals.metrics import score_turn
from regionreasoner.evals.regiondial import BenchDialogue, context_box_text, fill_context, resolve_context
from regionreasoner.evals.results import TurnResult, read_results, write_results

__all__ = ["Protocol", "RunStats", "dialogue_id", "render_question", "run_benchmark"]

Protocol = Literal["regionreasoner", "official"]
Progress = Callable[[TurnResult], None]


@dataclass(frozen=True)
class RunStats:
    """What a run did: turns scored now, turns found already done, and the results file."""

    scored: int
    skipped: int
    results: Path
    seconds: float


def dialogue_id(name: str, index: int, item: BenchDialogue) -> str:
    """The memory/thread id of benchmark item ``index``: stable across reruns (so a run can resume)."""
    safe = re.sub(r"[^A-Za-z0-9_.:-]", "_", str(item.image_id))
    return f"{name}-{index}-{safe}"[:128]


def render_question(
    item: BenchDialogue,
    turn: int,
    predictions: dict[int, list[str]],
    boxes: dict[int, list[Box]],
    protocol: Protocol,
) -> tuple[str, Literal["pred", "gt"] | None]:
    """The question of ``turn`` with its placeholder filled, and where the box came from (None: no citation).

    ``predictions`` maps earlier turns to their region ids, ``boxes`` to their predicted boxes (original pixels).
    """
    question = item.turns[turn].question
    context = resolve_context(item, turn, boxes)
    if context is None:
        return question, None
    box, source = context
    if protocol == "official":
        return fill_context(question, context_box_text(box)), source
    k = item.turns[turn].context_from_turn
    if source == "pred" and k is not None and predictions.get(k):
        return fill_context(question, predictions[k][0]), source
    return fill_context(question, "bbox=" + context_box_text(box)), source


def _pred_mask(turn: Turn, size: tuple[int, int]) -> np.ndarray | None:
    masks = [r.mask for r in turn.regions if r.mask is not None]
    if not masks or len(masks) != len(turn.regions):
        return None
    out = np.zeros((size[1], size[0]), dtype=bool)
    for m in masks:
        out |= decode_rle(m)
    return out


@dataclass(frozen=True)
class _Prediction:
    """A turn's predictions as the protocol scores them (original pixels)."""

    boxes: list[Box]  # in answer order; boxes[0] fills a later citation (official: inverted ones included)
    scored: list[Box]  # scored and recorded (an inverted box has IoU 0 with anything and no pixels)
    points: list[Point]
    mask: np.ndarray | None  # None: the rasterised scored boxes stand in (box-only scoring)


def _prediction(turn: Turn, size: tuple[int, int], protocol: Protocol) -> _Prediction:
    if protocol != "official":
        boxes = [r.box for r in turn.regions]
        points = [r.point for r in turn.regions if r.point is not None]
        return _Prediction(boxes, boxes, points, _pred_mask(turn, size))
    official = official_answer(turn.sections.answer, frame_from_spec(turn.frame), size)
    boxes = official.pixel_boxes()
    # No point for some object: the official mask is empty, whatever a segmenter would say.
    mask = np.zeros((size[1], size[0]), dtype=bool) if official.mask_is_empty else _pred_mask(turn, size)
    points = [Point(float(x), float(y)) for x, y in official.points]
    return _Prediction(boxes, [b for b in boxes if b.is_valid()], points, mask)


def run_benchmark(
    agent: RegionAgent,
    items: Sequence[BenchDialogue],
    *,
    images: Path,
    results: Path,
    name: str = "bench",
    protocol: Protocol = "regionreasoner",
    workers: int = 1,
    progress: Progress | None = None,
) -> RunStats:
    """Run ``items`` through ``agent``; append one TurnResult per new turn to ``results``; see the module docstring.

    ``images`` is the folder the items' ``image_path`` are relative to.
    """
    if protocol not in ("regionreasoner", "official"):
        raise ConfigError(f"protocol={protocol!r}: use 'regionreasoner' or 'official'")
    if workers < 1:
        raise ConfigError(f"workers={workers}: set it >= 1")
    done: dict[tuple[int, int], TurnResult] = {}
    if results.exists():
        done = {(r.dialogue_index, r.turn): r for r in read_results(results)}
    results.parent.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    counts = {"scored": 0, "skipped": 0}
    t0 = time.perf_counter()

    def record(result: TurnResult) -> None:
        with lock:
            write_results(results, [result], append=True)
            counts["scored"] += 1
        if progress is not None:
            progress(result)

    def run_one(index: int) -> None:
        item = items[index]
        if item.image_path is None:
            raise InputError(f"item {index} (image_id {item.image_id}) has no image_path", hint="see load_regiondial")
        image = load_image(images / item.image_path)
        did = dialogue_id(name, index, item)
        session = agent.dialogue(image, id=did)
        # Turns are found by their key, not their index: a turn the policy failed in is recorded without a key,
        # so a dialogue's memory index can run ahead of the benchmark's turn number.
        by_key = {t.key: t for t in session.turns() if t.key is not None}
        stored = {t: by_key[f"{did}:{t}"] for t in range(len(item.turns)) if f"{did}:{t}" in by_key}
        region_ids: dict[int, list[str]] = {}
        boxes: dict[int, list[Box]] = {}
        for t, bench in enumerate(item.turns):
            previous = done.get((index, t))
            if previous is not None:  # scored by an earlier run: reuse its prediction for later citations
                region_ids[t] = [r.id for r in stored[t].regions] if t in stored else []
                boxes[t] = list(previous.pred_boxes)
                if protocol == "official" and t in stored:  # recorded boxes leave out inverted ones
                    boxes[t] = _prediction(stored[t], image.size, protocol).boxes
                with lock:
                    counts["skipped"] += 1
                continue
            question, source = render_question(item, t, region_ids, boxes, protocol)
            started = time.perf_counter()
            turn = stored.get(t) or session.ask(question, key=f"{did}:{t}")
            region_ids[t] = [r.id for r in turn.regions]
            pred = _prediction(turn, image.size, protocol)
            boxes[t] = pred.boxes
            score = score_turn(bench.gt_box, bench.masks, pred.scored, pred.mask, image.size)
            record(
                TurnResult(
                    image_id=item.image_id,
                    dialogue_index=index,
                    turn=t,
                    round=t + 1,
                    question=bench.question,
                    rendered_question=turn.rendered_question,
                    context_from_turn=bench.context_from_turn,
                    context_source=source,
                    gt_box=bench.gt_box,
                    pred_boxes=pred.scored,
                    pred_points=pred.points,
                    status=turn.status.value,
                    box_iou=score.box_iou,
                    hit=score.hit,
                    intersection=score.intersection,
                    union=score.union,
                    problems=[p.kind.value for p in turn.problems],
                    latency_ms=(time.perf_counter() - started) * 1e3,
                    generated_tokens=turn.usage.generated_tokens,
                    sections=turn.sections,
                )
            )

    if workers == 1:
        for i in range(len(items)):
            run_one(i)
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="bench") as pool:
            for future in [pool.submit(run_one, i) for i in range(len(items))]:
                future.result()
    return RunStats(
        scored=counts["scored"], skipped=counts["skipped"], results=results, seconds=time.perf_counter() - t0
    )
