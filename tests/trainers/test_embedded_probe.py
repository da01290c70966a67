"""The probe's two extra losses (benchmarks/embedded_probe.py) read the positions they claim to read."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch

ROOT = Path(__file__).resolve().parents[2]


def _probe() -> ModuleType:
    spec = importlib.util.spec_from_file_location("embedded_probe", ROOT / "benchmarks" / "embedded_probe.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_attention_loss_reads_the_patch_of_the_box_centre() -> None:
    probe = _probe()
    image = 7
    # 3 text tokens, 6 image tokens (a 2 x 3 merged grid), then 4 prompt-end tokens and the 5-token answer
    ids = torch.tensor([[1, 2, 3] + [image] * 6 + [4, 4, 4, 4] + [5, 5, 5, 5, 6]])
    enc = {"input_ids": ids, "image_grid_thw": torch.tensor([[1, 4, 6]])}
    box = (80.0, 60.0, 100.0, 100.0)  # centre (90, 80): column 2 of 3, row 1 of 2 -> merged token 5
    target = 3 + 5
    weights = torch.full((1, ids.shape[1], ids.shape[1]), 1e-3)
    weights[0, :, target] = 1.0
    assert probe._attend_loss(weights, enc, [(None, "", "", box)], image).item() < 1e-3
    weights[0, :, target] = 1e-3
    weights[0, :, target - 1] = 1.0  # the neighbouring patch: the loss sees the miss
    assert probe._attend_loss(weights, enc, [(None, "", "", box)], image).item() > 6.0


def test_the_soft_loss_grades_near_misses_and_reads_the_four_coordinate_positions() -> None:
    probe = _probe()
    vocab, value_ids = 200, torch.arange(101) + 50
    truth = (10.0, 20.0, 30.0, 40.0)

    def loss_when_predicting(values: tuple[int, ...], at: int = -6) -> float:
        logits = torch.zeros((1, 12, vocab))
        grid = torch.arange(101, dtype=torch.float32)
        for k, v in enumerate(values):  # a prediction as wide as the target, centred on v
            logits[0, at + k, 50:151] = -((grid - v) ** 2) / 8.0
        return float(probe._soft_loss(logits, [(None, "", "", truth)], value_ids, 2.0))

    exact, near = loss_when_predicting((10, 20, 30, 40)), loss_when_predicting((11, 21, 31, 41))
    far = loss_when_predicting((60, 70, 80, 90))
    assert exact < near < far
    assert loss_when_predicting((10, 20, 30, 40), at=-5) > near  # one position late: the wrong logits are scored
