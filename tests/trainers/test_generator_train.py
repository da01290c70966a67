"""The generator recipe on a tiny config: every stage runs, logs, resumes bit-exactly, and exports a loadable folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from regionreasoner.core.errors import ConfigError
from regionreasoner.trainers.generator_config import load_generator_config

TINY = {
    "resolution": 32,
    "vq_ch": 8,
    "vq_ch_mult": "1,2,2",
    "vq_z_channels": 6,
    "vq_steps": 2,
    "vq_batch": 2,
    "lm_hidden": 32,
    "lm_layers": 1,
    "lm_heads": 2,
    "lm_intermediate": 64,
    "lm_steps": 2,
    "lm_batch": 2,
    "tokenizer_vocab": 600,
    "tokenizer_captions": 600,
    "max_seq_length": 64,
    "timesteps": 2,
    "inpaint_timesteps": 2,
}


def _flags(values: dict[str, Any]) -> list[str]:
    return [x for k, v in values.items() for x in (f"--{k.replace('_', '-')}", str(v))]


def test_every_stage_runs_and_exports_a_loadable_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from regionreasoner.tools.generate import Generator
    from regionreasoner.trainers.cli import main

    run, export = tmp_path / "run", tmp_path / "gen"
    flags = _flags({**TINY, "output_dir": run, "export_dir": export, "save_steps": 1})
    assert main(["generator", *flags, "--docs", str(tmp_path / "docs")]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["generator"] == str(export) and printed["bytes"] < 25 * 2**20
    for stage in ("vq", "lm"):
        lines = (run / stage / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(line)["step"] for line in lines] == [1, 2]
        assert (run / stage / "metrics.png").is_file() and (tmp_path / "docs" / f"{stage}-metrics.png").is_file()
    card = (export / "README.md").read_text(encoding="utf-8")
    assert "## Recipe" in card and "## Limits" in card
    gen = Generator.from_pretrained(export, device="cpu")
    images = gen.generate(["a photo of a red circle", "een foto van twee sterren"], seed=0)
    assert [im.size for im in images] == [(32, 32), (32, 32)]
    mask = np.zeros((32, 32), dtype=bool)
    mask[:16, :16] = True
    edited = gen.inpaint(images[0], mask, "a photo of a green star", seed=0)
    assert np.array_equal(np.asarray(edited)[~mask], np.asarray(images[0])[~mask])
    # float16 NeoBabel weights load into a float32 model
    from safetensors import safe_open

    with safe_open(str(export / "pytorch_model.safetensors"), framework="pt") as f:
        assert {str(f.get_slice(k).get_dtype()) for k in f.keys()} == {"F16"}  # noqa: SIM118


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from regionreasoner.trainers import generator_train

    base = {**TINY, "vq_steps": 4, "lm_steps": 4, "save_steps": 2}
    whole = load_generator_config(None, **base, output_dir=str(tmp_path / "whole"))
    tok = generator_train.train_tokenizer(whole)
    vq_whole = generator_train.train_vq(whole)
    lm_whole = generator_train.train_lm(whole, vq_whole, tok)

    cut = load_generator_config(None, **base, output_dir=str(tmp_path / "cut"))
    real_save = generator_train.save_checkpoint

    def save_then_stop(folder: Path, step: int, state: dict[str, Any], **kw: Any) -> Path:
        path = real_save(folder, step, state, **kw)
        if step == 2:
            raise KeyboardInterrupt
        return path

    monkeypatch.setattr(generator_train, "save_checkpoint", save_then_stop)
    tok_cut = generator_train.train_tokenizer(cut)
    with pytest.raises(KeyboardInterrupt):
        generator_train.train_vq(cut)
    monkeypatch.setattr(generator_train, "save_checkpoint", real_save)
    vq_cut = generator_train.train_vq(cut)
    monkeypatch.setattr(generator_train, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        generator_train.train_lm(cut, vq_cut, tok_cut)
    monkeypatch.setattr(generator_train, "save_checkpoint", real_save)
    lm_cut = generator_train.train_lm(cut, vq_cut, tok_cut)

    from safetensors.torch import load_file

    for a, b in ((vq_whole, vq_cut), (lm_whole, lm_cut)):
        sa, sb = load_file(str(a / "pytorch_model.safetensors")), load_file(str(b / "pytorch_model.safetensors"))
        assert sa.keys() == sb.keys()
        assert all(torch.allclose(sa[k], sb[k], atol=1e-6) for k in sa)
    for stage in ("vq", "lm"):
        steps = [json.loads(x)["step"] for x in (tmp_path / "cut" / stage / "metrics.jsonl").read_text().splitlines()]
        assert steps == [1, 2, 3, 4]  # the log of the interrupted run reads like one run


def test_captions_cover_six_languages_and_mixes() -> None:
    from regionreasoner.trainers.generator_data import draw_picture

    rng = np.random.default_rng(0)
    pictures = [draw_picture(rng, resolution=64) for _ in range(400)]
    assert {p.language for p in pictures} == {"en", "zh", "nl", "fr", "hi", "fa", "mix"}
    assert {p.task for p in pictures} == {"single", "two", "count", "position"}
    counts = [p for p in pictures if p.task == "count"]
    assert all(len({o.kind for o in p.objects}) == 1 for p in counts)
    assert {len(p.objects) for p in counts} == {1, 2, 3, 4}
    from regionreasoner.core.world.lexicon import WORDS

    coloured = [p for p in pictures if p.task == "single" and p.language == "zh" and "色" in p.caption]
    assert coloured and all(WORDS["zh"]["colour"][p.objects[0].colour] in p.caption for p in coloured)
    left = [p for p in pictures if p.task == "position" and p.language == "en" and " left of " in p.caption]
    assert left and all(p.objects[0].cx < p.objects[1].cx for p in left)


def test_lattice_pictures_sit_on_the_code_grid_and_inpainting_regions_hold_only_their_shape() -> None:
    from regionreasoner.evals.generation.exact import ExactWorldDetector
    from regionreasoner.trainers.generator_data import draw_picture

    rng = np.random.default_rng(1)
    pictures = [draw_picture(rng, resolution=64, lattice=8) for _ in range(300)]
    assert {p.task for p in pictures} == {"single", "two", "count", "position", "inpaint"}
    assert all(o.cx % 8 == 4 and o.cy % 8 == 4 and o.radius == 11 for p in pictures for o in p.objects)
    detector = ExactWorldDetector()
    for p in pictures[:120]:  # every shape is drawn so that the exact scorer finds it
        found = sorted((o.kind, o.colour) for o in detector.segment(p.image(64)))
        assert found == sorted((o.kind, o.colour) for o in p.objects)
    inpaint = [p for p in pictures if p.task == "inpaint"]
    assert inpaint
    for p in inpaint:
        x0, y0, x1, y1 = p.region
        first, *others = p.objects
        r = first.radius
        assert x0 * 8 <= first.cx - r and first.cx + r <= x1 * 8 and y0 * 8 <= first.cy - r and first.cy + r <= y1 * 8
        for o in others:  # no other shape reaches into the region
            assert o.cx + r <= x0 * 8 or o.cx - r >= x1 * 8 or o.cy + r <= y0 * 8 or o.cy - r >= y1 * 8
    with pytest.raises(ConfigError, match="lattice"):
        draw_picture(rng, resolution=64, task="inpaint")


def test_one_cell_lattice_pictures_hold_one_shape_per_code_cell() -> None:
    from regionreasoner.evals.generation.exact import ExactWorldDetector
    from regionreasoner.trainers.generator_data import draw_picture

    rng = np.random.default_rng(2)
    pictures = [draw_picture(rng, resolution=96, lattice=32, footprint=1) for _ in range(300)]
    assert {p.task for p in pictures} == {"single", "two", "count", "position", "inpaint"}
    for p in pictures:
        cells = [(int(o.cx // 32), int(o.cy // 32)) for o in p.objects]
        assert len(set(cells)) == len(cells)  # one shape per cell
        assert all(o.cx % 32 == 16 and o.cy % 32 == 16 and o.radius == pytest.approx(0.36 * 32) for o in p.objects)
        assert all(1.25 * o.radius < 16 for o in p.objects)  # every kind stays inside its cell
    assert {len(p.objects) for p in pictures if p.task == "count"} == {1, 2, 3, 4}
    detector = ExactWorldDetector()
    for p in pictures[:120]:
        found = sorted((o.kind, o.colour) for o in detector.segment(p.image(96)))
        assert found == sorted((o.kind, o.colour) for o in p.objects)
    for p in pictures:
        if p.task == "position" and p.language == "en":
            a, b = p.objects
            if " left of " in p.caption:
                assert a.cx < b.cx
            elif " above " in p.caption:
                assert a.cy < b.cy
        if p.task == "inpaint":
            x0, y0, x1, y1 = p.region
            assert (x1 - x0, y1 - y0) == (1, 1) and (x0, y0) == (int(p.objects[0].cx // 32), int(p.objects[0].cy // 32))
    pairs = [draw_picture(rng, resolution=64, lattice=16, footprint=1, task="position") for _ in range(100)]
    for p in pairs:  # a 4x4 grid: the pair is at least two cells apart along the relation's axis
        a, b = p.objects
        along = abs(a.cx - b.cx) if ("left of" in p.caption or "right of" in p.caption) else abs(a.cy - b.cy)
        assert along >= 32 or p.language != "en"
    with pytest.raises(ConfigError, match="footprint"):
        draw_picture(rng, resolution=96, lattice=32, footprint=2)
    with pytest.raises(ConfigError, match="footprint"):
        draw_picture(rng, resolution=64, lattice=32, footprint=1)  # a 2x2 grid


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"lm_heads": 5}, "heads must divide"),
        ({"cond_dropout": 1.0}, "cond_dropout"),
        ({"nonsense": 1}, "unknown"),
        ({"vq_entropy_cells": "edges"}, "all or shapes"),
        ({"vq_free_share": 1.5}, "vq_free_share"),
        ({"lattice_footprint": 2}, "lattice_footprint"),
    ],
)
def test_bad_configs_name_the_fix(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_generator_config(None, **changes)


def test_the_shipped_preset_loads() -> None:
    cfg = load_generator_config("generator")
    assert cfg.num_vq_tokens == 64 and cfg.lattice_footprint == 3 and not cfg.inpaint_cell
    assert cfg.export_folder == Path("tools/generate/weights/world")
    one = load_generator_config("generator", resolution=96, vq_ch_mult="1,2,4,4,4,4", lattice_footprint=1)
    assert one.num_vq_tokens == 9 and one.stride == 32  # the one-code-per-shape layout (docs/decisions.md)


def test_the_codebook_term_looks_only_at_the_cells_given() -> None:
    import torch

    from regionreasoner.trainers.generator_train import lfq_losses

    bits = 3
    table = torch.tensor([[1.0 if (c >> b) & 1 else -1.0 for b in range(bits)] for c in range(2**bits)])
    z = torch.full((1, bits, 2, 2), -1.0)  # every cell code 0 ...
    z[0, :, 0, 0] = 1.0  # ... but one, code 7
    cells = torch.tensor([[[True, False], [False, False]]])
    _, _, spread = lfq_losses(z, table, 0.01)
    _, _, one_cell = lfq_losses(z, table, 0.01, cells)
    _, _, nothing = lfq_losses(z, table, 0.01, torch.zeros_like(cells))
    # confident codes: per-position entropy ~0; two codes used over all cells (entropy of 1/4, 3/4), one over the cell
    assert spread.item() == pytest.approx(-0.5623, abs=1e-3)
    assert one_cell.item() == pytest.approx(0.0, abs=1e-3) and nothing.item() == pytest.approx(0.0, abs=1e-3)
