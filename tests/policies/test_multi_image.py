"""More than one image per turn (a zoom joins the user message as image 2): encoded once, reused, exact."""

from __future__ import annotations

from pathlib import Path

import torch

from regionreasoner.agent.demo_scene import demo_scene
from regionreasoner.core.geometry import Box
from regionreasoner.core.images import load_image
from regionreasoner.policies.base import ImageSlot, Message, PolicyRequest, SamplingParams
from regionreasoner.policies.transformers_policy import TransformersPolicy
from regionreasoner.tools.zoom import zoom


def test_two_images_are_encoded_once_per_turn_and_the_kv_reuse_is_exact(tiny_qwen25: Path, kv_check) -> None:  # type: ignore[no-untyped-def]
    scene = demo_scene()[0]
    crop, _ = zoom(scene, Box(250, 330, 320, 400))
    one, two = load_image(scene), load_image(crop)
    policy = TransformersPolicy(tiny_qwen25, frame="fixed:840x840")
    both = (Message("user", (ImageSlot(0), "Find it.", "\nImage 2, the zoom of tool call 1:", ImageSlot(1))),)
    alone = (Message("user", (ImageSlot(0), "Find it.")),)
    sampling = SamplingParams(max_new_tokens=12)
    single = policy.complete(PolicyRequest(messages=alone, images=(one,), stop=("</scene>",), sampling=sampling))
    first = policy.complete(PolicyRequest(messages=both, images=(one, two), stop=("</scene>",), sampling=sampling))
    assert first.prompt_tokens > single.prompt_tokens + 10  # the crop's vision tokens are in the prompt
    # The next piece of the same turn continues the session: only its new text is fed.
    request = PolicyRequest(
        messages=both, images=(one, two), assistant_prefix=first.text, stop=("</think>",), sampling=sampling
    )
    second = policy.complete(request)
    assert second.cached_tokens >= first.prompt_tokens + first.generated_tokens - 1
    continued, full = kv_check(policy, PolicyRequest(messages=both, images=(one, two), assistant_prefix=first.text))
    assert torch.allclose(continued, full, atol=1e-4)
    policy.close()
