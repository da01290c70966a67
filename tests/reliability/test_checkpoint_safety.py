"""Checkpoint deserialisation is allow-listed (issue 9, defect 6), also for a checkpointer the caller passes in.

A checkpoint database is a file anyone with write access to the folder can change.  LangGraph's default serializer
revives any ``(module, name, arg)`` it finds in a msgpack extension by calling ``module.name(arg)``: a tampered
checkpoint holding ``("os", "system", "touch ...")`` ran a shell command when a ``RegionAgent`` built on a caller's
``SqliteSaver`` loaded its state.  Every checkpointer the agent uses or accepts now restores only the types of
:data:`regionreasoner.agent.checkpoint.STATE_TYPES` (and LangGraph's safe set); pickles are never loaded.
"""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ormsgpack
import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.checkpoint import STATE_TYPES, make_checkpointer
from regionreasoner.agent.demo_scene import demo_scene
from regionreasoner.agent.state import InputState, TurnWork
from regionreasoner.core.errors import ConfigError
from regionreasoner.core.protocol import AnswerObject, format_action
from regionreasoner.core.types import Region, RegionDraft, Turn, Usage, is_image_hash
from regionreasoner.memory import RegionMemory
from regionreasoner.policies.scripted import ScriptedPolicy

TURN = format_action(scene="a park", think="the ball", objects=[AnswerObject(box=(10, 10, 100, 100), point=(55, 55))])
EXT_CONSTRUCTOR_SINGLE_ARG = 0  # LangGraph's msgpack extension code for ``module.name(arg)``


class _Shell:
    """A pickle that runs a shell command when loaded."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Callable[[str], int], tuple[str]]:
        import os

        return (os.system, (self.command,))


def _keep_ext(code: int, data: bytes) -> ormsgpack.Ext:
    return ormsgpack.Ext(code, data)


def _tamper_checkpoint(db: Path, marker: Path) -> None:
    """Rewrite the newest checkpoint so that its ``question`` revives as ``os.system("touch <marker>")``."""
    with sqlite3.connect(db) as conn:
        rowid, blob = conn.execute("SELECT rowid, checkpoint FROM checkpoints ORDER BY rowid DESC LIMIT 1").fetchone()
        checkpoint = ormsgpack.unpackb(blob, ext_hook=_keep_ext, option=ormsgpack.OPT_NON_STR_KEYS)
        evil = ormsgpack.packb(("os", "system", f"touch {marker}"))
        checkpoint["channel_values"]["question"] = ormsgpack.Ext(EXT_CONSTRUCTOR_SINGLE_ARG, evil)
        conn.execute("UPDATE checkpoints SET checkpoint = ? WHERE rowid = ?", (ormsgpack.packb(checkpoint), rowid))


def _pickle_checkpoint(db: Path, marker: Path) -> None:
    """Replace the newest checkpoint by a pickle that runs ``touch <marker>``."""
    with sqlite3.connect(db) as conn:
        (rowid,) = conn.execute("SELECT rowid FROM checkpoints ORDER BY rowid DESC LIMIT 1").fetchone()
        payload = pickle.dumps(_Shell(f"touch {marker}"))
        conn.execute("UPDATE checkpoints SET type = 'pickle', checkpoint = ? WHERE rowid = ?", (payload, rowid))


@pytest.fixture
def closing() -> Iterator[list[Any]]:
    opened: list[Any] = []
    yield opened
    for thing in opened:
        thing.close()


def _dialogue(tmp_path: Path, checkpoints: Any, closing: list[Any]) -> tuple[RegionAgent, str]:
    agent = RegionAgent(ScriptedPolicy([TURN]), memory=f"sqlite:///{tmp_path}/memory.db", checkpoints=checkpoints)
    closing.append(agent)
    dlg = agent.dialogue(demo_scene()[0])
    dlg.ask("Find the red ball.")
    return agent, dlg.id


def _callers_saver(db: Path, closing: list[Any]) -> SqliteSaver:
    conn = sqlite3.connect(db, check_same_thread=False)
    closing.append(conn)
    return SqliteSaver(conn)  # LangGraph's default serializer: permissive


@pytest.mark.parametrize("whose", ["callers", "own"])
def test_a_tampered_msgpack_checkpoint_does_not_run_code(tmp_path: Path, closing: list[Any], whose: str) -> None:
    db = tmp_path / "checkpoints.db"
    marker = tmp_path / "pwned"
    saver = _callers_saver(db, closing) if whose == "callers" else None
    _, dialogue_id = _dialogue(tmp_path, saver, closing)
    _tamper_checkpoint(db, marker)
    # A new agent (a new process, in real life) loads the dialogue's state.
    later = RegionAgent(
        ScriptedPolicy([]),
        memory=f"sqlite:///{tmp_path}/memory.db",
        checkpoints=_callers_saver(db, closing) if whose == "callers" else None,
    )
    closing.append(later)
    values = later.graph.get_state({"configurable": {"thread_id": dialogue_id}}).values
    assert not marker.exists(), "loading a checkpoint ran os.system"
    # The blocked constructor is not called: its argument comes back as plain data.
    assert values["question"] == f"touch {marker}"


@pytest.mark.parametrize("whose", ["callers", "own"])
def test_a_pickled_checkpoint_is_never_unpickled(tmp_path: Path, closing: list[Any], whose: str) -> None:
    db = tmp_path / "checkpoints.db"
    marker = tmp_path / "pwned"
    saver = _callers_saver(db, closing) if whose == "callers" else None
    agent, dialogue_id = _dialogue(tmp_path, saver, closing)
    _pickle_checkpoint(db, marker)
    with pytest.raises(NotImplementedError, match="pickle"):
        agent.graph.get_state({"configurable": {"thread_id": dialogue_id}})
    assert not marker.exists(), "loading a checkpoint unpickled it"


def test_every_checkpointer_gets_the_allow_listed_serializer(tmp_path: Path, closing: list[Any]) -> None:
    memory = RegionMemory(f"sqlite:///{tmp_path}/memory.db")
    closing.append(memory)
    savers = [
        make_checkpointer(memory),
        make_checkpointer(memory, tmp_path / "other.db"),
        make_checkpointer(memory, InMemorySaver()),
        make_checkpointer(memory, _callers_saver(tmp_path / "callers.db", closing)),
    ]
    for saver in savers:
        serde = saver.serde
        assert isinstance(serde, JsonPlusSerializer) and not serde.pickle_fallback
        assert serde._allowed_msgpack_modules == set(STATE_TYPES)
    assert ("regionreasoner.agent.state", "InputState") in STATE_TYPES


class _XorCipher:
    """A stand-in for AES (LangGraph's CipherProtocol): enough to see the cipher is kept."""

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]:
        return "xor", bytes(b ^ 0x5A for b in plaintext)

    def decrypt(self, ciphername: str, ciphertext: bytes) -> bytes:
        assert ciphername == "xor"
        return bytes(b ^ 0x5A for b in ciphertext)


def test_an_encrypted_serializer_keeps_its_cipher_and_gets_the_allow_list(tmp_path: Path, closing: list[Any]) -> None:
    memory = RegionMemory(f"sqlite:///{tmp_path}/memory.db")
    closing.append(memory)
    cipher = _XorCipher()
    saver = make_checkpointer(memory, InMemorySaver(serde=EncryptedSerializer(cipher)))
    assert isinstance(saver.serde, EncryptedSerializer) and saver.serde.cipher is cipher
    assert saver.serde.serde._allowed_msgpack_modules == set(STATE_TYPES)
    agent = RegionAgent(ScriptedPolicy([TURN]), memory=memory, checkpoints=saver)
    dlg = agent.dialogue(demo_scene()[0])
    turn = dlg.ask("Find the red ball.")
    assert agent.graph.get_state({"configurable": {"thread_id": dlg.id}}).values["turn"] == turn


def test_an_unknown_serializer_is_refused(tmp_path: Path, closing: list[Any]) -> None:
    memory = RegionMemory(f"sqlite:///{tmp_path}/memory.db")
    closing.append(memory)

    class Custom:
        def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
            return "pickle", pickle.dumps(obj)

        def loads_typed(self, data: tuple[str, bytes]) -> Any:
            return pickle.loads(data[1])

    with pytest.raises(ConfigError, match="serializer") as info:
        make_checkpointer(memory, InMemorySaver(serde=Custom()))  # type: ignore[arg-type]
    assert info.value.hint


def test_every_checkpoint_of_a_turn_restores_its_types(tmp_path: Path, closing: list[Any]) -> None:
    """Nothing a checkpoint holds is blocked (a blocked type would come back as its raw fields)."""
    agent = RegionAgent(ScriptedPolicy([TURN]), memory=f"sqlite:///{tmp_path}/memory.db", durability="sync")
    closing.append(agent)
    dlg = agent.dialogue(demo_scene()[0])
    dlg.ask("Find the red ball.", image=demo_scene()[0])
    saved = list(agent.checkpointer.list({"configurable": {"thread_id": dlg.id}}))
    assert len(saved) > 5  # every step's checkpoint, the input one included
    values = [t.checkpoint["channel_values"] for t in saved]
    inputs = [v["__start__"] for v in values if "__start__" in v]
    assert len(inputs) == 1 and isinstance(inputs[0], InputState)  # the caller's input
    # The Python API stores the image first and sends its hash: no pixels in run inputs or checkpoints.
    assert inputs[0].image is not None and is_image_hash(inputs[0].image)
    assert all(isinstance(v["work"], TurnWork) for v in values if "work" in v)
    assert isinstance(values[0]["turn"], Turn) and isinstance(values[0]["turn"].regions[0], Region)
    assert isinstance(values[0]["work"].regions[0], RegionDraft) and isinstance(values[0]["work"].usage, Usage)
