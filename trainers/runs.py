"""What SFT and GRPO runs share: importing TRL, running a trainer to its end (resuming), and what a run leaves."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regionreasoner.core.errors import DependencyMissingError
from regionreasoner.trainers.metrics_log import last_checkpoint

__all__ = ["DECLARATION", "TrainRun", "import_trl", "run_to_end"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainRun:
    """What a finished run leaves behind: the final weights folder, the metrics log and the steps taken."""

    output_dir: Path
    final: Path
    metrics: Path
    steps: int
    resumed_from: Path | None


def import_trl() -> Any:
    """The ``trl`` module, or DependencyMissingError naming the extra to install."""
    try:
        import trl
    except ImportError as exc:
        raise DependencyMissingError(
            "training needs TRL: pip install 'regionreasoner[train]'", hint="pip install 'regionreasoner[train]'"
        ) from exc
    return trl


DECLARATION = "regionreasoner.json"
"""The file a checkpoint folder declares its frame and prompt template in (policies.families); it travels with the
weights from the model a run starts from to the run's final folder."""


def run_to_end(trainer: Any, output_dir: str | Path, *, resume: bool, model: str | Path | None = None) -> TrainRun:
    """Train (from the run's last checkpoint when there is one and ``resume``); save the final weights.

    The final weights are safetensors in ``output_dir/final`` (with the processor), loadable by every policy; the
    starting ``model`` folder's ``regionreasoner.json`` (frame, prompt template) is copied beside them.
    """
    folder = Path(output_dir)
    checkpoint = last_checkpoint(folder) if resume else None
    if checkpoint is not None:
        log.info("resuming from %s", checkpoint)
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    final = folder / "final"
    trainer.save_model(str(final))  # weights (safetensors) and the processor
    declared = Path(model) / DECLARATION if model is not None else None
    if declared is not None and declared.is_file():
        shutil.copyfile(declared, final / DECLARATION)
    return TrainRun(
        output_dir=folder,
        final=final,
        metrics=folder / "metrics.jsonl",
        steps=int(trainer.state.global_step),
        resumed_from=checkpoint,
    )
