"""``regionreasoner-eval geneval | dpg | clc | css`` end to end, with test-local fake generators.

The fakes (rr_generation_fakes.py, named on the command line as ``rr_generation_fakes:good``) draw the synthetic
prompts' ground truth, so the exact scorer must give 1.0; in the wrong colours, the colour tasks must score 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regionreasoner.evals import cli as eval_cli
from regionreasoner.evals.generation.cli import SUBCOMMANDS

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def _registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test-local fakes importable by name (``--generator rr_generation_fakes:...``)."""
    monkeypatch.syspath_prepend(str(HERE))


def test_the_suite_is_registered_under_regionreasoner_eval() -> None:
    assert {name: eval_cli.SUBCOMMANDS.get(name) for name in SUBCOMMANDS} == dict(SUBCOMMANDS)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert eval_cli.main(list(argv)) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    return json.loads(last)


def test_geneval_good_scores_one_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import rr_generation_fakes as fakes

    out = tmp_path / "run"
    args = ("geneval", "--generator", "rr_generation_fakes:good", "--out", str(out), "--n-per-task", "1")
    summary = run(capsys, *args)
    assert summary["mean"]["overall"] == 1.0
    assert summary["counts"] == dict.fromkeys(["en", "zh", "nl", "fr", "hi", "fa"], 6)
    data = json.loads((out / "summary.json").read_text("utf-8"))
    assert set(data["languages"]) == {"en", "zh", "nl", "fr", "hi", "fa"}
    assert all(row["overall"] == 1.0 for row in data["languages"].values())
    assert (out / "summary.md").read_text("utf-8").startswith("# m-GenEval")
    assert sorted(p.name for p in (out / "plots").iterdir())[:2] == ["geneval_en.png", "geneval_fa.png"]
    assert (out / "zh" / "00005" / "samples" / "00000.png").is_file()
    assert (out / "prompts" / "hi.jsonl").is_file()
    before = len(fakes.CALLS)
    assert run(capsys, *args)["mean"]["overall"] == 1.0
    assert len(fakes.CALLS) == before  # everything was there: nothing generated again


def test_geneval_wrong_colours_fail_the_colour_tasks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "wrong"
    summary = run(
        capsys,
        "geneval",
        "--generator",
        "rr_generation_fakes:wrong_colours",
        "--out",
        str(out),
        "--n-per-task",
        "2",
        "--lang",
        "en,fa",
    )
    mean = summary["mean"]
    assert mean["colors"] == 0.0 and mean["color_attr"] == 0.0
    assert mean["single_object"] == mean["counting"] == mean["position"] == 1.0
    assert mean["overall"] == pytest.approx(4 / 6)


def test_dpg_clc_css(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    common = ("--generator", "rr_generation_fakes:good", "--n-per-task", "1", "--lang", "en,nl,zh")
    dpg = run(capsys, "dpg", *common, "--out", str(tmp_path / "dpg"))
    assert dpg["mean"]["DPG"] == 1.0 and dpg["counts"] == {"en": 6, "nl": 6, "zh": 6}
    assert (tmp_path / "dpg" / "nl" / "world_00002.png").is_file()
    assert (tmp_path / "dpg" / "prompts" / "dpg_bench.csv").is_file()
    clc = run(capsys, "clc", *common, "--out", str(tmp_path / "clc"), "--embedder", "exact")
    assert clc["mean"] == {"exact": 1.0} and set(clc["counts"]) == {"nl", "zh"}
    css = run(capsys, "css", *common, "--out", str(tmp_path / "css"))
    assert css["mean"] == {"exact EF": 1.0, "exact ES": 1.0}
    assert (tmp_path / "css" / "ef-zh" / "00000" / "samples" / "00000.png").is_file()
    md = (tmp_path / "css" / "summary.md").read_text("utf-8")
    assert "| zh | 1.000 | 1.000 | 6 |" in md


def test_user_mistakes_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert eval_cli.main(["geneval", "--generator", str(tmp_path / "none"), "--out", str(tmp_path / "o")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert eval_cli.main(["geneval", "--generator", "oracle", "--out", str(tmp_path / "o"), "--lang", "de"]) == 2
    assert eval_cli.main(["geneval", "--generator", "oracle", "--out", str(tmp_path / "o"), "--detector", "yolo"]) == 2
    assert "unknown detector" in capsys.readouterr().err


def test_tiny_generator_runs_the_pipeline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    generate = pytest.importorskip("regionreasoner.tools.generate")
    folder = generate.build_tiny_generator(tmp_path / "tiny")
    summary = run(
        capsys,
        "geneval",
        "--generator",
        str(folder),
        "--out",
        str(tmp_path / "run"),
        "--n-per-task",
        "1",
        "--lang",
        "en,nl",
        "--device",
        "cpu",
    )
    assert summary["counts"] == {"en": 6, "nl": 6}
    assert summary["mean"]["overall"] <= 0.5  # random weights: noise, scored near 0
