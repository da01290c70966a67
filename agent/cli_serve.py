"""``regionreasoner serve`` (the HTTP server) and ``regionreasoner ui`` (the same server with the web page, local).

Both build one agent per process (a policy: a checkpoint, an OpenAI-compatible server such as ``vllm serve``, or
a script; a memory URL; optional tools) and run it under uvicorn.  Scale-out is more processes of this command on
one Postgres memory and one model server, behind any load balancer (docs/serving.md).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from regionreasoner.agent.cli_args import check_memory_url, existing_file, existing_folder, number_above, positive_int
from regionreasoner.core.errors import ConfigError, InputError

__all__ = ["add_serve_commands"]

logger = logging.getLogger(__name__)


_seconds = number_above(0.0, "a number of seconds")
"""A number of seconds > 0 (argparse type)."""


def _common(parser: argparse.ArgumentParser, *, port: int) -> None:
    model = parser.add_mutually_exclusive_group()
    model.add_argument("--model", default=None, help="checkpoint folder or hub id, 'tiny' or 'embedded'")
    model.add_argument(
        "--scripted",
        type=existing_file,
        default=None,
        help="a JSON list of assistant messages served in a loop (ScriptedPolicy: load tests, app integration tests)",
    )
    parser.add_argument(
        "--openai-url",
        default=None,
        help="an OpenAI-compatible server (vllm serve) to run --model on, e.g. http://127.0.0.1:8000",
    )
    parser.add_argument("--tokenizer", default=None, help="with --openai-url: the model's tokenizer folder")
    parser.add_argument("--memory", default=None, help="memory URL: sqlite:///file.db or postgresql://... (shared)")
    parser.add_argument(
        "--image-dir",
        default=None,
        help="folder of the image store (default: beside a SQLite memory, else REGIONREASONER_HOME/images); "
        "servers sharing one Postgres must share this folder too",
    )
    parser.add_argument("--checkpoints", default=None, help="checkpointer: a SQLite path or Postgres URL")
    parser.add_argument("--generator", default=None, help="a NeoBabel generator folder for inpaint/generate ('tiny')")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=positive_int, default=port, help=f"port (default {port})")
    parser.add_argument(
        "--image-root", type=existing_folder, action="append", default=[], help="folder image paths may name"
    )
    parser.add_argument("--max-concurrent", type=positive_int, default=4, help="turns running at once (default 4)")
    parser.add_argument("--max-queue", type=int, default=16, help="turns waiting beyond those before 429 (default 16)")
    parser.add_argument("--queue-timeout", type=_seconds, default=30.0, help="longest wait for a slot, s (default 30)")
    parser.add_argument("--turn-timeout", type=_seconds, default=300.0, help="longest a request waits, s (default 300)")
    parser.add_argument("--max-body-mb", type=positive_int, default=16, help="largest request body, MiB (default 16)")
    parser.add_argument(
        "--otlp-endpoint", default=None, help="OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces"
    )


def add_serve_commands(sub: argparse._SubParsersAction[Any]) -> None:
    """Add ``serve`` and ``ui`` to the ``regionreasoner`` command."""
    serve = sub.add_parser("serve", help="the HTTP server (OpenAPI at /docs)")
    _common(serve, port=8300)
    serve.add_argument("--token-file", type=existing_file, default=None, help="bearer tokens, one 'name=token' a line")
    serve.add_argument("--no-auth", action="store_true", help="serve without tokens (loopback addresses only)")
    serve.add_argument("--cors-origin", action="append", default=[], help="an allowed CORS origin (default: none)")
    serve.add_argument("--ui", action="store_true", help="also serve the web page at /ui")
    serve.add_argument(
        "--grace", type=_seconds, default=30.0, help="shutdown waits this long for turns, s (default 30)"
    )
    serve.set_defaults(func=_cmd_serve, page=False)
    ui = sub.add_parser("ui", help="the web page for talking to an image (http://127.0.0.1:8301/ui), local, no auth")
    _common(ui, port=8301)
    ui.set_defaults(func=_cmd_serve, page=True, token_file=None, no_auth=True, cors_origin=[], ui=True, grace=5.0)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _settings(args: argparse.Namespace) -> Any:
    from regionreasoner.agent.server.settings import ServeSettings, load_tokens

    tokens = ServeSettings.tokens_from_env()
    if args.token_file:
        tokens.update(load_tokens(Path(args.token_file).read_text(encoding="utf-8"), origin=args.token_file))
    if args.no_auth and not _loopback(args.host):
        raise ConfigError(
            f"--no-auth on {args.host}: serving without tokens is allowed on loopback addresses only",
            hint="bind --host 127.0.0.1, or give tokens with --token-file or REGIONREASONER_TOKENS",
        )
    if args.max_queue < 0:
        raise InputError(f"--max-queue {args.max_queue}", hint="use 0 or more")
    return ServeSettings(
        tokens=tokens,
        auth=not args.no_auth,
        max_body_bytes=args.max_body_mb * 2**20,
        image_roots=tuple(Path(r) for r in args.image_root),
        max_concurrent_turns=args.max_concurrent,
        max_queued_turns=args.max_queue,
        queue_timeout_s=args.queue_timeout,
        turn_timeout_s=args.turn_timeout,
        shutdown_grace_s=args.grace,
        cors_origins=tuple(args.cors_origin),
        ui=bool(args.ui),
    )


def _policy(args: argparse.Namespace) -> Any:
    from regionreasoner.agent.context import DEFAULT_MODEL, load_policy

    if args.scripted:
        from regionreasoner.policies.scripted import ScriptedPolicy

        turns = json.loads(Path(args.scripted).read_text(encoding="utf-8"))
        if not isinstance(turns, list) or not turns or not all(isinstance(t, str) for t in turns):
            raise InputError(f"{args.scripted}: expected a JSON list of assistant messages (strings)")
        return ScriptedPolicy(turns, repeat=True)
    model = args.model or os.environ.get("REGIONREASONER_MODEL") or DEFAULT_MODEL
    if args.openai_url:
        from regionreasoner.policies.openai_policy import OpenAIPolicy

        return OpenAIPolicy(args.openai_url, model, tokenizer=args.tokenizer)
    return load_policy(model)


def _draining_server() -> Any:
    import uvicorn

    class DrainingServer(uvicorn.Server):
        """uvicorn, but SIGTERM/SIGINT first mark the app as draining (/readyz 503, new turns refused).

        uvicorn then finishes the open requests; without this, readiness would change only after the listener closed.
        """

        def handle_exit(self, sig: int, frame: Any) -> None:
            state = getattr(getattr(self.config.app, "state", None), "rr", None)
            if state is not None:
                state.gate.draining = True
            super().handle_exit(sig, frame)

    return DrainingServer


def _cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from regionreasoner.agent.api import RegionAgent
    from regionreasoner.agent.server.app import create_app
    from regionreasoner.agent.server.spans import SpanBuffer
    from regionreasoner.agent.tracing import configure_tracing

    settings = _settings(args)  # every setting is checked before the model loads
    check_memory_url(args.memory, "--memory")
    provider = configure_tracing(otlp_endpoint=args.otlp_endpoint)
    spans = SpanBuffer(settings.trace_buffer)
    provider.add_span_processor(spans)
    generator = args.generator
    if generator == "tiny":
        import tempfile

        from regionreasoner.tools.generate import build_tiny_generator

        logger.warning("--generator tiny is untrained: its pictures are noise")
        generator = build_tiny_generator(Path(tempfile.mkdtemp(prefix="rr-tiny-generator-")), seed=0)
    from regionreasoner.memory import RegionMemory

    agent = RegionAgent(
        _policy(args),
        memory=RegionMemory(args.memory, image_dir=args.image_dir),
        checkpoints=args.checkpoints,
        generator=generator,
        tracer_provider=provider,
        durability="sync",
    )
    app = create_app(agent, settings, spans=spans, owns_agent=True)
    where = f"http://{args.host}:{args.port}"
    print(json.dumps({"serving": where, "ui": f"{where}/ui" if settings.ui else None, "auth": settings.auth}))
    sys.stdout.flush()
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=int(args.grace),
        server_header=False,
    )
    _draining_server()(config).run()
    provider.shutdown()
    return 0
