"""Scale-out: two ``regionreasoner serve`` processes on one Postgres and one ``vllm serve``, turns alternating.

The deployment of docs/serving.md ("Deployment and scale-out") on one machine: ``vllm serve`` of the tiny
Qwen2.5-VL, a Postgres database holding the memory and the checkpoints of both servers, one image folder they share
(``REGIONREASONER_HOME``), and two servers with ``--openai-url``.  Dialogues are created on one server and their
turns alternate between the two (the first turn runs on the server that did not create the dialogue), several
dialogues at once.  Every turn must be stored once, regions numbered R1, R2, ... without gaps, and both servers
must read the same dialogue.  Runs in ``make test-vllm``, which starts Postgres (.ci/with-postgres.sh).
"""

from __future__ import annotations

import base64
import io
import os
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from regionreasoner.agent.demo_scene import demo_scene

DIALOGUES, TURNS = 4, 3
TOKEN = "scale-out-token-0123456789abcdef"


def _data_url() -> str:
    buffer = io.BytesIO()
    demo_scene()[0].save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _turns_run(metrics: str) -> float:
    """Turns this server ran (``regionreasoner_turns_total`` over every status)."""
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith("regionreasoner_turns_total{")
    )


@pytest.mark.postgres
def test_two_servers_on_one_postgres_and_one_vllm_serve_share_every_dialogue(
    vllm_server: str, tiny_qwen25: Path, postgres_url: str, servers: SimpleNamespace, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(f"scale={TOKEN}\n", encoding="utf-8")
    env = {**os.environ, "REGIONREASONER_HOME": str(tmp_path / "shared-home")}
    urls: list[str] = []
    with ExitStack() as stack:
        for i in range(2):
            port = servers.free_port()
            args = [
                sys.executable, "-m", "regionreasoner.agent.cli", "serve",
                "--openai-url", vllm_server, "--model", "tiny", "--tokenizer", str(tiny_qwen25),
                "--memory", postgres_url, "--checkpoints", postgres_url, "--token-file", str(tokens),
                "--host", "127.0.0.1", "--port", str(port), "--max-concurrent", "2",
            ]  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            stack.enter_context(
                servers.running(args, ready_url=url + "/readyz", log=tmp_path / f"server{i}.log", env=env)
            )
            urls.append(url)
        client = stack.enter_context(httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=300))
        image = _data_url()
        answered: dict[int, list[dict[str, Any]]] = {}
        errors: list[str] = []

        def dialogue(d: int) -> None:
            created = client.post(f"{urls[d % 2]}/v1/dialogues", json={"image": image, "title": f"scale {d}"})
            if created.status_code != 201:
                errors.append(f"create {d}: {created.status_code} {created.text[:300]}")
                return
            dialogue_id = created.json()["id"]
            answered[d] = []
            cite = ""
            for t in range(TURNS):
                question = f"Find the object next to {cite}." if cite else "Find the red ball."
                body = {"question": question, "key": f"{dialogue_id}-{t}"}
                r = client.post(f"{urls[(d + t + 1) % 2]}/v1/dialogues/{dialogue_id}/turns", json=body)
                if r.status_code != 200:
                    errors.append(f"dialogue {d} turn {t}: {r.status_code} {r.text[:300]}")
                    return
                answered[d].append(r.json())
                regions = [region["id"] for region in r.json()["regions"]]
                cite = regions[-1] if regions else cite

        threads = [threading.Thread(target=dialogue, args=(d,)) for d in range(DIALOGUES)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=600)
        assert not errors, errors
        assert sorted(answered) == list(range(DIALOGUES))

        # Each server ran half of the turns: every dialogue's turns really alternated.
        ran = [_turns_run(client.get(f"{url}/metrics").text) for url in urls]
        assert ran == [DIALOGUES * TURNS / 2] * 2, ran

        for asked in answered.values():
            dialogue_id = asked[0]["dialogue_id"]
            reads = [client.get(f"{url}/v1/dialogues/{dialogue_id}") for url in urls]
            assert [r.status_code for r in reads] == [200, 200]
            first, second = (r.json() for r in reads)
            assert first == second  # either server reads the same dialogue, turn for turn
            stored = first["turns"]
            assert [t["index"] for t in stored] == list(range(TURNS))  # every turn stored once, none lost
            assert [t["key"] for t in stored] == [f"{dialogue_id}-{t}" for t in range(TURNS)]
            assert [(t["index"], t["question"]) for t in stored] == [(t["index"], t["question"]) for t in asked]
            assert all(t["regions"] for t in stored), [t["status"] for t in stored]  # a constrained answer has >= 1
            region_ids = [region["id"] for t in stored for region in t["regions"]]
            assert region_ids == [f"R{i}" for i in range(1, len(region_ids) + 1)]  # numbered without gaps
            assert [[r["id"] for r in t["regions"]] for t in stored] == [[r["id"] for r in t["regions"]] for t in asked]
            listed = [client.get(f"{url}/v1/dialogues/{dialogue_id}/regions").json()["regions"] for url in urls]
            assert listed[0] == listed[1] and [r["id"] for r in listed[0]] == region_ids

        # Asking again with a turn's key on the server that did not run it replays the stored turn: no second copy.
        dialogue_id = answered[0][0]["dialogue_id"]
        replay = client.post(
            f"{urls[0]}/v1/dialogues/{dialogue_id}/turns",
            json={"question": answered[0][0]["question"], "key": f"{dialogue_id}-0"},
        )
        assert replay.status_code == 200 and replay.json()["index"] == 0
        assert len(client.get(f"{urls[1]}/v1/dialogues/{dialogue_id}/turns").json()["turns"]) == TURNS
