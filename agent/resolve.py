"""The ``resolve`` node: find the dialogue, its image and the regions the question cites, before any model call.

A name that does not exist (``R7`` in a dialogue with three regions) is an error to the user here, with the names
that exist and, when a recent turn failed, which one and why, so nobody waits for a model call that cannot help.
A turn key that is stored already is answered here too: the stored turn, without a model call (crash recovery).
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

from langgraph.config import get_config

from regionreasoner.agent.context import IMAGE_ROOT_ENV, Context, resources
from regionreasoner.agent.state import SectionTag, State, TurnUpdate, TurnWork
from regionreasoner.core.citations import (
    Reference,
    check_question_references,
    find_question_boxes,
    find_region_names,
    render_question,
)
from regionreasoner.core.errors import (
    ConfigError,
    DialogueNotFoundError,
    GeometryError,
    InputError,
    RegionNotFoundError,
    TurnConflictError,
)
from regionreasoner.core.geometry import as_box
from regionreasoner.core.prompts import get_prompt
from regionreasoner.core.types import Turn, TurnStatus, is_image_hash
from regionreasoner.memory import RegionMemory
from regionreasoner.memory.append import region_not_found

__all__ = ["IMAGE_ROOT_ENV", "MAX_QUESTION_CHARS_ENV", "resolve_image", "resolve_turn", "stored_turn"]

MAX_QUESTION_CHARS_ENV = "REGIONREASONER_MAX_QUESTION_CHARS"
"""The server variable that sets the longest question (``ServerConfig.max_question_chars``, 4000 by default)."""


def resolve_image(value: str, memory: RegionMemory, root: Path | None = None) -> str:
    """Turn graph input into a stored image hash: a known hash, a data URL, or a path under the image ``root``.

    ``root`` is the server's configured image root (None: paths are refused).
    """
    if is_image_hash(value):
        memory.image_info(value)
        return value
    if value.startswith("data:"):
        return memory.put_image(value).hash
    # Paths are read only under the server's configured root (a served graph must not read arbitrary files).
    if root is None:
        raise InputError(
            f"image {value[:60]!r} is neither a stored hash nor a data URL",
            hint=f"send a data:image/...;base64 URL, or set {IMAGE_ROOT_ENV} to a folder the graph may read paths from",
        )
    path = Path(value).resolve()
    if not path.is_relative_to(root):
        raise InputError(f"image path {value!r} is outside {IMAGE_ROOT_ENV}={root}", hint="move it under that folder")
    try:
        is_file = path.is_file()
    except OSError as exc:  # a name too long for the file system (Python 3.11 raises from is_file)
        raise InputError(f"image path {value[:80]!r} cannot be read: {exc.strerror}", hint="check the path") from None
    if not is_file:
        raise InputError(f"image path {value[:80]!r} is not a file under {IMAGE_ROOT_ENV}", hint="check the path")
    return memory.put_image(path).hash


def _thread_id() -> str:
    configurable = get_config().get("configurable", {})
    thread_id = configurable.get("thread_id")
    if not thread_id:
        raise ConfigError(
            "the turn graph needs a thread id: one thread is one dialogue",
            hint="invoke it with config={'configurable': {'thread_id': '<dialogue id>'}}",
        )
    return str(thread_id)


def _explain_missing(memory: RegionMemory, dialogue_id: str, exc: RegionNotFoundError) -> RegionNotFoundError:
    failed = [t for t in memory.turns(dialogue_id) if t.status is TurnStatus.FAILED]
    if not failed:
        return exc
    last = failed[-1]
    why = "; ".join(p.message for p in last.problems if p.severity.value == "error")[:300] or "no usable answer"
    return RegionNotFoundError(
        f"{exc} Turn {last.index + 1} ({last.question!r}) failed and found no region: {why}",
        hint="ask that question again, or cite a region that exists",
    )


def _image_of_turn(state: State, memory: RegionMemory, dialogue_id: str, root: Path | None) -> tuple[str, bool]:
    """The stored image hash this turn runs on, and whether the dialogue is new (the caller creates it).

    That is the image the caller sent, else the dialogue's newest image version (``memory.latest_image``): an image
    a tool made in an earlier turn (generate, inpaint) is what later turns run on.

    The dialogue is not created here: resolve first checks everything the question cites, so a refused turn leaves
    no dialogue behind.
    """
    # WHY the memory is asked every turn (one indexed SELECT), not the thread's last work: a version may have been
    # made outside this thread (`regionreasoner inpaint --dialogue D`), and the next turn must run on it.
    try:
        latest: str | None = memory.latest_image(dialogue_id)
    except DialogueNotFoundError:
        latest = None
    if latest is None:
        if state.image is None:
            raise InputError(
                f"dialogue {dialogue_id!r} does not exist yet, so its first turn needs an image",
                hint="pass image=<data URL or stored hash> with the first question",
            )
        return resolve_image(state.image, memory, root), True
    return (resolve_image(state.image, memory, root) if state.image is not None else latest), False


def stored_turn(memory: RegionMemory, dialogue_id: str, key: str) -> Turn | None:
    """The turn stored in ``dialogue_id`` under ``key``, or None (also when the dialogue does not exist yet)."""
    return memory.turn_by_key(dialogue_id, key)


def _replay(
    state: State, memory: RegionMemory, dialogue_id: str, question: str, stored: Turn, root: Path | None
) -> TurnUpdate:
    """The update that returns ``stored`` (asked again under its key) without a model call.

    The key names one request: the same key with another question (or another image) is a TurnConflictError, raised
    before any model call.  The fresh TurnWork carries the dialogue's latest image, as a turn run now would.
    """
    conflict = []
    if stored.question != question:
        conflict.append(f"question {stored.question!r}, not {question!r}")
    if state.image is not None and resolve_image(state.image, memory, root) != stored.image:
        conflict.append(f"image {stored.image[:12]}..., not the one sent")
    if conflict:
        raise TurnConflictError(
            f"dialogue {dialogue_id!r} already has turn {stored.index + 1} under key {stored.key!r}, with "
            + " and ".join(conflict),
            hint="use a new key for a new question; reuse a key only to ask the same question again",
        )
    work = TurnWork(
        key=stored.key or "",
        image_hash=memory.latest_image(dialogue_id),
        frame=stored.frame,
        rendered_question=stored.rendered_question,
        parsed=stored.sections,
        status=stored.status,
    )
    return {"question": question, "dialogue_id": dialogue_id, "work": work, "turn": stored}


def resolve_turn(state: State, ctx: Context, key: str) -> TurnUpdate:
    """Prepare turn ``key``: dialogue, image, cited regions rendered in the policy's frame, sections and prompt.

    Returns a fresh :class:`~regionreasoner.agent.state.TurnWork` (nothing of the previous turn survives) and clears
    the previous turn's output.  When the caller's key (``state.key``) is stored in the dialogue already, the update
    carries that stored turn as ``turn`` instead (see :func:`_replay`): the graph then goes straight to
    ``remember``, and neither the policy nor any tool runs.
    """
    # InputState checked the types and the text (no lone surrogate, no NUL) when LangGraph built the state.
    question = state.question.strip()
    if not question:
        raise InputError("the question is empty", hint="ask something, e.g. 'find the red car'")
    res = resources()
    settings = res.settings(ctx)
    limit = settings.max_question_chars
    if len(question) > limit:
        raise InputError(
            f"the question is {len(question)} characters, more than this server's limit of {limit}",
            hint=f"ask a shorter question; the server sets the limit with {MAX_QUESTION_CHARS_ENV}",
        )
    check_question_references(question)
    memory = res.memory(ctx)
    dialogue_id = _thread_id()
    if state.key:
        # The key first: a turn stored before a crash (or before its checkpoint was written) is answered from
        # memory, without loading or calling the model.
        stored = stored_turn(memory, dialogue_id, state.key)
        if stored is not None:
            return _replay(state, memory, dialogue_id, question, stored, settings.image_root)
    policy = res.policy(ctx)
    image_hash, new_dialogue = _image_of_turn(state, memory, dialogue_id, settings.image_root)
    info = res.image_info(memory, image_hash)
    size = (info.width, info.height)
    frame = policy.frame
    names = find_region_names(question)
    references: list[Reference] = []
    by_name: dict[str, tuple[int, int, int, int]] = {}
    for name in names:
        if new_dialogue:
            raise region_not_found(dialogue_id, name, 0)
        try:
            region = memory.get_region(dialogue_id, name)
        except RegionNotFoundError as exc:
            raise _explain_missing(memory, dialogue_id, exc) from None
        by_name[name] = frame.box_to_model(region.box, size)
        references.append(Reference(region=name, box=by_name[name], frame=frame.spec))
    inline: list[tuple[int, int, int, int]] = []
    for i, qb in enumerate(find_question_boxes(question)):
        box = as_box(qb.coords)
        if not box.within(info.width, info.height):
            raise GeometryError(
                f"bbox={list(qb.coords)} lies outside the image ({info.width}x{info.height} pixels)",
                hint="inline boxes are xyxy in original-image pixels",
            )
        inline.append(frame.box_to_model(box, size))
        references.append(Reference(inline=i, box=inline[-1], frame=frame.spec))
    if new_dialogue:
        memory.create_dialogue(image_hash, id=dialogue_id)
    rendered = render_question(question, by_name, inline=inline)
    template = get_prompt(policy.prompt_template)
    sections = tuple(cast(SectionTag, s) for s in template.sections if s != "focus" or references)
    work = TurnWork(
        key=key,
        image_hash=image_hash,
        frame=frame.spec,
        bounds=frame.model_size(size),
        references=tuple(references),
        sections=sections,
        rendered_question=rendered,
        prompt=template.render(rendered),
    )
    return {"question": question, "dialogue_id": dialogue_id, "work": work, "turn": None}
