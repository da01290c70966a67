"""VLLMPolicy on a tiny random Qwen2.5-VL: the agent's dialogue, schema-valid answers, equality with transformers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.demo_scene import demo_scene
from regionreasoner.core.answer_schema import validate_answer
from regionreasoner.core.images import LoadedImage, load_image
from regionreasoner.core.prompts import get_prompt
from regionreasoner.core.types import TurnStatus
from regionreasoner.policies.base import ImageSlot, Message, PolicyRequest, SamplingParams, TurnConstraint

LIMITS = {"scene": 60, "focus": 40, "think": 80}
QUESTIONS = ["Find the red ball.", "Find the blue box to the right of R1.", "Find the yellow kite above R2."]


@pytest.fixture(scope="module")
def vllm_policy(tiny_qwen25: Path) -> Iterator[Any]:
    from regionreasoner.policies.vllm_policy import VLLMPolicy

    policy = VLLMPolicy(tiny_qwen25, frame="fixed:840x840", dtype="float32", max_model_len=4096)
    yield policy
    policy.close()


@pytest.fixture(scope="module")
def image() -> LoadedImage:
    return load_image(demo_scene()[0])


def request(
    image: LoadedImage, *, prefix: str = "", stop: tuple[str, ...] = (), constrained: bool = True
) -> PolicyRequest:
    prompt = get_prompt("regionreasoner-eval").render("find the ball to the left of bbox=[10, 20, 300, 400]")
    spec = TurnConstraint(bounds=(840, 840), char_limits=LIMITS, max_objects=3) if constrained else None
    return PolicyRequest(
        messages=(Message("user", (ImageSlot(0), prompt)),),
        images=(image,),
        assistant_prefix=prefix,
        stop=stop,
        constraint=spec,
        sampling=SamplingParams(max_new_tokens=600 if constrained else 40),
    )


def test_three_turn_dialogue_through_the_agent(vllm_policy: Any, tmp_path: Path) -> None:
    agent = RegionAgent(vllm_policy, memory=f"sqlite:///{tmp_path}/memory.db", char_limits=LIMITS, max_objects=2)
    dialogue = agent.dialogue(demo_scene()[0])
    turns = [dialogue.ask(q) for q in QUESTIONS]
    assert [t.status for t in turns] == [TurnStatus.OK] * 3
    assert turns[1].referenced == ["R1"] and turns[2].referenced == ["R2"]
    for t in turns:
        assert t.sections.answer is not None
        assert validate_answer(t.sections.answer, (840, 840), max_objects=2) == []
        assert t.usage.cached_tokens > 0.8 * t.usage.prompt_tokens
    ids = [r.id for t in turns for r in t.regions]
    assert ids == [f"R{i}" for i in range(1, len(ids) + 1)]


def test_greedy_tokens_match_transformers(vllm_policy: Any, tiny_qwen25: Path, image: LoadedImage) -> None:
    from regionreasoner.policies.transformers_policy import TransformersPolicy

    hf = TransformersPolicy(tiny_qwen25, frame="fixed:840x840", section_limits="grammar")
    for constrained in (False, True):
        vllm_policy.reset_sessions()
        a = vllm_policy.complete(request(image, constrained=constrained))
        b = hf.complete(request(image, constrained=constrained))
        assert a.token_ids == b.token_ids and a.text == b.text


def test_pieces_equal_one_shot_and_hit_the_prefix_cache(vllm_policy: Any, image: LoadedImage) -> None:
    vllm_policy.reset_sessions()
    one = vllm_policy.complete(request(image))
    vllm_policy.reset_sessions()
    text, ids, later = "", [], []
    for i, stop in enumerate(("</scene>", "</focus>", "</think>", None)):
        piece = vllm_policy.complete(request(image, prefix=text, stop=(stop,) if stop else ()))
        text += piece.text
        ids += list(piece.token_ids or ())
        if i > 0:
            later.append(piece)
    assert ids == list(one.token_ids or ()) and text == one.text
    hit = sum(p.cached_tokens for p in later) / sum(p.prompt_tokens for p in later)
    assert hit >= 0.9, hit


def test_batch_equals_single_requests(vllm_policy: Any, image: LoadedImage) -> None:
    small = load_image(image.image.resize((320, 240)))
    requests = [request(image), request(small), request(image, constrained=False)]
    singles = []
    for r in requests:
        vllm_policy.reset_sessions()
        singles.append(vllm_policy.complete(r).token_ids)
    vllm_policy.reset_sessions()
    assert [c.token_ids for c in vllm_policy.complete_batch(requests)] == singles


def test_benchmark_dialogues_are_batched_on_vllm(vllm_policy: Any, tmp_path: Path) -> None:
    from regionreasoner.evals.metrics import summarise
    from regionreasoner.evals.regiondial import load_regiondial
    from regionreasoner.evals.results import read_results
    from regionreasoner.evals.runner import run_benchmark
    from regionreasoner.evals.synthetic import generate_benchmark
    from regionreasoner.policies.batching import BatchingPolicy

    bench = generate_benchmark(tmp_path / "bench", 4, 3, rounds=(2, 3))
    items = load_regiondial(bench)
    batching = BatchingPolicy(vllm_policy, max_batch=4, wait_ms=20)
    agent = RegionAgent(batching, memory=f"sqlite:///{tmp_path}/memory.db", char_limits=LIMITS, max_objects=2)
    stats = run_benchmark(agent, items, images=bench.parent, results=tmp_path / "results.jsonl", workers=4)
    batching.close()
    assert stats.scored == sum(len(i.turns) for i in items)
    assert max(batching.batches) > 1  # calls of different dialogues shared engine batches
    summary = summarise(read_results(tmp_path / "results.jsonl"))
    assert summary.avg.count == stats.scored and summary.avg.failed == 0
