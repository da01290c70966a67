"""``regionreasoner-train data``: build training data (official JSON + a saved ``datasets.Dataset``).

    regionreasoner-train data --from {synthetic,visionreasoner,regionreasoner} [--input PATH] [--images DIR]
        --out DIR [--mode official|multiturn] [--frame fixed:840x840] [--count N] [--seed S] [--no-dataset]

Writes ``DIR/images/``, ``DIR/train.json`` and ``DIR/dataset/`` (``Dataset.save_to_disk``), with a progress bar on
stderr, then prints one JSON line (counts and paths) on stdout.
"""

from __future__ import annotations

import argparse
import json

from regionreasoner.agent.cli_args import (
    existing_file,
    existing_folder,
    make_folder,
    non_negative_int,
    output_folder,
    positive_int,
)
from regionreasoner.agent.cli_commands import Subcommand

__all__ = ["DATA"]

_SOURCES = ("synthetic", "visionreasoner", "regionreasoner")
_MODES = ("official", "multiturn")


def _data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from",
        dest="source",
        choices=_SOURCES,
        required=True,
        help="synthetic world, VisionReasoner-style samples, or RegionReasoner's train JSON",
    )
    parser.add_argument("--input", type=existing_file, default=None, help="the samples (.json or .jsonl)")
    parser.add_argument(
        "--images", type=existing_folder, default=None, help="folder the samples' image paths are relative to"
    )
    parser.add_argument("--out", type=output_folder, required=True, help="output folder (created if missing)")
    parser.add_argument(
        "--mode",
        choices=_MODES,
        default="official",
        help="official: each round alone, reference box in the question; multiturn: earlier rounds as history",
    )
    parser.add_argument(
        "--frame", default="fixed:840x840", help="the policy's coordinate frame (default fixed:840x840, the paper's)"
    )
    parser.add_argument(
        "--count", type=positive_int, default=None, help="dialogues (synthetic: default 100; files: the first N)"
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed of the synthetic world")
    parser.add_argument("--no-dataset", action="store_true", help="write the official JSON and images only")


def _data_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from regionreasoner.core.frames import frame_from_spec
    from regionreasoner.trainers.data import build_training_set

    frame = frame_from_spec(args.frame)
    out = make_folder(args.out, "--out")
    training_set = build_training_set(
        args.source,
        args.mode,
        input_path=args.input,
        images_dir=args.images,
        frame=frame,
        count=args.count,
        seed=args.seed,
    )
    with tqdm(total=len(training_set.records), unit="round", desc="writing images") as bar:
        saved = training_set.save(out, dataset=not args.no_dataset, progress=bar.update)
    summary = {
        "source": args.source,
        "mode": args.mode,
        "frame": frame.spec,
        "dialogues": saved.dialogues,
        "records": saved.records,
        "official_json": str(saved.official_json),
        "dataset": None if saved.dataset is None else str(saved.dataset),
    }
    print(json.dumps(summary))
    return 0


DATA = Subcommand("build training data: official JSON and a datasets.Dataset", _data_args, _data_run)
