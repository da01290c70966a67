"""The shipped embedded model through VLLMPolicy: the same held-out accuracy as through TransformersPolicy."""

from __future__ import annotations

import json
from pathlib import Path

TOLERANCE = 0.02
"""Acc@0.5 may differ by at most two points between the backends (greedy decoding under the same grammar)."""


def _acc(out: Path, backend: str) -> dict[str, float]:
    from regionreasoner.evals.cli import main

    args = ["synthetic", "--model", "embedded", "--out", str(out), "--n-dialogues", "40", "--seed", "2026"]
    assert main([*args, "--language", "any", "--backend", backend, "--workers", "4"]) == 0
    world = json.loads((out / "world.json").read_text())
    return {"acc50": float(world["all"]["acc50"]), "turns": float(world["all"]["turns"])}


def test_vllm_matches_transformers_on_held_out_dialogues(tmp_path: Path) -> None:
    hf = _acc(tmp_path / "hf", "transformers")
    vllm = _acc(tmp_path / "vllm", "vllm")
    assert hf["turns"] == vllm["turns"] > 80
    assert abs(hf["acc50"] - vllm["acc50"]) <= TOLERANCE, (hf, vllm)
