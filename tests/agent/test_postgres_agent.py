"""The agent on Postgres: region memory and LangGraph checkpoints in one database (make test-postgres)."""

from pathlib import Path

import pytest

from regionreasoner.agent.api import RegionAgent
from regionreasoner.memory import RegionMemory
from regionreasoner.policies.scripted import ScriptedPolicy


@pytest.mark.postgres
def test_dialogue_on_postgres_resumes_with_a_new_agent(postgres_url: str, tmp_path: Path, scene, scripted) -> None:  # type: ignore[no-untyped-def]
    image, obj = scene
    memory = RegionMemory(postgres_url, image_dir=tmp_path / "images")
    first = RegionAgent(
        ScriptedPolicy([scripted(obj["red ball"]), scripted(obj["blue box"], cite=obj["red ball"])]), memory=memory
    )
    dlg = first.dialogue(image.image)
    dlg.ask("Find the red ball.")
    assert dlg.ask("Find the box right of R1.").citations[0].verified
    first.close()
    second = RegionAgent(
        ScriptedPolicy([scripted(obj["yellow kite"], cite=obj["blue box"])]),
        memory=RegionMemory(postgres_url, image_dir=tmp_path / "images"),
    )
    resumed = second.dialogue(id=dlg.id)
    state = second.graph.get_state({"configurable": {"thread_id": dlg.id}})
    assert state.values["turn"].index == 1  # the checkpoint came back from Postgres
    turn = resumed.ask("Find the kite above R2.")
    assert [r.id for r in turn.regions] == ["R3"] and turn.referenced == ["R2"]
    second.close()
