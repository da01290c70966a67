"""Sam2Segmenter on a tiny random SAM2 (tools/tiny.py): loading, frames, the mask rule, batching, caching, parity.

The weights are random, so the masks themselves are arbitrary; what is checked is what can be: shapes, the
coordinates the model receives, which candidate is kept, how many encoder and decoder forwards run, and that the
torchvision-free preprocessing equals transformers' Sam2Processor bit for bit (tests/data/sam2/parity.npz, made with
the real processor, see tests/data/sam2/README.md).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from regionreasoner.core.errors import ConfigError, InputError, ModelLoadError
from regionreasoner.core.geometry import Box, Point
from regionreasoner.core.images import LoadedImage, load_image
from regionreasoner.core.masks import decode_rle
from regionreasoner.tools.base import Segmenter
from regionreasoner.tools.sam2_inputs import IMAGENET_MEAN, Sam2InputSpec, pixel_values, scale_coords, upsample_masks
from regionreasoner.tools.segment import MaskPrediction, Sam2Segmenter, union
from regionreasoner.tools.tiny import build_tiny_sam2

SIZE = 256
PARITY = Path(__file__).resolve().parents[1] / "data" / "sam2" / "parity.npz"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_sam2(tmp_path_factory.mktemp("sam2") / "tiny", seed=0, image_size=SIZE)


@pytest.fixture(scope="module")
def shared(folder: Path) -> Sam2Segmenter:
    """One loaded segmenter for tests that only read results (counters are compared as differences)."""
    return Sam2Segmenter(folder, cache_size=8)


def picture(width: int, height: int, seed: int = 0) -> LoadedImage:
    return load_image(np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8))


def parity_image(width: int, height: int) -> Image.Image:
    """The picture tests/data/sam2/make_fixture.py feeds the real processor (the same integer arithmetic)."""
    x, y = np.meshgrid(np.arange(width), np.arange(height))
    r = x * 255 // max(1, width - 1)
    g = y * 255 // max(1, height - 1)
    b = ((x // 2 + y // 3) % 2) * 200 + (x * y) % 50
    return Image.fromarray(np.stack([r, g, b], axis=-1).astype(np.uint8), "RGB")


@contextmanager
def hooked(module: torch.nn.Module, hook: Any, *, pre: bool = False) -> Iterator[None]:
    """Register a forward (pre-)hook on ``module`` for the duration of a block."""
    handle = module.register_forward_pre_hook(hook, with_kwargs=True) if pre else module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


# --- loading -----------------------------------------------------------------------------------------------------


def test_importing_the_modules_does_not_import_torch() -> None:
    code = (
        "import sys; import regionreasoner.tools.segment, regionreasoner.tools.sam2_inputs, regionreasoner.tools.tiny;"
        "heavy = [m for m in ('torch', 'transformers', 'torchvision') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_construction_loads_nothing(folder: Path, tmp_path: Path) -> None:
    seg = Sam2Segmenter(folder)
    assert not seg.loaded and seg.encoder_calls == 0
    Sam2Segmenter(tmp_path / "missing")  # a bad path is only found out on first use
    assert isinstance(seg, Segmenter)
    assert seg.predict(picture(40, 30), boxes=[], points=[]) == []  # no prompt: nothing to load
    assert not seg.loaded
    assert seg.spec == Sam2InputSpec(image_size=SIZE)  # reading the spec loads
    assert seg.loaded


def test_missing_folder_raises_model_load_error(tmp_path: Path) -> None:
    seg = Sam2Segmenter(tmp_path / "nope")
    with pytest.raises(ModelLoadError, match=r"nope.*does not exist.*build_tiny_sam2"):
        seg.set_image(picture(40, 30))


def test_truncated_safetensors_raises_model_load_error(folder: Path, tmp_path: Path) -> None:
    broken = Path(shutil.copytree(folder, tmp_path / "broken"))
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelLoadError, match=r"cannot load SAM2 weights from .*broken.*SafetensorError"):
        Sam2Segmenter(broken).set_image(picture(40, 30))


def test_folder_without_safetensors_raises(folder: Path, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(folder / "config.json", bare / "config.json")
    with pytest.raises(ModelLoadError, match=r"no model\.safetensors"):
        Sam2Segmenter(bare).set_image(picture(40, 30))


def test_bad_settings_raise_config_error(folder: Path) -> None:
    with pytest.raises(ConfigError, match="cache_size=0"):
        Sam2Segmenter(folder, cache_size=0)
    with pytest.raises(ConfigError, match="prompting='mask'"):
        Sam2Segmenter(folder, prompting="mask")  # type: ignore[arg-type]


def test_spec_comes_from_preprocessor_config_else_model_config(folder: Path, tmp_path: Path) -> None:
    written = json.loads((folder / "preprocessor_config.json").read_text())
    assert written["size"] == {"height": SIZE, "width": SIZE} and written["image_mean"] == list(IMAGENET_MEAN)
    custom = Path(shutil.copytree(folder, tmp_path / "custom"))
    (custom / "preprocessor_config.json").write_text(json.dumps({**written, "image_mean": [0.5, 0.5, 0.5]}))
    assert Sam2Segmenter(custom).spec.mean == (0.5, 0.5, 0.5)
    (custom / "preprocessor_config.json").unlink()
    assert Sam2Segmenter(custom).spec == Sam2InputSpec(image_size=SIZE)  # model config size, ImageNet stats
    (custom / "preprocessor_config.json").write_text(json.dumps({**written, "resample": 3}))
    with pytest.raises(ModelLoadError, match="resample=3 is not bilinear"):
        Sam2Segmenter(custom).set_image(picture(40, 30))
    (custom / "preprocessor_config.json").write_text(json.dumps({**written, "size": {"height": 512, "width": 512}}))
    with pytest.raises(ModelLoadError, match="size 512 differs from the model's image_size 256"):
        Sam2Segmenter(custom).set_image(picture(40, 30))


# --- shapes and frames -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), [(97, 61), (320, 200)])
def test_masks_have_the_original_size_in_every_mode(shared: Sam2Segmenter, width: int, height: int) -> None:
    image = picture(width, height)
    boxes = [Box(2.0, 3.0, width / 2, height - 1.0), Box(width / 2, 0.0, float(width), height / 2)]
    points = [[Point(10.0, 10.0)], [Point(width * 0.75, height / 4)]]
    runs = {
        "box+point": shared.predict(image, boxes, points),
        "box": shared.predict(image, boxes, prompting="box"),
        "points": shared.predict(image, points=points, labels=[[1], [0]], prompting="points"),
    }
    for mode, preds in runs.items():
        assert len(preds) == 2, mode
        for pred, box in zip(preds, boxes, strict=True):
            assert isinstance(pred, MaskPrediction)
            assert pred.mask.shape == (height, width) and pred.mask.dtype == np.bool_, mode
            assert isinstance(pred.score, float) and np.isfinite(pred.score)
            assert pred.box == (None if mode == "points" else box)
    rles = shared.segment(image, boxes, [points[0][0], None])
    assert [r.size for r in rles] == [(height, width)] * 2
    assert np.array_equal(decode_rle(rles[0]), runs["box+point"][0].mask)
    assert np.array_equal(decode_rle(rles[1]), runs["box"][1].mask)


def test_the_model_gets_coordinates_in_its_square_frame(shared: Sam2Segmenter) -> None:
    """On a 320x200 image a right-half box arrives as x in [128, 256] of the 256-square input; y scaled by 256/200."""
    seen: dict[str, torch.Tensor] = {}

    def grab(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        seen.update({k: v.clone() for k, v in kwargs.items() if isinstance(v, torch.Tensor)})

    image = picture(320, 200)
    shared.set_image(image)  # loads the model, so that its modules can be hooked
    with hooked(shared._model.prompt_encoder, grab, pre=True):
        shared.predict(
            image, [Box(160.0, 0.0, 320.0, 200.0), Box(0.0, 50.0, 80.0, 100.0)], [[Point(240, 100)], [Point(8, 75)]]
        )
    assert torch.allclose(seen["input_boxes"], torch.tensor([[[128.0, 0.0, 256.0, 256.0], [0.0, 64.0, 64.0, 128.0]]]))
    assert torch.allclose(seen["input_points"], torch.tensor([[[[192.0, 128.0]], [[6.4, 96.0]]]]))
    assert seen["input_labels"].tolist() == [[[1], [1]]]
    seen.clear()
    with hooked(shared._model.prompt_encoder, grab, pre=True):
        shared.predict(image, points=[[Point(0, 0), Point(320, 200)]], labels=[[1, 0]], prompting="points")
    assert "input_boxes" not in seen  # points only: no box tensor
    assert torch.allclose(seen["input_points"], torch.tensor([[[[0.0, 0.0], [256.0, 256.0]]]]))
    assert seen["input_labels"].tolist() == [[[1, 0]]]


# --- the mask rule, batching, caching ----------------------------------------------------------------------------


def test_the_highest_iou_candidate_is_kept(shared: Sam2Segmenter) -> None:
    """RegionReasoner keeps argmax(scores) of the 3 multimask outputs; forced scores make it candidate i % 3."""
    captured: dict[str, torch.Tensor] = {}

    def force(module: torch.nn.Module, args: Any, output: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        masks, iou, *rest = output
        assert iou.shape[-1] == 3  # multimask_output=True
        forced = torch.full_like(iou, 0.1)
        for i in range(iou.shape[1]):
            forced[0, i, i % 3] = 0.9 + i / 100
        captured["masks"] = masks.clone()
        return (masks, forced, *rest)

    image = picture(97, 61, seed=3)
    boxes = [Box(5.0 + 10 * i, 4.0, 40.0 + 10 * i, 50.0) for i in range(5)]
    shared.set_image(image)  # loads the model, so that its decoder can be hooked
    with hooked(shared._model.mask_decoder, force):
        preds = shared.predict(image, boxes, [[b.center] for b in boxes])
    low = captured["masks"][0]  # (5, 3, 64, 64)
    for i, pred in enumerate(preds):
        assert pred.score == pytest.approx(0.9 + i / 100)
        expected = upsample_masks(low[i, i % 3][None], (61, 97))[0].numpy()
        assert np.array_equal(pred.mask, expected)
        others = [upsample_masks(low[i, j][None], (61, 97))[0].numpy() for j in range(3) if j != i % 3]
        assert not all(np.array_equal(pred.mask, o) for o in others)  # the choice made a difference


def test_sixteen_prompts_take_one_decoder_call_and_match_single_calls(shared: Sam2Segmenter) -> None:
    image = picture(320, 200, seed=5)
    boxes = [Box(float(x), float(y), x + 60.0, y + 50.0) for x in range(0, 240, 60) for y in range(0, 150, 40)]
    points = [[b.center] for b in boxes]
    assert len(boxes) == 16
    shared.set_image(image)
    before = shared.decoder_calls
    batched = shared.predict(image, boxes, points)
    assert shared.decoder_calls == before + 1
    before = shared.decoder_calls
    shared.predict(image, boxes, prompting="box")
    assert shared.decoder_calls == before + 1
    singles = [shared.predict(image, [b], [p])[0] for b, p in zip(boxes[:4], points[:4], strict=True)]
    for one, many in zip(singles, batched[:4], strict=True):
        assert one.score == pytest.approx(many.score, abs=1e-5)
        assert np.mean(one.mask != many.mask) < 1e-3  # same mask, up to float ties at the threshold
    before = shared.decoder_calls
    shared.segment(image, boxes, [p[0] if i % 2 else None for i, p in enumerate(points)])
    assert shared.decoder_calls == before + 2  # box+point objects in one call, box-only objects in another


def test_embeddings_are_cached_by_image_hash_and_bounded(folder: Path) -> None:
    seg = Sam2Segmenter(folder, cache_size=2)
    a, b, c = (picture(97, 61, seed=s) for s in (1, 2, 3))
    box, point = [Box(10.0, 10.0, 50.0, 40.0)], [[Point(30.0, 25.0)]]
    seg.set_image(a)
    assert seg.encoder_calls == 1
    seg.predict(a, box, point)
    seg.predict(load_image(a.image.copy()), box, point)  # same pixels, another object: same hash
    assert seg.encoder_calls == 1
    seg.predict(b, box, point)
    assert seg.encoder_calls == 2
    seg.predict(c, box, point)  # evicts a, the least recently used
    assert seg.encoder_calls == 3 and set(seg.cached_images) == {b.hash, c.hash}
    seg.predict(a, box, point)
    assert seg.encoder_calls == 4


def test_prompt_misuse_raises_with_an_instruction(shared: Sam2Segmenter) -> None:
    image = picture(97, 61)
    box, point = [Box(1.0, 1.0, 9.0, 9.0)], [[Point(5.0, 5.0)]]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"boxes": box}, "needs points"),
        ({"boxes": box, "points": point, "prompting": "box"}, "takes no points"),
        ({"boxes": box, "points": point, "prompting": "points"}, "takes no boxes"),
        ({"points": point}, "needs boxes"),
        ({"boxes": box * 2, "points": point}, "2 boxes but points for 1"),
        ({"boxes": box, "points": point, "labels": [[2]]}, "labels \\[2\\]"),
        ({"boxes": box, "points": point, "labels": [[1, 1]]}, "labels do not match"),
        ({"boxes": box, "points": [[]]}, "has no points"),
        ({"boxes": [Box(0.0, 0.0, float("nan"), 1.0)], "points": point}, "non-finite"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InputError, match=message):
            shared.predict(image, **kwargs)
    with pytest.raises(InputError, match="1 boxes but 2 points"):
        shared.segment(image, box, [None, None])


def test_union_ors_the_objects_masks() -> None:
    a = np.zeros((4, 5), dtype=bool)
    b = np.zeros((4, 5), dtype=bool)
    a[0, 0], b[3, 4] = True, True
    assert union([a, b], (4, 5)).sum() == 2
    assert not union([], (4, 5)).any()
    with pytest.raises(InputError, match="shape"):
        union([np.zeros((2, 2), dtype=bool)], (4, 5))


# --- preprocessing parity with transformers' Sam2Processor -------------------------------------------------------


@pytest.fixture(scope="module")
def parity() -> Any:
    return np.load(PARITY)


@pytest.mark.parametrize(("name", "width", "height"), [("small", 97, 61), ("wide", 320, 200)])
def test_preprocessing_matches_the_processor_bit_for_bit(parity: Any, name: str, width: int, height: int) -> None:
    image = parity_image(width, height)
    assert hashlib.sha256(np.asarray(image).tobytes()).hexdigest() == str(parity[f"{name}_image_sha256"])
    pv = pixel_values(image, Sam2InputSpec(image_size=SIZE))
    assert pv.dtype == torch.float32 and tuple(pv.shape) == (1, 3, SIZE, SIZE)
    resized = np.rint(
        pv[0].numpy() * (np.array([0.229, 0.224, 0.225])[:, None, None] * 255)
        + np.array(IMAGENET_MEAN)[:, None, None] * 255
    )
    assert np.abs(resized - parity[f"{name}_resized_u8"]).max() == 0  # the antialiased uint8 resize
    assert np.array_equal(pv[0, :, 100].numpy(), parity[f"{name}_pv_row100"])
    assert hashlib.sha256(pv.numpy().tobytes()).hexdigest() == str(parity[f"{name}_pv_sha256"])
    hw = (height, width)
    assert torch.equal(
        scale_coords(parity[f"{name}_boxes_in"], hw, SIZE), torch.from_numpy(parity[f"{name}_input_boxes"][0])
    )
    assert torch.equal(
        scale_coords(parity[f"{name}_points_in"], hw, SIZE), torch.from_numpy(parity[f"{name}_input_points"][0])
    )
    logits = torch.from_numpy(parity[f"{name}_lowres_logits"].astype(np.float32))[0]  # (2, 3, 16, 16)
    masks = upsample_masks(logits.reshape(6, 16, 16), hw).numpy().reshape(2, 3, height, width)
    expected = np.unpackbits(parity[f"{name}_masks_packed"], axis=-1, count=width).astype(bool)
    assert np.array_equal(masks, expected)
