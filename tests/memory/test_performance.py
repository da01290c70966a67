"""Performance guards that do not depend on timing: the look-up uses its index, the benchmark script runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine

from regionreasoner.memory import RegionMemory
from regionreasoner.memory.reads import REGION_BY_NUMBER

ROOT = Path(__file__).resolve().parents[2]


def test_get_region_uses_the_unique_index(sqlite_url: str, tmp_path: Path) -> None:
    RegionMemory(sqlite_url, image_dir=tmp_path).close()
    engine = create_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            sql = str(REGION_BY_NUMBER.compile(conn, compile_kwargs={"literal_binds": False}))
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", ("d", 1)).all()
    finally:
        engine.dispose()
    details = " | ".join(str(row[-1]) for row in plan)
    # SQLite names the index of UNIQUE(dialogue_id, number) sqlite_autoindex_regions_N.
    assert "SEARCH regions USING INDEX sqlite_autoindex_regions" in details, details
    assert "(dialogue_id=? AND number=?)" in details, details
    assert "SEARCH turns USING INTEGER PRIMARY KEY" in details, details
    assert "SCAN" not in details, details


def test_benchmark_prints_one_json_line() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "memory.py"), "--dialogues", "3", "--turns", "4", "--lookups", "50"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert list(record)[:3] == ["regions", "insert_per_s", "lookup_ms_p50"]
    assert record["regions"] == 3 * 4 * 2
    assert record["insert_per_s"] > 0 and record["lookup_ms_p50"] > 0
