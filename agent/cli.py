"""The ``regionreasoner`` command: ``demo``, ``db upgrade``, ``db current``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from regionreasoner.core.errors import RegionReasonerError

__all__ = ["main"]


def _cmd_db(args: argparse.Namespace) -> int:
    from regionreasoner.memory.migrate import current, upgrade

    if args.db_command == "upgrade":
        revision = upgrade(args.url)
        print(json.dumps({"url": args.url or "default", "revision": revision}))
    else:
        print(json.dumps({"url": args.url or "default", "revision": current(args.url)}))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from regionreasoner.agent.walkthrough import run_walkthrough

    out = Path(args.out)
    result = run_walkthrough(out)
    print("regionreasoner demo: a parse-and-store walk-through (scripted policy outputs, no model yet)")
    for turn in result.turns:
        print(f"\nturn {turn.index + 1}: {turn.question}")
        print(f"  policy saw : {turn.rendered_question}")
        print(f"  status     : {turn.status.value}; citations verified: {[c.verified for c in turn.citations]}")
        for r in turn.regions:
            print(f"  {r.id:<4} box={[round(v, 1) for v in r.box]} point={[round(v, 1) for v in r.point or ()]}")
    print("\nwrote:", *(str(p) for p in result.files), sep="\n  ")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``regionreasoner`` command."""
    parser = argparse.ArgumentParser(prog="regionreasoner", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the demo dialogue and write demo-output/")
    demo.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    demo.set_defaults(func=_cmd_demo)
    db = sub.add_parser("db", help="region-memory database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    for name, text in [("upgrade", "apply migrations up to the newest"), ("current", "print the applied revision")]:
        p = db_sub.add_parser(name, help=text)
        p.add_argument("--url", default=None, help="database URL (default: the SQLite file in REGIONREASONER_HOME)")
    db.set_defaults(func=_cmd_db)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status (2 with a one-line message on a RegionReasonerError)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args))
    except RegionReasonerError as exc:
        print(f"regionreasoner: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
