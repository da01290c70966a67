"""A parse-and-store walk-through: three scripted turns on a generated image, without any model.

It shows the foundation at work: region names in questions rendered as ``bbox=[...]`` in the RegionReasoner
840x840 frame, the never-raising parser, citation checks, the frame mapping back to original pixels, and the SQL
region memory naming R1, R2, R3.  Output: one annotated PNG per turn and the SQLite memory in ``out_dir``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from regionreasoner.agent.demo_scene import demo_scene
from regionreasoner.agent.render import render_regions
from regionreasoner.core.citations import check_citations, find_region_names, render_question
from regionreasoner.core.frames import FixedResizeFrame, Frame
from regionreasoner.core.protocol import AnswerObject, format_action, parse_action
from regionreasoner.core.types import Citation, RegionDraft, Turn, TurnDraft, TurnStatus
from regionreasoner.memory import RegionMemory

__all__ = ["WalkthroughResult", "run_walkthrough"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WalkthroughResult:
    """What the walk-through stored: the dialogue id, its turns, and the files written."""

    dialogue_id: str
    turns: list[Turn]
    files: list[Path]


def run_walkthrough(out_dir: Path, *, frame: Frame | None = None) -> WalkthroughResult:
    """Run three scripted turns (the second and third cite earlier regions) and store them in ``out_dir``."""
    frame = frame or FixedResizeFrame(840, 840)
    out_dir.mkdir(parents=True, exist_ok=True)
    db = out_dir / "memory.db"
    db.unlink(missing_ok=True)
    image, objects = demo_scene()
    by_name = {o.name: o.box for o in objects}
    size = image.size
    questions = [
        ("Find the red ball.", "red ball", "A sunny park with a tree, a ball, a box and a kite in the sky."),
        ("Find the blue box to the right of R1.", "blue box", "The same park scene."),
        ("Find the kite above R1.", "yellow kite", "The same park scene."),
    ]
    files: list[Path] = []
    turns: list[Turn] = []
    with RegionMemory(f"sqlite:///{db}") as memory:
        dialogue = memory.create_dialogue(image, title="walk-through")
        for question, target, scene in questions:
            names = find_region_names(question)
            refs = {n: frame.box_to_model(memory.get_region(dialogue.id, n).box, size) for n in names}
            rendered = render_question(question, refs)
            box = frame.box_to_model(by_name[target], size)
            point = frame.point_to_model(by_name[target].center, size)
            focus = f"the {questions[0][1]} at {names[0]}" if names else None
            cite = f" The reference is bbox=[{', '.join(map(str, refs[names[0]]))}]." if names else ""
            text = format_action(
                scene=scene,
                focus=focus,
                think=f"Looking for the {target}.{cite}",
                objects=[AnswerObject(box=box, point=point)],
            )
            parsed = parse_action(text, bounds=frame.model_size(size), expect_focus=bool(names))
            checks, _missing = check_citations(parsed.citations, refs)
            draft = TurnDraft(
                question=question,
                rendered_question=rendered,
                image=dialogue.image,
                frame=frame.spec,
                sections=parsed.sections,
                raw_text=text,
                referenced=names,
                citations=[
                    Citation(
                        model_box=c.model_box,
                        box=frame.box_from_model(c.model_box, size),
                        region=c.region,
                        verified=c.verified,
                    )
                    for c in checks
                ],
                regions=[
                    RegionDraft(
                        box=frame.box_from_model(o.box, size),
                        point=frame.point_from_model(o.point, size) if o.point else None,
                        label=target,
                    )
                    for o in parsed.objects
                ],
                status=TurnStatus.OK if parsed.ok else TurnStatus.FAILED,
                problems=parsed.problems,
                model="scripted walk-through",
            )
            turn = memory.append_turn(dialogue.id, draft)
            turns.append(turn)
            path = out_dir / f"turn{turn.index + 1}.png"
            all_regions = memory.regions(dialogue.id)
            render_regions(image, all_regions, highlight=[r.id for r in turn.regions]).save(path)
            files.append(path)
            logger.info("turn %d: %s -> %s", turn.index, rendered, [r.id for r in turn.regions])
    files.append(db)
    return WalkthroughResult(dialogue_id=dialogue.id, turns=turns, files=files)
