"""Importing the suite is cheap: no torch, no transformers, no matplotlib until a backend or a plot is used."""

from __future__ import annotations

import subprocess
import sys

MODULES = (
    "backends", "cli", "dpg", "embed", "exact", "geneval", "loading", "meta", "report", "run", "similarity",
    "world_dpg", "world_prompts", "world_render", "world_words",
)  # fmt: skip


def test_modules_import_without_heavy_packages() -> None:
    imports = "; ".join(f"import regionreasoner.evals.generation.{m}" for m in MODULES)
    code = (
        f"import sys; {imports}\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'matplotlib', 'scipy') if m in sys.modules)\n"
        "assert not heavy, f'imported: {heavy}'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
