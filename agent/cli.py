"""The ``regionreasoner`` command: demo, chat, generate, inpaint, serve, ui, ``db upgrade``, ``db current``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from regionreasoner.agent.cli_args import (
    OneLineParser,
    add_tool_arguments,
    check_memory_url,
    device_name,
    existing_file,
    output_folder,
    run_command,
)
from regionreasoner.agent.cli_generate import add_generate_commands
from regionreasoner.agent.cli_serve import add_serve_commands
from regionreasoner.core.errors import RegionReasonerError

__all__ = ["main"]


def _cmd_db(args: argparse.Namespace) -> int:
    from regionreasoner.memory.migrate import current, upgrade

    check_memory_url(args.url, "--url")
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
    from regionreasoner.agent.cli_chat import check_out_image, load_script, run_chat
    from regionreasoner.agent.context import DEFAULT_MODEL, load_policy
    from regionreasoner.policies.base import Policy
    from regionreasoner.policies.scripted import ScriptedPolicy

    # Everything the user typed is checked before the model loads (which can take minutes).
    out = Path(args.out) if args.out else Path(Path(args.image).stem + ".regions.png")
    check_out_image(out)
    script = load_script(Path(args.script)) if args.script else None
    check_memory_url(args.memory, "--memory")
    _quiet_transformers()
    policy: Policy
    if script is not None and script.turns is not None:
        policy = ScriptedPolicy(script.turns, frame=args.frame)
    else:
        policy = load_policy(args.model or os.environ.get("REGIONREASONER_MODEL") or DEFAULT_MODEL, frame=args.frame)
    tools = {"segmenter": args.segmenter, "detector": args.detector, "zoom": args.zoom, "generator": args.generator}
    # Tools need the model to speak the tool-call protocol; a scripted chat's turns are plain text.
    with RegionAgent(policy, memory=args.memory, **tools) as agent:
        outcome = run_chat(agent, args.image, script=script, out_image=out, dialogue_id=args.dialogue)
    if outcome.bugs:
        print(
            f"regionreasoner: {outcome.bugs} of {outcome.asked} turns failed with an unexpected error "
            "(a bug: see the tracebacks above)",
            file=sys.stderr,
        )
        return 1
    if outcome.failed:
        raise RegionReasonerError(f"{len(outcome.failed)} of {outcome.asked} turns failed: {outcome.failed[0]}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``regionreasoner`` command."""
    parser = OneLineParser(prog="regionreasoner", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the three-turn demo dialogue and write demo-output/")
    demo.add_argument(
        "--out",
        type=output_folder,
        default="demo-output",
        help="output folder, recreated (a previous demo output or an empty folder; default: demo-output)",
    )
    demo.add_argument(
        "--model",
        default=None,
        help="checkpoint folder or hub id (default: $REGIONREASONER_MODEL or tiny; 'embedded': the model trained here)",
    )
    demo.add_argument("--device", type=device_name, default=None, help="cpu or cuda (default: cuda when available)")
    demo.set_defaults(func=_cmd_demo)
    chat = sub.add_parser("chat", help="talk about an image, interactively or from a script")
    chat.add_argument("image", type=existing_file, help="the image (a path)")
    chat.add_argument(
        "--model",
        default=None,
        help="checkpoint folder or hub id (default: $REGIONREASONER_MODEL or tiny; 'embedded': the model trained here)",
    )
    chat.add_argument(
        "--script",
        type=existing_file,
        default=None,
        help="questions: a text file (one a line) or JSON with 'questions'"
        " and optionally 'turns' (scripted policy outputs)",
    )
    chat.add_argument("--frame", default=None, help="coordinate frame override, e.g. fixed:840x840")
    chat.add_argument("--memory", default=None, help="memory URL (default: the SQLite file in REGIONREASONER_HOME)")
    chat.add_argument("--dialogue", default=None, help="continue (or name) this dialogue id")
    chat.add_argument("--out", default=None, help="annotated image path (default: <image>.regions.png)")
    add_tool_arguments(chat)
    chat.set_defaults(func=_cmd_chat)
    add_generate_commands(sub)
    add_serve_commands(sub)
    db = sub.add_parser("db", help="region-memory database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    for name, text in [("upgrade", "apply migrations up to the newest"), ("current", "print the applied revision")]:
        p = db_sub.add_parser(name, help=text)
        p.add_argument("--url", default=None, help="database URL (default: the SQLite file in REGIONREASONER_HOME)")
    db.set_defaults(func=_cmd_db)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status: 2 with a one-line message for a user's mistake, 1 for a bug."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0), or a usage error (2) whose one line is printed
        return int(exc.code or 0)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    return run_command("regionreasoner", args.func, args)


if __name__ == "__main__":
    raise SystemExit(main())
