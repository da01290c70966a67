"""``regionreasoner demo`` / ``make demo``: a three-turn dialogue on a generated image, written to ``demo-output/``.

With no model configured it builds (once, cached) a tiny random Qwen2.5-VL with an offline tokenizer: its words are
noise, but every part of the system runs for real (constrained decoding, KV reuse across the four pieces, citations,
memory, tracing).  ``--model`` or ``$REGIONREASONER_MODEL`` points it at real weights, e.g. RegionReasoner-7B.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from regionreasoner.agent.api import RegionAgent
from regionreasoner.agent.cli_chat import print_turn
from regionreasoner.agent.context import TINY_MODEL, load_policy
from regionreasoner.agent.demo_scene import demo_scene
from regionreasoner.agent.tracing import configure_tracing
from regionreasoner.core.errors import InputError

__all__ = ["QUESTIONS", "run_demo"]

QUESTIONS = (
    "Find the red ball.",
    "Find the blue box to the right of R1.",
    "Find the yellow kite above R2.",
)
"""Turns 2 and 3 cite the regions found by turns 1 and 2."""

TINY_LIMITS = {"scene": 120, "focus": 80, "think": 160}
"""Shorter sections for the untrained model, so the demo takes seconds (real models keep the defaults)."""

TINY_SAMPLING = {"temperature": 0.8, "seed": 0}
"""The untrained model samples (seeded, so the demo is reproducible): greedy decoding would repeat one guess."""


_OUTPUTS = frozenset(
    ["image.png", "turn1.png", "turn2.png", "turn3.png", "memory.db", "checkpoints.db", "trace.jsonl", "summary.json"]
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
    """
    model = model or os.environ.get("REGIONREASONER_MODEL") or TINY_MODEL
    tiny = model == TINY_MODEL
    _recreate(out)
    print(f"regionreasoner demo -> {out}/")
    if tiny:
        print(
            "model: a tiny Qwen2.5-VL with RANDOM, UNTRAINED weights, built offline and cached on first use.\n"
            "       Its words are noise and its boxes are guesses; the demo shows the machinery, not answers.\n"
            "       It samples (temperature 0.8, seed 0) so that its guesses differ from turn to turn.\n"
            "       Set REGIONREASONER_MODEL=/path/to/RegionReasoner-7B (or --model) to run real weights."
        )
    t0 = time.perf_counter()
    # The demo says in its own words that the tiny model is untrained (above), so no logged warning as well.
    policy = load_policy(model, frame="fixed:840x840" if tiny else None, device=device, warn_untrained=False)
    print(f"model: {policy.name} (frame {policy.frame.spec}) loaded in {time.perf_counter() - t0:.1f} s")
    provider = configure_tracing(jsonl_path=out / "trace.jsonl")
    extra: dict[str, Any] = {"char_limits": TINY_LIMITS, "max_objects": 2, **TINY_SAMPLING} if tiny else {}
    agent = RegionAgent(policy, memory=f"sqlite:///{out}/memory.db", tracer_provider=provider, **extra)
    image, _ = demo_scene()
    image.save(out / "image.png")
    dialogue = agent.dialogue(image, title="regionreasoner demo")
    files = [out / "image.png"]
    turns = []
    for i, question in enumerate(QUESTIONS):
        print(f"\n> turn {i + 1}: {question}")
        t = time.perf_counter()
        turn = print_turn(dialogue, question)
        assert turn is not None
        print(f"  ({time.perf_counter() - t:.2f} s)")
        path = out / f"turn{i + 1}.png"
        dialogue.render(turn=turn.index).save(path)
        files.append(path)
        turns.append(turn)
    provider.shutdown()
    agent.close()
    files += [out / "memory.db", out / "checkpoints.db", out / "trace.jsonl"]
    summary: dict[str, object] = {
        "model": policy.name,
        "untrained": tiny,
        "frame": policy.frame.spec,
        "dialogue_id": dialogue.id,
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
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    files.append(out / "summary.json")
    print("\nwrote:", *(f"  {p}" for p in files), sep="\n")
    if tiny:
        print("\nReminder: the default weights are untrained; the regions above are not real detections.")
    return summary
