"""Grounding DINO detection on a tiny random checkpoint: original-pixel boxes, one forward, labels, errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from regionreasoner.core.errors import ConfigError, ModelLoadError, ToolError
from regionreasoner.core.geometry import Box
from regionreasoner.core.images import LoadedImage, load_image
from regionreasoner.tools.base import ToolResult
from regionreasoner.tools.detect import DetectTool, GroundingDinoDetector, _match_label
from regionreasoner.tools.detect_tiny import build_tiny_grounding_dino, tiny_vocab

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Grounding DINO checkpoint, built once for the module."""
    return build_tiny_grounding_dino(tmp_path_factory.mktemp("tiny-dino"), seed=0)


@pytest.fixture(scope="module")
def detector(folder: Path) -> GroundingDinoDetector:
    """A loaded detector that keeps every query (random weights: only thresholds of 0 give boxes reliably)."""
    det = GroundingDinoDetector(folder, box_threshold=0.0, text_threshold=0.0)
    det.load()
    return det


def noise_image(width: int, height: int, seed: int = 0) -> LoadedImage:
    """Random RGB noise of ``width`` x ``height`` pixels."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return load_image(Image.fromarray(pixels))


@pytest.fixture
def captured(detector: GroundingDinoDetector) -> Iterator[list[dict[str, Any]]]:
    """Each forward of the detector's model while the test runs: its keyword inputs and its outputs."""
    calls: list[dict[str, Any]] = []

    def hook(module: Any, args: Any, kwargs: dict[str, Any], output: Any) -> None:
        calls.append({"inputs": kwargs, "outputs": output})

    handle = detector.model.register_forward_hook(hook, with_kwargs=True)
    yield calls
    handle.remove()


def test_tiny_vocab_puts_the_delimiters_at_bert_ids() -> None:
    vocab = tiny_vocab()
    assert len(vocab) == len(set(vocab)) == 1100
    assert (vocab[101], vocab[102], vocab[1012], vocab[1029]) == ("[CLS]", "[SEP]", ".", "?")


def test_importing_loads_no_torch() -> None:
    code = (
        "import sys, regionreasoner.tools.detect, regionreasoner.tools.zoom, regionreasoner.tools.detect_tiny\n"
        "heavy = sorted(m for m in ('torch', 'transformers') if m in sys.modules)\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_constructing_loads_nothing(tmp_path: Path) -> None:
    det = GroundingDinoDetector(tmp_path / "not-yet-downloaded")  # a missing folder is only an error on first use
    tool = DetectTool(det)
    assert not det.loaded and not tool.detector.loaded
    assert not DetectTool(tmp_path / "elsewhere").detector.loaded


def test_concurrent_first_uses_load_once(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    det = GroundingDinoDetector(folder)
    loads: list[int] = []

    def slow_load() -> tuple[object, object]:
        loads.append(1)
        time.sleep(0.2)
        return object(), object()

    monkeypatch.setattr(det, "_load", slow_load)
    threads = [threading.Thread(target=det.load) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == [1] and det.loaded


@pytest.mark.parametrize("size", [(300, 170), (150, 260)])
def test_boxes_are_original_pixels_of_the_model_output(
    detector: GroundingDinoDetector, captured: list[dict[str, Any]], size: tuple[int, int]
) -> None:
    width, height = size
    found = detector.detect(noise_image(width, height), ["red car", "cat"])
    assert found and all(d.box.is_valid() and d.box.within(width, height) and d.box.area > 0 for d in found)
    # The same conversion computed directly on the raw output: normalized cxcywh of the whole image -> xyxy pixels.
    (call,) = captured
    probs = call["outputs"].logits[0].sigmoid()
    scores = probs.max(dim=-1).values.tolist()
    expected = []
    for score, (cx, cy, w, h) in zip(scores, call["outputs"].pred_boxes[0].tolist(), strict=True):
        box = Box((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)
        box = box.clip(width, height)
        if score > 0.0 and box.area > 0:
            expected.append((score, list(box)))
    expected.sort(key=lambda e: -e[0])
    assert [d.score for d in found] == pytest.approx([e[0] for e in expected], abs=1e-6)
    assert [v for d in found for v in d.box] == pytest.approx([v for e in expected for v in e[1]], abs=1e-3)
    assert [d.score for d in found] == sorted((d.score for d in found), reverse=True)


def test_several_phrases_take_one_forward(detector: GroundingDinoDetector, captured: list[dict[str, Any]]) -> None:
    phrases = ["A Red Car", "cat.", "dog on the left"]
    found = detector.detect(noise_image(200, 120, seed=1), phrases)
    assert len(captured) == 1
    tokenizer = detector._processor.tokenizer
    text = tokenizer.decode(captured[0]["inputs"]["input_ids"][0], skip_special_tokens=True)
    assert text == "a red car. cat. dog on the left."
    assert found and {d.label for d in found} <= set(phrases)  # the caller's spelling comes back


def test_labels_match_phrases_exactly_then_by_overlap() -> None:
    phrases = ["red car", "cat", "dog on the left"]
    weak = [0.1, 0.2, 0.3]
    assert _match_label("cat", phrases, weak) == 1
    assert _match_label("red car..", phrases, weak) == 0
    assert _match_label("car. [SEP]", phrases, weak) == 0  # shares "car" with "red car" only
    assert _match_label("on the left", phrases, weak) == 2
    assert _match_label("red car. cat. [SEP]", phrases, [0.1, 0.9, 0.3]) == 1  # two exact: the stronger phrase
    assert _match_label("", phrases, [0.5, 0.2, 0.3]) == 0  # nothing above text_threshold: the strongest phrase


def test_thresholds_filter(folder: Path, detector: GroundingDinoDetector) -> None:
    image = noise_image(160, 90, seed=2)
    assert detector.detect(image, ["cat"], box_threshold=1.01) == []
    everything = detector.detect(image, ["cat"])
    some = detector.detect(image, ["cat"], box_threshold=0.5)
    assert all(d.score > 0.5 for d in some) and len(some) == sum(d.score > 0.5 for d in everything)
    with pytest.raises(ConfigError, match="box_threshold"):
        detector.detect(image, ["cat"], box_threshold=float("nan"))
    with pytest.raises(ConfigError, match="text_threshold"):
        GroundingDinoDetector(folder, text_threshold=-1)


@pytest.mark.parametrize(
    ("phrases", "message"),
    [
        ([], "non-empty list"),
        ("cat", "non-empty list"),
        ([""], "empty phrase"),
        (["cat", "  . "], "empty phrase"),
        (["mr. smith"], "contains '.'"),
        ([3], "must be a string"),
        ([f"red car number {i}" for i in range(20)], "at most 64"),
    ],
)
def test_bad_phrases_raise_tool_errors(detector: GroundingDinoDetector, phrases: Any, message: str) -> None:
    with pytest.raises(ToolError, match=message) as info:
        detector.detect(noise_image(64, 48), phrases)
    assert info.value.hint


def test_missing_folder_raises_model_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not-there") as info:
        GroundingDinoDetector(tmp_path / "not-there").load()
    assert "build_tiny_grounding_dino" in str(info.value)


def test_truncated_weights_raise_model_load_error(folder: Path, tmp_path: Path) -> None:
    broken = Path(shutil.copytree(folder, tmp_path / "broken"))
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match="broken") as info:
        GroundingDinoDetector(broken).load()
    assert info.value.__cause__ is not None and "truncated" in (info.value.hint or "")


def test_uncached_hub_id_offline_raises_model_load_error() -> None:
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE"):
        GroundingDinoDetector("regionreasoner-tests/no-such-dino").load()


def test_detect_tool_through_call(detector: GroundingDinoDetector) -> None:
    tool = DetectTool(detector, max_detections=3)
    image = noise_image(120, 80, seed=3)
    result = tool(image, {"phrases": ["red car", "cat"]})
    assert isinstance(result, ToolResult) and len(result.detections) == 3
    listed = ", ".join(f"{d.label} ({d.score:.2f})" for d in result.detections)
    assert result.text.startswith("3 objects (the best 3 of ") and result.text.endswith("): " + listed)
    assert all(d.label in ("red car", "cat") and d.box.within(120, 80) for d in result.detections)
    empty = DetectTool(GroundingDinoDetector(detector.checkpoint, box_threshold=1.01))
    assert not empty.detector.loaded  # loads in setup(), on the first call
    assert empty(image, {"phrases": ["cat"]}) == ToolResult(text="no object found for 'cat'")
    assert empty.detector.loaded


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"phrases": "cat"}, "phrases is string, not array"),
        ({"phrase": ["cat"]}, "it takes \\['phrases'\\]"),
        ({}, "required"),
        ({"phrases": [1, 2]}, "string phrases"),
        ({"phrases": [f"thing {i}" for i in range(9)]}, "1 to 8"),
        ({"phrases": []}, "1 to 8"),
    ],
)
def test_detect_tool_checks_its_arguments(detector: GroundingDinoDetector, arguments: Any, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        DetectTool(detector)(noise_image(32, 32), arguments)
