"""``regionreasoner chat`` and the turn printer it shares with ``regionreasoner demo``."""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from regionreasoner.agent.api import DialogueSession, RegionAgent
from regionreasoner.core.errors import InputError, NotFoundError, RegionReasonerError
from regionreasoner.core.types import Severity, Turn

__all__ = ["ChatOutcome", "ChatScript", "check_out_image", "load_script", "print_turn", "run_chat"]


@dataclass(frozen=True)
class ChatScript:
    """Questions to ask, and optionally the scripted policy outputs (one full assistant message per turn)."""

    questions: list[str]
    turns: list[str] | None = None


_SCRIPT_HINT = (
    "pass --script a UTF-8 text file (one question a line) or a .json file "
    '{"questions": ["..."], "turns": ["..."]} (turns optional)'
)


def _strings(data: dict[str, Any], key: str, path: Path) -> list[str] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{path}: {key!r} must be a list of strings", hint=_SCRIPT_HINT)
    return value


def load_script(path: Path) -> ChatScript:
    """A ``.json`` file ``{"questions": [...], "turns": [...]}`` (turns optional), or text: one question a line.

    Raises :class:`~regionreasoner.core.errors.InputError` naming the file when it cannot be read, is not UTF-8,
    not valid JSON, not of that shape, or holds no question.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})", hint=_SCRIPT_HINT) from exc
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}", hint=_SCRIPT_HINT) from exc
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} is not valid JSON ({exc})", hint=_SCRIPT_HINT) from exc
        if not isinstance(data, dict):
            raise InputError(f"{path}: expected a JSON object, got {type(data).__name__}", hint=_SCRIPT_HINT)
        questions = _strings(data, "questions", path)
        if questions is None:
            raise InputError(f"{path}: 'questions' is missing", hint=_SCRIPT_HINT)
        turns = _strings(data, "turns", path)
        script = ChatScript(questions=[q.strip() for q in questions if q.strip()], turns=turns or None)
    else:
        script = ChatScript(questions=[line.strip() for line in text.splitlines() if line.strip()])
    if not script.questions:
        raise InputError(f"{path} holds no question", hint=_SCRIPT_HINT)
    return script


def check_out_image(path: Path) -> None:
    """Refuse an ``--out`` that cannot take the annotated image, before anything runs (InputError naming it)."""
    from PIL import Image

    hint = "pass --out an image file path such as annotated.png"
    if path.is_dir():
        raise InputError(f"--out {path} is a folder", hint=hint)
    Image.init()
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or fmt not in Image.SAVE:
        raise InputError(f"--out {path}: {path.suffix or 'no suffix'} is not an image format PIL writes", hint=hint)
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"--out {path} lies under the file {parent}", hint=hint)
            if not os.access(parent, os.W_OK | os.X_OK):
                raise InputError(f"--out {path}: cannot write into {parent}", hint=hint)
            return


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
    for v in turn.versions:
        made = " ".join(x for x in (v.tool, v.region, repr(v.prompt) if v.prompt else None) if x)
        out.write(f"  image version {v.number}: {made}; the next turn runs on it\n")
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


@dataclass
class ChatOutcome:
    """What a chat did: the stored turns, and the turns that failed (the transcript shows each one)."""

    turns: list[Turn] = field(default_factory=list)
    asked: int = 0
    """Questions asked."""
    rejected: list[str] = field(default_factory=list)
    """Messages of questions refused as the user's mistake (an unknown region, a malformed box): no turn ran."""
    failed: list[str] = field(default_factory=list)
    """Messages of turns that failed for an infrastructure reason (policy, storage, tool): typed errors."""
    bugs: int = 0
    """Turns that raised an unexpected exception (a bug; its traceback went to stderr)."""


def run_chat(
    agent: RegionAgent,
    image: Any,
    *,
    script: ChatScript | None,
    out_image: Path,
    dialogue_id: str | None = None,
    stdin: TextIO | None = None,
) -> ChatOutcome:
    """Run a chat (scripted or interactive); writes the annotated image after every turn.

    A turn that fails does not end the chat: it is printed as failed and the next question is asked.  A typed
    error (:class:`~regionreasoner.core.errors.RegionReasonerError`) prints its one-line message; any other
    exception is a bug and prints its traceback on stderr.  The outcome says which turns failed and how.
    """
    stdin = stdin or sys.stdin
    dialogue = (
        agent.dialogue(id=dialogue_id) if dialogue_id and image is None else agent.dialogue(image, id=dialogue_id)
    )
    print(f"dialogue {dialogue.id} (continue it with --dialogue {dialogue.id})")
    outcome = ChatOutcome()
    for question in _questions(script, stdin):
        print(f"\n> {question}")
        outcome.asked += 1
        try:
            turn = print_turn(dialogue, question)
        except (InputError, NotFoundError) as exc:  # the question's own mistake: nothing ran
            print(f"  error: {exc}")
            outcome.rejected.append(str(exc))
            continue
        except RegionReasonerError as exc:  # infrastructure failed this turn; the next one may work
            print(f"  error: the turn failed: {exc}")
            outcome.failed.append(str(exc))
            continue
        except Exception:  # a bug: shown in full (stderr), and the command exits 1; the other turns still run
            print("  error: the turn failed with an unexpected error (a bug; traceback on stderr)")
            traceback.print_exc()
            outcome.bugs += 1
            continue
        if turn is not None:
            outcome.turns.append(turn)
            try:
                out_image.parent.mkdir(parents=True, exist_ok=True)
                # A turn that made an image version shows the newest one; any other, the image it ran on.
                latest = turn.versions[-1].number if turn.versions else None
                view = dialogue.render(version=latest) if latest is not None else dialogue.render(turn=turn.index)
                view.save(out_image)
            except OSError as exc:
                raise InputError(
                    f"cannot write {out_image}: {exc.strerror or exc}", hint="pass --out an image path you can write"
                ) from exc
            print(f"  wrote {out_image}")
    return outcome
