"""``regionreasoner-train grpo|sft|plot``: training runs from a preset YAML and flags, and the plot of a run.

    regionreasoner-train grpo --config tiny [--max-steps N ...every GRPORunConfig field as a flag...]
    regionreasoner-train sft  --config tiny-sft [...every SFTRunConfig field...]
    regionreasoner-train plot RUN_DIR [--out metrics.png]

A run resumes from its last checkpoint in ``--output-dir`` (``--no-resume`` starts over), writes the final weights
to ``OUTPUT_DIR/final`` and prints one JSON line (steps, folders).
"""

from __future__ import annotations

import argparse
import json

from regionreasoner.agent.cli_commands import Subcommand
from regionreasoner.trainers.config import GRPORunConfig, SFTRunConfig, add_config_arguments, config_from_args
from regionreasoner.trainers.runs import TrainRun

__all__ = ["GRPO", "PLOT", "SFT"]


def _run_args(parser: argparse.ArgumentParser, cls: type) -> None:
    add_config_arguments(parser, cls)
    parser.add_argument("--no-resume", action="store_true", help="start over even when the run has checkpoints")


def _grpo(args: argparse.Namespace) -> int:
    from regionreasoner.trainers.grpo import train_grpo

    run = train_grpo(config_from_args(GRPORunConfig, args), resume=not args.no_resume)
    print(json.dumps(_summary(run)))
    return 0


def _sft(args: argparse.Namespace) -> int:
    from regionreasoner.trainers.sft import train_sft

    run = train_sft(config_from_args(SFTRunConfig, args), resume=not args.no_resume)
    print(json.dumps(_summary(run)))
    return 0


def _summary(run: TrainRun) -> dict[str, object]:
    return {
        "steps": run.steps,
        "final": str(run.final),
        "metrics": str(run.metrics),
        "resumed_from": str(run.resumed_from) if run.resumed_from else None,
    }


def _plot_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN", help="a run folder (holding metrics.jsonl) or a metrics.jsonl file")
    parser.add_argument("--out", default=None, help="PNG path (default: RUN/metrics.png)")


def _plot(args: argparse.Namespace) -> int:
    from regionreasoner.trainers.metrics_log import plot_metrics

    print(json.dumps({"plot": str(plot_metrics(args.run_dir, args.out))}))
    return 0


GRPO = Subcommand(
    "GRPO with TRL (rollouts: generate, vLLM or the agent's graph)", lambda p: _run_args(p, GRPORunConfig), _grpo
)
SFT = Subcommand(
    "supervised fine-tuning on ground-truth traces (TRL SFTTrainer)", lambda p: _run_args(p, SFTRunConfig), _sft
)
PLOT = Subcommand("plot a run's metrics (loss, rewards, KL, lengths) to a PNG", _plot_args, _plot)
