"""``regionreasoner-train embedded-base|embedded-vision|embedded-export``: the embedded model's own recipe steps.

    regionreasoner-train embedded-base --out runs/embedded/base [--seed 0] [--rope-theta 10000]
        [--mrope-section 8,12,12] [--max-image-tokens 80]
    regionreasoner-train embedded-vision --base runs/embedded/base [--steps 1500] [--batch 16] [--lr 1e-3]
    regionreasoner-train embedded-export --run runs/embedded/grpo/final --out policies/weights/embedded
        [--eval runs/embedded/eval/world.json] [--sft-metrics ...] [--grpo-metrics ...]

``make model`` runs base -> sft -> grpo -> evaluation -> export (docs/embedded-model.md).  ``embedded-export`` copies
the final weights and what loads them into the shipped folder, and writes its model card (``README.md``) from the
run's evaluation numbers.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from regionreasoner.agent.cli_args import (
    existing_file,
    existing_folder,
    non_negative_int,
    number_above,
    output_folder,
    positive_int,
)
from regionreasoner.agent.cli_commands import Subcommand
from regionreasoner.core.errors import InputError
from regionreasoner.policies.checkpoint_files import read_config

__all__ = ["EMBEDDED_BASE", "EMBEDDED_EXPORT", "EMBEDDED_VISION", "export_checkpoint"]

_SHIPPED = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "preprocessor_config.json",
    "regionreasoner.json",
)
"""The files of a shipped checkpoint (weights, config, tokenizer, processor, frame and template declaration)."""

_PROCESSOR_CLASSES = {"qwen2_5_vl": "Qwen2_5_VLProcessor", "qwen3_vl": "Qwen3VLProcessor"}
"""``processor_config.json`` of the shipped folder, by model type (trainers save the processor's parts, not it)."""

MAX_WEIGHTS_BYTES = 25 * 1024 * 1024
"""The shipped weights' limit (25 MB)."""


def _base_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=output_folder, required=True, help="folder of the untrained checkpoint")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the random initialisation")
    parser.add_argument(
        "--family", choices=["qwen2.5-vl", "qwen3-vl"], default=None, help="architecture (default: the recipe's)"
    )
    parser.add_argument("--rope-theta", type=_rope_theta, default=None, help="rotary base of the language model")
    parser.add_argument(
        "--mrope-section",
        type=_section,
        default=None,
        help="rotary pairs per head for time,height,width (e.g. 8,12,12)",
    )
    parser.add_argument(
        "--max-image-tokens", type=positive_int, default=None, help="most merged 28x28 patches an image becomes"
    )


_rope_theta = number_above(1.0, "a rotary base")
"""A rotary base > 1 (argparse type)."""


def _section(text: str) -> tuple[int, int, int]:
    """``T,H,W``: three whole numbers >= 1."""
    parts = text.split(",")
    if len(parts) != 3 or not all(p.strip().isdigit() and int(p) >= 1 for p in parts):
        raise argparse.ArgumentTypeError(f"{text!r}: write three whole numbers >= 1 as T,H,W (e.g. 8,12,12)")
    t, h, w = (int(p) for p in parts)
    return t, h, w


def _base_run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from regionreasoner.trainers.embedded import EmbeddedSpec, build_base

    chosen = {
        "family": args.family,
        "rope_theta": args.rope_theta,
        "mrope_section": args.mrope_section,
        "max_image_tokens": args.max_image_tokens,
    }
    spec = replace(EmbeddedSpec(), **{k: v for k, v in chosen.items() if v is not None})  # ConfigError if unfit
    folder = build_base(args.out, spec, seed=args.seed)
    print(json.dumps({"base": str(folder)}))
    return 0


def _vision_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", type=existing_folder, required=True, help="an embedded base (changed in place)")
    parser.add_argument("--steps", type=positive_int, default=1500, help="optimiser steps")
    parser.add_argument("--batch", type=positive_int, default=16, help="scenes per step")
    parser.add_argument("--lr", type=_learning_rate, default=1e-3, help="peak learning rate (warm-up, then cosine)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the scene stream")
    parser.add_argument("--threads", type=positive_int, default=2, help="torch CPU threads")


_learning_rate = number_above(0.0, "a learning rate")
"""A learning rate > 0 (argparse type)."""


def _vision_run(args: argparse.Namespace) -> int:
    from regionreasoner.trainers.embedded_vision import VisionPretrainConfig, pretrain_vision

    config = VisionPretrainConfig(
        steps=args.steps, batch=args.batch, learning_rate=args.lr, seed=args.seed, threads=args.threads
    )
    base = Path(args.base)
    done = base / "vision-pretrain.json"
    if done.is_file():  # make model reruns every step: a pretrained tower is not pretrained twice
        print(done.read_text(encoding="utf-8").strip())
        return 0
    last = pretrain_vision(base, config, log=base / "vision-metrics.jsonl")
    done.write_text(json.dumps({"vision_pretrain": last}) + "\n", encoding="utf-8")
    print(json.dumps({"vision_pretrain": last}))
    return 0


def export_checkpoint(run: Path, out: Path, card: str) -> Path:
    """Copy the shipped files of checkpoint ``run`` into ``out`` (replaced) with ``card`` as its README.md.

    InputError when a file is missing or the weights exceed :data:`MAX_WEIGHTS_BYTES`.
    """
    missing = [name for name in _SHIPPED if not (run / name).is_file()]
    if missing:
        raise InputError(f"{run} lacks {missing}", hint="export the final folder of a finished embedded run")
    size = (run / "model.safetensors").stat().st_size
    if size > MAX_WEIGHTS_BYTES:
        raise InputError(f"{run}/model.safetensors is {size / 2**20:.1f} MiB", hint="ship at most 25 MB of weights")
    in_place = out.exists() and out.resolve() == run.resolve()  # re-exporting the shipped folder: the card only
    if not in_place:
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        for name in _SHIPPED:
            shutil.copyfile(run / name, out / name)
    model_type = read_config(run).get("model_type", "")
    processor = {"processor_class": _PROCESSOR_CLASSES.get(model_type, "Qwen2_5_VLProcessor")}
    (out / "processor_config.json").write_text(json.dumps(processor, indent=2), encoding="utf-8")
    (out / "README.md").write_text(card, encoding="utf-8")
    return out


def _export_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run", dest="checkpoint", type=existing_folder, required=True, help="the final checkpoint folder of the run"
    )
    parser.add_argument("--out", type=output_folder, required=True, help="the shipped folder (replaced)")
    parser.add_argument("--eval", type=existing_file, default=None, help="world.json of the held-out evaluation")
    parser.add_argument("--seconds", type=float, default=None, help="wall time of the whole recipe (for the card)")


def _export_run(args: argparse.Namespace) -> int:
    from regionreasoner.trainers.model_card import model_card

    evaluation = json.loads(Path(args.eval).read_text(encoding="utf-8")) if args.eval else None
    declaration = Path(args.checkpoint) / "regionreasoner.json"
    if args.seconds is not None and declaration.is_file():  # the recipe's wall time travels with the weights
        declared = json.loads(declaration.read_text(encoding="utf-8"))
        declared["recipe_seconds"] = round(args.seconds)
        declaration.write_text(json.dumps(declared, indent=2) + "\n", encoding="utf-8")
    card = model_card(Path(args.checkpoint), evaluation=evaluation)
    folder = export_checkpoint(Path(args.checkpoint), Path(args.out), card)
    print(json.dumps({"shipped": str(folder), "bytes": (folder / "model.safetensors").stat().st_size}))
    return 0


EMBEDDED_BASE = Subcommand("write the embedded model's untrained starting checkpoint", _base_args, _base_run)
EMBEDDED_VISION = Subcommand(
    "pretrain the embedded base's vision tower on the world's dense labels (in place)", _vision_args, _vision_run
)
EMBEDDED_EXPORT = Subcommand(
    "copy a trained embedded checkpoint into the package, with its model card", _export_args, _export_run
)
