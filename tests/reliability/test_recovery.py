"""Crash recovery (issue 9, defect 5): a turn key is checked before any model call, and a crash anywhere heals.

Re-asking a turn with the key of a stored turn returns that turn without calling the model (it used to re-run the
model and then raise ``TurnConflictError``, because the stored content hash covered latency and the trace id).  A
process killed in the middle of a turn (``os._exit`` in a child: at the start of resolve, focus, tools, ground or
remember, inside the scene, focus, think or answer model call) or between the memory write and the checkpoint write
leaves a dialogue that the same question with the same key completes: memory then holds the turn once, regions
numbered R1..Rn without gaps, and the checkpoint agrees with the memory.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.checkpoint import make_checkpointer
from regionreasoner.agent.demo_scene import demo_scene
from regionreasoner.core.errors import TurnConflictError
from regionreasoner.core.images import LoadedImage
from regionreasoner.core.protocol import AnswerObject, format_action
from regionreasoner.core.types import TurnDraft, TurnStatus, Usage
from regionreasoner.memory import RegionMemory
from regionreasoner.memory.engine import BUSY_TIMEOUT_MS
from regionreasoner.policies.scripted import ScriptedPolicy
from regionreasoner.tools.base import Tool, ToolResult


def _turn(x: int, think: str = "the ball", focus: str | None = None) -> str:
    """A well-formed scripted turn (840x840 frame) finding one box at ``x``."""
    return format_action(
        scene="a park",
        focus=focus,
        think=think,
        objects=[AnswerObject(box=(x, 10, x + 90, 100), point=(x + 45, 55))],
    )


# The killed dialogue: turn 1 calls a tool from <think>, turn 2 cites R1 (so it writes <focus>); every node runs.
TOOL_THINK = (
    'the ball <tool_call>{"name": "echo", "arguments": {}}</tool_call>\n<tool_response>echo</tool_response>\n small'
)
KILLED_TURNS = [_turn(10, think=TOOL_THINK), _turn(200, think="right of bbox=[10, 10, 100, 100]", focus="a red ball")]
QUESTIONS = [("Find the red ball.", "k1"), ("Find the blue box right of R1.", "k2")]


def _requests(agent: RegionAgent) -> int:
    policy = agent.policy
    assert isinstance(policy, ScriptedPolicy)
    return len(policy.requests)


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[list[RegionAgent]]:
    made: list[RegionAgent] = []
    yield made
    for agent in made:
        agent.close()


def _agent(agents: list[RegionAgent], tmp_path: Path, turns: list[str], **kwargs: object) -> RegionAgent:
    agent = RegionAgent(ScriptedPolicy(turns), memory=f"sqlite:///{tmp_path}/memory.db", **kwargs)  # type: ignore[arg-type]
    agents.append(agent)
    return agent


def test_a_stored_key_is_returned_without_a_model_call(agents: list[RegionAgent], tmp_path: Path) -> None:
    agent = _agent(agents, tmp_path, [_turn(10)])
    dlg = agent.dialogue(demo_scene()[0])
    first = dlg.ask("Find the red ball.", key="k1")
    calls = _requests(agent)
    # The scripted policy has no turn left: a model call would raise PolicyError.
    again = dlg.ask("Find the red ball.", key="k1")
    assert again == first and _requests(agent) == calls
    assert [t.key for t in dlg.turns()] == ["k1"]
    state = agent.graph.get_state({"configurable": {"thread_id": dlg.id}}).values
    assert state["turn"] == first and state["work"].key == "k1"
    # The stream API replays it too, as a node event and the turn.
    events = list(dlg.stream("Find the red ball.", key="k1"))
    assert events[-1].kind == "turn" and events[-1].turn == first and _requests(agent) == calls


def test_a_reused_key_with_another_question_is_refused_before_the_model(
    agents: list[RegionAgent], tmp_path: Path
) -> None:
    agent = _agent(agents, tmp_path, [_turn(10), _turn(200)])
    dlg = agent.dialogue(demo_scene()[0])
    dlg.ask("Find the red ball.", key="k1")
    calls = _requests(agent)
    with pytest.raises(TurnConflictError, match="k1") as info:
        dlg.ask("Find the blue box.", key="k1")
    assert info.value.hint and _requests(agent) == calls and len(dlg.turns()) == 1


def test_the_same_key_with_another_sampled_answer_returns_the_stored_turn(tmp_path: Path) -> None:
    """What a key names is the request (question, image, frame, references), not what the model sampled."""
    with RegionMemory(f"sqlite:///{tmp_path}/memory.db") as memory:
        image = memory.put_image(demo_scene()[0]).hash
        dlg = memory.create_dialogue(image)

        def draft(**answer: Any) -> TurnDraft:
            request = {"question": "q", "rendered_question": "q", "image": image, "frame": "fixed:840x840"}
            return TurnDraft.model_validate({**request, "key": "k", **answer})

        first = memory.append_turn(dlg.id, draft(raw_text="one", usage=Usage(latency_ms=1.0), trace_id="a" * 32))
        again = memory.append_turn(
            dlg.id, draft(raw_text="two", status=TurnStatus.FAILED, usage=Usage(latency_ms=9.0), trace_id="b" * 32)
        )
        assert again == first and len(memory.turns(dlg.id)) == 1


# --- a child process that dies ---------------------------------------------------------------------------------

CHILD = """
import json, os, sys
from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.demo_scene import demo_scene
from regionreasoner.memory import RegionMemory
from regionreasoner.policies.scripted import ScriptedPolicy
from regionreasoner.tools.base import Tool, ToolResult

where, durability, url, images, turns = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])

class DyingPolicy(ScriptedPolicy):
    def complete(self, request, on_delta=None):
        if where in request.stop:            # e.g. "</think>": die inside that model call
            os._exit(17)
        return super().complete(request, on_delta=on_delta)

from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from regionreasoner.tools.base import Tool, ToolResult

class Echo(Tool):
    name, description, inputs = "echo", "says echo", {"type": "object", "properties": {}}
    def run(self, image, arguments):
        return ToolResult(text="echo")

class DyingNode(SpanProcessor):
    # Every node body runs inside its span: "node:ground" dies as the ground node starts.
    def on_start(self, span, parent_context=None):
        if where == "node:" + span.name.removeprefix("regionreasoner.node "):
            os._exit(17)

provider = TracerProvider()
provider.add_span_processor(DyingNode())
agent = RegionAgent(
    DyingPolicy(turns), memory=RegionMemory(url, image_dir=images), durability=durability, tracer_provider=provider,
    tools=[Echo()], constrained=False,
)
put = agent.checkpointer.put

def dying_put(config, checkpoint, metadata, new_versions):
    if where == "checkpoint" and checkpoint["channel_values"].get("turn") is not None:
        os._exit(17)                          # the turn is in memory; its checkpoint never gets written
    return put(config, checkpoint, metadata, new_versions)

agent.checkpointer.put = dying_put
dlg = agent.dialogue(demo_scene()[0], id="dlg")
for question, key in json.loads(sys.argv[6]):
    dlg.ask(question, key=key)
"""

KILLS = [
    ("node:resolve", "exit"),
    ("</scene>", "exit"),
    ("</think>", "exit"),
    ("node:tools", "exit"),
    ("node:tools", "sync"),
    ("</focus>", "exit"),
    ("node:focus", "exit"),
    ("</answer>", "exit"),
    ("</think>", "sync"),
    ("</answer>", "async"),
    ("node:ground", "exit"),
    ("node:remember", "exit"),
    ("node:remember", "sync"),
    ("checkpoint", "exit"),
    ("checkpoint", "sync"),
]


def _kill_and_recover(agents: list[RegionAgent], url: str, images: Path, where: str, durability: str) -> None:
    # "node:focus" and "</focus>" run in turn 2 only (it cites R1): that kill leaves turn 1 stored.
    in_second = where in ("node:focus", "</focus>")
    argv = [sys.executable, "-c", textwrap.dedent(CHILD), where, durability, url, str(images)]
    argv += [json.dumps(KILLED_TURNS), json.dumps(QUESTIONS)]
    child = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert child.returncode == 17, child.stderr[-3000:]
    done = 1 if (where == "checkpoint" or in_second) else 0
    with RegionMemory(url, image_dir=images) as memory:
        assert [t.key for t in memory.turns("dlg")] == ["k1"][:done]
    # A new process asks the same questions with the same keys; the policy has exactly the turns still needed.
    policy = ScriptedPolicy(KILLED_TURNS[done:])
    agent = RegionAgent(
        policy, memory=RegionMemory(url, image_dir=images), durability=durability, tools=[Echo()], constrained=False
    )
    agents.append(agent)
    dlg = agent.dialogue(id="dlg")
    first = dlg.ask(*QUESTIONS[0][:1], key=QUESTIONS[0][1])
    assert first.index == 0 and [r.id for r in first.regions] == ["R1"] and first.status is TurnStatus.OK
    assert "<tool_response>echo</tool_response>" in first.raw_text
    assert _requests(agent) == (0 if done else 4)  # scene, think up to the tool call, think after it, answer
    second = dlg.ask(QUESTIONS[1][0], key=QUESTIONS[1][1])
    assert second.index == 1 and [r.id for r in second.regions] == ["R2"] and second.referenced == ["R1"]
    assert second.status is TurnStatus.OK and second.sections.focus == "a red ball"
    assert dlg.ask(QUESTIONS[0][0], key=QUESTIONS[0][1]) == first  # replay is idempotent
    turns = dlg.turns()
    assert [t.key for t in turns] == ["k1", "k2"] and [r.id for r in dlg.regions()] == ["R1", "R2"]
    state = agent.graph.get_state({"configurable": {"thread_id": "dlg"}})
    assert state.next == () and state.values["turn"] == first  # the last ask was the replay


class Echo(Tool):
    """The child's tool: answers "echo"."""

    name: ClassVar[str] = "echo"
    description: ClassVar[str] = "says echo"
    inputs: ClassVar[Mapping[str, Any]] = {"type": "object", "properties": {}}

    def run(self, image: LoadedImage, arguments: Mapping[str, Any]) -> ToolResult:
        return ToolResult(text="echo")


@pytest.mark.parametrize(("where", "durability"), KILLS)
def test_a_killed_turn_is_completed_by_asking_again_with_its_key(
    agents: list[RegionAgent], tmp_path: Path, where: str, durability: str
) -> None:
    _kill_and_recover(agents, f"sqlite:///{tmp_path}/memory.db", tmp_path / "images", where, durability)


@pytest.mark.postgres
@pytest.mark.parametrize(("where", "durability"), [("</think>", "sync"), ("checkpoint", "exit")])
def test_a_killed_turn_on_postgres_is_completed_by_asking_again(
    agents: list[RegionAgent], postgres_url: str, tmp_path: Path, where: str, durability: str
) -> None:
    _kill_and_recover(agents, postgres_url, tmp_path / "images", where, durability)


def test_checkpoints_share_the_memory_busy_timeout(tmp_path: Path) -> None:
    with RegionMemory(f"sqlite:///{tmp_path}/memory.db") as memory:
        saver = make_checkpointer(memory)
        conn = saver.conn
        assert isinstance(conn, sqlite3.Connection)
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS == 30_000
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
