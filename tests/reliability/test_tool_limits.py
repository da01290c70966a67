"""A tool that hangs is stopped by its time limit (issue 9, "the suite"): the turn goes on with an observation.

Before ``Tool.timeout_s``, a ``run`` that never returned hung the ``tools`` node, and so the turn and the caller, for
ever.  Now the call runs in a daemon worker thread: past the limit it becomes the ToolError observation "tool X
exceeded its time limit of N s", the think piece continues, and the turn is stored.  Python cannot kill the thread;
it is abandoned, and the tool refuses further calls until it returns.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.demo_scene import demo_scene
from regionreasoner.core.errors import ConfigError, ToolError
from regionreasoner.core.images import LoadedImage, load_image
from regionreasoner.core.types import ProblemKind, TurnStatus
from regionreasoner.policies.scripted import ScriptedPolicy
from regionreasoner.tools.base import Tool, ToolResult


@pytest.fixture(scope="module")
def image() -> LoadedImage:
    return load_image(demo_scene()[0])


@pytest.fixture
def make_agent(tmp_path: Path) -> Iterator[Callable[..., RegionAgent]]:
    agents: list[RegionAgent] = []

    def make(turns: list[str], **kwargs: object) -> RegionAgent:
        agent = RegionAgent(ScriptedPolicy(turns), memory=f"sqlite:///{tmp_path}/memory.db", **kwargs)  # type: ignore[arg-type]
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.close()


ANSWER = '<answer>[{"bbox_2d": [10,10,100,100], "point_2d": [50,50]}]</answer>'


class HangingTool(Tool):
    """An explicit fake that blocks until ``release`` is set (or raises / answers at once when told so)."""

    name: ClassVar[str] = "hang"
    description: ClassVar[str] = "never answers"
    inputs: ClassVar[Mapping[str, Any]] = {"type": "object", "properties": {}}
    timeout_s = 0.3

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.started = 0
        self.finished = 0
        self.thread_names: list[str] = []

    def run(self, image: LoadedImage, arguments: Mapping[str, Any]) -> ToolResult:
        self.started += 1
        self.thread_names.append(threading.current_thread().name)
        self.release.wait(30)
        self.finished += 1
        return ToolResult(text="late")


class FailingTool(HangingTool):
    name: ClassVar[str] = "fail"

    def run(self, image: LoadedImage, arguments: Mapping[str, Any]) -> ToolResult:
        raise ToolError("no such thing here")


def test_a_hung_tool_becomes_an_observation_and_the_turn_goes_on(
    make_agent: Callable[..., RegionAgent], image: LoadedImage
) -> None:
    tool = HangingTool()
    observation = "error: tool 'hang' exceeded its time limit of 0.3 s (answer without it)"
    text = (
        '<scene> a park </scene>\n<think> <tool_call>{"name": "hang", "arguments": {}}</tool_call>'
        f"\n<tool_response>{observation}</tool_response>\n the ball then </think>\n" + ANSWER
    )
    agent = make_agent([text], tools=[tool], constrained=False)
    t0 = time.monotonic()
    turn = agent.dialogue(image.image).ask("Find the ball.")
    elapsed = time.monotonic() - t0
    try:
        assert elapsed < 10, f"the turn waited {elapsed:.1f} s for a tool limited to 0.3 s"
        assert turn.status is TurnStatus.OK and [r.id for r in turn.regions] == ["R1"]
        assert observation in (turn.sections.think or "")
        tool_problems = [p.message for p in turn.problems if p.kind is ProblemKind.TOOL_ERROR]
        assert tool_problems == ["tool 'hang' exceeded its time limit of 0.3 s (answer without it)"]
        assert tool.started == 1 and tool.finished == 0  # abandoned, still blocked
        (worker,) = [t for t in threading.enumerate() if t.name == "tool-hang"]
        assert worker.daemon  # does not keep the process alive
    finally:
        tool.release.set()


def test_an_abandoned_call_blocks_the_tool_until_it_returns(image: LoadedImage) -> None:
    tool = HangingTool()
    with pytest.raises(ToolError, match=r"exceeded its time limit of 0\.3 s"):
        tool(image, {})
    with pytest.raises(ToolError, match="still running a call that exceeded its time limit"):
        tool(image, {})
    assert tool.started == 1  # the second call did not start another thread
    tool.release.set()
    deadline = time.monotonic() + 10
    while tool.finished < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tool(image, {}).text == "late"  # released: it answers again (release stays set)
    assert tool.thread_names == ["tool-hang", "tool-hang"]


def test_errors_and_results_cross_the_worker_thread(image: LoadedImage) -> None:
    with pytest.raises(ToolError, match="no such thing here"):
        FailingTool()(image, {})
    quick = HangingTool()
    quick.release.set()
    assert quick(image, {}).text == "late"


@pytest.mark.parametrize("limit", [0, -1, float("nan"), float("inf"), "5", True])
def test_a_bad_time_limit_names_the_fix(image: LoadedImage, limit: object) -> None:
    tool = HangingTool()
    tool.release.set()
    tool.timeout_s = limit  # type: ignore[assignment]
    with pytest.raises(ConfigError, match=r"HangingTool\.timeout_s=.*set it to a number of seconds > 0"):
        tool(image, {})
