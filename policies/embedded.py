"""The models found by name: ``"embedded"`` (trained here, shipped in the package) and ``"tiny"`` (random).

``embedded`` is a Qwen2.5-VL of a few million parameters trained by ``make model`` on the synthetic shapes world
(docs/embedded-model.md); its folder ships as package data in ``policies/weights/embedded/`` and loads through the
same path as any checkpoint folder (TransformersPolicy, VLLMPolicy, ``vllm serve``).  It is the default model of the
demo, the CLI, the served graph, the evaluation commands and ``RegionAgent.from_pretrained()`` once it meets its goals
(:data:`DEFAULT_MODEL`); until then ``--model embedded`` selects it.  ``tiny`` is the untrained model the tests use
(:mod:`regionreasoner.policies.tiny`).
"""

from __future__ import annotations

from pathlib import Path

from regionreasoner.core.errors import ModelLoadError

__all__ = ["DEFAULT_MODEL", "EMBEDDED_MODEL", "TINY_MODEL", "embedded_model_path", "resolve_model"]

EMBEDDED_MODEL = "embedded"
"""Name of the shipped, trained model."""

TINY_MODEL = "tiny"
"""Name of the tiny random, untrained model (built offline on first use)."""

DEFAULT_MODEL = TINY_MODEL
"""What every entry point loads when no model is given.

Still the tiny untrained model: the embedded model trained so far misses the bar that would make it the default
(its demo checks right and the goals of docs/embedded-model.md met; its card has the numbers).  Switching is this
one line; every entry point, the demo's banner and the tests follow it."""

WEIGHTS = Path(__file__).with_name("weights")
"""Folder of the shipped checkpoints (package data)."""


def embedded_model_path() -> Path:
    """The shipped embedded checkpoint folder; ModelLoadError (naming the fix) when this install lacks it."""
    folder = WEIGHTS / EMBEDDED_MODEL
    if not (folder / "model.safetensors").is_file() or not (folder / "config.json").is_file():
        raise ModelLoadError(
            f"the embedded model is missing from {folder}",
            hint="reinstall regionreasoner, or rebuild it with `make model`, or pass a checkpoint with --model",
        )
    return folder


def resolve_model(model: str | Path) -> str:
    """The checkpoint ``model`` names: ``"embedded"`` and ``"tiny"`` become their folders, anything else is kept."""
    text = str(model)
    if text == EMBEDDED_MODEL:
        return str(embedded_model_path())
    if text == TINY_MODEL:
        from regionreasoner.policies.tiny import tiny_model_path

        return str(tiny_model_path("qwen2.5-vl"))
    return text
