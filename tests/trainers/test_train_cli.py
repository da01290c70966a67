"""``regionreasoner-train grpo|sft|plot`` from the command line: presets, flags, one-line errors, the plot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("trl", reason="the training extra is not installed: pip install 'regionreasoner[train]'")

from regionreasoner.trainers.cli import main
from regionreasoner.trainers.config import GRPORunConfig, load_config
from regionreasoner.trainers.metrics_log import read_metrics


def test_the_paper_preset_has_the_papers_values() -> None:
    cfg = load_config(GRPORunConfig, "paper")
    assert (cfg.num_generations, cfg.prompts_per_step, cfg.batch_size) == (8, 16, 128)
    assert (cfg.learning_rate, cfg.beta, cfg.epsilon, cfg.temperature) == (1e-6, 0.01, 0.2, 1.0)
    assert cfg.max_completion_length == 2000 and cfg.rollouts == "vllm"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["grpo", "--config", "nope"], "no config 'nope'"),
        (["grpo", "--num-generations", "1"], "group of at least 2"),
        (["grpo", "--rollouts", "vllm", "--vllm-mode", "server"], "needs vllm_server_url"),
        (["plot", "/nonexistent/run"], "no metrics log"),
    ],
)
def test_mistakes_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_yaml_keys_and_types_are_checked(tmp_path: Path) -> None:
    from regionreasoner.core.errors import ConfigError

    bad = tmp_path / "bad.yaml"
    bad.write_text("max_steps: three\n")
    with pytest.raises(ConfigError, match="max_steps='three' is str, not int"):
        load_config(GRPORunConfig, bad)
    bad.write_text("max_step: 3\n")
    with pytest.raises(ConfigError, match=r"unknown GRPORunConfig keys \['max_step'\]"):
        load_config(GRPORunConfig, bad)


def test_a_tiny_grpo_run_with_the_rubric_then_its_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["grpo", "--config", "tiny", "--output-dir", str(out), "--max-steps", "1"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 1 and Path(summary["final"], "model.safetensors").is_file()
    [step] = [r for r in read_metrics(out) if "loss" in r]
    # Every component of the RegionReasoner reward is logged by name, weight-0 diagnostics included.
    for name in ("scene", "focus", "think", "answer", "format", "accuracy", "non_repeat", "ref", "consistency"):
        assert isinstance(step.get(f"region_reasoner/{name}"), float), name
    assert main(["plot", str(out)]) == 0
    assert Path(json.loads(capsys.readouterr().out)["plot"]).stat().st_size > 1000
