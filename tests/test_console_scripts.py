"""Every console script the project declares is installed, points at a module that exists, and answers ``--help``."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from importlib.metadata import EntryPoint, distribution
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _declared() -> dict[str, str]:
    """``[project.scripts]`` of pyproject.toml: name -> ``module:function``."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        return dict(tomllib.load(f)["project"]["scripts"])


def _installed() -> dict[str, EntryPoint]:
    """The console scripts of the installed ``regionreasoner`` distribution (the editable install's metadata)."""
    return {ep.name: ep for ep in distribution("regionreasoner").entry_points if ep.group == "console_scripts"}


def test_installed_scripts_are_the_declared_ones() -> None:
    installed = {name: ep.value for name, ep in _installed().items()}
    assert installed == _declared(), (
        "the installed console scripts differ from pyproject.toml's [project.scripts]: reinstall with "
        "`.venv/bin/python -m pip install -c .venv/constraints.txt -e '.[dev,postgres]'` (or `make venv`)"
    )
    assert installed, "pyproject.toml declares no console script"


@pytest.mark.parametrize("name", sorted(_declared()))
def test_script_module_exists_and_help_prints_usage(name: str) -> None:
    ep = _installed().get(name)
    assert ep is not None, f"{name} is declared in pyproject.toml but not installed: reinstall the package"
    assert importlib.util.find_spec(ep.module) is not None, (
        f"{name} points at {ep.value}: module {ep.module} is missing"
    )
    assert callable(ep.load()), f"{name} points at {ep.value}, which is not callable"
    # The script the installer wrote, next to this interpreter (sys.executable is not resolved: a venv's python is
    # a link to the base interpreter, its scripts are not beside that).
    script = Path(sys.executable).parent / name
    assert script.is_file(), f"{name} is declared but not installed at {script}: reinstall the package"
    run = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"{name} --help exited {run.returncode}:\n{run.stderr[-4000:]}"
    assert run.stdout.startswith(f"usage: {name}"), f"{name} --help printed no usage text:\n{run.stdout[:2000]}"
