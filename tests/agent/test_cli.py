"""`regionreasoner demo` and `regionreasoner chat` end to end (in-process)."""

import json
from pathlib import Path

import pytest

from regionreasoner.agent.cli import main
from regionreasoner.memory import RegionMemory


def test_demo_with_the_default_tiny_model(
    tiny_qwen25: Path,
    model_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("REGIONREASONER_CACHE", str(model_cache))  # reuse the session's tiny checkpoint
    monkeypatch.delenv("REGIONREASONER_MODEL", raising=False)
    out = tmp_path / "demo-output"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "UNTRAINED" in printed and "Reminder: the tiny model's weights are untrained" in printed
    # turns 1-3, the edit of turn 4 (checked by the exact segmenter) and turn 5, which asks for the new star
    assert printed.count("  check: ") == 5 and "checks: " in printed
    assert "> turn 4 (nl): vervang R1 door een groene ster" in printed and "> turn 5 (en): " in printed
    names = ["image.png", *(f"turn{k}.png" for k in range(1, 6)), "memory.db", "trace.jsonl", "summary.json"]
    for name in names:
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["untrained"] is True and summary["frame"] == "fixed:840x840"
    assert [c["turn"] for c in summary["checks"]] == [1, 2, 3, 4, 5]
    assert summary["edit"]["region"] == "R1" and summary["edit"]["version"] == 1
    turns = summary["turns"]
    assert [t["status"] for t in turns] == ["ok"] * 4
    assert turns[1]["referenced"] == ["R1"] and len(turns[2]["referenced"]) == 1  # turn 2's first region
    assert "bbox=[" in turns[1]["rendered_question"]
    spans = [json.loads(line) for line in (out / "trace.jsonl").read_text().splitlines()]
    assert sum(s["name"] == "regionreasoner.turn" for s in spans) == 4
    with RegionMemory(f"sqlite:///{out}/memory.db") as memory:
        regions = memory.regions(summary["dialogue_id"])
        assert [r.id for r in regions] == [f"R{i}" for i in range(1, len(regions) + 1)] and len(regions) >= 3
        versions = memory.versions(summary["dialogue_id"])
        assert [(v.tool, v.region) for v in versions] == [(None, None), ("inpaint", "R1")]
        assert memory.turn(summary["dialogue_id"], 3).image == versions[1].image  # turn 5 ran on the edited image


def test_chat_with_a_scripted_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    image = tmp_path / "photo.png"
    Image.new("RGB", (420, 420), (10, 200, 10)).save(image)
    script = tmp_path / "chat.json"
    turns = [
        "<scene> green </scene>\n<think> a square </think>\n"
        '<answer>[{"bbox_2d": [10,10,100,100], "point_2d": [50,50]}]</answer>',
        "<scene> green </scene>\n<focus> a square </focus>\n<think> next to bbox=[10, 10, 100, 100] </think>\n"
        '<answer>[{"bbox_2d": [100,10,200,100], "point_2d": [150,50]}]</answer>',
    ]
    script.write_text(json.dumps({"questions": ["find the square", "the one next to R1", "near R9"], "turns": turns}))
    out = tmp_path / "annotated.png"
    assert (
        main(["chat", str(image), "--script", str(script), "--memory", f"sqlite:///{tmp_path}/m.db", "--out", str(out)])
        == 0
    )
    printed = capsys.readouterr().out
    assert "R1: box=[5, 5, 50, 50]" in printed and "R2: box=[50, 5, 100, 50]" in printed
    assert "citations verified: 1/1" in printed
    assert "error:" in printed and "R9" in printed  # an unknown region is reported, the chat goes on
    assert out.is_file()


def test_chat_questions_from_a_text_file(tiny_qwen25: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    image = tmp_path / "photo.png"
    Image.new("RGB", (300, 200), (200, 10, 10)).save(image)
    script = tmp_path / "questions.txt"
    script.write_text("find the red thing\n\nthe thing left of R1\n")
    args = ["chat", str(image), "--model", str(tiny_qwen25), "--frame", "norm:1000", "--script", str(script)]
    assert main([*args, "--memory", f"sqlite:///{tmp_path}/m.db", "--out", str(tmp_path / "a.png")]) == 0
    printed = capsys.readouterr().out
    assert printed.count("status: ok") == 2 and "[answer]" in printed


def test_db_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    assert main(["db", "current", "--url", url]) == 0
    assert json.loads(capsys.readouterr().out)["revision"] is None
    assert main(["db", "upgrade", "--url", url]) == 0
    assert json.loads(capsys.readouterr().out)["revision"] == "0003"
    assert main(["db", "current", "--url", url]) == 0
    assert json.loads(capsys.readouterr().out)["revision"] == "0003"


def test_errors_become_exit_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade", "--url", "mysql://nope"]) == 2
    assert "regionreasoner: error:" in capsys.readouterr().err


def test_demo_prints_no_warning(model_cache: Path, tiny_qwen25: Path, tmp_path: Path) -> None:
    """`make demo` runs this command: neither Python warnings (transformers', the project's) nor logged warnings."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("REGIONREASONER_MODEL", "PYTHONWARNINGS")}
    env["REGIONREASONER_CACHE"] = str(model_cache)
    script = Path(sys.executable).with_name("regionreasoner")
    done = subprocess.run(
        [sys.executable, "-W", "default", str(script), "demo", "--out", str(tmp_path / "demo")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "checks: " in done.stdout, done.stdout
    printed = (done.stdout + done.stderr).replace(str(tmp_path), "<tmp>")  # the folder is named after this test
    assert "Warning" not in printed and "WARNING" not in printed and "warning" not in printed.lower(), printed
