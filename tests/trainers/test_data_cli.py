"""``regionreasoner-train data``: writes the official JSON and a saved Dataset; mistakes end in one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regionreasoner.trainers.cli import SUBCOMMANDS, Subcommand, main, register

DATA = Path(__file__).resolve().parents[1] / "data" / "train"


def _last_json(out: str) -> dict[str, object]:
    return json.loads(out.strip().splitlines()[-1])


def test_data_from_synthetic_writes_json_images_and_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("datasets", reason="the train extra (datasets) is not installed")
    out = tmp_path / "syn"
    rc = main(["data", "--from", "synthetic", "--out", str(out), "--count", "2", "--seed", "3", "--mode", "multiturn"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    summary = _last_json(captured.out)
    assert summary["dialogues"] == 2 and summary["mode"] == "multiturn" and summary["frame"] == "fixed:840x840"
    samples = json.loads((out / "train.json").read_text())["samples"]
    assert len(samples) == summary["records"] and all((out / s["image"]).is_file() for s in samples)
    assert (out / "dataset" / "dataset_info.json").is_file()
    assert "writing images" in captured.err  # the progress bar


def test_data_from_visionreasoner_without_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "vr"
    rc = main(
        [
            "data",
            "--from",
            "visionreasoner",
            "--input",
            str(DATA / "visionreasoner.json"),
            "--images",
            str(DATA),
            "--out",
            str(out),
            "--frame",
            "norm:1000",
            "--no-dataset",
        ]
    )
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert _last_json(captured.out)["records"] == 6 and not (out / "dataset").exists()
    samples = json.loads((out / "train.json").read_text())["samples"]
    assert samples[0]["solution"] == '[{"bbox_2d": [714, 48, 905, 238], "point_2d": [810, 143]}]'


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--from", "visionreasoner"], "--from visionreasoner reads a file (pass --input PATH"),
        (["--from", "regionreasoner", "--input", "missing.json"], "argument --input: missing.json does not exist"),
        (["--from", "synthetic", "--frame", "fixed:840"], "unknown coordinate frame 'fixed:840'"),
        (["--from", "elsewhere"], "argument --from: invalid choice: 'elsewhere'"),
    ],
)
def test_mistakes_end_in_one_line(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["data", *argv, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err


def test_the_registry_takes_more_subcommands() -> None:
    assert list(SUBCOMMANDS) == [
        "data",
        "sft",
        "grpo",
        "plot",
        "embedded-base",
        "embedded-vision",
        "embedded-export",
        "generator",
    ]
    extra = Subcommand("a test subcommand", lambda parser: None, lambda args: 0)
    register("noop-for-test", extra)
    try:
        assert main(["noop-for-test"]) == 0
        from regionreasoner.core.errors import RegionReasonerError

        with pytest.raises(RegionReasonerError, match="already registered"):
            register("data", extra)
    finally:
        SUBCOMMANDS.pop("noop-for-test")


def test_importing_the_cli_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, regionreasoner.trainers.cli\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'datasets', 'trl', 'tqdm') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "import regionreasoner.trainers.data\n"
        "assert 'torch' not in sys.modules and 'datasets' not in sys.modules\n"
        "import regionreasoner.core.world\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
