"""A dialogue resumes from its checkpoint and memory in a new process."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

SETUP = """
from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.demo_scene import demo_scene
agent = RegionAgent.from_pretrained({model!r}, frame="fixed:840x840", memory="sqlite:///{db}",
                                    char_limits={{"scene": 50, "focus": 30, "think": 50}}, max_objects=1)
"""

FIRST = """
dlg = agent.dialogue(demo_scene()[0])
turns = [dlg.ask("Find the red ball."), dlg.ask("Find the box right of R1.")]
print(json.dumps({{"id": dlg.id, "regions": [r.id for t in turns for r in t.regions]}}))
"""

SECOND = """
dlg = agent.dialogue(id={dialogue_id!r})
state = agent.graph.get_state({{"configurable": {{"thread_id": dlg.id}}}})
previous = state.values["turn"]
turn = dlg.ask("Find the kite above R2.")
print(json.dumps({{"previous_index": previous.index, "previous_question": previous.question,
                   "index": turn.index, "referenced": turn.referenced, "regions": [r.id for r in turn.regions],
                   "history": len(list(agent.graph.get_state_history({{"configurable": {{"thread_id": dlg.id}}}})))}}))
"""


def run(code: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", "import json\n" + textwrap.dedent(code)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_dialogue_resumes_in_a_new_process(tiny_qwen25: Path, tmp_path: Path) -> None:
    setup = SETUP.format(model=str(tiny_qwen25), db=tmp_path / "memory.db")
    first = run(setup + FIRST.format())
    assert first["regions"] == ["R1", "R2"]
    second = run(setup + SECOND.format(dialogue_id=first["id"]))
    assert second["previous_index"] == 1 and second["previous_question"] == "Find the box right of R1."
    assert second["index"] == 2 and second["referenced"] == ["R2"] and second["regions"] == ["R3"]
    assert second["history"] == 3  # one checkpoint per turn (durability="exit")
    assert (tmp_path / "checkpoints.db").is_file()
