"""The ``regionreasoner-eval`` command: RegionDial-Bench, the synthetic benchmark, and the generation suite.

Subcommands: ``stats``, ``synthetic``, ``report``, ``regiondial``, ``refcoco``, ``geneval``, ``dpg``, ``clc``,
``css``.  They live in the :data:`SUBCOMMANDS` dict: the benchmark runs (``regiondial``, ``refcoco``) come from
:mod:`~regionreasoner.evals.cli_run`, the generation suite from :mod:`~regionreasoner.evals.generation.cli`, and
more are added with :func:`register`, without touching the parser code.
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
from regionreasoner.core.errors import ConfigError
from regionreasoner.evals.cli_run import REFCOCO, REGIONDIAL
from regionreasoner.evals.generation.cli import CLC, CSS, DPG, GENEVAL
from regionreasoner.evals.subcommand import Subcommand

__all__ = ["SUBCOMMANDS", "Subcommand", "build_parser", "main", "margin_rate", "register", "round_range"]


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


def round_range(text: str) -> tuple[int, int]:
    """``"1-5"``, ``"1..5"`` or ``"3"``: the fewest and most turns per dialogue, 1 <= min <= max <= 12."""
    parts = text.replace("..", "-").split("-")
    try:
        lo, hi = (int(parts[0]), int(parts[-1])) if len(parts) in (1, 2) else (0, 0)
    except ValueError:
        lo = hi = 0
    if not 1 <= lo <= hi <= 12:
        raise argparse.ArgumentTypeError(f"{text!r} is not a range of rounds: write MIN-MAX with 1 <= MIN <= MAX <= 12")
    return lo, hi


def margin_rate(text: str) -> float:
    """A rate in [0, 1), e.g. ``0.02`` for two points."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: use a rate between 0 and 1, e.g. 0.02 for two points")
    return value


def _synthetic_args(parser: argparse.ArgumentParser) -> None:
    from regionreasoner.core.world import DIALOGUE_LANGUAGES
    from regionreasoner.evals.cli_run import add_model_arguments

    parser.add_argument(
        "--out",
        type=output_folder,
        required=True,
        help="output folder: images/, synthetic.json, scenes.json; with --model bench/, run/ and world.{json,md}, "
        "world_rounds.png",
    )
    parser.add_argument(
        "--n-dialogues",
        "--images",
        dest="n_dialogues",
        type=positive_int,
        default=None,
        help="number of images, one dialogue each (default 100; 500 with --model)",
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    parser.add_argument("--width", type=positive_int, default=320, help="image width in pixels (default 320)")
    parser.add_argument("--height", type=positive_int, default=240, help="image height in pixels (default 240)")
    parser.add_argument(
        "--rounds", type=round_range, default=None, help="turns per dialogue, MIN-MAX (default 2-5; 1-5 with --model)"
    )
    parser.add_argument("--min-rounds", type=positive_int, default=None, help="fewest turns per dialogue")
    parser.add_argument("--max-rounds", type=positive_int, default=None, help="most turns per dialogue")
    parser.add_argument(
        "--language",
        choices=DIALOGUE_LANGUAGES,
        default=None,
        help="language of the questions; 'mix' code-switches, 'any' draws each turn (default en; any with --model)",
    )
    parser.add_argument(
        "--check-goals",
        type=margin_rate,
        default=None,
        metavar="MARGIN",
        help="with --model: exit 3 and print the goals missed (WorldGoals, each loosened by MARGIN)",
    )
    add_model_arguments(
        parser,
        model_help="checkpoint folder, hub id or 'tiny': run the benchmark and score it (default: only write it)",
    )


def _rounds(args: argparse.Namespace, default: tuple[int, int]) -> tuple[int, int]:
    if args.rounds is not None:
        if args.min_rounds is not None or args.max_rounds is not None:
            raise ConfigError("--rounds and --min-rounds/--max-rounds both given", hint="pass --rounds MIN-MAX alone")
        lo, hi = args.rounds
        return int(lo), int(hi)
    return (args.min_rounds or default[0], args.max_rounds or default[1])


def _synthetic_run(args: argparse.Namespace) -> int:
    from regionreasoner.evals.regiondial import load_regiondial, regiondial_stats
    from regionreasoner.evals.synthetic import generate_benchmark

    if args.model is None:
        if args.check_goals is not None:
            raise ConfigError("--check-goals needs --model", hint="pass --model M to run and score the benchmark")
        path = generate_benchmark(
            make_folder(args.out, "--out"),
            args.n_dialogues or 100,
            args.seed,
            size=(args.width, args.height),
            rounds=_rounds(args, (2, 5)),
            language=args.language or "en",
        )
        stats = regiondial_stats(load_regiondial(path))
        print(json.dumps({"path": str(path), **stats}))
        return 0
    return _world_run(args)


def _world_run(args: argparse.Namespace) -> int:
    """Write the benchmark into OUT/bench, run it into OUT/run, score it into OUT/world.*; print the tables."""
    from regionreasoner.evals.cli_run import run_items
    from regionreasoner.evals.regiondial import load_regiondial
    from regionreasoner.evals.report import report_from_results
    from regionreasoner.evals.synthetic import generate_benchmark
    from regionreasoner.evals.world_report import check_goals, report_world, world_tables

    out = make_folder(args.out, "--out")
    n, language, rounds = args.n_dialogues or 500, args.language or "any", _rounds(args, (1, 5))
    bench = generate_benchmark(
        out / "bench", n, args.seed, size=(args.width, args.height), rounds=rounds, language=language
    )
    run = make_folder(out / "run", "--out")
    stats = run_items(
        args, load_regiondial(bench), out=run, images=bench.parent, name="synthetic", protocol="regionreasoner"
    )
    title = f"Synthetic world: {n} dialogues, rounds {rounds[0]}-{rounds[1]}, language {language}, seed {args.seed}"
    report_from_results(run / "results.jsonl", run, title=title)
    summary, paths = report_world(bench.parent, run / "results.jsonl", out, title=title)
    print(world_tables(summary))
    row = summary.all
    print(
        json.dumps(
            {
                "turns": row.turns,
                "scored_now": stats.scored,
                "acc50": row.acc50,
                "parse_rate": row.parse_rate,
                "citation_rate": row.citation_rate,
                "scene_precision": row.scene_precision,
                "seconds": round(stats.seconds, 1),
                "files": [str(p) for p in paths],
            }
        )
    )
    if args.check_goals is None:
        return 0
    failed = check_goals(summary, margin=args.check_goals)
    for sentence in failed:
        print(f"regionreasoner-eval synthetic: goal missed: {sentence}", file=sys.stderr)
    return 3 if failed else 0


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
    "synthetic": Subcommand(
        "write the synthetic shapes benchmark; with --model also run it and score it per round and language",
        _synthetic_args,
        _synthetic_run,
    ),
    "report": Subcommand("summarise a results .jsonl into JSON, Markdown and a plot", _report_args, _report_run),
    "regiondial": REGIONDIAL,
    "refcoco": REFCOCO,
    "geneval": GENEVAL,
    "dpg": DPG,
    "clc": CLC,
    "css": CSS,
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
