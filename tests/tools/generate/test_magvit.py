"""The MAGVIT-v2 tokenizer and its pre- and post-processing.

Tiny random models run for real; the full released architecture is only built on the meta device.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from regionreasoner.core.errors import ConfigError, GeometryError, InputError, ModelLoadError, UnsupportedImageError
from regionreasoner.tools.generate.images import (
    mask_to_grid,
    postprocess_image,
    postprocess_images,
    preprocess_image,
    preprocess_mask,
    resize_and_crop,
)
from regionreasoner.tools.generate.magvit import SAFETENSORS_NAME, Magvit, MagvitConfig

Shapes = dict[str, tuple[int, ...]]


@pytest.fixture(scope="module")
def tiny() -> Magvit:
    torch.manual_seed(0)
    return Magvit(MagvitConfig.tiny()).eval()


def _pixels(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ------------------------------------------------------------------ the released naming, enumerated independently


def _resnet(prefix: str, cin: int, cout: int) -> Shapes:
    out = {
        f"{prefix}.norm1.weight": (cin,),
        f"{prefix}.norm1.bias": (cin,),
        f"{prefix}.conv1.weight": (cout, cin, 3, 3),
        f"{prefix}.conv1.bias": (cout,),
        f"{prefix}.norm2.weight": (cout,),
        f"{prefix}.norm2.bias": (cout,),
        f"{prefix}.conv2.weight": (cout, cout, 3, 3),
        f"{prefix}.conv2.bias": (cout,),
    }
    if cin != cout:
        out |= {f"{prefix}.nin_shortcut.weight": (cout, cin, 1, 1), f"{prefix}.nin_shortcut.bias": (cout,)}
    return out


def _conv(prefix: str, cin: int, cout: int, k: int) -> Shapes:
    return {f"{prefix}.weight": (cout, cin, k, k), f"{prefix}.bias": (cout,)}


def _norm(prefix: str, c: int) -> Shapes:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,)}


def _mid(prefix: str, c: int) -> Shapes:
    out = _resnet(f"{prefix}.block_1", c, c) | _norm(f"{prefix}.attn_1.norm", c)
    for name in ("q", "k", "v", "proj_out"):
        out |= _conv(f"{prefix}.attn_1.{name}", c, c, 1)
    return out | _resnet(f"{prefix}.block_2", c, c)


def released_names(cfg: MagvitConfig) -> Shapes:
    """Show-o's state-dict names and shapes for ``cfg`` (VQGANEncoder / VQGANDecoder / LFQuantizer).

    Without attention at levels (``attn_resolutions`` never matching, as in the release).
    """
    ch, z = cfg.ch, cfg.z_channels
    out = _conv("encoder.conv_in", cfg.in_ch, ch, 3)
    cin = ch
    levels = len(cfg.encoder_ch_mult)
    for i, (m, n) in enumerate(zip(cfg.encoder_ch_mult, cfg.encoder_num_res_blocks, strict=True)):
        for j in range(n):
            out |= _resnet(f"encoder.down.{i}.block.{j}", cin, ch * m)
            cin = ch * m
        if i != levels - 1:
            out |= _conv(f"encoder.down.{i}.downsample.conv", cin, cin, 3)
    out |= _mid("encoder.mid", cin) | _norm("encoder.norm_out", cin)
    out |= _conv("encoder.conv_out", cin, z, 3) | _conv("encoder.quant_conv", z, z, 1)
    cin = ch * cfg.decoder_ch_mult[-1]
    out |= _conv("decoder.post_quant_conv", z, z, 1) | _conv("decoder.conv_in", z, cin, 3) | _mid("decoder.mid", cin)
    for i in reversed(range(levels)):
        for j in range(cfg.decoder_num_res_blocks[i]):
            out |= _resnet(f"decoder.up.{i}.block.{j}", cin, ch * cfg.decoder_ch_mult[i])
            cin = ch * cfg.decoder_ch_mult[i]
        if i != 0:
            out |= _conv(f"decoder.up.{i}.upsample.conv", cin, cin, 3)
    out |= _norm("decoder.norm_out", cin) | _conv("decoder.conv_out", cin, cfg.out_ch, 3)
    return out | {"quantize.embedding": (2**z, z), "quantize.power_vals": (z,)}


def _shapes(model: Magvit) -> Shapes:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_full_released_architecture_on_meta() -> None:
    with torch.device("meta"):
        model = Magvit()
    shapes = _shapes(model)
    assert shapes == released_names(MagvitConfig())
    # Read from Show-o models/modeling_magvitv2.py + common_modules.py @45a5a2de (checked against that code).
    assert len(shapes) == 382
    assert shapes["encoder.conv_in.weight"] == (128, 3, 3, 3)
    assert shapes["encoder.down.0.block.0.norm1.weight"] == (128,)
    assert shapes["encoder.down.1.block.0.nin_shortcut.weight"] == (256, 128, 1, 1)
    assert shapes["encoder.down.3.downsample.conv.weight"] == (512, 512, 3, 3)
    assert shapes["encoder.down.4.block.3.conv2.weight"] == (512, 512, 3, 3)
    assert shapes["encoder.mid.attn_1.proj_out.weight"] == (512, 512, 1, 1)
    assert shapes["encoder.conv_out.weight"] == (13, 512, 3, 3)
    assert shapes["encoder.quant_conv.weight"] == (13, 13, 1, 1)
    assert shapes["decoder.post_quant_conv.weight"] == (13, 13, 1, 1)
    assert shapes["decoder.conv_in.weight"] == (512, 13, 3, 3)
    assert shapes["decoder.up.3.block.0.nin_shortcut.weight"] == (256, 512, 1, 1)
    assert shapes["decoder.up.4.block.2.conv2.weight"] == (512, 512, 3, 3)
    assert shapes["decoder.up.1.upsample.conv.weight"] == (128, 128, 3, 3)
    assert shapes["decoder.conv_out.weight"] == (3, 128, 3, 3)
    assert shapes["quantize.embedding"] == (8192, 13)
    assert shapes["quantize.power_vals"] == (13,)
    for absent in ("encoder.down.4.downsample.conv.weight", "decoder.up.0.upsample.conv.weight",
                   "decoder.up.4.block.3.conv1.weight", "encoder.down.0.attn.0.q.weight"):  # fmt: skip
        assert absent not in shapes
    assert sum(int(np.prod(s)) for k, s in shapes.items() if not k.startswith("quantize.")) == 95_387_004
    assert model.stride == 16 and model.codebook_size == 8192


def test_released_names_load_strictly_into_the_tiny_model(tiny: Magvit) -> None:
    torch.manual_seed(1)
    state = {k: torch.randn(s) for k, s in released_names(tiny.config).items()}
    state["quantize.embedding"], state["quantize.power_vals"] = tiny.quantize.embedding, tiny.quantize.power_vals
    model = Magvit(tiny.config)
    model.load_state_dict(state, strict=True)
    assert torch.equal(model.decoder.conv_out.weight, state["decoder.conv_out.weight"])


def test_attention_levels_follow_attn_resolutions() -> None:
    model = Magvit(MagvitConfig.tiny(attn_resolutions=(16,)))  # resolution 32: level 1 of both sides
    keys = set(model.state_dict())
    assert {"encoder.down.1.attn.1.q.weight", "decoder.up.1.attn.0.proj_out.bias"} <= keys
    assert not any(k.startswith(("encoder.down.0.attn", "decoder.up.2.attn")) for k in keys)
    assert model.get_code(_pixels(1, 3, 16, 16)).shape == (1, 16)


# ------------------------------------------------------------------ codes


def test_config_defaults_are_the_release() -> None:
    cfg = MagvitConfig()
    assert (cfg.ch, cfg.z_channels, cfg.stride, cfg.codebook_size) == (128, 13, 16, 8192)
    assert cfg.encoder_ch_mult == (1, 2, 2, 4, 4) and cfg.encoder_num_res_blocks == (4, 3, 4, 3, 4)
    assert cfg.decoder_ch_mult == (1, 1, 2, 2, 4) and cfg.decoder_num_res_blocks == (4, 4, 3, 4, 3)
    assert MagvitConfig(encoder_ch_mult=[1, 2, 2, 4, 4]).encoder_ch_mult == (1, 2, 2, 4, 4)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {"encoder_num_res_blocks": (1, 1)},
        {"decoder_ch_mult": (1, 2)},
        {"norm_groups": 5},
        {"z_channels": 0},
        {"z_channels": 21},
        {"ch": True},
        {"attn_resolutions": "5"},
        {"no_such_field": 1},
    ],
)
def test_config_rejects_bad_values(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        MagvitConfig.tiny(**changes)


@pytest.mark.parametrize(("height", "width"), [(16, 16), (8, 24), (32, 12)])
def test_code_shapes_square_and_not(tiny: Magvit, height: int, width: int) -> None:
    pixels = _pixels(2, 3, height, width)
    codes = tiny.get_code(pixels)
    grid = (height // 4, width // 4)
    assert codes.shape == (2, grid[0] * grid[1]) and codes.dtype == torch.long
    assert int(codes.min()) >= 0 and int(codes.max()) < 8192
    assert not codes.requires_grad
    shape = None if grid[0] == grid[1] else grid
    assert tiny.decode_code(codes, shape).shape == pixels.shape
    assert tiny(pixels).shape == pixels.shape


def test_codes_are_raster_order_of_the_latent(tiny: Magvit) -> None:
    pixels = _pixels(1, 3, 8, 12)
    z = tiny.encode(pixels)
    codes = tiny.get_code(pixels)
    bits = (z[0] > 0).long()  # (13, 2, 3)
    for r in range(2):
        for c in range(3):
            expected = sum(int(bits[k, r, c]) << (12 - k) for k in range(13))
            assert int(codes[0, r * 3 + c]) == expected


def test_lookup_free_bit_mapping_on_a_hand_built_latent(tiny: Magvit) -> None:
    z = -torch.ones(1, 13, 1, 5)
    z[0, 0, 0, 1] = 0.3  # channel 0 is the most significant bit
    z[0, :, 0, 2] = 2.0  # all bits
    z[0, 12, 0, 3] = 1e-6  # least significant bit
    z[0, :, 0, 4] = 0.0  # exactly zero is a 0 bit
    z[0, 0, 0, 4] = z[0, 12, 0, 4] = 1.0
    assert tiny.quantize.codes(z).tolist() == [[0, 4096, 8191, 1, 4097]]
    every = torch.arange(8192).view(2, 4096)
    latent = tiny.quantize.latent(every, 64, 64)
    assert set(latent.unique().tolist()) == {-1.0, 1.0}
    assert latent[0, :, 0, 1].tolist() == [-1.0] * 12 + [1.0]  # code 1: only the last channel is +1
    assert torch.equal(tiny.quantize.codes(latent), every)


def test_bad_pixels_and_codes_raise_input_error(tiny: Magvit) -> None:
    for pixels in (
        _pixels(1, 1, 16, 16),
        _pixels(1, 3, 18, 16),
        _pixels(3, 16, 16),
        torch.zeros(1, 3, 16, 16, dtype=torch.long),
    ):
        with pytest.raises(InputError):
            tiny.get_code(pixels)
    codes = torch.zeros(1, 12, dtype=torch.long)
    for bad in (
        lambda: tiny.decode_code(codes),  # 12 is no square
        lambda: tiny.decode_code(codes, (3, 5)),
        lambda: tiny.decode_code(codes, (0, 12)),
        lambda: tiny.decode_code(codes.float(), (3, 4)),
        lambda: tiny.decode_code(codes + 8192, (3, 4)),
        lambda: tiny.decode_code(codes - 1, (3, 4)),
    ):
        with pytest.raises(InputError):
            bad()


# ------------------------------------------------------------------ checkpoints


def test_save_and_load_round_trip_every_tensor(tiny: Magvit, tmp_path: Path) -> None:
    folder = tiny.save_pretrained(tmp_path / "magvit")
    config = json.loads((folder / "config.json").read_text())
    assert config["_class_name"] == "MAGVITv2" and config["z_channels"] == 13
    assert (folder / SAFETENSORS_NAME).is_file()
    loaded = Magvit.from_pretrained(folder)
    assert loaded.config == tiny.config and not loaded.training
    expected, got = tiny.state_dict(), loaded.state_dict()
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert got[key].dtype == value.dtype and torch.equal(got[key], value), key
    pixels = _pixels(1, 3, 16, 12)
    assert torch.equal(loaded.get_code(pixels), tiny.get_code(pixels))


def test_released_style_bin_loads_with_weights_only(tiny: Magvit, tmp_path: Path) -> None:
    cfg = {"_class_name": "MAGVITv2", "_diffusers_version": "0.30.1"} | {
        k: v for k, v in tiny.config.to_json().items() if not k.startswith("_")
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    state = {k: v for k, v in tiny.state_dict().items() if not k.startswith("quantize.")}  # tables are optional
    torch.save(state, tmp_path / "pytorch_model.bin")
    loaded = Magvit.from_pretrained(tmp_path, dtype=torch.float64)
    assert loaded.encoder.conv_in.weight.dtype == torch.float64 and loaded.quantize.power_vals.dtype == torch.long
    assert torch.equal(loaded.decoder.conv_out.weight.float(), tiny.decoder.conv_out.weight)
    assert torch.equal(loaded.quantize.embedding.float(), tiny.quantize.embedding)


class _NotATensor:
    pass


def _folder(tiny: Magvit, tmp_path: Path) -> Path:
    return tiny.save_pretrained(tmp_path / "ckpt")


def test_load_errors_name_the_fix(tiny: Magvit, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="huggingface-cli download showlab/magvitv2"):
        Magvit.from_pretrained(tmp_path / "nowhere")
    folder = _folder(tiny, tmp_path)
    (folder / SAFETENSORS_NAME).unlink()
    with pytest.raises(ModelLoadError, match="no weights"):
        Magvit.from_pretrained(folder)
    torch.save({"weights": _NotATensor()}, folder / "pytorch_model.bin")  # weights_only refuses custom classes
    with pytest.raises(ModelLoadError, match="cannot read weights"):
        Magvit.from_pretrained(folder)
    torch.save({"state_dict": tiny.state_dict()}, folder / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="not a flat state dict"):
        Magvit.from_pretrained(folder)
    (folder / "config.json").unlink()
    with pytest.raises(ModelLoadError, match=r"config\.json is missing"):
        Magvit.from_pretrained(folder)


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"_class_name": "AutoencoderKL"}, "not a MAGVITv2"),
        ({"codebook_size": 8192}, "unknown keys"),
        ({"ch": 0}, "ch=0"),
        ({"ch": 32}, "another shape"),
        ([1, 2], "not an object"),
    ],
)
def test_bad_config_json(tiny: Magvit, tmp_path: Path, config: object, match: str) -> None:
    folder = _folder(tiny, tmp_path)
    data = tiny.config.to_json() | config if isinstance(config, dict) else config
    (folder / "config.json").write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match=match):
        Magvit.from_pretrained(folder)


def test_wrong_keys_raise_model_load_error(tiny: Magvit, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    folder = _folder(tiny, tmp_path)
    path = folder / SAFETENSORS_NAME
    state = load_file(str(path))
    renamed = dict(state)
    renamed["encoder.conv_in.kernel"] = renamed.pop("encoder.conv_in.weight")
    save_file(renamed, str(path))
    with pytest.raises(ModelLoadError, match=r"1 missing \(e\.g\. encoder\.conv_in\.weight\).*1 unexpected"):
        Magvit.from_pretrained(folder)
    save_file({f"module.{k}": v for k, v in state.items()}, str(path))
    with pytest.raises(ModelLoadError, match="missing"):
        Magvit.from_pretrained(folder)
    flipped = dict(state)
    flipped["quantize.embedding"] = state["quantize.embedding"].flip(1)  # LSB-first: another bit order
    save_file(flipped, str(path))
    with pytest.raises(ModelLoadError, match="MSB-first"):
        Magvit.from_pretrained(folder)
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match="cannot read weights"):
        Magvit.from_pretrained(folder)


def test_package_import_is_lazy() -> None:
    code = (
        "import sys\n"
        "import regionreasoner.tools.generate as g\n"
        "assert 'torch' not in sys.modules, 'import regionreasoner.tools.generate imported torch'\n"
        "names = ['Magvit', 'MagvitConfig', 'mask_to_grid', 'postprocess_image', 'preprocess_image']\n"
        "assert set(names) <= set(g.__all__) and all(getattr(g, n) is not None for n in names)\n"
        "try:\n"
        "    g.nothing_here\n"
        "except AttributeError as exc:\n"
        "    assert 'nothing_here' in str(exc)\n"
        "else:\n"
        "    raise AssertionError('missing attribute did not raise')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


# ------------------------------------------------------------------ images


def _reference_transform(image: Image.Image, side: int) -> Image.Image:
    """What torchvision's Resize(side, BICUBIC) + CenterCrop(side) on a PIL image, spelled out."""
    w, h = image.size
    short, long = min(w, h), max(w, h)
    new_long = int(side * long / short)
    size = (side, new_long) if w <= h else (new_long, side)
    resized = image.resize(size, Image.Resampling.BICUBIC)
    left, top = round((size[0] - side) / 2.0), round((size[1] - side) / 2.0)
    return resized.crop((left, top, left + side, top + side))


def _photo(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


@pytest.mark.parametrize(("width", "height"), [(333, 257), (200, 300), (64, 64), (48, 40)])
def test_preprocess_matches_the_reference_transform(width: int, height: int) -> None:
    image = _photo(width, height)
    pixels = preprocess_image(image, 64)
    assert pixels.shape == (3, 64, 64) and pixels.dtype == torch.float32
    assert float(pixels.min()) >= -1.0 and float(pixels.max()) <= 1.0
    expected = np.asarray(_reference_transform(image, 64), dtype=np.float32) / 255.0
    assert torch.equal(pixels, (torch.from_numpy(expected).permute(2, 0, 1) - 0.5) / 0.5)


def test_preprocess_non_square_target() -> None:
    image = _photo(300, 200)
    pixels = preprocess_image(image, (64, 32))  # (width, height): covers by width, crops rows
    assert pixels.shape == (3, 32, 64)
    resized = image.resize((64, 42), Image.Resampling.BICUBIC)
    assert resize_and_crop(image, (64, 32)).tobytes() == resized.crop((0, 5, 64, 37)).tobytes()
    assert preprocess_image(_photo(32, 64), (48, 16)).shape == (3, 16, 48)


def test_preprocess_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match="multiples of 16"):
        preprocess_image(_photo(64, 64), 60)
    with pytest.raises(ConfigError):
        preprocess_image(_photo(64, 64), (64,))  # type: ignore[arg-type]
    with pytest.raises(UnsupportedImageError):
        preprocess_image(Image.new("RGBA", (32, 32)), 32)
    with pytest.raises(InputError):
        preprocess_image(np.zeros((32, 32, 3), np.uint8), 32)  # type: ignore[arg-type]


def test_postprocess_round_trip_truncates_like_the_reference() -> None:
    original = np.asarray(_photo(48, 32))
    back = np.asarray(postprocess_image(preprocess_image(Image.fromarray(original), (48, 32))))
    diff = original.astype(int) - back.astype(int)
    assert back.dtype == np.uint8 and back.shape == original.shape
    assert diff.min() >= 0 and diff.max() <= 1  # float32 (x + 1) / 2 * 255 lands just below v, truncated
    out = postprocess_images(torch.tensor([-3.0, -1.0, 0.0, 1.0, 2.0]).view(1, 1, 1, 5).expand(2, 3, 1, 5))
    assert len(out) == 2 and np.asarray(out[1])[0, :, 0].tolist() == [0, 0, 127, 255, 255]
    with pytest.raises(InputError):
        postprocess_images(torch.zeros(3, 8, 8))
    with pytest.raises(InputError, match="postprocess_images"):
        postprocess_image(torch.zeros(2, 3, 8, 8))


def test_mask_to_grid_on_a_rectangle() -> None:
    mask = np.zeros((256, 256), dtype=bool)
    mask[64:128, 32:192] = True  # code rows 4..7, columns 2..11 of a 16 x 16 grid
    grid = mask_to_grid(mask, (16, 16))
    expected = np.zeros((16, 16), dtype=bool)
    expected[4:8, 2:12] = True
    assert grid.dtype == np.bool_ and grid.shape == (256,)
    assert np.array_equal(grid, expected.reshape(-1))
    wide = np.zeros((128, 256), dtype=bool)
    wide[:, 128:] = True  # right half of an 8 x 16 grid
    assert np.array_equal(mask_to_grid(wide, (8, 16)).reshape(8, 16), np.repeat([[False] * 8 + [True] * 8], 8, 0))
    assert mask_to_grid(mask.astype(np.float32), (16, 16)).sum() == 40


def test_preprocess_mask_follows_the_image_frame() -> None:
    mask = np.zeros((200, 300), dtype=bool)  # (H, W) of a 300 x 200 image
    mask[:, 150:] = True  # right half
    processed = preprocess_mask(mask, 64)  # resized to 96 x 64, cropped to the middle 64 columns
    assert processed.shape == (64, 64) and processed.dtype == np.float32
    assert processed.min() >= 0.0 and processed.max() <= 1.0
    grid = mask_to_grid(processed, (4, 4)).reshape(4, 4)
    assert np.array_equal(grid, np.repeat([[False, False, True, True]], 4, 0))
    for bad in (np.zeros((2, 2, 2)), np.zeros((0, 4))):
        with pytest.raises(GeometryError):
            mask_to_grid(bad, (2, 2))
    with pytest.raises(GeometryError):
        mask_to_grid(mask, (0, 4))
