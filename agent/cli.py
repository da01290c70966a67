"""The ``regionreasoner`` command: ``demo``, ``chat``, ``db upgrade``, ``db current``."""

from __future__ import annotations

import argparse
import json
import logging
import os
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


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def _cmd_demo(args: argparse.Namespace) -> int:
    from regionreasoner.agent.cli_demo import run_demo

    _quiet_transformers()
    run_demo(Path(args.out), model=args.model, device=args.device)
    return 0


def _cmd_chat(args: argparse.Namespace) -> int:
    from regionreasoner.agent.api import RegionAgent
    from regionreasoner.agent.cli_chat import load_script, run_chat
    from regionreasoner.agent.context import load_policy
    from regionreasoner.policies.base import Policy
    from regionreasoner.policies.scripted import ScriptedPolicy

    _quiet_transformers()
    script = load_script(Path(args.script)) if args.script else None
    policy: Policy
    if script is not None and script.turns is not None:
        policy = ScriptedPolicy(script.turns, frame=args.frame)
    else:
        policy = load_policy(args.model or os.environ.get("REGIONREASONER_MODEL") or "tiny", frame=args.frame)
    out = Path(args.out) if args.out else Path(Path(args.image).stem + ".regions.png")
    with RegionAgent(policy, memory=args.memory) as agent:
        run_chat(agent, args.image, script=script, out_image=out, dialogue_id=args.dialogue)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``regionreasoner`` command."""
    parser = argparse.ArgumentParser(prog="regionreasoner", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the three-turn demo dialogue and write demo-output/")
    demo.add_argument("--out", default="demo-output", help="output folder, recreated (default: demo-output)")
    demo.add_argument(
        "--model", default=None, help="checkpoint folder or hub id (default: $REGIONREASONER_MODEL or tiny)"
    )
    demo.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    demo.set_defaults(func=_cmd_demo)
    chat = sub.add_parser("chat", help="talk about an image, interactively or from a script")
    chat.add_argument("image", help="the image (a path)")
    chat.add_argument(
        "--model", default=None, help="checkpoint folder or hub id (default: $REGIONREASONER_MODEL or tiny)"
    )
    chat.add_argument(
        "--script",
        default=None,
        help="questions: a text file (one a line) or JSON with 'questions'"
        " and optionally 'turns' (scripted policy outputs)",
    )
    chat.add_argument("--frame", default=None, help="coordinate frame override, e.g. fixed:840x840")
    chat.add_argument("--memory", default=None, help="memory URL (default: the SQLite file in REGIONREASONER_HOME)")
    chat.add_argument("--dialogue", default=None, help="continue (or name) this dialogue id")
    chat.add_argument("--out", default=None, help="annotated image path (default: <image>.regions.png)")
    chat.set_defaults(func=_cmd_chat)
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
