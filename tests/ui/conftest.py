"""The UI lane: the real server (``regionreasoner ui``) in a subprocess, driven by Debian's Chromium through Playwright.

Marked ``ui``; skipped, saying what to install, without Playwright, FastAPI or ``/usr/bin/chromium``
(``bash .ci/ui-env.sh`` installs the browser; Playwright's own browser download needs the internet).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")


def pytest_configure(config: pytest.Config) -> None:
    # Registered here as well as (once added) in pyproject's marker list, so --strict-markers accepts it either way.
    config.addinivalue_line("markers", "ui: drives the web page in a headless Chromium (bash .ci/ui-env.sh)")


def _missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "needs Playwright for Python: pip install 'playwright>=1.50' (in the dev extra)"
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        return "needs the server's packages: pip install -e '.[serve]'"
    if not os.access(CHROMIUM, os.X_OK):
        return f"needs Debian's Chromium at {CHROMIUM}: run `bash .ci/ui-env.sh` (make test-ui does)"
    return None


@pytest.fixture(scope="module")
def ui_server(
    request: pytest.FixtureRequest,
    servers: SimpleNamespace,
    model_cache: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """``regionreasoner ui --model tiny`` on a free loopback port, with its own SQLite memory; yields its base URL."""
    if reason := _missing():
        pytest.skip(reason)
    request.getfixturevalue("tiny_qwen25")  # built in the session's cache (only when the lane can run)
    folder = tmp_path_factory.mktemp("ui-server")
    port = servers.free_port()
    env = {**os.environ, "REGIONREASONER_CACHE": str(model_cache)}  # the session's tiny checkpoint, not ~/.cache
    args = [sys.executable, "-m", "regionreasoner.agent.cli", "ui", "--model", "tiny", "--port", str(port)]
    args += ["--memory", f"sqlite:///{folder / 'rr.db'}"]
    base = f"http://127.0.0.1:{port}"
    with servers.running(args, ready_url=f"{base}/readyz", log=folder / "server.log", env=env, cwd=folder):
        yield base


@pytest.fixture(scope="module")
def browser(ui_server: str) -> Iterator[Any]:
    """A headless Chromium (Debian's), closed at the end of the module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def ui(browser: Any, ui_server: str) -> Iterator[SimpleNamespace]:
    """A fresh page (own storage) open on the server's /ui: ``ui.page``, ``ui.base`` and ``ui.errors``.

    ``ui.errors`` collects the page's uncaught exceptions and unhandled rejections (API errors are expected in some
    tests and are checked where they appear, in the page's error line).
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{ui_server}/ui")
    page.wait_for_selector("body[data-ready='true']")
    try:
        yield SimpleNamespace(page=page, base=ui_server, errors=errors)
    finally:
        context.close()
