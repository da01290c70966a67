"""The think -> tools -> think loop: a tool call runs, its response joins the message, the loop is bounded."""

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import pytest

from regionreasoner.agent.api import RegionAgent
from regionreasoner.core.errors import ConfigError, ToolError
from regionreasoner.core.images import LoadedImage
from regionreasoner.core.types import ProblemKind, TurnStatus
from regionreasoner.tools.base import Tool, ToolResult

ANSWER = '<answer>[{"bbox_2d": [10,10,100,100], "point_2d": [50,50]}]</answer>'


class ImageSizeTool(Tool):
    """An explicit fake: reports the image size, and counts its calls."""

    name: ClassVar[str] = "image_size"
    description: ClassVar[str] = "the image's width and height in pixels"
    inputs: ClassVar[Mapping[str, Any]] = {"type": "object", "properties": {"unit": {"type": "string"}}}

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.setups = 0

    def setup(self) -> None:
        self.setups += 1

    def run(self, image: LoadedImage, arguments: Mapping[str, Any]) -> ToolResult:
        self.calls += 1
        return ToolResult(text=f"{image.width}x{image.height} {arguments.get('unit', 'px')}")


def test_tool_call_and_response(make_agent: Callable[..., RegionAgent], scene) -> None:  # type: ignore[no-untyped-def]
    image, _ = scene
    tool = ImageSizeTool()
    text = (
        '<scene> a park </scene>\n<think> how big is it? <tool_call>{"name": "image_size", "arguments": {}}</tool_call>'
        "\n<tool_response>640x480 px</tool_response>\n so the ball is small </think>\n" + ANSWER
    )
    agent = make_agent([text], tools=[tool], constrained=False)
    turn = agent.dialogue(image.image).ask("Find the ball.")
    assert tool.calls == 1 and tool.setups == 1
    assert turn.status is TurnStatus.OK and "640x480 px" in (turn.sections.think or "")
    stops = [r.stop for r in agent.policy.requests]  # type: ignore[attr-defined]
    assert stops[1] == stops[2] == ("</think>", "</tool_call>")  # the budget (3 calls) is not spent


def test_tool_loop_is_bounded_and_errors_are_observations(make_agent: Callable[..., RegionAgent], scene) -> None:  # type: ignore[no-untyped-def]
    image, _ = scene
    call = '<tool_call>{"name": "nope", "arguments": {}}</tool_call>'
    text = (
        f"<scene> a park </scene>\n<think> {call}\n<tool_response>error: no tool named 'nope' (tools: ['image_size'])"
        f"</tool_response>\n {call}\n<tool_response>error: no tool named 'nope' (tools: ['image_size'])"
        "</tool_response>\n done </think>\n" + ANSWER
    )
    agent = make_agent([text], tools=[ImageSizeTool()], constrained=False, max_tool_iterations=2)
    turn = agent.dialogue(image.image).ask("Find the ball.")
    assert turn.status is TurnStatus.OK
    assert [p.kind for p in turn.problems].count(ProblemKind.TOOL_ERROR) == 2
    stops = [r.stop for r in agent.policy.requests]  # type: ignore[attr-defined]
    assert stops[1:4] == [("</think>", "</tool_call>"), ("</think>", "</tool_call>"), ("</think>",)]


def test_tools_with_repeated_names_are_refused(make_agent: Callable[..., RegionAgent]) -> None:
    with pytest.raises(ConfigError, match="repeated names"):
        make_agent([], tools=[ImageSizeTool(), ImageSizeTool()])


def test_tool_argument_names_are_checked(scene) -> None:  # type: ignore[no-untyped-def]
    image, _ = scene
    with pytest.raises(ToolError, match="unit"):
        ImageSizeTool()(image, {"colour": "red"})
