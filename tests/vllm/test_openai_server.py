"""OpenAIPolicy against `vllm serve` started by the test on 127.0.0.1 (stopped by its PID)."""

from __future__ import annotations

from pathlib import Path

import pytest

from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.demo_scene import demo_scene
from regionreasoner.core.answer_schema import validate_answer
from regionreasoner.core.types import TurnStatus
from regionreasoner.policies.openai_policy import OpenAIPolicy

LIMITS = {"scene": 60, "focus": 40, "think": 80}


@pytest.fixture
def server(vllm_server: str) -> str:
    """The lane's shared ``vllm serve`` of the tiny checkpoint (tests/vllm/conftest.py)."""
    return vllm_server


def test_three_turn_dialogue_through_the_server(server: str, tiny_qwen25: Path, tmp_path: Path) -> None:
    policy = OpenAIPolicy(server, "tiny", tokenizer=str(tiny_qwen25), frame="fixed:840x840")
    agent = RegionAgent(policy, memory=f"sqlite:///{tmp_path}/memory.db", char_limits=LIMITS, max_objects=2)
    dialogue = agent.dialogue(demo_scene()[0])
    turns = [
        dialogue.ask("Find the red ball."),
        dialogue.ask("Find the blue box to the right of R1."),
        dialogue.ask("Find the yellow kite above R2."),
    ]
    assert [t.status for t in turns] == [TurnStatus.OK] * 3
    assert turns[1].referenced == ["R1"] and turns[2].referenced == ["R2"]
    for t in turns:
        assert t.sections.answer is not None
        assert validate_answer(t.sections.answer, (840, 840), max_objects=2) == []
        assert t.usage.cached_tokens > 0.5 * t.usage.prompt_tokens  # the server's prefix cache
    agent.close()


def test_unknown_model_is_a_clear_error(server: str) -> None:
    from regionreasoner.core.errors import PolicyError
    from regionreasoner.policies.base import Message, PolicyRequest

    policy = OpenAIPolicy(server, "no-such-model", retries=0)
    with pytest.raises(PolicyError, match=r"404|rejected"):
        policy.complete(PolicyRequest(messages=(Message("user", ("hi",)),)))
