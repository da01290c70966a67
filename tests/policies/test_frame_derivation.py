"""One frame derivation: the three backends derive the same frame from a checkpoint folder, as transformers would.

Tiny Qwen2.5-VL, Qwen3-VL and LLaVA checkpoints get non-default ``min_pixels``/``max_pixels``; without ``frame=``,
``TransformersPolicy``, ``VLLMPolicy`` (here over a fake ``vllm.LLM``: its constructor runs for real, only the engine
is replaced; tests/vllm repeat the check with the real engine) and ``OpenAIPolicy`` (given the folder as its
tokenizer; no server is needed to construct it) must derive the same frame and map a fixed box to the same
model-frame box, and the smart-resize settings read must be the ones transformers' own image processor applies.
LLaVA is not a smart-resize family: it answers in 0..1000 whatever its processor says.
"""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from regionreasoner.core.frames import DEFAULT_MIN_PIXELS, Frame, NormalizedFrame, SmartResizeFrame
from regionreasoner.core.geometry import Box
from regionreasoner.core.images import load_image
from regionreasoner.policies import families
from regionreasoner.policies.families import ProcessorSettings, derive_frame, processor_settings
from regionreasoner.policies.openai_policy import OpenAIPolicy
from regionreasoner.policies.tiny import set_pixel_limits
from regionreasoner.policies.transformers_policy import TransformersPolicy

PIXELS = {28: (28 * 28 * 16, 28 * 28 * 64), 32: (32 * 32 * 16, 32 * 32 * 64)}
"""Non-default limits per resize factor (the tiny builds allow 4..256 merged patches)."""

CASES = {
    "qwen2.5-vl": ("qwen2.5-vl", None, SmartResizeFrame(28, *PIXELS[28])),
    "qwen3-vl": ("qwen3-vl", None, NormalizedFrame(1000)),
    "qwen3-vl-declared-smart": ("qwen3-vl", "smart", SmartResizeFrame(32, *PIXELS[32])),
    "llava": ("llava", None, NormalizedFrame(1000)),
}
BOX = Box(10.5, 20.0, 55.0, 38.25)
SIZES = [(640, 480), (60, 40)]
"""One image above the limits and one below them, so both bounds matter."""


class FakeLLM:
    """Stands in for ``vllm.LLM``: what ``VLLMPolicy.__init__`` reads of the engine, from the checkpoint itself."""

    def __init__(self, model: str, **kwargs: Any) -> None:
        from transformers import AutoConfig, AutoTokenizer

        self.model, self.kwargs = model, kwargs
        config = AutoConfig.from_pretrained(model)
        self._tokenizer = AutoTokenizer.from_pretrained(model)
        vocab = int(config.get_text_config().vocab_size)
        model_config = types.SimpleNamespace(hf_config=config, get_vocab_size=lambda: vocab)
        self.llm_engine = types.SimpleNamespace(model_config=model_config)

    def get_tokenizer(self) -> Any:
        return self._tokenizer


def checkpoint(tmp_path: Path, source: Path, declared: str | None, factor: int) -> Path:
    folder = tmp_path / "ckpt"
    shutil.copytree(source, folder)
    set_pixel_limits(folder, min_pixels=PIXELS[factor][0], max_pixels=PIXELS[factor][1])
    if declared is not None:
        (folder / "regionreasoner.json").write_text(json.dumps({"frame": declared}))
    return folder


def vllm_frame(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Frame:
    """VLLMPolicy's frame over a fake engine, checking that it comes from ``derive_frame`` of the loaded model."""
    from regionreasoner.policies import vllm_policy

    fake = types.ModuleType("vllm")
    fake.LLM = FakeLLM  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", fake)
    calls: list[tuple[Any, Any]] = []

    def spy(checkpoint: Any, **kwargs: Any) -> Frame:
        calls.append((checkpoint, kwargs))
        return derive_frame(checkpoint, **kwargs)

    monkeypatch.setattr(vllm_policy, "derive_frame", spy)
    policy = vllm_policy.VLLMPolicy(folder)
    assert isinstance(policy.llm, FakeLLM) and policy.llm.model == str(folder)
    assert calls == [(folder, {"override": None})]
    return policy.frame


@pytest.mark.parametrize("case", list(CASES))
def test_three_backends_derive_one_frame(
    case: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tiny_qwen25: Path,
    tiny_qwen3: Path,
    tiny_llava: Path,
) -> None:
    family, declared, expected = CASES[case]
    source = {"qwen2.5-vl": tiny_qwen25, "qwen3-vl": tiny_qwen3, "llava": tiny_llava}[family]
    folder = checkpoint(tmp_path, source, declared, 28 if family == "qwen2.5-vl" else 32)
    hf = TransformersPolicy(folder)
    served = OpenAIPolicy("http://127.0.0.1:9", "served-tiny", tokenizer=str(folder))
    frames = {"transformers": hf.frame, "vllm": vllm_frame(folder, monkeypatch), "openai": served.frame}
    assert frames == dict.fromkeys(frames, expected)
    for size in SIZES:
        boxes = {name: frame.box_to_model(BOX, size) for name, frame in frames.items()}
        assert len(set(boxes.values())) == 1, boxes
    served.close()


@pytest.mark.parametrize("family", ["qwen2.5-vl", "qwen3-vl"])
def test_settings_are_the_ones_the_image_processor_applies(
    family: str, tmp_path: Path, tiny_qwen25: Path, tiny_qwen3: Path
) -> None:
    factor = 28 if family == "qwen2.5-vl" else 32
    folder = checkpoint(tmp_path, tiny_qwen25 if family == "qwen2.5-vl" else tiny_qwen3, None, factor)
    settings = processor_settings(folder)
    assert settings.frame == SmartResizeFrame(factor, *PIXELS[factor])
    processor = TransformersPolicy(folder).encoder.image_processor  # what the policy encodes images with
    for size in SIZES:
        image = load_image(make_image(size))
        (_, h, w), *_ = processor(images=[image.image], return_tensors="pt")["image_grid_thw"].tolist()
        assert (w * settings.patch_size, h * settings.patch_size) == settings.frame.model_size(size)


def test_openai_sends_images_the_server_keeps(tmp_path: Path, tiny_qwen25: Path) -> None:
    folder = checkpoint(tmp_path, tiny_qwen25, None, 28)
    served = OpenAIPolicy("http://127.0.0.1:9", "served-tiny", tokenizer=str(folder))
    frame = served.frame
    assert isinstance(frame, SmartResizeFrame)
    for size in SIZES:
        prepared = served.prepare_image(load_image(make_image(size)))
        assert prepared.size == frame.model_size(size)
        assert frame.model_size(prepared.size) == prepared.size  # the server's own smart resize is the identity
    served.close()


def test_precedence_of_the_processor_settings(tmp_path: Path) -> None:
    assert processor_settings(tmp_path) == ProcessorSettings()  # transformers' class defaults
    size = {"shortest_edge": 1000, "longest_edge": 2000}
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"size": size, "patch_size": 16}))
    assert processor_settings(tmp_path) == ProcessorSettings(16, 2, 1000, 2000)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"size": size, "min_pixels": 10, "max_pixels": 20}))
    assert processor_settings(tmp_path) == ProcessorSettings(14, 2, 10, 20)
    nested = {"processor_class": "X", "image_processor": {"merge_size": 4, "size": {"longest_edge": 30}}}
    (tmp_path / "processor_config.json").write_text(json.dumps(nested))
    assert processor_settings(tmp_path) == ProcessorSettings(14, 4, DEFAULT_MIN_PIXELS, 30)


def test_order_of_the_frame_rules(tmp_path: Path, tiny_qwen25: Path) -> None:
    folder = checkpoint(tmp_path, tiny_qwen25, None, 28)
    assert derive_frame(folder, override="norm:1000") == NormalizedFrame(1000)
    assert derive_frame(folder, override="smart") == SmartResizeFrame(28, *PIXELS[28])
    assert derive_frame(folder, name="lmsdss/RegionReasoner-7B").spec == "fixed:840x840"
    (folder / "regionreasoner.json").write_text(json.dumps({"frame": "norm:1000"}))
    assert derive_frame(folder, name="lmsdss/RegionReasoner-7B") == NormalizedFrame(1000)
    assert derive_frame(None, name="Qwen/Qwen2.5-VL-7B-Instruct").spec == "smart:28:3136:12845056"
    assert derive_frame(tmp_path / "missing", name="Qwen/Qwen3-VL-8B") == NormalizedFrame(1000)


def test_a_hub_id_resolves_to_its_cached_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_qwen25: Path
) -> None:
    import huggingface_hub.constants

    repo, commit = tmp_path / "hub" / "models--acme--tiny-vl", "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots").mkdir()
    checkpoint(tmp_path, tiny_qwen25, None, 28).rename(repo / "snapshots" / commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert families.checkpoint_folder("acme/tiny-vl") == repo / "snapshots" / commit
    assert derive_frame("acme/tiny-vl") == SmartResizeFrame(28, *PIXELS[28])
    assert families.checkpoint_folder("acme/not-cached") is None


def make_image(size: tuple[int, int]) -> Any:
    from PIL import Image

    return Image.new("RGB", size, (120, 30, 200))
