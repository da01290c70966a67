"""Concurrency through the agent (issue 9, "the suite"): 16 processes, one memory, two of them on one dialogue.

Each child process builds its own :class:`RegionAgent` (ScriptedPolicy, its own engine and checkpointer) on the same
memory (a SQLite file, or Postgres under the ``postgres`` marker), waits until every child is ready (so the turns
really contend instead of running one process after another), and asks three keyed turns of one or two regions
each.  Children 0 and 1 share one dialogue (one LangGraph thread); the others have one each.  Afterwards every child
has exited 0, no "database is locked" (or any other error) reached a child's stderr, and the memory holds exactly
the turns asked: each key once, turn indices 0..n-1 and region numbers R1..Rn gapless per dialogue, every row count
equal to what was asked.

The processes are started with ``subprocess`` and a small script (no ``fork`` of a process that holds SQLite
connections or threads); they import while the parent waits, so the test spends most of its time in imports
(~2 s of CPU per child).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from regionreasoner.agent.demo_scene import demo_scene
from regionreasoner.core.protocol import AnswerObject, format_action
from regionreasoner.core.types import TurnStatus
from regionreasoner.memory import RegionMemory

PROCESSES = 16
TURNS = 3
SHARED = "dlg-shared"  # the dialogue children 0 and 1 both ask in


def _turn(child: int, turn: int) -> str:
    """A well-formed scripted turn (840x840 frame) with 1 or 2 boxes; the count varies with child and turn."""
    n = 1 + (child + turn) % 2
    objects = [AnswerObject(box=(10 + 100 * j, 10, 90 + 100 * j, 100), point=(50 + 100 * j, 55)) for j in range(n)]
    return format_action(scene="a park", think="the balls", objects=objects)


def _dialogue(child: int) -> str:
    return SHARED if child < 2 else f"dlg-{child}"


CHILD = """
import json, os, sys, time
from pathlib import Path
from regionreasoner.agent.api import RegionAgent
from regionreasoner.memory import RegionMemory
from regionreasoner.policies.scripted import ScriptedPolicy

child, url, images, folder, dialogue, turns = (
    int(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4]), sys.argv[5], json.loads(sys.argv[6])
)
checkpoints = str(folder / "checkpoints.db") if url.startswith("sqlite") else None
agent = RegionAgent(ScriptedPolicy(turns), memory=RegionMemory(url, image_dir=images), checkpoints=checkpoints)
dlg = agent.dialogue(id=dialogue)
(folder / f"ready-{child}").touch()
deadline = time.monotonic() + 120
while not (folder / "go").exists():       # every child is imported and connected: start together
    if time.monotonic() > deadline:
        sys.exit("no go signal within 120 s")
    time.sleep(0.02)
out = []
for t in range(len(turns)):
    turn = dlg.ask(f"child {child} turn {t}", key=f"c{child}-t{t}")
    out.append({"key": turn.key, "index": turn.index, "regions": [r.id for r in turn.regions],
                "status": turn.status.value})
agent.close()
print(json.dumps(out))
"""


def _run_children(url: str, images: Path, folder: Path) -> list[list[dict[str, object]]]:
    with RegionMemory(url, image_dir=images) as memory:  # the parent creates the schema, image and dialogues
        image = memory.put_image(demo_scene()[0]).hash
        for child in range(PROCESSES):
            if child != 1:
                memory.create_dialogue(image, id=_dialogue(child))
    procs = []
    for child in range(PROCESSES):
        turns = json.dumps([_turn(child, t) for t in range(TURNS)])
        argv = [sys.executable, "-c", textwrap.dedent(CHILD), str(child), url, str(images), str(folder)]
        procs.append(
            subprocess.Popen(
                [*argv, _dialogue(child), turns], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    try:
        deadline = time.monotonic() + 150
        while sum(1 for p in folder.glob("ready-*")) < PROCESSES:
            dead = [p for p in procs if p.poll() is not None]
            assert not dead, dead[0].communicate()[1][-3000:]
            assert time.monotonic() < deadline, "children did not get ready within 150 s"
            time.sleep(0.05)
        (folder / "go").touch()
        results = []
        for child, proc in enumerate(procs):
            out, err = proc.communicate(timeout=150)
            assert proc.returncode == 0, f"child {child} exited {proc.returncode}:\n{err[-3000:]}"
            assert "database is locked" not in err and "Traceback" not in err, err[-3000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _check(url: str, images: Path, results: list[list[dict[str, object]]]) -> None:
    asked = {f"c{c}-t{t}": 1 + (c + t) % 2 for c in range(PROCESSES) for t in range(TURNS)}
    with RegionMemory(url, image_dir=images) as memory:
        for dialogue in sorted({_dialogue(c) for c in range(PROCESSES)}):
            turns = memory.turns(dialogue)
            mine = {k: n for k, n in asked.items() if _dialogue(int(k[1 : k.index("-")])) == dialogue}
            assert sorted(t.key or "" for t in turns) == sorted(mine), f"{dialogue}: lost or duplicate turns"
            assert [t.index for t in turns] == list(range(len(mine)))
            assert all(t.status is TurnStatus.OK for t in turns), [t.problems for t in turns]
            assert {t.key: len(t.regions) for t in turns} == mine
            numbers = [int(r.id[1:]) for t in turns for r in t.regions]
            assert numbers == list(range(1, sum(mine.values()) + 1)), f"{dialogue}: R1..Rn not gapless: {numbers}"
            assert [r.id for r in memory.regions(dialogue)] == [f"R{n}" for n in numbers]
        # What each child was told matches what is stored.
        for child, told in enumerate(results):
            for entry in told:
                stored = memory.turns(_dialogue(child))[int(str(entry["index"]))]
                assert stored.key == entry["key"] and [r.id for r in stored.regions] == entry["regions"]
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            count = {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in ("turns", "regions")}
            dup_turns = conn.execute(
                text(
                    "SELECT count(*) FROM (SELECT dialogue_id, key FROM turns GROUP BY dialogue_id, key "
                    "HAVING count(*) > 1) AS d"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    assert count == {"turns": len(asked), "regions": sum(asked.values())}
    assert dup_turns == 0


def test_sixteen_processes_on_one_sqlite_file(tmp_path: Path) -> None:
    url, images = f"sqlite:///{tmp_path}/memory.db", tmp_path / "images"
    results = _run_children(url, images, tmp_path)
    _check(url, images, results)


@pytest.mark.postgres
def test_sixteen_processes_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    images = tmp_path / "images"
    results = _run_children(postgres_url, images, tmp_path)
    _check(postgres_url, images, results)
