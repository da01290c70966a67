"""Inpainting (kept codes bit-exact, original pixels outside the mask) and extrapolation (neobabel.md §2.3–§2.4)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from regionreasoner.core.errors import ConfigError, GeometryError, InputError
from regionreasoner.tools.generate.inpaint import (
    crop_box,
    extrapolation_merge,
    extrapolation_window,
    inpaint_codes,
    paste_back,
    regenerate_tokens,
)
from regionreasoner.tools.generate.prompting import VocabLayout
from regionreasoner.tools.generate.sampler import SamplerSettings, SamplerStep


def _picture(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_regenerate_tokens_marks_only_the_region() -> None:
    layout = VocabLayout(text_vocab_size=20, codebook_size=8)
    codes = torch.tensor([[0, 1, 2, 3]])
    tokens = regenerate_tokens(codes, torch.tensor([False, True, True, False]), layout)
    assert tokens.tolist() == [[30, layout.mask_id, layout.mask_id, 33]]
    with pytest.raises(InputError):
        regenerate_tokens(codes, torch.tensor([True]), layout)


def test_kept_codes_are_bit_exact(tiny_generator: Any) -> None:
    model, _, _, layout = tiny_generator.load()
    n = model.config.num_vq_tokens
    codes = torch.randint(0, layout.codebook_size, (2, n), generator=torch.Generator().manual_seed(0))
    regenerate = torch.zeros(n, dtype=torch.bool)
    regenerate[18:22] = regenerate[26:30] = True
    history: list[SamplerStep] = []
    out = inpaint_codes(
        model,
        [[2, 40], [2, 41]],
        codes,
        regenerate,
        layout=layout,
        max_seq_length=32,
        settings=SamplerSettings(timesteps=6, guidance_scale=1.5),
        generator=torch.Generator().manual_seed(0),
        callback=history.append,
    )
    assert torch.equal(out[:, ~regenerate], codes[:, ~regenerate])
    for s in history:  # never re-masked, never resampled, at any step
        assert not s.masked[:, ~regenerate].any()
        assert torch.equal(s.sampled[:, ~regenerate], codes[:, ~regenerate])
    # mask_len is counted from N, so with 8 unknown of 64 it is clamped to unknown - 1 for a while
    assert history[0].mask_len.tolist() == [7, 7]
    with pytest.raises(InputError, match="no code cell"):
        inpaint_codes(model, [[2]], codes[:1], torch.zeros(n, dtype=torch.bool), layout=layout, max_seq_length=32)


def test_inpaint_keeps_every_pixel_outside_the_mask(tiny_generator: Any) -> None:
    image = _picture(32, 32)
    mask = np.zeros((32, 32), bool)
    mask[10:22, 6:20] = True
    out = tiny_generator.inpaint(image, mask, "a blue umbrella", seed=0)
    before, after = np.asarray(image), np.asarray(out)
    assert out.size == image.size and out.mode == "RGB"
    assert np.array_equal(after[~mask], before[~mask])
    assert (after[mask] != before[mask]).any()
    again = tiny_generator.inpaint(image, mask, "a blue umbrella", seed=0)
    assert np.array_equal(np.asarray(again), after)


def test_inpaint_a_wide_image_near_its_edge(tiny_generator: Any) -> None:
    image = _picture(96, 40, seed=1)
    mask = np.zeros((40, 96), bool)
    mask[8:30, 70:90] = True
    assert crop_box(image.size, mask) == (56, 0, 96, 40)  # the square window follows the mask
    out = tiny_generator.inpaint(image, mask, "a cat", seed=1, steps=3)
    assert out.size == (96, 40)
    assert np.array_equal(np.asarray(out)[~mask], np.asarray(image)[~mask])


def test_inpaint_input_checks(tiny_generator: Any) -> None:
    image = _picture(32, 32)
    with pytest.raises(GeometryError):
        tiny_generator.inpaint(image, np.zeros((16, 16), bool), "x")
    with pytest.raises(GeometryError):
        tiny_generator.inpaint(image, np.zeros((32, 32), np.uint8), "x")
    with pytest.raises(InputError, match="no pixel"):
        tiny_generator.inpaint(image, np.zeros((32, 32), bool), "x")
    tiny = np.zeros((32, 32), bool)
    tiny[0, 0] = True  # far less than half of one 4x4 code cell
    with pytest.raises(InputError, match="no code cell"):
        tiny_generator.inpaint(image, tiny, "x")
    with pytest.raises(InputError):
        tiny_generator.inpaint(np.zeros((32, 32, 3)), tiny, "x")


def test_paste_back_resizes_the_window() -> None:
    original = _picture(40, 20)
    generated = Image.new("RGB", (8, 8), (255, 0, 0))
    mask = np.zeros((20, 40), bool)
    mask[5:10, 25:30] = True
    out = np.asarray(paste_back(original, generated, mask, (20, 0, 40, 20)))
    assert (out[mask] == (255, 0, 0)).all()
    assert np.array_equal(out[~mask], np.asarray(original)[~mask])


@pytest.mark.parametrize("direction", ["left", "right", "up", "down"])
def test_extrapolation_window_and_merge(direction: str) -> None:
    layout = VocabLayout(text_vocab_size=20, codebook_size=64)
    g, offset = 8, 1
    keep = g // 2 - offset  # 3 rows/columns of the image are kept in the window
    grid = torch.arange(g * g).reshape(1, g, g)
    window = extrapolation_window(grid, direction, offset, layout).reshape(1, g, g)
    new = window == layout.mask_id
    horizontal = direction in ("left", "right")
    assert int(new.sum()) == g * (g - keep)
    kept = {
        "left": (window[:, :, g - keep :], grid[:, :, :keep]),
        "right": (window[:, :, :keep], grid[:, :, -keep:]),
        "up": (window[:, g - keep :, :], grid[:, :keep, :]),
        "down": (window[:, :keep, :], grid[:, -keep:, :]),
    }[direction]
    assert torch.equal(kept[0] - layout.image_offset, kept[1])
    generated = torch.where(new, 99, window - layout.image_offset)
    grown = extrapolation_merge(grid, generated, direction, offset)
    assert grown.shape == ((1, g, 2 * g - keep) if horizontal else (1, 2 * g - keep, g))
    assert int((grown == 99).sum()) == g * (g - keep)
    original = {"left": grown[:, :, -g:], "right": grown[:, :, :g], "up": grown[:, -g:, :], "down": grown[:, :g, :]}
    assert torch.equal(original[direction], grid)  # the whole input grid survives, untouched
    with pytest.raises(ConfigError):
        extrapolation_window(grid, direction, g // 2, layout)
    with pytest.raises(ConfigError):
        extrapolation_window(grid, "sideways", 0, layout)


def test_extrapolate_decodes_a_non_square_grid(tiny_generator: Any) -> None:
    image = _picture(32, 32, seed=2)
    wide = tiny_generator.extrapolate(image, ["left", "right"], ["a beach"], offset=1, seed=0, steps=3)
    assert wide.size == (32 + 2 * 4 * 5, 32)  # two steps of G//2 + offset = 5 codes of 4 px
    tall = tiny_generator.extrapolate(image, ["down"], ["a beach"], seed=0, steps=3)
    assert tall.size == (32, 48)
    with pytest.raises(ConfigError, match="mix axes"):
        tiny_generator.extrapolate(image, ["left", "up"], ["x"], seed=0)
    with pytest.raises(InputError):
        tiny_generator.extrapolate(image, "left", ["x"], seed=0)


def test_inpaint_context_and_cover_choose_the_window_and_the_cells() -> None:
    from regionreasoner.tools.generate.generator import GeneratorDefaults
    from regionreasoner.tools.generate.images import mask_to_grid

    mask = np.zeros((240, 320), bool)
    mask[100:140, 200:240] = True  # a 40 x 40 region
    x0, y0, x1, y1 = crop_box((320, 240), mask)
    assert (x1 - x0, y1 - y0) == (240, 240)  # the release's largest square
    assert crop_box((320, 240), mask, context=2.0) == (180, 80, 260, 160)  # 80 x 80 around the region
    assert crop_box((320, 240), mask, context=100.0)[2:] == (320, 240)  # never beyond the largest window
    small = np.zeros((64, 64), np.float32)
    small[10:40, 10:40] = 1.0  # covers cells 2..4 wholly (pixels 16-39), cell 1 partly (10-15) of 8-pixel cells
    whole = mask_to_grid(small, (8, 8), cover=1.0).reshape(8, 8)
    expected = np.zeros((8, 8), bool)
    expected[2:5, 2:5] = True
    assert np.array_equal(whole, expected)
    assert mask_to_grid(small, (8, 8), cover=0.2).reshape(8, 8).sum() == 16  # cells 1..4 in each direction
    with pytest.raises(GeometryError, match="cover"):
        mask_to_grid(small, (8, 8), cover=1.5)
    with pytest.raises(ConfigError, match="inpaint_context"):
        GeneratorDefaults(inpaint_context=0.5)
    with pytest.raises(ConfigError, match="inpaint_cover"):
        GeneratorDefaults(inpaint_cover=2.0)


@pytest.mark.parametrize(
    ("box", "grid", "window"),
    [
        ((140, 100, 180, 140), 3, (100, 60, 220, 180)),  # a 40-px region in the middle: the middle cell
        ((10, 100, 40, 140), 3, (5, 60, 125, 180)),  # near the left edge: the left column, still inside the image
        ((290, 0, 320, 20), 3, (230, -5, 320, 85)),  # a corner: the window overhangs by the least the grid allows
        ((0, 0, 320, 240), 3, (-320, -360, 640, 600)),  # larger than the image: centred, overhanging evenly
    ],
)
def test_cell_window_puts_the_region_on_one_cell(
    box: tuple[int, int, int, int], grid: int, window: tuple[int, int, int, int]
) -> None:
    from regionreasoner.tools.generate.inpaint import cell_window

    x0, y0, x1, y1 = box
    mask = np.zeros((240, 320), bool)
    mask[y0:y1, x0:x1] = True
    got = cell_window((320, 240), mask, grid)
    assert got == window
    cell = max(x1 - x0, y1 - y0)
    assert got[2] - got[0] == got[3] - got[1] == grid * cell
    # the region's centre is the centre of one cell of the window
    for lo, hi, start in ((x0, x1, got[0]), (y0, y1, got[1])):
        offset = ((lo + hi) / 2 - start) / cell - 0.5
        assert abs(offset - round(offset)) <= 0.5 / cell and 0 <= round(offset) < grid
    with pytest.raises(InputError, match="no pixel"):
        cell_window((320, 240), np.zeros((240, 320), bool), 3)
    with pytest.raises(ConfigError, match="grid"):
        cell_window((320, 240), mask, 0)


def test_crop_padded_fills_the_overhang_with_the_border_colour_and_paste_back_clips() -> None:
    from regionreasoner.tools.generate.inpaint import crop_padded

    image = Image.new("RGB", (40, 30), (120, 120, 120))
    image.paste((255, 0, 0), (0, 0, 10, 10))  # a red corner (on the border, but not its most common colour)
    window = crop_padded(image, (-10, -10, 20, 20))
    pixels = np.asarray(window)
    assert window.size == (30, 30)
    assert (pixels[:10, :] == (120, 120, 120)).all() and (pixels[:, :10] == (120, 120, 120)).all()
    assert (pixels[10:20, 10:20] == (255, 0, 0)).all()  # the image's own pixels where the window is inside
    assert np.array_equal(np.asarray(crop_padded(image, (5, 5, 25, 25))), np.asarray(image.crop((5, 5, 25, 25))))
    mask = np.zeros((30, 40), bool)
    mask[0:5, 0:5] = True
    out = np.asarray(paste_back(image, Image.new("RGB", (6, 6), (0, 0, 255)), mask, (-10, -10, 20, 20)))
    assert (out[mask] == (0, 0, 255)).all() and np.array_equal(out[~mask], np.asarray(image)[~mask])


def test_inpaint_cell_regenerates_exactly_the_one_cell_of_the_region(
    tiny_generator_path: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import shutil

    from regionreasoner.tools.generate import inpaint as inpaint_module
    from regionreasoner.tools.generate.generator import Generator, GeneratorDefaults

    folder = tmp_path / "gen"
    shutil.copytree(tiny_generator_path, folder)
    spec = json.loads((folder / "generator.json").read_text(encoding="utf-8"))
    (folder / "generator.json").write_text(json.dumps({**spec, "inpaint_cell": True, "inpaint_cover": 0.5}), "utf-8")
    gen = Generator.from_pretrained(folder, device="cpu")
    seen: list[torch.Tensor] = []
    real = inpaint_module.inpaint_codes

    def spy(*args: Any, **kwargs: Any) -> torch.Tensor:
        seen.append(args[3].clone())  # regenerate (N,) bool
        return real(*args, **kwargs)

    monkeypatch.setattr(inpaint_module, "inpaint_codes", spy)
    image = _picture(320, 240, seed=4)
    mask = np.zeros((240, 320), bool)
    mask[2:22, 295:315] = True  # a 20-px region in the top-right corner: the window overhangs the image
    out = gen.inpaint(image, mask, "a green star", seed=0, steps=2)
    side = int(len(seen[0]) ** 0.5)  # the tiny model's 8x8 grid: the corner region sits on cell (row 0, column 7)
    chosen = seen[0].reshape(side, side).nonzero().tolist()
    assert chosen == [[0, side - 1]]
    assert out.size == image.size
    assert np.array_equal(np.asarray(out)[~mask], np.asarray(image)[~mask])
    with pytest.raises(ConfigError, match="inpaint_cell"):
        GeneratorDefaults(inpaint_cell=1)  # type: ignore[arg-type]
