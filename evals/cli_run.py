"""``regionreasoner-eval regiondial`` and ``regionreasoner-eval refcoco``: run a benchmark through the agent.

Writes into ``--out``: ``results.jsonl`` (one line per scored turn; rerunning resumes), the run's region memory and
checkpoints, and ``summary.json`` / ``summary.md`` / ``rounds.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regionreasoner.agent.cli_args import (
    existing_file,
    existing_folder,
    make_folder,
    output_folder,
    positive_int,
    utf8_input,
)
from regionreasoner.evals.subcommand import Subcommand

if TYPE_CHECKING:
    from regionreasoner.evals.runner import Protocol, RunStats

__all__ = ["REFCOCO", "REGIONDIAL", "add_model_arguments", "add_run_arguments", "run_items"]


def add_model_arguments(parser: argparse.ArgumentParser, *, model_help: str | None = None) -> None:
    """The options that pick the model and drive the agent (every run's, the synthetic world's included)."""
    parser.add_argument(
        "--model",
        default=None,
        help=model_help or "checkpoint folder or hub id (default: $REGIONREASONER_MODEL or tiny)",
    )
    parser.add_argument("--backend", choices=["transformers", "vllm"], default="transformers")
    parser.add_argument("--frame", default=None, help="coordinate frame override, e.g. fixed:840x840")
    parser.add_argument("--workers", type=positive_int, default=1, help="dialogues in flight; their calls are batched")
    parser.add_argument("--max-new-tokens", type=positive_int, default=2048)
    parser.add_argument("--max-objects", type=positive_int, default=8)
    parser.add_argument(
        "--section-chars", type=positive_int, default=None, help="character limit of every free-text section"
    )
    parser.add_argument(
        "--segmenter",
        default=None,
        help="SAM2 checkpoint (folder or hub id): answers become SAM2 masks and gIoU/cIoU score them "
        "(default: box masks)",
    )


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared by the benchmark runs."""
    parser.add_argument(
        "--data", type=existing_file, required=True, help="benchmark file (JSON; RefCOCO also JSON lines)"
    )
    parser.add_argument(
        "--images",
        type=existing_folder,
        default=None,
        help="image folder the items' paths are relative to (default: the data file's folder)",
    )
    parser.add_argument(
        "--out", type=output_folder, required=True, help="output folder (results.jsonl, memory, summary, plot)"
    )
    add_model_arguments(parser)
    parser.add_argument(
        "--protocol",
        choices=["regionreasoner", "official"],
        default="regionreasoner",
        help="how a cited box enters the question and an answer becomes boxes (docs/evaluation.md); "
        "'official' also decodes freely",
    )
    parser.add_argument("--limit", type=positive_int, default=None, help="only the first N items")


def _agent(args: argparse.Namespace, out: Path, protocol: Protocol) -> Any:
    from regionreasoner.agent.api import RegionAgent
    from regionreasoner.agent.context import DEFAULT_MODEL, is_untrained, load_policy, untrained_warning
    from regionreasoner.policies.base import Policy
    from regionreasoner.policies.batching import BatchingPolicy

    model = args.model or os.environ.get("REGIONREASONER_MODEL") or DEFAULT_MODEL
    policy: Policy
    if args.backend == "vllm":
        from regionreasoner.policies.embedded import resolve_model
        from regionreasoner.policies.vllm_policy import VLLMPolicy, configure_vllm_environment

        configure_vllm_environment()  # vLLM's process settings (usage stats off; CPU defaults on CPU machines)

        path = resolve_model(model)
        policy = VLLMPolicy(path, frame=args.frame, max_num_seqs=max(8, args.workers))
        if is_untrained(str(path)):
            logging.getLogger(__name__).warning(untrained_warning(model))
    else:
        policy = load_policy(model, frame=args.frame)
    if args.workers > 1:
        policy = BatchingPolicy(policy, max_batch=args.workers)
    context: dict[str, Any] = {
        "max_new_tokens": args.max_new_tokens,
        "max_objects": args.max_objects,
        "constrained": protocol != "official",
        "answer_protocol": protocol,
    }
    if args.section_chars:
        context["char_limits"] = {t: args.section_chars for t in ("scene", "focus", "think")}
    return RegionAgent(policy, memory=f"sqlite:///{out}/memory.db", segmenter=args.segmenter, **context)


def run_items(
    args: argparse.Namespace, items: list[Any], *, out: Path, images: Path, name: str, protocol: Protocol
) -> RunStats:
    """Run ``items`` through an agent built from the :func:`add_model_arguments` options into ``out``.

    ``out`` receives ``results.jsonl`` and the run's memory; a progress bar goes to stderr.
    """
    from transformers.utils import logging as hf_logging

    from regionreasoner.evals.runner import run_benchmark

    hf_logging.disable_progress_bar()
    total = sum(len(i.turns) for i in items)
    from tqdm import tqdm  # a dependency of transformers

    agent = _agent(args, out, protocol)  # before the progress bar: a loading error is then the only line on stderr
    bar = tqdm(total=total, desc=name, unit="turn", file=sys.stderr)

    def tick(_: Any) -> None:
        bar.update(1)

    try:
        return run_benchmark(
            agent,
            items,
            images=images,
            results=out / "results.jsonl",
            name=name,
            protocol=protocol,
            workers=args.workers,
            progress=tick,
        )
    finally:
        bar.close()
        agent.close()


def _run(args: argparse.Namespace, items: list[Any], name: str, title: str) -> int:
    from regionreasoner.evals.report import report_from_results

    out = make_folder(args.out, "--out")
    items = items[: args.limit] if args.limit else items
    images = Path(args.images) if args.images else Path(args.data).resolve().parent
    stats = run_items(args, items, out=out, images=images, name=name, protocol=args.protocol)
    summary, paths = report_from_results(out / "results.jsonl", out, title=title)
    avg = summary.avg
    print(
        json.dumps(
            {
                "turns": avg.count,
                "scored_now": stats.scored,
                "skipped": stats.skipped,
                "acc50": avg.acc50,
                "giou": avg.giou,
                "ciou": avg.ciou,
                "seconds": round(stats.seconds, 1),
                "files": [str(p) for p in paths],
            }
        )
    )
    return 0


def _regiondial_args(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)
    parser.add_argument(
        "--image-path-template",
        default=None,
        help="for items without image_path, e.g. 'refcocog_test_multi_bbox_images/{image_id}.jpg'",
    )
    parser.add_argument(
        "--allow-forward-context",
        action="store_true",
        help="keep turns citing themselves or a later turn (filled with that turn's GT box)",
    )


def _regiondial_run(args: argparse.Namespace) -> int:
    from regionreasoner.evals.regiondial import load_regiondial

    with utf8_input(args.data, "the --data file"):
        items = load_regiondial(
            args.data, allow_forward_context=args.allow_forward_context, image_path_template=args.image_path_template
        )
    return _run(args, items, "regiondial", f"{Path(args.data).stem} ({args.protocol} protocol)")


def _refcoco_run(args: argparse.Namespace) -> int:
    from regionreasoner.evals.refcoco import load_refcoco

    with utf8_input(args.data, "the --data file"):
        items = load_refcoco(args.data)
    return _run(args, items, "refcoco", f"{Path(args.data).stem} (single turn)")


REGIONDIAL = Subcommand(
    "run RegionDial-Bench (or the synthetic benchmark) through the agent", _regiondial_args, _regiondial_run
)
"""``regionreasoner-eval regiondial``."""

REFCOCO = Subcommand("run single-turn RefCOCO/+/g records through the agent", add_run_arguments, _refcoco_run)
"""``regionreasoner-eval refcoco``."""
