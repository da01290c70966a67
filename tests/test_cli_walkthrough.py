import json
from pathlib import Path

import pytest

from regionreasoner.agent.cli import main
from regionreasoner.memory import RegionMemory


def test_demo_walkthrough_writes_turns_and_memory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "bbox=[" in out and "R3" in out
    for name in ["turn1.png", "turn2.png", "turn3.png", "memory.db"]:
        assert (tmp_path / name).is_file()
    with RegionMemory(f"sqlite:///{tmp_path / 'memory.db'}") as memory:
        (dialogue,) = memory.list_dialogues()
        turns = memory.turns(dialogue.id)
        assert [t.referenced for t in turns] == [[], ["R1"], ["R1"]]
        assert all(c.verified for t in turns for c in t.citations)
        assert [r.id for r in memory.regions(dialogue.id)] == ["R1", "R2", "R3"]


def test_db_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    assert main(["db", "current", "--url", url]) == 0
    assert json.loads(capsys.readouterr().out)["revision"] is None
    assert main(["db", "upgrade", "--url", url]) == 0
    assert json.loads(capsys.readouterr().out)["revision"] == "0001"
    assert main(["db", "current", "--url", url]) == 0
    assert json.loads(capsys.readouterr().out)["revision"] == "0001"


def test_errors_become_exit_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--url", "mysql://nope"]) == 2
    assert "regionreasoner: error:" in capsys.readouterr().err
