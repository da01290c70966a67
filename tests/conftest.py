"""Shared test set-up: no network, offline model hubs, tiny checkpoints, and Postgres behind one switch."""

from __future__ import annotations

import importlib.util
import io
import ipaddress
import os
import signal
import socket
import struct
import subprocess
import time
import urllib.request
import uuid
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

# Nothing may download weights or data in tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OTEL_SDK_DISABLED", "false")


def _load_lane_plugin() -> ModuleType:
    """tests/_lane.py, loaded by path: tests/ is not a package, and ``--import-mode=importlib`` adds no path."""
    spec = importlib.util.spec_from_file_location("regionreasoner_tests_lane", Path(__file__).with_name("_lane.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# `--lane NAME` (every Makefile lane passes one): a run in which no test passed fails, naming the lane.
_lane = _load_lane_plugin()
pytest_addoption = _lane.pytest_addoption
pytest_configure = _lane.pytest_configure

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_loopback(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0] if isinstance(address, tuple) else address
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if not _is_loopback(address):
        raise OSError(f"tests may not open network connections (tried {address!r}); use 127.0.0.1 servers")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if not _is_loopback(address):
        raise OSError(f"tests may not open network connections (tried {address!r}); use 127.0.0.1 servers")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True)
def _no_network(request: pytest.FixtureRequest) -> Iterator[None]:
    """Refuse every non-loopback connection unless a test is marked ``network_ok``."""
    if request.node.get_closest_marker("network_ok"):
        yield
        return
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = _real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A per-session cache folder for the tiny checkpoints (tests never touch the user's cache)."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def tiny_qwen25(model_cache: Path) -> Path:
    """A tiny random Qwen2.5-VL checkpoint (built offline, once per session)."""
    from regionreasoner.policies.tiny import tiny_model_path

    return tiny_model_path("qwen2.5-vl", cache_dir=model_cache)


@pytest.fixture(scope="session")
def tiny_qwen3(model_cache: Path) -> Path:
    """A tiny random Qwen3-VL checkpoint (built offline, once per session)."""
    from regionreasoner.policies.tiny import tiny_model_path

    return tiny_model_path("qwen3-vl", cache_dir=model_cache)


@pytest.fixture(scope="session")
def tiny_sam2(model_cache: Path) -> Path:
    """A tiny random SAM2 checkpoint folder (``Sam2Model``, 256x256 input), loaded like facebook/sam2.1-*."""
    from regionreasoner.tools.tiny import build_tiny_sam2

    return build_tiny_sam2(model_cache / "tiny-sam2")


@pytest.fixture(scope="session")
def tiny_grounding_dino(model_cache: Path) -> Path:
    """A tiny random Grounding DINO checkpoint folder, loaded like IDEA-Research/grounding-dino-tiny."""
    from regionreasoner.tools.detect_tiny import build_tiny_grounding_dino

    return build_tiny_grounding_dino(model_cache / "tiny-grounding-dino")


@pytest.fixture(scope="session")
def tiny_llava(model_cache: Path) -> Path:
    """A tiny random LLaVA checkpoint (a family driven through its own processor)."""
    from regionreasoner.policies.tiny import tiny_model_path

    return tiny_model_path("llava", cache_dir=model_cache)


POSTGRES_ENV = "REGIONREASONER_TEST_POSTGRES_URL"
NO_POSTGRES = (
    f"needs a Postgres server: run `make test-postgres`, or set {POSTGRES_ENV}="
    "postgresql+psycopg://postgres@127.0.0.1:54329/postgres"
)


@contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """Create a uniquely named database on the server, yield its URL, drop it afterwards."""
    name = f"rr_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty Postgres database (skipped, with the way to run it, when no server is configured)."""
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        pytest.skip(NO_POSTGRES)
    with fresh_postgres_database(server) as url:
        yield url


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(
    args: Sequence[str],
    *,
    ready_url: str,
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 240.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start a server in its own process group, wait until ``ready_url`` answers 200, stop it by its PID afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(args), env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"{args[0]} exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(ready_url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{ready_url} did not answer within {timeout} s:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def servers() -> SimpleNamespace:
    """``servers.free_port()`` and ``servers.running(args, ready_url=..., log=...)`` for tests that start servers."""
    return SimpleNamespace(free_port=free_port, running=running_server)


def raw_png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    """A PNG written by hand, so that headers Pillow would refuse to write (zero size, huge size) can be tested."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def make_raw_png() -> Callable[[int, int, int, int, bytes], bytes]:
    """:func:`raw_png`: ``make_raw_png(width, height, bit_depth, colour_type, rows)``."""
    return raw_png


@pytest.fixture(scope="session")
def bad_image_bytes() -> dict[str, bytes]:
    """Encoded images that must be refused: truncated, zero-size, a decompression bomb, animated, not an image."""
    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    full = buf.getvalue()
    gif = io.BytesIO()
    frames = [Image.new("RGB", (8, 8), (80 * i, 0, 0)) for i in range(3)]
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=50)
    return {
        "truncated png": full[: len(full) // 2],
        "zero-size png": raw_png(0, 10, 8, 0, b""),
        "decompression bomb": raw_png(60000, 60000, 8, 0, b"\x00" * 60001),
        "animated gif": gif.getvalue(),
        "not an image": b"hello, this is not an image",
    }
