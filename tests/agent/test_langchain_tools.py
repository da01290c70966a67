"""LangChain tools over memory, a segmenter, a detector and zoom: direct calls, errors as observations, a ReAct loop."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from pydantic import BaseModel, Field

from regionreasoner.agent import langchain_tools
from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.demo_scene import DemoObject, demo_scene
from regionreasoner.agent.langchain_tools import crop_from_artifact, region_tools
from regionreasoner.core.errors import ConfigError, ModelLoadError
from regionreasoner.core.geometry import Box, Point
from regionreasoner.core.images import LoadedImage
from regionreasoner.core.masks import Rle, box_to_mask, decode_rle, rle_from_any
from regionreasoner.core.types import RegionDraft, TurnDraft
from regionreasoner.memory import RegionMemory
from regionreasoner.tools.base import Detection
from regionreasoner.tools.segment import BoxSegmenter

DIALOGUE = "park"


class FakeDetector:
    """An explicit fake Detector: the same two detections for any phrases, and a record of each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    def detect(self, image: LoadedImage, phrases: Sequence[str]) -> list[Detection]:
        self.calls.append((image.hash, list(phrases)))
        return [
            Detection(box=Box(250.04, 330.0, 319.96, 400.0), score=0.91234, label="red ball"),
            Detection(box=Box(60.0, 140.0, 200.0, 360.0), score=0.5, label="tree"),
        ]


class BrokenSegmenter:
    """An explicit fake Segmenter whose weights are missing: an infrastructure failure, which must raise."""

    def segment(self, image: LoadedImage, boxes: Sequence[Box], points: Sequence[Point | None]) -> list[Rle]:
        raise ModelLoadError("no SAM2 weights at /nowhere", hint="pass a checkpoint folder")


class WrongSizeSegmenter:
    """An explicit fake Segmenter that breaks the protocol: a 4x4 mask for any image."""

    def segment(self, image: LoadedImage, boxes: Sequence[Box], points: Sequence[Point | None]) -> list[Rle]:
        return [BoxSegmenter().segment(LoadedImage(image.image.resize((4, 4)), hash=image.hash), boxes, points)[0]]


@pytest.fixture(scope="module")
def objects() -> dict[str, DemoObject]:
    return {o.name: o for o in demo_scene()[1]}


@pytest.fixture
def memory(tmp_path: Path, objects: dict[str, DemoObject]) -> Iterator[RegionMemory]:
    """A memory with dialogue "park" on the demo scene and one turn that found R1 (red ball) and R2 (blue box)."""
    with RegionMemory(f"sqlite:///{tmp_path}/memory.db") as mem:
        info = mem.put_image(demo_scene()[0])
        mem.create_dialogue(info.hash, id=DIALOGUE)
        ball, blue = objects["red ball"].box, objects["blue box"].box
        draft = TurnDraft(
            question="find the red ball and the blue box",
            rendered_question="find the red ball and the blue box",
            image=info.hash,
            frame="fixed:840x840",
            regions=[
                RegionDraft(box=ball, point=ball.center, label="red ball"),
                RegionDraft(box=blue, label="blue box"),
            ],
        )
        mem.append_turn(DIALOGUE, draft)
        yield mem


@pytest.fixture
def detector() -> FakeDetector:
    return FakeDetector()


@pytest.fixture
def tools(memory: RegionMemory, detector: FakeDetector) -> dict[str, BaseTool]:
    return {t.name: t for t in region_tools(memory, segmenter=BoxSegmenter(), detector=detector, zoom_size=224)}


def call(tool: BaseTool, args: dict[str, Any], call_id: str = "call-1") -> ToolMessage:
    """Invoke ``tool`` as a model's tool call does, so the result is a ToolMessage (content, artifact, status)."""
    message = tool.invoke(ToolCall(name=tool.name, args=args, id=call_id, type="tool_call"))
    assert isinstance(message, ToolMessage)
    return message


# ------------------------------------------------------------------------------------------------ construction


def test_import_does_not_import_langchain() -> None:
    code = "import sys, regionreasoner.agent.langchain_tools; assert 'langchain_core' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_tools_follow_the_components(memory: RegionMemory, detector: FakeDetector) -> None:
    assert [t.name for t in region_tools(memory)] == ["list_regions", "zoom_region"]
    assert [t.name for t in region_tools(memory, segmenter=BoxSegmenter(), detector=detector)] == [
        "list_regions",
        "segment_region",
        "detect_objects",
        "zoom_region",
    ]
    for tool in region_tools(memory, segmenter=BoxSegmenter(), detector=detector):
        assert isinstance(tool, BaseTool)
        assert isinstance(tool.args_schema, type) and issubclass(tool.args_schema, BaseModel)
        assert tool.handle_tool_error is True
        assert "original image" in tool.description and "[x1, y1, x2, y2]" in tool.description
        schema = convert_to_openai_tool(tool)["function"]
        assert schema["name"] == tool.name
        assert all("description" in p for p in schema["parameters"]["properties"].values())
    assert isinstance(region_tools(memory)[0], langchain_tools.ListRegionsTool)


def test_an_agent_gives_its_memory_and_segmenter(make_agent: Callable[..., RegionAgent]) -> None:
    agent = make_agent([], segmenter=BoxSegmenter())
    tools = region_tools(agent)
    assert [t.name for t in tools] == ["list_regions", "segment_region", "zoom_region"]
    assert all(t.memory is agent.memory for t in tools)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"memory": "sqlite://"}, "pass a RegionMemory or a RegionAgent"),
        ({"segmenter": object()}, "has no segment(image, boxes, points)"),
        ({"detector": BoxSegmenter()}, "has no detect(image, phrases)"),
        ({"zoom_size": 0}, "zoom_size=0"),
    ],
)
def test_bad_components_raise(memory: RegionMemory, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        region_tools(kwargs.pop("memory", memory), **kwargs)


# ------------------------------------------------------------------------------------------------ direct calls


def test_list_regions(tools: dict[str, BaseTool]) -> None:
    rows = json.loads(tools["list_regions"].invoke({"dialogue_id": DIALOGUE}))
    assert rows == [
        {
            "region": "R1",
            "box": [250.0, 330.0, 320.0, 400.0],
            "point": [285.0, 365.0],
            "label": "red ball",
            "has_mask": False,
        },
        {"region": "R2", "box": [360.0, 300.0, 470.0, 410.0], "point": None, "label": "blue box", "has_mask": False},
    ]


def test_segment_region_reports_and_returns_the_mask(
    tools: dict[str, BaseTool], objects: dict[str, DemoObject]
) -> None:
    message = call(tools["segment_region"], {"dialogue_id": DIALOGUE, "region": "R1"})
    assert message.status == "success"
    assert message.content == (
        "R1: mask of 4900 px, bounding box [250.0, 330.0, 320.0, 400.0] (original pixels, xyxy); "
        "it covers 100.0% of the region's box [250.0, 330.0, 320.0, 400.0]"
    )
    assert message.artifact["size"] == [480, 640] and isinstance(message.artifact["counts"], str)
    mask = decode_rle(rle_from_any(message.artifact))
    assert np.array_equal(mask, box_to_mask(objects["red ball"].box, 480, 640))


def test_detect_objects_by_dialogue_or_hash(
    tools: dict[str, BaseTool], memory: RegionMemory, detector: FakeDetector
) -> None:
    expected = [
        {"label": "red ball", "box": [250.0, 330.0, 320.0, 400.0], "score": 0.912},
        {"label": "tree", "box": [60.0, 140.0, 200.0, 360.0], "score": 0.5},
    ]
    image_hash = memory.dialogue(DIALOGUE).image
    assert json.loads(tools["detect_objects"].invoke({"image": DIALOGUE, "phrases": ["red ball", "tree"]})) == expected
    assert json.loads(tools["detect_objects"].invoke({"image": image_hash, "phrases": [" tree "]})) == expected
    assert detector.calls == [(image_hash, ["red ball", "tree"]), (image_hash, ["tree"])]


def test_zoom_region_sends_the_image_and_its_crop(tools: dict[str, BaseTool], objects: dict[str, DemoObject]) -> None:
    message = call(tools["zoom_region"], {"dialogue_id": DIALOGUE, "region": "R2"})
    assert isinstance(message.content, list)
    text, image_block = message.content
    assert isinstance(text, dict) and isinstance(image_block, dict)
    assert text["type"] == "text" and text["text"].startswith("zoomed into R2: the region [349.0, 289.0, 481.0, 421.0]")
    assert image_block["type"] == "image" and image_block["mime_type"] == "image/png"
    assert image_block["base64"] == message.artifact["png_base64"]
    zoomed, crop = crop_from_artifact(message.artifact)
    assert zoomed.size == crop.size == (224, 224)
    blue = objects["blue box"].box
    assert crop.box.intersection(blue) == blue  # the margin surrounds the region
    back = crop.to_original(Box(0.0, 0.0, 224.0, 224.0))
    assert back == crop.box
    assert zoomed.getpixel((112, 112)) == (40, 70, 200)  # the middle of the zoom is the blue box


def test_zoom_a_box_as_text_only(memory: RegionMemory) -> None:
    (zoom_tool,) = [t for t in region_tools(memory, zoom_image_content=False) if t.name == "zoom_region"]
    message = call(zoom_tool, {"dialogue_id": DIALOGUE, "box": [10, 10, 100, 100]})
    assert isinstance(message.content, str) and message.content.startswith("zoomed into box [10.0, 10.0, 100.0, 100.0]")
    assert message.artifact["crop_box"] == [1.0, 1.0, 109.0, 109.0] and message.artifact["crop_size"] == [448, 448]


def test_artifacts_survive_a_checkpointer(tools: dict[str, BaseTool]) -> None:
    serde = JsonPlusSerializer()
    for message in (
        call(tools["zoom_region"], {"dialogue_id": DIALOGUE, "region": "R1"}),
        call(tools["segment_region"], {"dialogue_id": DIALOGUE, "region": "R2"}),
    ):
        assert serde.loads_typed(serde.dumps_typed(message)) == message


# ------------------------------------------------------------------------------------------ errors are observations


@pytest.mark.parametrize(
    ("tool", "args", "message"),
    [
        ("segment_region", {"dialogue_id": DIALOGUE, "region": "R0"}, "'R0' is not a region name (it has R1, R2)"),
        ("segment_region", {"dialogue_id": DIALOGUE, "region": "X"}, "'X' is not a region name"),
        ("segment_region", {"dialogue_id": DIALOGUE, "region": "R9"}, "R9"),
        ("segment_region", {"dialogue_id": "nope", "region": "R1"}, "no dialogue 'nope'"),
        ("segment_region", {"dialogue_id": DIALOGUE}, "invalid arguments: region: Field required"),
        ("segment_region", {"dialogue_id": 5, "region": "R1"}, "dialogue_id: Input should be a valid string"),
        ("list_regions", {"dialogue_id": "nope"}, "no dialogue 'nope'"),
        ("detect_objects", {"image": "f" * 64, "phrases": ["ball"]}, "no stored image ffffffffffff"),
        ("detect_objects", {"image": "nope", "phrases": ["ball"]}, "no dialogue 'nope'"),
        ("detect_objects", {"image": DIALOGUE, "phrases": []}, "phrases: List should have at least 1 item"),
        ("detect_objects", {"image": DIALOGUE, "phrases": "ball"}, "phrases: Input should be a valid list"),
        ("detect_objects", {"image": DIALOGUE, "phrases": ["ball", " "]}, "phrases.1: String should have at least 1"),
        ("zoom_region", {"dialogue_id": DIALOGUE}, "give exactly one of region"),
        ("zoom_region", {"dialogue_id": DIALOGUE, "region": "R1", "box": [0, 0, 9, 9]}, "give exactly one of region"),
        ("zoom_region", {"dialogue_id": DIALOGUE, "box": [1, 2, 3]}, "box: List should have at least 4 items"),
        ("zoom_region", {"dialogue_id": DIALOGUE, "box": [700, 700, 800, 800]}, "lies outside the image (640x480)"),
        ("zoom_region", {"dialogue_id": DIALOGUE, "box": [90, 90, 10, 10]}, "is inverted"),
        ("zoom_region", {"dialogue_id": DIALOGUE, "region": "R12345678901234567890"}, "has no region R1234"),
        ("zoom_region", {"dialogue_id": "nope", "box": [0, 0, 50, 50]}, "no dialogue 'nope'"),
    ],
)
def test_errors_come_back_as_observations(
    tools: dict[str, BaseTool], tool: str, args: dict[str, Any], message: str
) -> None:
    result = call(tools[tool], args)
    assert result.status == "error"
    assert isinstance(result.content, str) and message in result.content
    assert tools[tool].invoke(args) == result.content  # a plain call returns the same text


def test_a_segmenter_that_breaks_the_protocol_is_an_observation(memory: RegionMemory) -> None:
    (tool,) = [t for t in region_tools(memory, segmenter=WrongSizeSegmenter()) if t.name == "segment_region"]
    result = call(tool, {"dialogue_id": DIALOGUE, "region": "R1"})
    assert result.status == "error" and "a 4x4 (HxW) mask for a 480x640 image" in str(result.content)


def test_infrastructure_failures_raise(memory: RegionMemory) -> None:
    (tool,) = [t for t in region_tools(memory, segmenter=BrokenSegmenter()) if t.name == "segment_region"]
    with pytest.raises(ModelLoadError, match="no SAM2 weights"):
        tool.invoke({"dialogue_id": DIALOGUE, "region": "R1"})


# --------------------------------------------------------------------------------------------- in a ReAct loop


class ScriptedChatModel(BaseChatModel):
    """An explicit fake chat model: its n-th reply is ``script[n]``, n being the AI messages already in the chat.

    ``bind_tools`` records the tool schemas it was given and returns the model itself.
    """

    script: list[AIMessage]
    bound: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        reply = self.script[sum(isinstance(m, AIMessage) for m in messages)]
        return ChatResult(generations=[ChatGeneration(message=reply)])

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        self.bound = [convert_to_openai_tool(t) for t in tools]
        return self


def tool_call(name: str, call_id: str, **args: Any) -> AIMessage:
    return AIMessage(content="", tool_calls=[ToolCall(name=name, args=args, id=call_id, type="tool_call")])


def test_react_agent_loop(tools: dict[str, BaseTool]) -> None:
    from langgraph.prebuilt import create_react_agent
    from langgraph.warnings import LangGraphDeprecatedSinceV10

    model = ScriptedChatModel(
        script=[
            tool_call("detect_objects", "c1", image=DIALOGUE, phrases=["red ball"]),
            tool_call("segment_region", "c2", dialogue_id=DIALOGUE, region="R1"),
            tool_call("zoom_region", "c3", dialogue_id=DIALOGUE, region="R2"),
            tool_call("segment_region", "c4", dialogue_id=DIALOGUE, region="R9"),
            tool_call("zoom_region", "c5", dialogue_id=DIALOGUE),
            AIMessage(content="The red ball is R1; R2 is a blue box."),
        ]
    )
    with warnings.catch_warnings():
        # WHY: its successor, langchain.agents.create_agent, lives in `langchain`, which is not a dependency.
        warnings.simplefilter("ignore", LangGraphDeprecatedSinceV10)
        agent = create_react_agent(model, list(tools.values()), checkpointer=InMemorySaver())
    out = agent.invoke({"messages": [HumanMessage("What is in the park?")]}, {"configurable": {"thread_id": "t1"}})

    assert {b["function"]["name"] for b in model.bound} == set(tools)
    results = {m.tool_call_id: m for m in out["messages"] if isinstance(m, ToolMessage)}
    assert sorted(results) == ["c1", "c2", "c3", "c4", "c5"]
    assert json.loads(str(results["c1"].content))[0] == {
        "label": "red ball",
        "box": [250.0, 330.0, 320.0, 400.0],
        "score": 0.912,
    }
    assert str(results["c2"].content).startswith("R1: mask of 4900 px") and results["c2"].artifact["size"] == [480, 640]
    zoom_content = results["c3"].content
    assert isinstance(zoom_content, list) and [b["type"] for b in zoom_content] == ["text", "image"]  # type: ignore[index]
    assert crop_from_artifact(results["c3"].artifact)[1].size == (224, 224)
    assert results["c4"].status == "error" and "R9" in str(results["c4"].content)
    assert results["c5"].status == "error" and "give exactly one of region" in str(results["c5"].content)
    assert all(results[c].status == "success" for c in ("c1", "c2", "c3"))
    assert out["messages"][-1].content == "The red ball is R1; R2 is a blue box."
    # the checkpointed thread holds the same messages, artifacts included
    assert agent.get_state({"configurable": {"thread_id": "t1"}}).values["messages"] == out["messages"]
