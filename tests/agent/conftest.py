"""Fixtures for the agent tests: the demo scene, scripted turns written in the 840x840 frame, agents."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.demo_scene import DemoObject, demo_scene
from regionreasoner.core.citations import render_bbox
from regionreasoner.core.frames import FixedResizeFrame
from regionreasoner.core.images import LoadedImage, load_image
from regionreasoner.core.protocol import AnswerObject, format_action
from regionreasoner.policies.scripted import ScriptedPolicy

FRAME = FixedResizeFrame(840, 840)
SIZE = (640, 480)


@pytest.fixture(scope="session")
def scene() -> tuple[LoadedImage, dict[str, DemoObject]]:
    image, objects = demo_scene()
    return load_image(image), {o.name: o for o in objects}


def answer_for(obj: DemoObject) -> AnswerObject:
    """The exact answer for an object, in the 840x840 frame."""
    return AnswerObject(box=FRAME.box_to_model(obj.box, SIZE), point=FRAME.point_to_model(obj.box.center, SIZE))


def scripted_turn(target: DemoObject, cite: DemoObject | None = None, *, scene_text: str = "a sunny park") -> str:
    """A well-formed turn finding ``target``; citing ``cite`` (by its 840-frame box) in focus and think."""
    if cite is None:
        return format_action(scene=scene_text, think=f"the {target.name}", objects=[answer_for(target)])
    ref = render_bbox(FRAME.box_to_model(cite.box, SIZE))
    return format_action(
        scene=scene_text,
        focus=f"the {cite.name}",
        think=f"the target is related to the reference {ref}, so it is the {target.name}",
        objects=[answer_for(target)],
    )


@pytest.fixture
def scripted() -> Callable[..., str]:
    """The :func:`scripted_turn` helper."""
    return scripted_turn


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
