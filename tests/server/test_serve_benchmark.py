"""benchmarks/serve.py --quick against the lane's Postgres: no turn lost or doubled, no 5xx, 429s retried to the end.

One and two ``regionreasoner serve`` processes (ScriptedPolicy) with one turn slot and a queue of one, so 4 and 8
concurrent dialogues overflow the queue; the two-server runs alternate every dialogue's turns between the servers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
def test_quick_serve_benchmark_loses_nothing_and_completes_every_refused_turn(postgres_url: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "serve.py"), "--quick", "--postgres", postgres_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record = json.loads(done.stdout.strip().splitlines()[-1])
    assert record["ok"] and set(record["runs"]) == {"1x4", "1x8", "2x4", "2x8"}
    for name, run in record["runs"].items():
        dialogues = run["dialogues"]
        assert run["turns"] == 5 * dialogues, (name, run)
        for key in ("lost", "extra_turns", "duplicates", "gaps", "mismatched_reads", "bad_turns", "5xx", "other_4xx"):
            assert run[key] == 0, (name, key, run)
        assert run["429"] > 0, (name, run)  # one slot and a queue of one: the 429 path is taken...
        assert run["429"] == run["429_server"], (name, run)  # ...as often as the servers counted it...
        assert run["refused_completed"] == run["refused_dialogues"] > 0, (name, run)  # ...and retried to the end
        assert run["turn_ms_p50"] is not None and run["turn_ms_p99"] >= run["turn_ms_p50"]
        assert run["turns_per_s"] > 0
