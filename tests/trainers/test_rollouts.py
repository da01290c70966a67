"""Agentic rollouts: two GRPO steps whose completions come from the agent's own turn graph (tools included).

The tiny random Qwen2.5-VL answers synthetic rounds through :class:`GraphRollout` with grammar-constrained turns
and a text tool in ``<think>``; every token the environment fed (a tool response, the closing end-of-turn token)
carries ``env_mask`` 0, every token the model generated 1, and the rewards see the turn the agent parsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

pytest.importorskip("trl", reason="the training extra is not installed: pip install 'regionreasoner[train]'")

from regionreasoner.core.images import LoadedImage
from regionreasoner.tools.base import Tool, ToolResult
from regionreasoner.trainers.config import GRPORunConfig
from regionreasoner.trainers.grpo import train_grpo
from regionreasoner.trainers.metrics_log import read_metrics
from regionreasoner.trainers.rollouts import GraphRollout, env_mask_of, question_of


class ImageSize(Tool):
    """An explicit fake text tool: the image's size."""

    name: ClassVar[str] = "image_size"
    description: ClassVar[str] = "the image's width and height in pixels"
    inputs: ClassVar[Mapping[str, Any]] = {"type": "object", "properties": {}, "additionalProperties": False}

    def run(self, image: LoadedImage, arguments: Mapping[str, Any]) -> ToolResult:
        return ToolResult(text=f"{image.width}x{image.height}")


def answered(
    prompts: list[Any], completions: list[Any], completion_ids: list[Any], turn_status: list[str], **_: Any
) -> list[float | None]:
    """1 for a turn the agent recorded as ok (the graph's own verdict, passed from the rollout)."""
    return [1.0 if s == "ok" else 0.0 for s in turn_status]


def boxes(
    prompts: list[Any], completions: list[Any], completion_ids: list[Any], turn_regions: list[Any], **_: Any
) -> list[float | None]:
    """The number of answer boxes, capped at 1 (a second component)."""
    return [min(1.0, float(len(r))) for r in turn_regions]


def test_env_mask_marks_the_generated_spans() -> None:
    assert env_mask_of([5, 6, 7, 8, 9, 10], [[5, 6], [9]]) == [1, 1, 0, 0, 1, 0]
    assert (
        question_of(
            __import__("regionreasoner.core.prompts", fromlist=["get_prompt"])
            .get_prompt("regionreasoner-train")
            .render("find the cat")
            .replace("<image>", "", 1),
            "regionreasoner-train",
        )
        == "find the cat"
    )


def test_two_grpo_steps_through_the_turn_graph(tmp_path: Path) -> None:
    from regionreasoner.trainers.data import synthetic_dataset
    from regionreasoner.trainers.processing import load_processor, model_path

    cfg = GRPORunConfig(
        model="tiny",
        output_dir=str(tmp_path),
        max_steps=2,
        prompts_per_step=2,
        num_generations=4,
        max_completion_length=160,
        learning_rate=1e-3,
        use_cpu=True,
        seed=0,
        rollouts="graph",
    )
    rollout = GraphRollout(
        cfg, load_processor(model_path("tiny")), tools=[ImageSize()], char_limits={"scene": 8, "focus": 8, "think": 8}
    )
    seen: list[dict[str, Any]] = []

    def recording(prompts: list[Any], trainer: Any) -> dict[str, Any]:
        out = rollout(prompts, trainer)
        seen.append(out)
        return out

    run = train_grpo(
        cfg, dataset=synthetic_dataset(count=8, seed=0), reward_funcs=[answered, boxes], rollout_func=recording
    )
    assert run.steps == 2
    steps = [r for r in read_metrics(run.metrics) if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(isinstance(r.get("rewards/answered/mean"), float) for r in steps)

    tokenizer = rollout._policy.tokenizer
    responses = 0
    for out in seen:
        assert len(out["completion_ids"]) == 8  # one completion per prompt received (2 prompts x 4)
        for ids, mask in zip(out["completion_ids"], out["env_mask"], strict=True):
            assert len(ids) == len(mask) and mask[-1] == 0  # the closing token is the environment's
            fed = tokenizer.decode([t for t, m in zip(ids, mask, strict=False) if m == 0])
            made = tokenizer.decode([t for t, m in zip(ids, mask, strict=False) if m == 1])
            assert "<tool_response>" not in made and "<answer>" in made
            responses += fed.count("<tool_response>")
            assert fed.count("<tool_response>") == tokenizer.decode(ids).count("<tool_response>")
    assert responses >= 1  # the tool ran, and its responses were masked
