"""A pytest plugin: a test lane that ran no test fails, and says why.

``pytest --lane postgres -m postgres`` passes only when at least one test passed. A lane where every collected
test skipped (no server, no vllm), was deselected, or where nothing was collected at all, exits 1 with one line:

    lane postgres ran no test: 0 passed, 12 skipped (needs a Postgres server: ... x12)

Without ``--lane`` nothing changes. ``tests/conftest.py`` loads this file, so every lane of the Makefile has it;
it imports nothing from the project, so a test can load it into a pytester run as that run's conftest.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--lane NAME``: fail the run, naming the lane, when no test passed."""
    parser.addoption(
        "--lane",
        default=None,
        metavar="NAME",
        help="name of the test lane (main, postgres, vllm): the run fails when it ran no test (0 passed)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Count the lane's outcomes when ``--lane`` is given (and this is not a ``--collect-only`` run)."""
    name = config.getoption("--lane")
    if name and not config.getoption("collectonly"):
        config.pluginmanager.register(Lane(name), "regionreasoner-lane")


class Lane:
    """The outcomes of one lane's run; at the end, a failure when none passed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.passed = 0
        self.failed = 0
        self.xfailed = 0
        self.deselected = 0
        self.skipped: Counter[str] = Counter()
        self.verdict: str | None = None

    def summary(self) -> str:
        """``0 passed, 12 skipped (reason x12), 3 deselected``."""
        parts = [f"{self.passed} passed"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.skipped:
            reasons = ", ".join(f"{reason} x{n}" for reason, n in self.skipped.most_common(3))
            if len(self.skipped) > 3:
                reasons += f", {len(self.skipped) - 3} more reasons"
            parts.append(f"{self.skipped.total()} skipped ({reasons})")
        if self.xfailed:
            parts.append(f"{self.xfailed} xfailed")
        if self.deselected:
            parts.append(f"{self.deselected} deselected")
        if len(parts) == 1:
            parts.append("no test collected")
        return ", ".join(parts)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Count every test once: a pass is a passed call; a skip or failure may come from any phase."""
        if hasattr(report, "wasxfail"):
            self.xfailed += report.when == "call" or report.skipped
        elif report.skipped:
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            self.skipped[reason.removeprefix("Skipped: ")] += 1
        elif report.failed:
            self.failed += 1
        elif report.when == "call":
            self.passed += 1

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        """Count tests deselected by ``-m`` / ``-k``."""
        self.deselected += len(items)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Turn a run where no test passed into a failure (exit 1), unless it failed already."""
        if self.passed:
            return
        self.verdict = f"lane {self.name} ran no test: {self.summary()}"
        if exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> Generator[None, None, None]:
        """Print the lane's verdict after every other summary (the short test summary included)."""
        yield
        if self.verdict:
            terminalreporter.write_sep("=", self.verdict, red=True, bold=True)
