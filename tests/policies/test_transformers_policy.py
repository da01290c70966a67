"""TransformersPolicy on tiny random Qwen2.5-VL and Qwen3-VL: KV reuse is exact, pieces equal one shot."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from regionreasoner.agent.demo_scene import demo_scene
from regionreasoner.core.errors import ModelLoadError, PolicyError
from regionreasoner.core.frames import FixedResizeFrame, NormalizedFrame, SmartResizeFrame
from regionreasoner.core.images import LoadedImage, load_image
from regionreasoner.core.prompts import get_prompt
from regionreasoner.core.protocol import parse_action
from regionreasoner.policies.base import ImageSlot, Message, PolicyRequest, SamplingParams, TurnConstraint
from regionreasoner.policies.transformers_policy import TransformersPolicy

KvCheck = Callable[[TransformersPolicy, PolicyRequest], tuple[Any, Any]]
"""The ``kv_check`` fixture (tests/policies/conftest.py): (continued, full) next-token logits."""

LIMITS = {"scene": 50, "focus": 30, "think": 60}


@pytest.fixture(scope="module", params=["qwen2.5-vl", "qwen3-vl"])
def policy(request: pytest.FixtureRequest, tiny_qwen25: Path, tiny_qwen3: Path) -> TransformersPolicy:
    path = tiny_qwen25 if request.param == "qwen2.5-vl" else tiny_qwen3
    return TransformersPolicy(path)


@pytest.fixture(scope="module")
def image() -> LoadedImage:
    return load_image(demo_scene()[0])


def make_request(
    policy: TransformersPolicy, image: LoadedImage, prefix: str = "", stop: tuple[str, ...] = ()
) -> PolicyRequest:
    prompt = get_prompt(policy.prompt_template).render("find the ball to the right of bbox=[10, 20, 300, 400]")
    spec = TurnConstraint(bounds=policy.frame.model_size(image.size), char_limits=LIMITS, max_objects=2)
    return PolicyRequest(
        messages=(Message("user", (ImageSlot(0), prompt)),),
        images=(image,),
        assistant_prefix=prefix,
        stop=stop,
        constraint=spec,
        sampling=SamplingParams(max_new_tokens=400),
    )


def test_family_frames(tiny_qwen25: Path, tiny_qwen3: Path) -> None:
    assert isinstance(TransformersPolicy(tiny_qwen25).frame, SmartResizeFrame)
    assert TransformersPolicy(tiny_qwen25, frame="regionreasoner").frame == FixedResizeFrame(840, 840)
    assert TransformersPolicy(tiny_qwen3).frame == NormalizedFrame(1000)


def test_four_pieces_equal_one_shot_and_logits_match_a_full_forward(
    policy: TransformersPolicy, image: LoadedImage, kv_check: KvCheck
) -> None:
    policy.reset_sessions()
    one = policy.complete(make_request(policy, image))
    assert one.finish_reason == "constraint" and one.token_ids
    policy.reset_sessions()
    text, ids = "", []
    for i, stop in enumerate(["</scene>", "</focus>", "</think>", None]):
        piece = policy.complete(make_request(policy, image, text, (stop,) if stop else ()))
        assert piece.finish_reason == ("stop" if stop else "constraint")
        if i > 0:  # the prompt and everything before this piece came from the KV session
            assert piece.cached_tokens == piece.prompt_tokens - 1
        text += piece.text
        ids += list(piece.token_ids or ())
        if stop:
            continued, full = kv_check(policy, make_request(policy, image, text))
            assert torch.max(torch.abs(continued - full)).item() < 1e-4
            assert torch.equal(continued.argmax(), full.argmax())
    assert ids == list(one.token_ids) and text == one.text
    parsed = parse_action(text, bounds=policy.frame.model_size(image.size), expect_focus=True)
    assert parsed.ok and parsed.problems == []


def test_continuation_with_several_new_tokens_is_exact(
    policy: TransformersPolicy, image: LoadedImage, kv_check: KvCheck
) -> None:
    policy.reset_sessions()
    first = policy.complete(make_request(policy, image, "", ("</scene>",)))
    # Text the model did not write (several tokens) continues the same session.
    prefix = first.text + "\n<focus> a red ball on green grass"
    continued, full = kv_check(policy, make_request(policy, image, prefix))
    assert torch.max(torch.abs(continued - full)).item() < 1e-4
    # A prefix that diverges from the session crops the cache back to the common tokens.
    continued, full = kv_check(policy, make_request(policy, image, "<scene> something else </scene>"))
    assert torch.max(torch.abs(continued - full)).item() < 1e-4


def test_batch_equals_single_requests(policy: TransformersPolicy, image: LoadedImage) -> None:
    small = load_image(image.image.resize((200, 150)))
    requests = [make_request(policy, image), make_request(policy, small)]
    policy.reset_sessions()
    singles = []
    for r in requests:
        policy.reset_sessions()
        singles.append(policy.complete(r))
    batch = policy.complete_batch(requests)
    assert [b.token_ids for b in batch] == [s.token_ids for s in singles]


def test_prefix_outside_the_constraint_is_a_policy_error(policy: TransformersPolicy, image: LoadedImage) -> None:
    policy.reset_sessions()
    with pytest.raises(PolicyError, match="does not follow"):
        policy.complete(make_request(policy, image, "<answer>"))


def test_missing_weights_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="checkpoint folder"):
        TransformersPolicy(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError):
        TransformersPolicy(tmp_path / "empty")


def test_generic_family_through_its_processor(tiny_llava: Path, image: LoadedImage, kv_check: KvCheck) -> None:
    policy = TransformersPolicy(tiny_llava)
    assert policy.family.name == "generic" and policy.frame == NormalizedFrame(1000)
    request = make_request(policy, image)
    one = policy.complete(request)
    parsed = parse_action(one.text, bounds=(1000, 1000), expect_focus=True)
    assert parsed.ok, parsed.problems
    policy.reset_sessions()
    text, ids = "", []
    for stop in ("</scene>", "</focus>", "</think>", None):
        piece = policy.complete(make_request(policy, image, text, (stop,) if stop else ()))
        text += piece.text
        ids += list(piece.token_ids or ())
        if stop:
            continued, full = kv_check(policy, make_request(policy, image, text))
            assert torch.max(torch.abs(continued - full)).item() < 1e-4
    assert ids == list(one.token_ids or ())
