"""The ``regionreasoner-eval`` command: ``stats``, ``synthetic``, ``report``, ``regiondial``, ``refcoco``.

Subcommands live in the :data:`SUBCOMMANDS` dict: the benchmark runs (``regiondial``, ``refcoco``) come from
:mod:`~regionreasoner.evals.cli_run`, and more are added with :func:`register`, without touching the parser code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from regionreasoner.agent.cli_args import (
    existing_file,
    make_folder,
    non_negative_int,
    output_folder,
    positive_int,
    utf8_input,
)
from regionreasoner.agent.cli_commands import build_subcommand_parser, run_subcommands
from regionreasoner.agent.cli_commands import register as _register
from regionreasoner.evals.cli_run import REFCOCO, REGIONDIAL
from regionreasoner.evals.subcommand import Subcommand

__all__ = ["SUBCOMMANDS", "Subcommand", "build_parser", "main", "register"]


# ------------------------------------------------------------------------------------------------ stats


def _stats_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=existing_file, help="a RegionDial-Bench JSON file")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="refuse turns citing themselves or a later turn and items without image_path (the runner's checks)",
    )


def _stats_run(args: argparse.Namespace) -> int:
    from regionreasoner.evals.regiondial import load_regiondial, regiondial_stats

    with utf8_input(args.file, "the benchmark file"):
        dialogues = load_regiondial(args.file, allow_forward_context=not args.strict, require_image_path=args.strict)
    print(json.dumps(regiondial_stats(dialogues)))
    return 0


# ------------------------------------------------------------------------------------------------ synthetic


def _synthetic_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=output_folder, required=True, help="output folder (images/, synthetic.json, scenes.json)"
    )
    parser.add_argument(
        "--images", type=positive_int, default=100, help="number of images, one dialogue each (default 100)"
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--width", type=positive_int, default=320, help="image width in pixels (default 320)")
    parser.add_argument("--height", type=positive_int, default=240, help="image height in pixels (default 240)")
    parser.add_argument("--min-rounds", type=positive_int, default=2, help="fewest turns per dialogue (default 2)")
    parser.add_argument("--max-rounds", type=positive_int, default=5, help="most turns per dialogue (default 5)")


def _synthetic_run(args: argparse.Namespace) -> int:
    from regionreasoner.evals.regiondial import load_regiondial, regiondial_stats
    from regionreasoner.evals.synthetic import generate_benchmark

    path = generate_benchmark(
        make_folder(args.out, "--out"),
        args.images,
        args.seed,
        size=(args.width, args.height),
        rounds=(args.min_rounds, args.max_rounds),
    )
    stats = regiondial_stats(load_regiondial(path))
    print(json.dumps({"path": str(path), **stats}))
    return 0


# ------------------------------------------------------------------------------------------------ report


def _report_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "results", type=existing_file, help="JSON-lines file of TurnResult records written by a benchmark run"
    )
    parser.add_argument(
        "--out", type=output_folder, required=True, help="folder for summary.json, summary.md and rounds.png"
    )


def _report_run(args: argparse.Namespace) -> int:
    from regionreasoner.evals.report import report_from_results

    out = make_folder(args.out, "--out")
    with utf8_input(args.results, "the results file"):
        summary, paths = report_from_results(args.results, out)
    avg = summary.avg
    print(
        json.dumps(
            {
                "turns": avg.count,
                "acc50": avg.acc50,
                "giou": avg.giou,
                "ciou": avg.ciou,
                "files": [str(p) for p in paths],
            }
        )
    )
    return 0


SUBCOMMANDS: dict[str, Subcommand] = {
    "stats": Subcommand("print counts of a RegionDial-Bench file as JSON", _stats_args, _stats_run),
    "synthetic": Subcommand("write the synthetic shapes benchmark", _synthetic_args, _synthetic_run),
    "report": Subcommand("summarise a results .jsonl into JSON, Markdown and a plot", _report_args, _report_run),
    "regiondial": REGIONDIAL,
    "refcoco": REFCOCO,
}
"""Subcommands by name; more are added with :func:`register`."""


def register(name: str, subcommand: Subcommand) -> None:
    """Add a subcommand under ``name``; a different one already registered under that name is an error."""
    _register(SUBCOMMANDS, name, subcommand)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``regionreasoner-eval`` with every registered subcommand."""
    return build_subcommand_parser("regionreasoner-eval", __doc__, SUBCOMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``regionreasoner-eval``; exit code 2 (one line) for a user's mistake, 1 for a bug."""
    return run_subcommands("regionreasoner-eval", __doc__, SUBCOMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
