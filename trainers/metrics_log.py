"""The per-step metrics log of a training run (JSON lines), its plot, and finding a run's last checkpoint.

TRL logs, every ``logging_steps``, the loss, each reward function's mean and standard deviation
(``rewards/<name>/mean``), the total reward, KL, completion lengths and clip fractions; a reward function can add
more through ``log_metric``.  The callback appends each of those dictionaries, with its step, as one JSON
line to ``metrics.jsonl``; a resumed run appends to the same file after dropping the lines past its checkpoint,
so the log of an interrupted run reads like the log of one that never stopped (:func:`metrics_callback`).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from regionreasoner.core.errors import InputError

__all__ = ["last_checkpoint", "metrics_callback", "plot_metrics", "read_metrics"]

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def last_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest ``checkpoint-N`` folder of a run (highest N with a trainer state), or None."""
    folder = Path(output_dir)
    if not folder.is_dir():
        return None
    found = [
        (int(m.group(1)), p)
        for p in folder.iterdir()
        if (m := _CHECKPOINT.match(p.name)) and (p / "trainer_state.json").is_file()
    ]
    return max(found)[1] if found else None


_CLASS: type | None = None


def metrics_callback(path: str | Path) -> Any:
    """A transformers ``TrainerCallback`` appending ``{"step": ..., **logs}`` per log event to ``path``.

    The class is made on first use, so importing this module imports no transformers.
    """
    global _CLASS
    if _CLASS is None:
        from transformers import TrainerCallback

        class MetricsLog(TrainerCallback):
            """One JSON line per log event; on (re)start, drops lines past the step the run starts from."""

            def __init__(self, path: Path) -> None:
                self.path = path

            def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                if self.path.exists():
                    # A resumed run starts at state.global_step: what the interrupted run logged after it is
                    # logged again, so those lines go.
                    kept = [r for r in read_metrics(self.path) if int(r.get("step", 0)) <= state.global_step]
                    self.path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")

            def on_log(
                self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
            ) -> None:
                if not logs or not state.is_world_process_zero:
                    return
                record = {"step": int(state.global_step), **{k: _json_value(v) for k, v in logs.items()}}
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(record) + "\n")

        _CLASS = MetricsLog
    return _CLASS(Path(path))


def _json_value(value: Any) -> Any:
    """A log value as JSON can hold it (non-finite floats as None, tensors and numpy scalars as floats)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics log, in order; InputError naming the line for one that is not JSON."""
    file = Path(path)
    if file.is_dir():
        file = file / "metrics.jsonl"
    if not file.is_file():
        raise InputError(f"no metrics log at {file}", hint="pass a run folder (it holds metrics.jsonl)")
    records = []
    for n, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise InputError(f"{file}:{n} is not a JSON line", hint="the log is written by the trainer") from None
    return records


def plot_metrics(run: str | Path, out: str | Path | None = None) -> Path:
    """Plot loss, total reward, every reward component, KL and completion length per step; returns the PNG path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [r for r in read_metrics(run) if "loss" in r or "reward" in r]
    if not records:
        raise InputError(f"{run} has no training steps logged yet", hint="plot a run after its first step")
    keys = ["loss", "reward", *sorted(k for k in records[0] if k.startswith("rewards/") and k.endswith("/mean"))]
    keys += sorted(k for k in records[0] if k.startswith("region_reasoner/") and k != "region_reasoner/total")
    keys += [k for k in ("kl", "completions/mean_length", "clip_ratio/region_mean") if k in records[0]]
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 1.8 * len(keys)), sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], keys, strict=True):
        points = [(r["step"], r[key]) for r in records if isinstance(r.get(key), int | float)]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker=".")
        ax.set_ylabel(key.removeprefix("rewards/").removesuffix("/mean"), fontsize=8)
    axes[-1, 0].set_xlabel("step")
    target = Path(out) if out else (Path(run) if Path(run).is_dir() else Path(run).parent) / "metrics.png"
    fig.tight_layout()
    fig.savefig(target, dpi=100)
    plt.close(fig)
    return target
