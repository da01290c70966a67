"""The ``--lane`` plugin (tests/_lane.py): a lane that ran no test fails, in words; the Makefile's lanes use it."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest_plugins = ("pytester",)

SKIPS = """
import pytest

def test_a():
    pytest.skip("no server here")

@pytest.mark.skip(reason="no server here")
def test_b():
    pass
"""

PASSES = """
import pytest

def test_passes():
    assert True

def test_skips():
    pytest.skip("no server here")
"""


Run = Callable[..., pytest.RunResult]


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``run(tests, *args)``: pytest in process on ``tests`` (file name -> text), the lane plugin as their conftest."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # the installed plugins cost ~1 s a run
    pytester.makeconftest((ROOT / "tests/_lane.py").read_text())
    pytester.makeini("[pytest]\nmarkers =\n    postgres: a marker to select by\n")

    def run(tests: dict[str, str], *args: str) -> pytest.RunResult:
        for name, text in tests.items():
            (pytester.path / name).write_text(text)
        return pytester.runpytest_inprocess(*args)

    return run


def test_a_lane_where_everything_skipped_fails_and_says_why(run: Run) -> None:
    result = run({"test_skips.py": SKIPS}, "--lane", "postgres")
    assert result.ret == 1, result.stdout.str()
    assert "lane postgres ran no test: 0 passed, 2 skipped (no server here x2)" in result.stdout.str()


def test_a_lane_where_a_test_passed_passes(run: Run) -> None:
    result = run({"test_passes.py": PASSES}, "--lane", "postgres")
    assert result.ret == 0, result.stdout.str()
    assert "ran no test" not in result.stdout.str()


def test_without_a_lane_skips_alone_still_pass(run: Run) -> None:
    result = run({"test_skips.py": SKIPS})
    assert result.ret == 0, result.stdout.str()
    assert "ran no test" not in result.stdout.str()


@pytest.mark.parametrize(
    ("tests", "args", "said"),
    [
        ({"test_passes.py": PASSES}, ["-m", "postgres"], "0 passed, 2 deselected"),
        ({"notes.txt": "no tests here"}, [], "0 passed, no test collected"),
        (
            {"test_x.py": "import pytest\n\n@pytest.mark.xfail\ndef test_x():\n    assert False\n"},
            [],
            "0 passed, 1 xfailed",
        ),
    ],
)
def test_deselected_uncollected_or_xfailed_lanes_fail(
    run: Run, tests: dict[str, str], args: list[str], said: str
) -> None:
    result = run(tests, "--lane", "vllm", *args)
    assert result.ret == 1, result.stdout.str()
    assert f"lane vllm ran no test: {said}" in result.stdout.str()


def test_a_failing_lane_keeps_its_failure_and_gets_the_verdict(run: Run) -> None:
    result = run({"test_f.py": "def test_f():\n    assert False\n"}, "--lane", "main")
    assert result.ret == 1, result.stdout.str()
    assert "lane main ran no test: 0 passed, 1 failed" in result.stdout.str()


def test_collect_only_is_not_a_lane_run(run: Run) -> None:
    result = run({"test_skips.py": SKIPS}, "--lane", "main", "--collect-only")
    assert result.ret == 0, result.stdout.str()


def test_every_makefile_lane_names_itself() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target, lane in (("pytest", "main"), ("test-postgres", "postgres"), ("test-vllm", "vllm")):
        body = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
        assert body is not None, f"no {target} target in the Makefile"
        assert re.search(rf"-m pytest\b.*--lane {lane}\b", body.group(1)), f"make {target} runs pytest without --lane"
