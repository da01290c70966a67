"""Issue 10 on vLLM: two images per turn (a zoom) with prefix caching, and tool calls under the turn grammar."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from regionreasoner.agent.demo_scene import demo_scene
from regionreasoner.core.geometry import Box
from regionreasoner.core.images import load_image
from regionreasoner.core.protocol import parse_tool_call
from regionreasoner.policies.base import ImageSlot, Message, PolicyRequest, SamplingParams, ToolSpec, TurnConstraint
from regionreasoner.policies.grammar import TOOL_RESPONSE_CLOSE, TOOL_RESPONSE_OPEN
from regionreasoner.tools.zoom import zoom

TOOLS = (
    ToolSpec.of(
        "detect",
        {
            "type": "object",
            "properties": {"phrases": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2}},
            "required": ["phrases"],
            "additionalProperties": False,
        },
    ),
    ToolSpec.of(
        "zoom",
        {
            "type": "object",
            "properties": {"bbox_2d": {"type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 4}},
            "required": ["bbox_2d"],
            "additionalProperties": False,
        },
    ),
)
SPEC = TurnConstraint(
    sections=("scene", "think", "answer"),
    bounds=(840, 840),
    char_limits={"scene": 40, "think": 40},
    tools=TOOLS,
    max_tool_calls=2,
)


@pytest.fixture(scope="module")
def vllm_policy(tiny_qwen25: Path) -> Iterator[Any]:
    from regionreasoner.policies.vllm_policy import VLLMPolicy

    policy = VLLMPolicy(tiny_qwen25, frame="fixed:840x840", dtype="float32", max_model_len=4096)
    yield policy
    policy.close()


def _messages() -> tuple[tuple[Message, ...], tuple[Any, ...]]:
    scene = demo_scene()[0]
    crop, _ = zoom(scene, Box(250, 330, 320, 400))
    parts = (ImageSlot(0), "Find the ball.", "\nImage 2, the zoom of tool call 1:", ImageSlot(1))
    return (Message("user", parts),), (load_image(scene), load_image(crop))


def test_two_images_in_one_turn_are_prefix_cached(vllm_policy: Any) -> None:
    messages, images = _messages()
    sampling = SamplingParams(max_new_tokens=16)
    first = vllm_policy.complete(PolicyRequest(messages=messages, images=images, stop=("</scene>",), sampling=sampling))
    again = PolicyRequest(
        messages=messages, images=images, assistant_prefix=first.text, stop=("</think>",), sampling=sampling
    )
    second = vllm_policy.complete(again)
    assert first.prompt_tokens > 0 and second.cached_tokens > 0  # the two-image prompt is reused, not re-encoded


def test_a_tool_call_under_the_grammar_on_vllm(vllm_policy: Any) -> None:
    messages, images = _messages()
    prefix = "<scene>a park</scene>\n<think>look <tool_call>"
    request = PolicyRequest(
        messages=messages,
        images=images,
        assistant_prefix=prefix,
        stop=("</tool_call>",),
        constraint=SPEC,
        sampling=SamplingParams(max_new_tokens=200, temperature=1.0, seed=3),
    )
    completion = vllm_policy.complete(request)
    assert completion.text.endswith("</tool_call>"), completion.text
    call = parse_tool_call(completion.text.removesuffix("</tool_call>"))
    assert call.name in ("detect", "zoom")
    if call.name == "zoom":
        assert len(call.arguments["bbox_2d"]) == 4
    else:
        assert 1 <= len(call.arguments["phrases"]) <= 2
    # After the agent's response the think text goes on under the grammar and ends the section or calls again.
    after = prefix + completion.text + f"{TOOL_RESPONSE_OPEN}1 found{TOOL_RESPONSE_CLOSE}"
    more = vllm_policy.complete(
        PolicyRequest(
            messages=messages,
            images=images,
            assistant_prefix=after,
            stop=("</think>", "</tool_call>"),
            constraint=SPEC,
            sampling=SamplingParams(max_new_tokens=200, temperature=1.0, seed=4),
        )
    )
    if more.text.endswith("</think>"):
        assert more.text.count("<") == 1, more.text  # free text, then the closing tag
    else:
        assert more.text.endswith("</tool_call>") and more.text.count("<tool_call>") == 1, more.text
