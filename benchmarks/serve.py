"""Loopback load test of ``regionreasoner serve`` on Postgres: one server and two, 16 and 64 concurrent dialogues.

    bash .ci/with-postgres.sh .venv/bin/python benchmarks/serve.py          # 1 and 2 servers x 16 and 64 dialogues
    bash .ci/with-postgres.sh .venv/bin/python benchmarks/serve.py --quick  # 1 and 2 servers x 4 and 8 (the CI test)
    .venv/bin/python benchmarks/serve.py --postgres postgresql+psycopg://user@127.0.0.1:5432/postgres

The Postgres server is ``--postgres`` or ``$REGIONREASONER_TEST_POSTGRES_URL`` (what .ci/with-postgres.sh exports);
each server count gets a fresh database on it (created here, dropped at the end) that holds the memory and the
checkpoints of every server process, and one image folder (``REGIONREASONER_HOME``) that all of them share.  The
servers are ``python -m regionreasoner.agent.cli serve --scripted F`` (ScriptedPolicy, so the model costs nothing
and the server's own work is measured), started here on free ports of 127.0.0.1 with a bearer token from a token
file, ``--max-concurrent 4 --max-queue 16`` (``--quick``: 1 and 1), and stopped by their PIDs.  Every server gets
one warm-up turn that is not counted.

Each dialogue is created on server ``d % N``; its 5 turns go to ``(d + t + 1) % N``, so with two servers every
dialogue alternates between them and its first turn already runs on the server that did not create it.  Turn 1
cites an inline box, turn t > 1 cites the region of turn t - 1 (``R{t-1}``).  All dialogues run at once; a dialogue
asks its next turn when the previous one is answered.  A 429 (the turn gate's queue is full) is retried after its
``Retry-After`` (plus up to 10% jitter) with the same idempotency key until it is answered; every retry loop, and
the run, ends at ``--run-timeout`` seconds.  Afterwards every dialogue is read back from every server
(``GET /v1/dialogues/{id}`` and ``/regions``) and checked: exactly 5 turns, all ``ok``, each citing the previous
region, regions R1..R5 (``duplicates``: region ids seen twice; ``gaps``: lists that are not R1..R5 in order), and
every server reading the same turns (``mismatched_reads``); ``extra_turns`` counts turns beyond 5, ``bad_turns``
turns stored with another status, question, key, region or reference than asked.

Prints one JSON line: per configuration (``1x16`` = 1 server, 16 dialogues) ``turn_ms_p50``/``turn_ms_p99`` (first
try to answered turn, retries included), ``accepted_ms_p50``/``_p99`` (the answered request alone: queue wait and
run), ``turns_per_s`` (answered turns over the run's wall time), ``lost``, ``duplicates``, ``gaps``,
``mismatched_reads``, ``5xx``, ``other_4xx``, ``transport_errors``, ``429`` (refusals the client saw),
``429_server`` (the servers' ``regionreasoner_errors_total{kind="OverloadedError"}``) and ``refused_completed``
(dialogues that got a 429 and still finished all their turns, of ``refused_dialogues``); then
``two_vs_one_turns_per_s`` per dialogue count, measured side by side in this run.  Exits 1 when a turn was lost
or doubled, a region id repeated, a read disagreed or any 5xx was answered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from regionreasoner.core.protocol import AnswerObject, format_action

POSTGRES_ENV = "REGIONREASONER_TEST_POSTGRES_URL"
TURNS = 5
TURN_TEXT = format_action(
    scene="shapes on a plain ground",
    focus="the cited shape",
    think="the reference is bbox=[84, 84, 252, 252]; the target lies right of it",
    objects=[AnswerObject(box=(420, 84, 588, 252), point=(504, 168))],
)
"""The one assistant message the scripted servers answer every turn with: one object, so turn t finds region Rt."""


def _png_data_url() -> str:
    import base64
    import io

    from PIL import Image

    image = Image.new("RGB", (320, 240), "white")
    image.paste((220, 30, 30), (32, 32, 96, 96))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _question(t: int) -> str:
    """Turn ``t`` (0-based): the first cites an inline box (the red square), later ones the previous region."""
    return "the shape right of bbox=[32, 32, 96, 96]" if t == 0 else f"the shape right of R{t}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; None when empty."""
    if not values:
        return None
    ranked = sorted(values)
    return round(ranked[max(0, math.ceil(q / 100 * len(ranked)) - 1)], 1)


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the Postgres server at ``server_url``; dropped afterwards."""
    name = f"rr_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@dataclass
class Server:
    """One ``regionreasoner serve`` process on 127.0.0.1."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path


@contextmanager
def running_servers(
    n: int, database: str, folder: Path, *, max_concurrent: int, max_queue: int, queue_timeout: float
) -> Iterator[tuple[list[Server], str]]:
    """``n`` scripted servers on ``database`` (memory and checkpoints), ready; yields them and the bearer token."""
    token = secrets.token_urlsafe(24)
    token_file = folder / "tokens.txt"
    token_file.write_text(f"bench={token}\n", encoding="utf-8")
    script = folder / "turns.json"
    script.write_text(json.dumps([TURN_TEXT]), encoding="utf-8")
    # Images are files, not rows: every server must see one image folder (here the same REGIONREASONER_HOME).
    env = {**os.environ, "REGIONREASONER_HOME": str(folder / "home")}
    started: list[Server] = []
    try:
        for i in range(n):
            port = _free_port()
            log = folder / f"server{i}.log"
            args = [
                sys.executable, "-m", "regionreasoner.agent.cli", "serve", "--scripted", str(script),
                "--memory", database, "--checkpoints", database, "--token-file", str(token_file),
                "--host", "127.0.0.1", "--port", str(port), "--max-concurrent", str(max_concurrent),
                "--max-queue", str(max_queue), "--queue-timeout", str(queue_timeout), "--grace", "10",
            ]  # fmt: skip
            with log.open("wb") as out:
                proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
            started.append(Server(f"http://127.0.0.1:{port}", proc, log))
        deadline = time.monotonic() + 120
        for server in started:
            while True:
                if server.proc.poll() is not None:
                    raise SystemExit(
                        f"a server exited with {server.proc.returncode}:\n{server.log.read_text()[-3000:]}"
                    )
                try:
                    if httpx.get(server.url + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"{server.url} was not ready within 120 s:\n{server.log.read_text()[-3000:]}")
                time.sleep(0.2)
        yield started, token
    finally:
        for server in started:
            if server.proc.poll() is None:
                os.killpg(server.proc.pid, signal.SIGTERM)
        for server in started:
            try:
                server.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.proc.pid, signal.SIGKILL)
                server.proc.wait()


@dataclass
class Tally:
    """What the client saw during one run."""

    turn_ms: list[float] = field(default_factory=list)
    accepted_ms: list[float] = field(default_factory=list)
    answered: int = 0
    refused: int = 0
    server_errors: int = 0
    other_4xx: int = 0
    transport_errors: int = 0
    refused_dialogues: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)


async def _ask(client: httpx.AsyncClient, url: str, dialogue: str, t: int, tally: Tally, deadline: float) -> bool:
    """Ask turn ``t`` until answered (429s and dropped connections retried with the same key); False on failure."""
    body = {"question": _question(t), "key": f"{dialogue}-turn-{t}"}
    first = time.perf_counter()
    while time.monotonic() < deadline:
        sent = time.perf_counter()
        try:
            r = await client.post(f"{url}/v1/dialogues/{dialogue}/turns", json=body)
        except httpx.TransportError as exc:
            tally.transport_errors += 1  # retried: the key makes a turn that did run answer from memory
            logging.getLogger(__name__).warning("%s turn %d: %s, retrying", dialogue, t, type(exc).__name__)
            await asyncio.sleep(0.5)
            continue
        if r.status_code == 429:
            tally.refused += 1
            tally.refused_dialogues.add(dialogue)
            wait = float(r.headers.get("Retry-After", "1"))
            await asyncio.sleep(wait * (1 + 0.1 * random.random()))
            continue
        if r.status_code >= 500:
            tally.server_errors += 1
        elif r.status_code != 200:
            tally.other_4xx += 1
        if r.status_code != 200:
            tally.failures.append(f"{dialogue} turn {t}: {r.status_code} {r.text[:200]}")
            return False
        done = time.perf_counter()
        tally.turn_ms.append((done - first) * 1000)
        tally.accepted_ms.append((done - sent) * 1000)
        tally.answered += 1
        return True
    tally.failures.append(f"{dialogue} turn {t}: not answered before the run's deadline")
    return False


async def _dialogue(
    client: httpx.AsyncClient, urls: list[str], d: int, image: str, tally: Tally, deadline: float
) -> str | None:
    n = len(urls)
    r = await client.post(f"{urls[d % n]}/v1/dialogues", json={"image": image, "title": f"bench {d}"})
    if r.status_code != 201:
        tally.server_errors += r.status_code >= 500
        tally.other_4xx += 400 <= r.status_code < 500
        tally.failures.append(f"create {d}: {r.status_code} {r.text[:200]}")
        return None
    dialogue = str(r.json()["id"])
    for t in range(TURNS):
        if not await _ask(client, urls[(d + t + 1) % n], dialogue, t, tally, deadline):
            return dialogue
    tally.finished.add(dialogue)
    return dialogue


def _overloaded(text: str) -> float:
    """``regionreasoner_errors_total{kind="OverloadedError"}`` in a /metrics text (0 when absent)."""
    for line in text.splitlines():
        if line.startswith('regionreasoner_errors_total{kind="OverloadedError"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


Stored = tuple[int, str, str, str | None, tuple[str, ...], tuple[str, ...]]


def _stored(dialogue: dict[str, Any]) -> list[Stored]:
    """(index, status, question, key, region ids, referenced) of each turn of a ``GET /v1/dialogues/{id}`` body."""
    return [
        (
            t["index"],
            t["status"],
            t["question"],
            t.get("key"),
            tuple(r["id"] for r in t["regions"]),
            tuple(t["referenced"]),
        )
        for t in dialogue["turns"]
    ]


async def _verify(
    client: httpx.AsyncClient, urls: list[str], ids: list[str], run: dict[str, Any], tally: Tally
) -> None:
    """Read every dialogue back from every server and count what is missing, doubled or different."""
    lost = duplicates = gaps = mismatched = bad = extra = 0
    expected_regions = tuple(f"R{i}" for i in range(1, TURNS + 1))
    for dialogue in ids:
        reads = []
        for url in urls:
            r = await client.get(f"{url}/v1/dialogues/{dialogue}")
            regions = await client.get(f"{url}/v1/dialogues/{dialogue}/regions")
            for answer in (r, regions):
                if answer.status_code >= 500:
                    tally.server_errors += 1
            if r.status_code != 200 or regions.status_code != 200:
                tally.failures.append(f"read {dialogue} on {url}: {r.status_code}/{regions.status_code}")
                mismatched += 1
                continue
            reads.append((_stored(r.json()), tuple(x["id"] for x in regions.json()["regions"])))
        if not reads:
            lost += TURNS
            continue
        turns, region_ids = reads[0]
        mismatched += sum(read != reads[0] for read in reads[1:])
        lost += max(0, TURNS - len(turns))
        extra += max(0, len(turns) - TURNS)
        duplicates += len(region_ids) - len(set(region_ids))
        gaps += int(region_ids != expected_regions[: len(region_ids)] or len(region_ids) != len(turns))
        for position, (index, status, question, key, found, referenced) in enumerate(turns):
            want = (position, "ok", _question(index), f"{dialogue}-turn-{index}", (f"R{index + 1}",))
            bad += (index, status, question, key, found) != want or referenced != (() if index == 0 else (f"R{index}",))
    lost += TURNS * (run["dialogues"] - len(ids))  # dialogues that could not even be created
    run.update(
        lost=lost,
        extra_turns=extra,
        duplicates=duplicates,
        gaps=gaps,
        mismatched_reads=mismatched,
        bad_turns=bad,
    )


async def _run(urls: list[str], token: str, dialogues: int, timeout_s: float) -> dict[str, Any]:
    image = _png_data_url()
    tally = Tally()
    limits = httpx.Limits(max_connections=dialogues + 8, max_keepalive_connections=dialogues + 8)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(headers=headers, timeout=120, limits=limits) as client:
        before = [_overloaded((await client.get(f"{u}/metrics")).text) for u in urls]
        start = time.perf_counter()
        deadline = time.monotonic() + timeout_s
        created = await asyncio.gather(*(_dialogue(client, urls, d, image, tally, deadline) for d in range(dialogues)))
        wall = time.perf_counter() - start
        after = [_overloaded((await client.get(f"{u}/metrics")).text) for u in urls]
        ids = [d for d in created if d is not None]
        run: dict[str, Any] = {
            "servers": len(urls),
            "dialogues": dialogues,
            "turns": tally.answered,
            "turn_ms_p50": _percentile(tally.turn_ms, 50),
            "turn_ms_p99": _percentile(tally.turn_ms, 99),
            "accepted_ms_p50": _percentile(tally.accepted_ms, 50),
            "accepted_ms_p99": _percentile(tally.accepted_ms, 99),
            "turns_per_s": round(tally.answered / wall, 2),
            "seconds": round(wall, 2),
        }
        await _verify(client, urls, ids, run, tally)
    run.update(
        {
            "5xx": tally.server_errors,
            "other_4xx": tally.other_4xx,
            "transport_errors": tally.transport_errors,
            "429": tally.refused,
            "429_server": int(sum(after) - sum(before)),
            "refused_dialogues": len(tally.refused_dialogues),
            "refused_completed": len(tally.refused_dialogues & tally.finished),
        }
    )
    if tally.failures:
        run["failures"] = tally.failures[:5]
    return run


async def _warm_up(urls: list[str], token: str) -> None:
    """One dialogue with one turn on each server (imports, first connections, graph compile), not counted."""
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
        for url in urls:
            r = await client.post(f"{url}/v1/dialogues", json={"image": _png_data_url(), "title": "warm-up"})
            r.raise_for_status()
            turn = await client.post(f"{url}/v1/dialogues/{r.json()['id']}/turns", json={"question": _question(0)})
            turn.raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--postgres", default=os.environ.get(POSTGRES_ENV), help=f"Postgres server URL (${POSTGRES_ENV})"
    )
    parser.add_argument("--quick", action="store_true", help="4 and 8 dialogues, --max-concurrent 1 --max-queue 1")
    parser.add_argument("--dialogues", type=int, nargs="+", default=None, help="dialogue counts (default 16 64)")
    parser.add_argument("--servers", type=int, nargs="+", default=[1, 2], help="server counts (default 1 2)")
    parser.add_argument("--max-concurrent", type=int, default=None, help="each server's turn slots (default 4)")
    parser.add_argument("--max-queue", type=int, default=None, help="each server's queue (default 16)")
    parser.add_argument("--queue-timeout", type=float, default=30.0, help="each server's queue timeout, s")
    parser.add_argument("--run-timeout", type=float, default=None, help="bound on one run, s (default 300, quick 60)")
    args = parser.parse_args()
    if not args.postgres:
        parser.error(
            f"needs a Postgres server: run it under `bash .ci/with-postgres.sh`, set ${POSTGRES_ENV} or pass --postgres"
        )
    dialogues = args.dialogues or ([4, 8] if args.quick else [16, 64])
    slots = args.max_concurrent or (1 if args.quick else 4)
    queue = args.max_queue if args.max_queue is not None else (1 if args.quick else 16)
    run_timeout = args.run_timeout or (60.0 if args.quick else 300.0)
    record: dict[str, Any] = {
        "benchmark": "serve",
        "quick": args.quick,
        "turns_per_dialogue": TURNS,
        "max_concurrent": slots,
        "max_queue": queue,
        "cpus": os.cpu_count(),
        "runs": {},
    }
    began = time.perf_counter()
    for n in args.servers:
        with (
            tempfile.TemporaryDirectory(prefix="rr-bench-serve-") as tmp,
            fresh_database(args.postgres) as database,
            running_servers(
                n, database, Path(tmp), max_concurrent=slots, max_queue=queue, queue_timeout=args.queue_timeout
            ) as (servers, token),
        ):
            urls = [s.url for s in servers]
            asyncio.run(_warm_up(urls, token))
            for count in dialogues:
                record["runs"][f"{n}x{count}"] = asyncio.run(_run(urls, token, count, run_timeout))
    runs = record["runs"]
    if 1 in args.servers and 2 in args.servers:
        record["two_vs_one_turns_per_s"] = {
            str(c): round(runs[f"2x{c}"]["turns_per_s"] / runs[f"1x{c}"]["turns_per_s"], 2)
            for c in dialogues
            if runs[f"1x{c}"]["turns_per_s"]
        }
    keys = ("lost", "extra_turns", "duplicates", "gaps", "mismatched_reads", "bad_turns", "5xx", "other_4xx")
    record["ok"] = all(all(run[k] == 0 for k in keys) for run in runs.values())
    record["seconds"] = round(time.perf_counter() - began, 1)
    print(json.dumps(record))
    return 0 if record["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
