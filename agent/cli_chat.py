"""``regionreasoner chat`` and the turn printer it shares with ``regionreasoner demo``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from regionreasoner.agent.api import DialogueSession, RegionAgent
from regionreasoner.core.errors import InputError, RegionNotFoundError
from regionreasoner.core.types import Severity, Turn

__all__ = ["ChatScript", "load_script", "print_turn", "run_chat"]


@dataclass(frozen=True)
class ChatScript:
    """Questions to ask, and optionally the scripted policy outputs (one full assistant message per turn)."""

    questions: list[str]
    turns: list[str] | None = None


def load_script(path: Path) -> ChatScript:
    """A ``.json`` file ``{"questions": [...], "turns": [...]}`` (turns optional), or text: one question a line."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
            raise InputError(f"{path}: expected {{'questions': [...], 'turns': [...]}}")
        turns = data.get("turns")
        return ChatScript(
            questions=[str(q) for q in data["questions"]], turns=[str(t) for t in turns] if turns else None
        )
    return ChatScript(questions=[line.strip() for line in text.splitlines() if line.strip()])


def _fmt_box(values: Iterable[float]) -> str:
    return "[" + ", ".join(f"{v:.0f}" for v in values) + "]"


def print_turn(dialogue: DialogueSession, question: str, out: TextIO | None = None) -> Turn | None:
    """Ask ``question``, printing section text as it streams, then the regions; returns the stored turn."""
    out = out or sys.stdout
    section: str | None = None
    turn: Turn | None = None
    for event in dialogue.stream(question):
        if event.kind == "delta":
            if event.section != section:
                section = event.section
                out.write(f"\n  [{section}] ")
            out.write(event.text.replace("\n", " "))
            out.flush()
        elif event.kind == "turn":
            turn = event.turn
    out.write("\n")
    if turn is None:
        return None
    if turn.rendered_question != turn.question:
        out.write(f"  policy saw: {turn.rendered_question}\n")
    out.write(f"  status: {turn.status.value}")
    if turn.citations:
        out.write(f"; citations verified: {sum(c.verified for c in turn.citations)}/{len(turn.citations)}")
    out.write(f"; tokens: {turn.usage.prompt_tokens} in ({turn.usage.cached_tokens} cached), ")
    out.write(f"{turn.usage.generated_tokens} out; {turn.usage.latency_ms / 1000:.2f} s in the model\n")
    for p in turn.problems:
        # A problem of the model's output (data recorded with the turn), not a warning of the program: say whose.
        what = "fails the turn" if p.severity is Severity.ERROR else "recorded"
        out.write(f"  model output [{p.kind.value}, {what}]: {p.message}\n")
    for r in turn.regions:
        point = _fmt_box(r.point) if r.point is not None else "-"
        out.write(f"  {r.id}: box={_fmt_box(r.box)} point={point}\n")
    return turn


def _questions(script: ChatScript | None, stdin: TextIO) -> Iterator[str]:
    if script is not None:
        yield from script.questions
        return
    while True:
        sys.stdout.write("\nyou> ")
        sys.stdout.flush()
        line = stdin.readline()
        if not line or line.strip() in ("quit", "exit"):
            return
        if line.strip():
            yield line.strip()


def run_chat(
    agent: RegionAgent,
    image: Any,
    *,
    script: ChatScript | None,
    out_image: Path,
    dialogue_id: str | None = None,
    stdin: TextIO | None = None,
) -> list[Turn]:
    """Run a chat (scripted or interactive); writes the annotated image after every turn."""
    stdin = stdin or sys.stdin
    dialogue = (
        agent.dialogue(id=dialogue_id) if dialogue_id and image is None else agent.dialogue(image, id=dialogue_id)
    )
    print(f"dialogue {dialogue.id} (continue it with --dialogue {dialogue.id})")
    turns: list[Turn] = []
    for question in _questions(script, stdin):
        print(f"\n> {question}")
        try:
            turn = print_turn(dialogue, question)
        except (InputError, RegionNotFoundError) as exc:
            print(f"  error: {exc}")
            continue
        if turn is not None:
            turns.append(turn)
            out_image.parent.mkdir(parents=True, exist_ok=True)
            dialogue.render(turn=turn.index).save(out_image)
            print(f"  wrote {out_image}")
    return turns
