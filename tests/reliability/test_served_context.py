"""A served graph's resources come from server configuration, never from the client (issue 9, defect 1).

Before the fix, the context a client sent chose server resources: ``memory_url`` opened (and migrated) any SQLite
file or Postgres host, ``model`` loaded any folder or hub id, and every distinct ``model``/``frame``/
``prompt_template``/``memory_url`` loaded another policy or engine into caches that never shrank.  Now
:class:`~regionreasoner.agent.context.ServerConfig` (``REGIONREASONER_*`` variables, read once) names the model,
frame, prompt template, memory and image root; a request's :class:`~regionreasoner.agent.context.Context` only tunes
sampling, section lengths and answer size, type-checked and within the server's bounds, and anything else is a
``ConfigError``.  The tests invoke the graph the way ``langgraph dev`` does: ``builder`` compiled with a
checkpointer and no live objects, the context given as JSON-like values.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

import regionreasoner.agent.context as context_module
from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.context import AppContext, Context, Resources, ServerConfig
from regionreasoner.agent.demo_scene import demo_scene
from regionreasoner.agent.graph import builder
from regionreasoner.core.errors import ConfigError, RegionReasonerError
from regionreasoner.core.images import load_image
from regionreasoner.core.protocol import AnswerObject, format_action
from regionreasoner.memory import RegionMemory
from regionreasoner.policies.base import Policy
from regionreasoner.policies.scripted import ScriptedPolicy

TURN = format_action(scene="a park", think="the ball", objects=[AnswerObject(box=(10, 10, 100, 100), point=(55, 55))])
SAFE_FIELDS = {
    "constrained",
    "max_new_tokens",
    "temperature",
    "seed",
    "max_objects",
    "answer_protocol",
    "char_limits",
    "max_tool_iterations",
    "capture_sections",
}


class Served:
    """A served-style set-up: server resources from a ServerConfig, the policy loader recorded."""

    def __init__(self, config: ServerConfig, monkeypatch: pytest.MonkeyPatch) -> None:
        self.config = config
        self.loaded: list[tuple[str, dict[str, Any]]] = []
        self.policy = ScriptedPolicy([TURN] * 8, frame="fixed:840x840")
        self.resources = Resources(config)
        monkeypatch.setattr(context_module, "load_policy", self._load)
        monkeypatch.setattr(context_module, "_RESOURCES", self.resources)
        self.graph: Any = builder.compile(checkpointer=InMemorySaver())  # invoked with JSON-like contexts, as served
        self.image = load_image(demo_scene()[0]).to_data_url()

    def _load(self, model: str, **kwargs: Any) -> Policy:
        self.loaded.append((model, kwargs))
        return self.policy

    def ask(self, context: Any, question: str = "find the ball") -> dict[str, Any]:
        config = {"configurable": {"thread_id": uuid.uuid4().hex}}
        out = self.graph.invoke({"question": question, "image": self.image}, config, context=context)
        assert isinstance(out, dict)
        return out


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Served]]:
    made: list[Served] = []

    def make(**config: Any) -> Served:
        config.setdefault("memory_url", f"sqlite:///{tmp_path}/server/memory.db")
        (tmp_path / "server").mkdir(exist_ok=True)
        s = Served(ServerConfig(**config), monkeypatch)
        made.append(s)
        return s

    yield make
    for s in made:
        s.resources.close()


# -- the defect: a client chose server resources ------------------------------------------------------------------


@pytest.mark.parametrize("as_json", [False, True], ids=["Context", "json"])
def test_a_client_cannot_open_a_foreign_memory(served: Callable[..., Served], tmp_path: Path, as_json: bool) -> None:
    """Before: the foreign file was created and migrated (dialogues, images, turns, ... tables) and the turn stored."""
    s = served()
    foreign = tmp_path / "elsewhere" / "foreign.db"
    foreign.parent.mkdir()
    with pytest.raises(ConfigError, match=r"memory_url is server configuration.*REGIONREASONER_MEMORY_URL"):
        s.ask({"memory_url": f"sqlite:///{foreign}"} if as_json else Context(memory_url=f"sqlite:///{foreign}"))  # type: ignore[call-arg]
    assert list(foreign.parent.iterdir()) == []  # no database file, no images/ folder
    assert s.loaded == []


def test_a_client_cannot_choose_the_model_frame_or_template(served: Callable[..., Served], tmp_path: Path) -> None:
    """Before: each request loaded the folder it named (and each distinct frame/template another policy)."""
    s = served()
    folder = tmp_path / "some-folder"
    folder.mkdir()
    for name, value in [
        ("model", str(folder)),
        ("model", "someone/some-model"),
        ("frame", "fixed:100x100"),
        ("prompt_template", "regionreasoner-eval"),
        ("image_root", "/"),
    ]:
        with pytest.raises(ConfigError, match=f"{name} is server configuration.*REGIONREASONER_"):
            s.ask({name: value})
    assert s.loaded == []


def test_the_server_config_serves_every_request_with_one_policy_and_one_memory(
    served: Callable[..., Served], tmp_path: Path
) -> None:
    s = served(model="tiny", frame="fixed:840x840", prompt_template="regionreasoner-eval")
    outs = [
        s.ask(None),
        s.ask({"max_new_tokens": 512, "temperature": 0.7, "seed": 3}),
        s.ask({"char_limits": {"scene": 60}, "max_objects": 1, "constrained": False, "capture_sections": False}),
        s.ask(Context(max_objects=2)),
    ]
    assert [o["turn"].status.value for o in outs] == ["ok"] * 4
    assert s.loaded == [("tiny", {"frame": "fixed:840x840", "prompt_template": "regionreasoner-eval"})]
    sampled = {(r.sampling.max_new_tokens, r.sampling.temperature, r.sampling.seed) for r in s.policy.requests}
    assert sampled == {(2048, 0.0, None), (512, 0.7, 3)}
    with RegionMemory(s.config.memory_url, migrate=False) as memory:
        assert {o["dialogue_id"] for o in outs} == {d.id for d in memory.list_dialogues()}


def test_the_served_schema_offers_only_safe_fields_with_descriptions() -> None:
    """What LangGraph Studio shows, and what ``langgraph dev`` keeps of a request's context (it drops other keys)."""
    schema = builder.compile().get_context_jsonschema()
    assert schema is not None
    assert set(schema["properties"]) == SAFE_FIELDS
    assert all(p.get("description") for p in schema["properties"].values())


# -- per-request values: typed errors, within bounds --------------------------------------------------------------


BAD_CONTEXTS: list[tuple[dict[str, Any], str]] = [
    ({"max_new_tokens": "abc"}, r"max_new_tokens='abc': set it to a whole number >= 1"),
    ({"max_new_tokens": True}, "max_new_tokens=True"),
    ({"max_new_tokens": 0}, "max_new_tokens=0: set it >= 1"),
    ({"max_new_tokens": 2.5}, "max_new_tokens=2.5"),
    ({"max_new_tokens": None}, "max_new_tokens=None"),
    ({"temperature": "hot"}, "temperature='hot'"),
    ({"temperature": math.nan}, "temperature=nan"),
    ({"temperature": -1}, "temperature=-1"),
    ({"temperature": 10**400}, "temperature=<a 1329-bit number>: set it to a finite number"),
    ({"seed": -1}, r"seed=-1: set it in 0\.\."),
    ({"seed": 2**64}, r"seed=<a 65-bit number>: set it in 0\.\.9223372036854775807"),
    ({"seed": "7"}, "seed='7'"),
    ({"max_objects": [3]}, "max_objects="),
    ({"char_limits": [60, 40]}, "char_limits=.*section -> characters"),
    ({"char_limits": "scene"}, "char_limits="),
    ({"char_limits": {"scene": "x"}}, r"char_limits\['scene'\]='x'"),
    ({"char_limits": {"scene": 0}}, r"char_limits\['scene'\]=0"),
    ({"char_limits": {"answer": 10}}, "char_limits has no section 'answer'"),
    ({"constrained": "yes"}, "constrained='yes': set it to true or false"),
    ({"capture_sections": 1}, "capture_sections=1"),
    ({"answer_protocol": "rr"}, "answer_protocol='rr'"),
    ({"answer_protocol": ["official"]}, "answer_protocol="),
    ({"max_tool_iterations": -1}, "max_tool_iterations=-1"),
    ({"bogus": 1}, r"unknown context fields \['bogus'\]"),
    ({"policy": "x"}, r"unknown context fields \['policy'\]"),
]


@pytest.mark.parametrize(
    ("context", "message"), BAD_CONTEXTS, ids=[f"{i}-{next(iter(c))}" for i, (c, _) in enumerate(BAD_CONTEXTS)]
)
def test_bad_request_context_is_a_config_error_before_anything_runs(
    served: Callable[..., Served], context: dict[str, Any], message: str
) -> None:
    s = served()
    with pytest.raises(ConfigError, match=message):
        Context(**context)
    with pytest.raises(ConfigError, match=message):
        s.ask(context)
    assert s.loaded == [] and s.policy.requests == []


OVER_LIMITS: list[tuple[dict[str, Any], str]] = [
    ({"max_new_tokens": 10**5000}, "max_new_tokens=<a 16610-bit number> is above this server's limit 2048"),
    ({"max_new_tokens": 2049}, "max_new_tokens=2049 is above this server's limit 2048.*REGIONREASONER_MAX_NEW_TOKENS"),
    ({"temperature": 2.5}, "temperature=2.5 is above this server's limit 2.0.*REGIONREASONER_MAX_TEMPERATURE"),
    ({"max_objects": 10**6}, "max_objects=1000000 is above this server's limit 32"),
    ({"char_limits": {"think": 10**9}}, r"char_limits\['think'\]=1000000000 is above this server's limit 4000"),
    ({"max_tool_iterations": 10**6}, "max_tool_iterations=1000000 is above this server's limit 3"),
]


@pytest.mark.parametrize(
    ("context", "message"), OVER_LIMITS, ids=[f"{i}-{next(iter(c))}" for i, (c, _) in enumerate(OVER_LIMITS)]
)
def test_request_values_past_the_server_bounds_are_refused_before_the_memory_opens(
    served: Callable[..., Served], tmp_path: Path, context: dict[str, Any], message: str
) -> None:
    s = served()
    with pytest.raises(ConfigError, match=message):
        s.ask(context)
    assert s.loaded == [] and not (tmp_path / "server" / "memory.db").exists()


def test_a_server_may_raise_its_bounds(served: Callable[..., Served]) -> None:
    s = served(max_new_tokens=8192, max_objects=100, max_section_chars=9000, max_temperature=5.0)
    out = s.ask({"max_new_tokens": 8192, "max_objects": 100, "char_limits": {"think": 9000}, "temperature": 5})
    assert out["turn"].status.value == "ok"
    assert {(r.sampling.max_new_tokens, r.sampling.temperature) for r in s.policy.requests} == {(8192, 5.0)}


def test_in_process_apps_are_trusted_and_unchanged(tmp_path: Path) -> None:
    """RegionAgent passes live objects in an AppContext: the server's bounds and config do not apply to it."""
    agent = RegionAgent(ScriptedPolicy([TURN]), memory=f"sqlite:///{tmp_path}/m.db", max_new_tokens=10**5)
    try:
        assert isinstance(agent.context, AppContext) and agent.context.max_new_tokens == 10**5
        turn = agent.dialogue(demo_scene()[0]).ask("find the ball")
        assert turn.status.value == "ok" and [r.id for r in turn.regions] == ["R1"]
    finally:
        agent.close()
    with pytest.raises(ConfigError, match="memory_url is server configuration"):
        AppContext(memory_url="sqlite://")  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match=r"unknown keyword arguments.*'model'"):
        RegionAgent(ScriptedPolicy([TURN]), memory="sqlite://", model="elsewhere")


# -- the server configuration: read once, checked, messages naming the variable ----------------------------------


def test_server_config_from_env(tmp_path: Path) -> None:
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "images").mkdir()
    config = ServerConfig.from_env(
        {
            "REGIONREASONER_MODEL": str(tmp_path / "ckpt"),
            "REGIONREASONER_MEMORY_URL": f"sqlite:///{tmp_path}/m.db",
            "REGIONREASONER_FRAME": "fixed:840x840",
            "REGIONREASONER_PROMPT_TEMPLATE": "regionreasoner-eval",
            "REGIONREASONER_IMAGE_ROOT": str(tmp_path / "images"),
            "REGIONREASONER_MAX_NEW_TOKENS": "4096",
            "REGIONREASONER_MAX_TEMPERATURE": "1.5",
        }
    )
    assert config.model == str(tmp_path / "ckpt") and config.frame == "fixed:840x840"
    assert config.image_root == (tmp_path / "images").resolve() and config.max_new_tokens == 4096
    assert config.max_temperature == 1.5 and config.max_objects == 32
    assert ServerConfig.from_env({}) == ServerConfig()
    assert ServerConfig.from_env({"REGIONREASONER_MODEL": " ", "REGIONREASONER_FRAME": ""}).model == "tiny"
    assert ServerConfig.from_env({"REGIONREASONER_MODEL": "Qwen/Qwen2.5-VL-7B-Instruct"}).model.startswith("Qwen/")
    assert not (tmp_path / "m.db").exists()  # checked, not opened


def test_the_process_reads_its_server_config_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REGIONREASONER_MAX_OBJECTS", "64")
    res = Resources()
    assert res.config.max_objects == 64
    monkeypatch.setenv("REGIONREASONER_MAX_OBJECTS", "128")
    assert res.config.max_objects == 64


def _bad_envs(tmp_path: Path) -> list[tuple[dict[str, str], str]]:
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-folder").mkdir(exist_ok=True)
    return [
        ({"REGIONREASONER_MODEL": str(tmp_path / "missing")}, "REGIONREASONER_MODEL=.*no such folder.*hub id"),
        ({"REGIONREASONER_MODEL": str(tmp_path / "a-file")}, "REGIONREASONER_MODEL=.*is a file"),
        ({"REGIONREASONER_MODEL": "not a model"}, "REGIONREASONER_MODEL='not a model': no such folder"),
        ({"REGIONREASONER_MEMORY_URL": "mysql://h/db"}, "REGIONREASONER_MEMORY_URL='mysql://h/db'.*unsupported"),
        ({"REGIONREASONER_MEMORY_URL": "memory.db"}, "REGIONREASONER_MEMORY_URL='memory.db'.*sqlite:///"),
        ({"REGIONREASONER_MEMORY_URL": f"sqlite:///{tmp_path}/a-folder"}, "REGIONREASONER_MEMORY_URL=.*is a folder"),
        ({"REGIONREASONER_MEMORY_URL": f"sqlite:///{tmp_path}/a-file/m.db"}, "lies under the file"),
        ({"REGIONREASONER_FRAME": "fixed:840"}, "REGIONREASONER_FRAME='fixed:840'.*unknown coordinate frame"),
        ({"REGIONREASONER_PROMPT_TEMPLATE": "nope"}, "REGIONREASONER_PROMPT_TEMPLATE='nope'.*unknown prompt"),
        ({"REGIONREASONER_IMAGE_ROOT": str(tmp_path / "missing")}, "REGIONREASONER_IMAGE_ROOT=.*is not a folder"),
        ({"REGIONREASONER_MAX_NEW_TOKENS": "abc"}, "REGIONREASONER_MAX_NEW_TOKENS='abc': set it to a whole number"),
        ({"REGIONREASONER_MAX_NEW_TOKENS": "512"}, "REGIONREASONER_MAX_NEW_TOKENS=512: set it >= 2048"),
        ({"REGIONREASONER_MAX_OBJECTS": "2"}, "REGIONREASONER_MAX_OBJECTS=2: set it >= 8"),
        ({"REGIONREASONER_MAX_SECTION_CHARS": "10"}, "REGIONREASONER_MAX_SECTION_CHARS=10: set it >= 2000"),
        ({"REGIONREASONER_MAX_TEMPERATURE": "inf"}, "REGIONREASONER_MAX_TEMPERATURE=inf"),
        ({"REGIONREASONER_MAX_TOOL_ITERATIONS": "1.5"}, "REGIONREASONER_MAX_TOOL_ITERATIONS='1.5'"),
    ]


def test_bad_server_config_names_the_variable(tmp_path: Path) -> None:
    for env, message in _bad_envs(tmp_path):
        with pytest.raises(ConfigError, match=message):
            ServerConfig.from_env(env)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "a-folder"]  # nothing created
    with pytest.raises(ConfigError, match=r"'mysql://me:\*\*\*@h/db'") as caught:
        ServerConfig.from_env({"REGIONREASONER_MEMORY_URL": "mysql://me:secret@h/db"})
    assert "secret" not in str(caught.value)


def test_a_bad_server_config_fails_the_first_turn_with_its_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REGIONREASONER_MODEL", str(tmp_path / "missing"))
    monkeypatch.setattr(context_module, "_RESOURCES", Resources())
    graph: Any = builder.compile(checkpointer=InMemorySaver())
    with pytest.raises(RegionReasonerError, match=r"REGIONREASONER_MODEL=.*no such folder"):
        graph.invoke({"question": "find the ball"}, {"configurable": {"thread_id": "t"}}, context={})
