"""Untrained weights are never served silently: a logged warning names them and says how to load real ones."""

import logging
from pathlib import Path

import pytest

from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.context import load_policy
from regionreasoner.agent.graph import warn_if_served_untrained


def test_loading_the_tiny_model_warns(tiny_qwen25: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="regionreasoner"):
        load_policy(str(tiny_qwen25))
    assert "RANDOM, UNTRAINED" in caplog.text and "REGIONREASONER_MODEL=" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="regionreasoner"):
        RegionAgent.from_pretrained(tiny_qwen25, memory="sqlite://").close()
    assert "RANDOM, UNTRAINED" in caplog.text


def test_the_demo_says_it_in_its_own_words_only(tiny_qwen25: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="regionreasoner"):
        load_policy(str(tiny_qwen25), warn_untrained=False)
    assert "UNTRAINED" not in caplog.text


def test_served_graph_start_up(
    tiny_qwen25: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("REGIONREASONER_MODEL", raising=False)
    with caplog.at_level(logging.WARNING, logger="regionreasoner"):
        assert warn_if_served_untrained()
    assert "REGIONREASONER_MODEL is unset" in caplog.text
    monkeypatch.setenv("REGIONREASONER_MODEL", str(tiny_qwen25))
    assert warn_if_served_untrained()
    real = tmp_path / "real"
    real.mkdir()
    monkeypatch.setenv("REGIONREASONER_MODEL", str(real))
    caplog.clear()
    assert not warn_if_served_untrained() and "UNTRAINED" not in caplog.text
