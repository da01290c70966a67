"""The wheel holds only regionreasoner/..., and the editable install exposes the same module names."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CARD_FOLDERS = ["core", "memory", "policies", "tools", "agent", "trainers", "evals"]


def _declared_packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["setuptools"]["packages"])


def _source_packages() -> list[str]:
    found = []
    for folder in CARD_FOLDERS:
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(ROOT).parts
            found.append(".".join(["regionreasoner", *rel]))
    return found


def test_every_source_package_is_declared() -> None:
    assert sorted(_declared_packages()) == sorted(_source_packages())


def test_no_torchvision_anywhere() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [r for extra in project["optional-dependencies"].values() for r in extra]
    requirements = list(project["dependencies"]) + extras
    assert not [r for r in requirements if "torchvision" in r]
    assert any(r.startswith("torch>=") and "<2.14" in r for r in project["dependencies"])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Build from a clean copy: setuptools reuses an in-tree build/ folder, which can hold files deleted since.
    src = tmp_path_factory.mktemp("src") / "regionreasoner"
    ignore = shutil.ignore_patterns(
        ".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".*cache", ".typecheck"
    )
    shutil.copytree(ROOT, src, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
        cwd=out,
    )
    (path,) = out.glob("regionreasoner-*.whl")
    return path


def test_wheel_contains_only_regionreasoner(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    dist_info = [n for n in names if n.split("/")[0].endswith(".dist-info")]
    payload = [n for n in names if n not in dist_info]
    assert payload and all(n.startswith("regionreasoner/") for n in payload), payload
    assert not any("tests/" in n or n.startswith(("core/", "memory/", "tools/")) for n in names)
    # Package data travels with it.
    assert "regionreasoner/memory/alembic.ini" in names
    assert "regionreasoner/core/py.typed" in names


def test_editable_install_exposes_the_wheel_module_names(wheel: Path) -> None:
    modules = {
        n[: -len(".py")].replace("/__init__", "").replace("/", ".")
        for n in zipfile.ZipFile(wheel).namelist()
        if n.endswith(".py") and "/migrations/" not in n
    }
    for name in sorted(modules):
        if name.endswith((".cli", "__main__")):
            continue
        module = importlib.import_module(name)
        origin = Path(module.__file__ or "")
        assert origin.is_relative_to(ROOT), f"{name} imported from {origin}, not from the checkout"
