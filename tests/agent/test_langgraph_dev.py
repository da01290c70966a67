"""`langgraph dev` serves the graph: two turns on one thread through the SDK, the second citing R1."""

import os
import sys
from pathlib import Path

import pytest

from regionreasoner.core.images import load_image
from regionreasoner.memory import RegionMemory

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_turns_through_the_langgraph_api(tiny_qwen25: Path, scene, servers, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from langgraph_sdk import get_sync_client

    port = servers.free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "REGIONREASONER_MODEL": str(tiny_qwen25),
        "REGIONREASONER_MEMORY_URL": f"sqlite:///{tmp_path}/memory.db",
        "REGIONREASONER_FRAME": "fixed:840x840",  # server configuration: it sets the model's coordinate space
        "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    }
    cli = Path(sys.executable).with_name("langgraph")
    args = [str(cli), "dev", "--host", "127.0.0.1", "--port", str(port), "--no-browser", "--no-reload"]
    with servers.running(args, ready_url=url + "/ok", log=tmp_path / "langgraph.log", env=env, cwd=ROOT, timeout=90):
        client = get_sync_client(url=url)
        thread = client.threads.create()
        image, _ = scene
        context = {"char_limits": {"scene": 60, "focus": 40, "think": 60}, "max_objects": 1}
        first = client.runs.wait(
            thread["thread_id"],
            "regionreasoner",
            input={"question": "Find the red ball.", "image": load_image(image.image).to_data_url()},
            context=context,
        )
        assert isinstance(first, dict), first
        assert first["turn"]["status"] == "ok" and [r["id"] for r in first["turn"]["regions"]] == ["R1"]
        second = client.runs.wait(
            thread["thread_id"], "regionreasoner", input={"question": "Find the box right of R1."}, context=context
        )
        assert isinstance(second, dict), second
        assert second["turn"]["referenced"] == ["R1"] and "bbox=[" in second["turn"]["rendered_question"]
        assert [r["id"] for r in second["turn"]["regions"]] == ["R2"]
        state = client.threads.get_state(thread["thread_id"])
        assert state["values"]["dialogue_id"] == thread["thread_id"]
    with RegionMemory(f"sqlite:///{tmp_path}/memory.db") as memory:
        assert [r.id for r in memory.regions(thread["thread_id"])] == ["R1", "R2"]
    # The served model is the untrained tiny one: the server said so at start-up, with the fix.
    log = (tmp_path / "langgraph.log").read_text()
    assert "RANDOM, UNTRAINED" in log and "REGIONREASONER_MODEL=" in log
