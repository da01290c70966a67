"""Supervised fine-tuning on ground-truth traces with TRL's ``SFTTrainer`` (loss on the assistant message only).

The data are prompt/completion rows (``regionreasoner-train data --from synthetic`` writes a ``completion`` column:
the turn's ``<scene>``, ``<focus>``, ``<think>`` citing the reference, and ``<answer>``); TRL computes the loss on
the completion tokens only (``completion_only_loss``), the prompt and image are context.  Checkpoints, exact resume
and the metrics log work as for GRPO (:mod:`regionreasoner.trainers.grpo`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from regionreasoner.core.errors import ConfigError
from regionreasoner.trainers.config import SFTRunConfig
from regionreasoner.trainers.metrics_log import metrics_callback
from regionreasoner.trainers.processing import load_processor, model_path
from regionreasoner.trainers.runs import TrainRun, import_trl, run_to_end

__all__ = ["build_sft", "train_sft"]


def build_sft(cfg: SFTRunConfig, *, dataset: Any = None) -> Any:
    """A ready ``trl.SFTTrainer`` for ``cfg`` (``dataset``: prompt/completion rows with an image; default cfg.data)."""
    trl = import_trl()
    import torch

    path = model_path(cfg.model)
    if dataset is None:
        from regionreasoner.trainers.data import load_saved_dataset

        if cfg.data == "synthetic":
            dataset = cfg.synthetic_dataset()
        else:
            dataset = load_saved_dataset(cfg.data)
    if "completion" not in dataset.column_names:
        raise ConfigError(
            "SFT needs a 'completion' column (ground-truth traces)",
            hint="build the data from the synthetic world: regionreasoner-train data --from synthetic",
        )
    cpu = cfg.use_cpu or not torch.cuda.is_available()
    args = trl.SFTConfig(
        output_dir=cfg.output_dir,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=1,
        report_to="none",
        save_strategy="steps" if cfg.save_steps else "no",
        save_steps=cfg.save_steps or 500,
        use_cpu=cpu,
        bf16=not cpu,
        gradient_checkpointing=False,
        max_length=cfg.max_length,
        completion_only_loss=True,
        dataset_kwargs={"skip_prepare_dataset": False},
    )
    peft_config = None
    if cfg.lora:
        from peft import LoraConfig

        peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules="all-linear")
    return trl.SFTTrainer(
        model=path,
        args=args,
        train_dataset=dataset,
        processing_class=load_processor(path),
        peft_config=peft_config,
        callbacks=[metrics_callback(Path(cfg.output_dir) / "metrics.jsonl")],
    )


def train_sft(cfg: SFTRunConfig, *, resume: bool = True, dataset: Any = None) -> TrainRun:
    """Build (:func:`build_sft`) and train to the end, resuming from the run's last checkpoint when ``resume``."""
    return run_to_end(build_sft(cfg, dataset=dataset), cfg.output_dir, resume=resume, model=model_path(cfg.model))
