"""What the generator's training stages share: resumable checkpoints, the metrics log and its plot, the schedule.

A stage folder (``runs/generator/vq``, ``.../lm``)::

    checkpoint-<step>/state.pt    model, optimizer and step (the two newest are kept)
    metrics.jsonl                 one JSON object per logged step ({"step": ..., "loss": ..., ...})
    metrics.png                   every logged number against the step
    final/                        the stage's result, in the library's own checkpoint layout

A resumed stage drops the log lines past its checkpoint, so the log of an interrupted run reads like the log of one
that never stopped.  The picture stream of step ``s`` depends only on ``(seed, stage, s)``, so a resumed run sees
the same data as an uninterrupted one.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

from regionreasoner.trainers.metrics_log import read_metrics

__all__ = ["StageLog", "cosine_lr", "latest_checkpoint", "plot_stage", "save_checkpoint"]

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
STATE = "state.pt"


def latest_checkpoint(folder: Path) -> tuple[int, Path] | None:
    """``(step, checkpoint folder)`` of the newest complete checkpoint of a stage, or None."""
    if not folder.is_dir():
        return None
    found = [
        (int(m.group(1)), p) for p in folder.iterdir() if (m := _CHECKPOINT.match(p.name)) and (p / STATE).is_file()
    ]
    return max(found) if found else None


def save_checkpoint(folder: Path, step: int, state: dict[str, Any], *, keep: int = 2) -> Path:
    """Write ``checkpoint-<step>/state.pt`` atomically (temp file, then rename); keep the ``keep`` newest."""
    import torch

    target = folder / f"checkpoint-{step}"
    target.mkdir(parents=True, exist_ok=True)
    tmp = target / (STATE + ".tmp")
    torch.save(state, tmp)
    tmp.replace(target / STATE)
    done = sorted(
        (int(m.group(1)), p) for p in folder.iterdir() if (m := _CHECKPOINT.match(p.name)) and (p / STATE).is_file()
    )
    for _, old in done[:-keep]:
        shutil.rmtree(old)
    return target


def cosine_lr(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up to ``peak`` over ``warmup`` steps, then cosine decay to 10% of it at ``total``.

    >>> cosine_lr(0, 100, 1.0, 10), cosine_lr(10, 100, 1.0, 10), round(cosine_lr(100, 100, 1.0, 10), 3)
    (0.1, 1.0, 0.1)
    """
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


class StageLog:
    """``metrics.jsonl`` of a stage, truncated to ``start_step`` when a run (re)starts there."""

    def __init__(self, path: Path, start_step: int) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            kept = [r for r in read_metrics(path) if int(r.get("step", 0)) <= start_step]
            path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")

    def write(self, record: dict[str, float | int]) -> None:
        """Append one record (floats rounded to 6 significant digits)."""
        clean = {k: (float(f"{v:.6g}") if isinstance(v, float) else v) for k, v in record.items()}
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(clean) + "\n")


def plot_stage(metrics: Path, out: Path, title: str) -> Path:
    """One panel per logged number (``step`` on the x axis); returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics)
    keys = [k for k in records[0] if k != "step"] if records else []
    fig, axes = plt.subplots(max(1, len(keys)), 1, figsize=(7, 1.6 * max(1, len(keys))), sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], keys, strict=False):
        points = [(r["step"], r[key]) for r in records if isinstance(r.get(key), int | float)]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker=".", markersize=2, linewidth=0.8)
        ax.set_ylabel(key, fontsize=8)
    axes[0, 0].set_title(title, fontsize=9)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
