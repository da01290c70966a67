"""``regionreasoner demo`` / ``make demo``: a five-turn dialogue on a held-out scene, checked, in ``demo-output/``.

The default model is :data:`~regionreasoner.policies.embedded.DEFAULT_MODEL` (the tiny untrained one until the
embedded model, ``--model embedded``, trained here by ``make model``, meets its goals).  The scene is a world scene
no training run drew (:mod:`regionreasoner.agent.demo_world`); turn 2 is French and cites turn 1's region, turn 3
cites an earlier turn's; turn 4, in Dutch, repaints turn 1's region with a green star (the shipped generator,
:data:`~regionreasoner.tools.generate.shipped.DEFAULT_GENERATOR`), turn 5 asks for the star.  After each turn the
demo prints whether the region found is right (IoU >= 0.5 with the target's exact box; after the edit, whether the
world's exact segmenter finds the star in the region), so the demo is also a check.  ``--model`` or
``$REGIONREASONER_MODEL`` runs other weights (e.g. RegionReasoner-7B: it has never seen this world, so its checks
say how it transfers).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.cli_chat import print_turn
from regionreasoner.agent.context import DEFAULT_MODEL, TINY_MODEL, load_policy
from regionreasoner.agent.demo_world import DEMO_EDIT, demo_dialogue, edit_check, region_check
from regionreasoner.agent.tracing import configure_tracing
from regionreasoner.core.errors import InputError
from regionreasoner.core.types import Turn

__all__ = ["run_demo"]

TINY_LIMITS = {"scene": 120, "focus": 80, "think": 160}
"""Shorter sections for the untrained model, so the demo takes seconds (real models keep the defaults)."""

TINY_SAMPLING = {"temperature": 0.8, "seed": 0}
"""The untrained model samples (seeded, so the demo is reproducible): greedy decoding would repeat one guess."""


_OUTPUTS = frozenset(
    [
        *(f"turn{k}.png" for k in range(1, 6)),
        *("image.png", "memory.db", "checkpoints.db", "trace.jsonl", "summary.json"),
    ]
)
"""What the demo writes into its folder (the databases also leave ``-wal``/``-shm``/``-journal`` files, images
go to ``images/``): a folder holding anything else was not written by the demo and is not deleted."""


def _recreate(out: Path) -> None:
    """Empty ``out`` for a new run; refuses (InputError) a file, or a folder holding files the demo did not write."""
    hint = "pass --out a new or empty folder, or the folder of a previous demo run"
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file", hint=hint)
    if out.is_dir():
        foreign = sorted(
            p.name
            for p in out.iterdir()
            if not (p.name == "images" and p.is_dir())
            and p.name.removesuffix("-wal").removesuffix("-shm").removesuffix("-journal") not in _OUTPUTS
        )
        if foreign:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise InputError(f"--out {out} holds files the demo did not write ({shown}); it is not deleted", hint=hint)
        shutil.rmtree(out)
    try:
        out.mkdir(parents=True)
    except OSError as exc:
        raise InputError(f"cannot create --out {out}: {exc.strerror or exc}", hint=hint) from exc


def run_demo(out: Path, *, model: str | None = None, device: str | None = None) -> dict[str, object]:
    """Run the demo into ``out`` (recreated) and return a summary (also written as ``summary.json``).

    ``out`` must be missing, empty, or a previous demo output: a folder holding other files raises InputError.
    The summary's ``checks`` say, per turn, whether the found region is right; ``checks_passed`` is all of them.
    """
    model = model or os.environ.get("REGIONREASONER_MODEL") or DEFAULT_MODEL
    tiny = model == TINY_MODEL
    _recreate(out)
    print(f"regionreasoner demo -> {out}/")
    if tiny:
        print(
            "model: a tiny Qwen2.5-VL with RANDOM, UNTRAINED weights, built offline and cached on first use.\n"
            "       Its words are noise and its boxes are guesses; the demo shows the machinery, not answers.\n"
            "       It samples (temperature 0.8, seed 0) so that its guesses differ from turn to turn.\n"
            "       --model embedded runs the small model trained here (docs/embedded-model.md); point --model at\n"
            "       real weights (e.g. RegionReasoner-7B) for real images."
        )
    t0 = time.perf_counter()
    # The demo says in its own words that the tiny model is untrained (above), so no logged warning as well.
    policy = load_policy(model, frame="fixed:840x840" if tiny else None, device=device, warn_untrained=False)
    print(f"model: {policy.name} (frame {policy.frame.spec}) loaded in {time.perf_counter() - t0:.1f} s")
    provider = configure_tracing(jsonl_path=out / "trace.jsonl")
    extra: dict[str, Any] = {"char_limits": TINY_LIMITS, "max_objects": 2, **TINY_SAMPLING} if tiny else {}
    generator = _generator()
    # The edit is the user's (dialogue.inpaint), not a tool call of the model: no tool calls in <think>.
    agent = RegionAgent(
        policy,
        memory=f"sqlite:///{out}/memory.db",
        tracer_provider=provider,
        generator=generator,
        max_tool_iterations=0,
        **extra,
    )
    scene, demo_turns = demo_dialogue()
    scene.image.save(out / "image.png")
    print(f"scene: {len(scene.objects)} shapes, {scene.size[0]}x{scene.size[1]} pixels, a seed no training run drew")
    dialogue = agent.dialogue(scene.image, title="regionreasoner demo")
    files = [out / "image.png"]
    turns: list[Turn] = []
    checks: list[dict[str, object]] = []
    for i, demo_turn in enumerate(demo_turns):
        cited = turns[demo_turn.cites].regions[:1] if demo_turn.cites is not None else []
        question = demo_turn.question.replace("{cited}", cited[0].id if cited else "R1")
        print(f"\n> turn {i + 1} ({demo_turn.language}): {question}")
        t = time.perf_counter()
        turn = print_turn(dialogue, question)
        assert turn is not None
        print(f"  ({time.perf_counter() - t:.2f} s)")
        found = turn.regions[0] if turn.regions else None
        right, overlap = region_check(found.box if found else None, demo_turn.box)
        name = found.id if found else "no region"
        print(f"  check: {name} {'RIGHT' if right else 'WRONG'}: IoU {overlap:.2f} with {demo_turn.target}")
        checks.append({"turn": i + 1, "region": found.id if found else None, "iou": round(overlap, 3), "right": right})
        path = out / f"turn{i + 1}.png"
        dialogue.render(turn=turn.index).save(path)
        files.append(path)
        turns.append(turn)
    edit: dict[str, object] | None = None
    if generator is not None:
        edit = _edit_turns(dialogue, turns, out, files, checks)
    provider.shutdown()
    agent.close()
    files += [out / "memory.db", out / "checkpoints.db", out / "trace.jsonl"]
    passed = all(bool(c["right"]) for c in checks)
    summary: dict[str, object] = {
        "model": policy.name,
        "untrained": tiny,
        "frame": policy.frame.spec,
        "dialogue_id": dialogue.id,
        "checks": checks,
        "checks_passed": passed,
        "edit": edit,
        "turns": [
            {
                "question": t.question,
                "rendered_question": t.rendered_question,
                "status": t.status.value,
                "regions": {r.id: [round(v, 1) for v in r.box] for r in t.regions},
                "referenced": t.referenced,
                "citations_verified": sum(c.verified for c in t.citations),
                "trace_id": t.trace_id,
            }
            for t in turns
        ],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    files.append(out / "summary.json")
    print("\nwrote:", *(f"  {p}" for p in files), sep="\n")
    n_right = sum(bool(c["right"]) for c in checks)
    print(f"\nchecks: {n_right}/{len(checks)} regions right (IoU >= 0.5 with the scene's ground truth)")
    if tiny:
        print("Reminder: the tiny model's weights are untrained; the regions above are not real detections.")
    return summary


def _generator() -> str | None:
    """The shipped generator's name, or None (said) when this install lacks it."""
    from regionreasoner.core.errors import ModelLoadError
    from regionreasoner.tools.generate.shipped import DEFAULT_GENERATOR, world_generator_path

    try:
        print(f"generator: {DEFAULT_GENERATOR} ({world_generator_path()}), for turn 4's edit")
    except ModelLoadError as exc:
        print(f"generator: none ({exc}); turns 4 and 5 (the edit) are left out")
        return None
    return DEFAULT_GENERATOR


def _edit_turns(
    dialogue: Any, turns: list[Turn], out: Path, files: list[Path], checks: list[dict[str, object]]
) -> dict[str, object]:
    """Turn 4: repaint the cited turn's region after DEMO_EDIT (checked); turn 5: ask for the new object."""
    cited = turns[DEMO_EDIT.cites].regions[:1]
    name = cited[0].id if cited else None
    request = DEMO_EDIT.request.replace("{cited}", name or "R1")
    print(f"\n> turn 4 ({DEMO_EDIT.language}): {request}")
    if name is None:
        print("  edit: turn 1 found no region, so there is nothing to repaint")
        checks.append({"turn": 4, "region": None, "iou": 0.0, "right": False})
        return {"request": request, "region": None, "found": False}
    t = time.perf_counter()
    with _notes("regionreasoner.tools.generate.inpaint") as notes:  # e.g. a region wider than the model's window
        version = dialogue.inpaint(name, DEMO_EDIT.prompt, seed=0)
    for note in notes:
        print(f"  note: {note}")
    box = cited[0].box
    found, star = edit_check(dialogue.image(), box, DEMO_EDIT.kind, DEMO_EDIT.colour)
    print(
        f"  inpainted {name} after {DEMO_EDIT.prompt!r}: image version {version.number} "
        f"({time.perf_counter() - t:.2f} s)"
    )
    print(
        f"  check: {'RIGHT' if found else 'WRONG'}: the exact segmenter finds {'a' if found else 'no'} "
        f"{DEMO_EDIT.colour} {DEMO_EDIT.kind} in {name}"
    )
    checks.append({"turn": 4, "region": name, "iou": 1.0 if found else 0.0, "right": found})
    path = out / "turn4.png"
    dialogue.render().save(path)
    files.append(path)
    print(f"\n> turn 5 (en): {DEMO_EDIT.question}")
    t = time.perf_counter()
    turn = print_turn(dialogue, DEMO_EDIT.question)
    assert turn is not None
    print(f"  ({time.perf_counter() - t:.2f} s)")
    target = star or box  # the star the segmenter found; the repainted box when it found none
    hit = turn.regions[0] if turn.regions else None
    right, overlap = region_check(hit.box if hit else None, target)
    print(
        f"  check: {hit.id if hit else 'no region'} {'RIGHT' if right else 'WRONG'}: IoU {overlap:.2f} with the "
        f"{DEMO_EDIT.colour} {DEMO_EDIT.kind}"
    )
    checks.append({"turn": 5, "region": hit.id if hit else None, "iou": round(overlap, 3), "right": right})
    path = out / "turn5.png"
    dialogue.render(turn=turn.index).save(path)
    files.append(path)
    turns.append(turn)
    return {
        "request": request,
        "region": name,
        "version": version.number,
        "found": found,
        "star_box": [round(v, 1) for v in star] if star else None,
    }


@contextlib.contextmanager
def _notes(logger_name: str) -> Iterator[list[str]]:
    """Collect the warnings ``logger_name`` logs inside the block (the demo prints them as its own lines)."""
    notes: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            notes.append(record.getMessage())

    target = logging.getLogger(logger_name)
    handler, propagate = _Collect(logging.WARNING), target.propagate
    target.addHandler(handler)
    target.propagate = False
    try:
        yield notes
    finally:
        target.removeHandler(handler)
        target.propagate = propagate
