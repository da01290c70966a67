r"""``regionreasoner-train generator``: the generator recipe (tokenizer, MAGVIT-v2, NeoBabel, export), resumable.

    regionreasoner-train generator --config generator                     # every stage (make generator)
    regionreasoner-train generator --config generator --stage vq          # one stage
    regionreasoner-train generator --config generator --stage export \\
        --geneval runs/generator/geneval/summary.json --measured m.json --seconds 1800   # re-write with numbers

Every stage skips when its ``final/`` exists and resumes from its newest checkpoint otherwise (``--no-resume``
deletes the run folder first).  Prints one JSON line with the folders.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from regionreasoner.agent.cli_args import existing_file
from regionreasoner.agent.cli_commands import Subcommand
from regionreasoner.trainers.generator_config import STAGES, add_generator_arguments, generator_config_from_args

__all__ = ["GENERATOR"]


def _args(parser: argparse.ArgumentParser) -> None:
    add_generator_arguments(parser)
    parser.add_argument("--stage", choices=["all", *STAGES], default="all", help="which stage to run (default all)")
    parser.add_argument("--no-resume", action="store_true", help="delete the run folder and start over")
    parser.add_argument("--geneval", type=existing_file, default=None, help="summary.json for the model card")
    parser.add_argument("--measured", type=existing_file, default=None, help="JSON of other numbers for the card")
    parser.add_argument("--seconds", type=float, default=None, help="wall time of the whole recipe (for the card)")
    parser.add_argument("--docs", type=Path, default=None, help="export: copy the stages' logs and plots here too")


def _run(args: argparse.Namespace) -> int:
    import logging

    from regionreasoner.trainers.generator_export import export_generator
    from regionreasoner.trainers.generator_train import train_lm, train_tokenizer, train_vq

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = generator_config_from_args(args)
    run = Path(cfg.output_dir)
    if args.no_resume and run.exists():
        shutil.rmtree(run)
    start = time.perf_counter()
    wanted = STAGES if args.stage == "all" else (args.stage,)
    out: dict[str, object] = {}
    tokenizer = train_tokenizer(cfg) if "tokenizer" in wanted or "lm" in wanted else run / "tokenizer"
    out["tokenizer"] = str(tokenizer)
    vq = train_vq(cfg) if "vq" in wanted else run / "vq" / "final"
    out["vq"] = str(vq)
    lm = train_lm(cfg, vq, tokenizer) if "lm" in wanted else run / "lm" / "final"
    out["lm"] = str(lm)
    if "export" in wanted:
        for stage in ("vq", "lm") if args.docs else ():  # the logs and plots travel with the docs
            args.docs.mkdir(parents=True, exist_ok=True)
            for name in ("metrics.jsonl", "metrics.png"):
                if (run / stage / name).is_file():
                    shutil.copyfile(run / stage / name, args.docs / f"{stage}-{name}")
        geneval = json.loads(Path(args.geneval).read_text(encoding="utf-8")) if args.geneval else None
        measured = json.loads(Path(args.measured).read_text(encoding="utf-8")) if args.measured else None
        # Without --seconds, a run of every stage reports its own wall time (a resumed one undercounts).
        took = args.seconds if args.seconds is not None or args.stage != "all" else time.perf_counter() - start
        folder = export_generator(cfg, lm, vq, geneval=geneval, measured=measured, seconds=took)
        out["generator"] = str(folder)
        out["bytes"] = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    out["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(out))  # noqa: T201 - the command's one JSON line
    return 0


GENERATOR = Subcommand(
    "train the tiny NeoBabel + MAGVIT-v2 generator on the synthetic world and export it", _args, _run
)
