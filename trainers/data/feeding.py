r"""The two ways to feed a dialogue to a trainer, as TRL conversational prompts.

* ``official`` (reference §3.3): each round is an independent single-turn sample: a system message, then one user
  message with the image and the training prompt around that round's question, which already writes the reference
  box as ``bbox=[...]``.  No earlier question, answer or image is included.
* ``multiturn``: round k's prompt keeps rounds 1..k-1 as conversation: the first user message carries the image and
  round 1's prompt, each earlier round's assistant answer follows its question (the ground-truth trace where there is
  one, else ``<answer>[...]</answer>``), and round k's user message comes last.  Every user message is the full
  training prompt around its own question, so the two modes differ only by the history.

The user text is the RegionReasoner training prompt (``core.prompts`` ``regionreasoner-train``, §1.1) with its
``<image>`` placeholder taken out: the image is a ``{"type": "image"}`` block before the text, which the Qwen-VL chat
template expands where the official code expanded ``<image>`` (the ``\n`` after it is kept).  A template that writes
text before its ``<image>`` (the embedded model's, question first) leads the message with it (:func:`user_message`).
"""

from __future__ import annotations

from collections.abc import Iterable

from regionreasoner.core.prompts import PromptTemplate, get_prompt
from regionreasoner.trainers.data.records import Dialogue, FeedMode, Message, TrainRecord

__all__ = [
    "DEFAULT_PROMPT",
    "FEED_MODES",
    "SYSTEM_PROMPT",
    "build_records",
    "records_for",
    "user_message",
    "user_text",
]

SYSTEM_PROMPT = "You are a helpful assistant."
"""The system message of the RegionReasoner training chat (``DataConfig.system_prompt`` default, §1.1)."""

DEFAULT_PROMPT = "regionreasoner-train"
"""The prompt template (a name of :data:`regionreasoner.core.prompts.PROMPTS`)."""

FEED_MODES: tuple[FeedMode, ...] = ("official", "multiturn")


def user_text(question: str, template: PromptTemplate) -> str:
    """The user message text for ``question``: the rendered template without its image placeholder."""
    text = template.render(question)
    placeholder = template.image_placeholder
    return text.replace(placeholder, "", 1) if placeholder else text


def user_message(question: str, template: PromptTemplate, *, image: bool) -> Message:
    """The user message of one round: the template's text before its placeholder leads, the rest follows the image.

    As the agent builds it (``agent.nodes._user_parts``), so that training and inference render the same tokens; a
    message without the image (a later round of a multi-turn prompt) is the text without its placeholder.
    """
    split = template.split_at_image(template.render(question)) if image else None
    if split is None:
        return Message(role="user", text=user_text(question, template), image=image)
    before, after = split
    return Message(role="user", text=after, image=True, lead=before)


def records_for(
    dialogue: Dialogue,
    mode: FeedMode,
    *,
    template: PromptTemplate | None = None,
    system: str | None = SYSTEM_PROMPT,
) -> list[TrainRecord]:
    """One :class:`TrainRecord` per round of ``dialogue``, fed in ``mode``; ids ``<dialogue id>_r<k>`` (1-based)."""
    tpl = template or get_prompt(DEFAULT_PROMPT)
    head = (Message(role="system", text=system),) if system is not None else ()
    history: list[Message] = []
    out: list[TrainRecord] = []
    for k, rnd in enumerate(dialogue.rounds):
        if mode == "official":
            turn = (user_message(rnd.question, tpl, image=True),)
        else:
            turn = (user_message(rnd.question, tpl, image=k == 0),)
        prompt = head + tuple(history) + turn
        completion = None if rnd.trace is None else (Message(role="assistant", text=rnd.trace),)
        out.append(
            TrainRecord(
                id=f"{dialogue.id}_r{k + 1}",
                dialogue_id=dialogue.id,
                round=k,
                mode=mode,
                source=dialogue.source,
                problem=rnd.question,
                solution=rnd.solution(),
                prompt=prompt,
                completion=completion,
                image=dialogue.image,
                image_size=dialogue.image_size,
                frame=dialogue.frame.spec,
                reference=rnd.reference,
                context_from_round=rnd.context_from_round,
                relation=rnd.relation,
                original_size=dialogue.original_size,
            )
        )
        if mode == "multiturn":
            history += [*turn, Message(role="assistant", text=rnd.answer_text())]
    return out


def build_records(
    dialogues: Iterable[Dialogue],
    mode: FeedMode,
    *,
    template: PromptTemplate | None = None,
    system: str | None = SYSTEM_PROMPT,
) -> list[TrainRecord]:
    """:func:`records_for` over many dialogues, in order."""
    return [r for d in dialogues for r in records_for(d, mode, template=template, system=system)]
