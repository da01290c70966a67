"""Importing the storage-side packages stays cheap: no torch, no transformers, no alembic."""

from __future__ import annotations

import subprocess
import sys


def test_core_and_memory_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import regionreasoner.core, regionreasoner.memory\n"
        "from regionreasoner.memory import RegionMemory, ImageStore, default_url, upgrade, current\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'alembic') if m in sys.modules)\n"
        "assert not heavy, f'imported: {heavy}'\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_memory_exports_are_lazy_and_listed() -> None:
    code = (
        "import sys\n"
        "import regionreasoner.memory as m\n"
        "assert 'sqlalchemy' not in sys.modules, 'import regionreasoner.memory imported sqlalchemy'\n"
        "assert sorted(m.__all__) == sorted(n for n in m.__all__ if getattr(m, n) is not None)\n"
        "try:\n"
        "    m.nothing_here\n"
        "except AttributeError as exc:\n"
        "    assert 'nothing_here' in str(exc)\n"
        "else:\n"
        "    raise AssertionError('missing attribute did not raise')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
