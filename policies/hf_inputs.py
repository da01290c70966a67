"""Turning a :class:`~regionreasoner.policies.base.PolicyRequest` into model inputs for Hugging Face tokenizers.

Qwen-VL families are encoded without the processor classes (which need torchvision on CPU): the chat template is
rendered by the tokenizer, each ``<|image_pad|>`` is expanded to ``t*h*w / merge^2`` copies from the image
processor's grid, and ``mm_token_type_ids`` marks them.  Other families get their image tokens from their
``AutoProcessor``.  Prompt text and the assistant prefix are tokenized separately, exactly as generation produced
them (generated tokens follow the prompt's tokens), so a cached prefix and a re-tokenized one line up.

**Special tokens are the template's, never the text's.**  The messages' text (the question, memory, prompt
templates) is encoded so that a special-token string in it (``<|im_end|>``, ``<|image_pad|>``, ``<image>``) is
plain text: :func:`render_chat` renders the template with a placeholder per text part, so the template's own
structure and the messages' text are known apart, and :class:`SpecialTokens` encodes the text parts with
``split_special_tokens=True``.  The tokenizer splits its input at special tokens anyway, so where the text holds no
special-token string the ids are exactly those of the whole rendered string.  In the assistant prefix the model's
own text keeps its special tokens (it is the decoding of the model's tokens), while tool responses
(:func:`assistant_segments`) are plain text.  Servers tokenize for themselves, so their text is escaped instead
(:func:`escape_special_tokens`, a reversible zero-width joiner; see docs/policies.md).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from regionreasoner.core.errors import PolicyError
from regionreasoner.core.images import LoadedImage
from regionreasoner.policies.base import ImageSlot, Message

__all__ = [
    "TOOL_RESPONSE_TAGS",
    "EncodedPrompt",
    "PromptEncoder",
    "RenderedChat",
    "SpecialTokens",
    "assistant_segments",
    "chat_messages",
    "escape_special_tokens",
    "render_chat",
    "unescape_special_tokens",
]

IMAGE_PAD = "<|image_pad|>"

TOOL_RESPONSE_TAGS = ("<tool_response>", "</tool_response>")
"""The tags the agent's ``tools`` node wraps a tool's observation in, inside the assistant message."""

ZWJ = "\u200d"
"""ZERO WIDTH JOINER: inserted after the first character of a special-token string to escape it."""

_PLACEHOLDER = "\ue000{}\ue001"
"""Stands for text part ``{}`` while the template renders (private-use characters: no template or token has them)."""
_PLACEHOLDER_RE = re.compile("\ue000(\\d+)\ue001")

_CONTROL_LIKE = r"<{zwj}\|[^\s<>|{z}]{{1,64}}\|>"
"""The ``<|name|>`` spelling of control tokens (ChatML, Qwen, Llama 3, Phi): escaped when no tokenizer is known."""


def chat_messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Messages in the transformers chat format (``{"type": "image"}`` / ``{"type": "text"}`` parts)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if all(isinstance(p, str) for p in m.parts):
            out.append({"role": m.role, "content": m.text})
            continue
        parts: list[dict[str, Any]] = []
        for p in m.parts:
            parts.append({"type": "image"} if isinstance(p, ImageSlot) else {"type": "text", "text": p})
        out.append({"role": m.role, "content": parts})
    return out


# -- escaping (for servers, which tokenize the text themselves) -----------------------------------------------------
def _escape_patterns(tokens: Sequence[str] | None) -> tuple[re.Pattern[str], re.Pattern[str]] | None:
    """The (escape, unescape) patterns of ``tokens`` (``None``: every ``<|name|>``).

    They match a token spelled with k >= 0 (escape) or k >= 1 (unescape) joiners after its first character.
    """
    if tokens is None:
        z = re.escape(ZWJ)
        return (
            re.compile(_CONTROL_LIKE.format(zwj=z + "*", z=z)),
            re.compile(_CONTROL_LIKE.format(zwj=z + "+", z=z)),
        )
    words = sorted({t for t in tokens if len(t) > 1}, key=len, reverse=True)
    if not words:
        return None
    esc = "|".join(re.escape(t[0]) + ZWJ + "*" + re.escape(t[1:]) for t in words)
    unesc = "|".join(re.escape(t[0]) + ZWJ + "+" + re.escape(t[1:]) for t in words)
    return re.compile(esc), re.compile(unesc)


def escape_special_tokens(text: str, tokens: Sequence[str] | None) -> str:
    """``text`` with a zero-width joiner after the first character of every special-token string in it.

    ``tokens`` are the tokenizer's special tokens (``None``: every ``<|name|>`` string).  A string that already
    has joiners there gets one more, so :func:`unescape_special_tokens` restores the text exactly.

    >>> escaped = escape_special_tokens("a<|im_end|>b<scene>", ["<|im_end|>"])
    >>> escaped == "a<" + ZWJ + "|im_end|>b<scene>", unescape_special_tokens(escaped, ["<|im_end|>"])
    (True, 'a<|im_end|>b<scene>')
    """
    patterns = _escape_patterns(tokens)
    if patterns is None:
        return text
    return patterns[0].sub(lambda m: m.group()[0] + ZWJ + m.group()[1:], text)


def unescape_special_tokens(text: str, tokens: Sequence[str] | None) -> str:
    """The inverse of :func:`escape_special_tokens` (one joiner removed from each escaped special-token string)."""
    patterns = _escape_patterns(tokens)
    if patterns is None:
        return text
    return patterns[1].sub(lambda m: m.group()[0] + m.group()[2:], text)


# -- special tokens of one tokenizer ----------------------------------------------------------------------------------
class SpecialTokens:
    """The special tokens of a tokenizer: the added tokens it stops matching with ``split_special_tokens=True``.

    :meth:`encode` tokenizes a sequence of ``(text, trusted)`` segments: special-token strings in trusted segments
    (the chat template's structure, the model's own text) become their ids, everything else is plain text.
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.ids: dict[str, int] = {
            str(t.content): int(i) for i, t in tokenizer.added_tokens_decoder.items() if t.special
        }
        self.strings: tuple[str, ...] = tuple(sorted(self.ids, key=len, reverse=True))
        """The special-token strings, longest first (the tokenizer matches the longest at a position)."""
        self._pattern = re.compile("|".join(re.escape(s) for s in self.strings)) if self.strings else None

    @classmethod
    def of(cls, tokenizer: Any) -> SpecialTokens:
        """The special tokens of ``tokenizer``."""
        return cls(tokenizer)

    def encode(self, segments: Iterable[tuple[str, bool]]) -> list[int]:
        """Token ids of the segments in order (no special tokens added).

        Text between the trusted segments' special tokens is joined and tokenized in one piece, so without
        special-token strings in untrusted text this equals the tokenizer's encoding of the joined string.
        """
        ids: list[int] = []
        pending: list[str] = []

        def flush() -> None:
            text = "".join(pending)
            pending.clear()
            if text:
                ids.extend(self.tokenizer.encode(text, add_special_tokens=False, split_special_tokens=True))

        for text, trusted in segments:
            if not trusted or self._pattern is None:
                pending.append(text)
                continue
            pos = 0
            for m in self._pattern.finditer(text):
                pending.append(text[pos : m.start()])
                flush()
                ids.append(self.ids[m.group()])
                pos = m.end()
            pending.append(text[pos:])
        flush()
        return ids

    def escape(self, text: str) -> str:
        """``text`` with its special-token strings escaped (:func:`escape_special_tokens`)."""
        return escape_special_tokens(text, self.strings)

    def unescape(self, text: str) -> str:
        """The inverse of :meth:`escape`."""
        return unescape_special_tokens(text, self.strings)


# -- chats and assistant prefixes as segments ------------------------------------------------------------------------
@dataclass(frozen=True)
class RenderedChat:
    """A chat rendered by its template, in pieces ``(text, from_template)`` in order.

    Template pieces are the template's own structure (role markers, image slots, a default system prompt); the
    others are the messages' text parts, verbatim.
    """

    pieces: tuple[tuple[str, bool], ...]

    @property
    def text(self) -> str:
        """The rendered prompt as one string (what ``apply_chat_template(tokenize=False)`` returns)."""
        return "".join(text for text, _ in self.pieces)

    def digest(self) -> str:
        """Identity of the chat: its pieces, so text that spells the template's structure is not the structure."""
        return hashlib.sha256(json.dumps(self.pieces).encode()).hexdigest()


def render_chat(tokenizer: Any, messages: tuple[Message, ...]) -> RenderedChat:
    """Render ``messages`` with the tokenizer's chat template (assistant turn opened), text parts told apart.

    Raises :class:`PolicyError` for a template that rewrites message text (trims it, say): the text could then
    not be placed exactly, and guessing where it lies would let it pass for the template's structure.
    """
    texts: list[str] = []
    marked: list[Message] = []
    for m in messages:
        parts: list[str | ImageSlot] = []
        for p in m.parts:
            if isinstance(p, str):
                parts.append(_PLACEHOLDER.format(len(texts)))
                texts.append(p)
            else:
                parts.append(p)
        marked.append(Message(m.role, tuple(parts)))
    skeleton = str(
        tokenizer.apply_chat_template(chat_messages(tuple(marked)), add_generation_prompt=True, tokenize=False)
    )
    split = _PLACEHOLDER_RE.split(skeleton)
    in_order = [int(i) for i in split[1::2]] == list(range(len(texts)))
    pieces: list[tuple[str, bool]] = []
    for k, template_text in enumerate(split[0::2]):
        if template_text:
            pieces.append((template_text, True))
        if in_order and k < len(texts) and texts[k]:
            pieces.append((texts[k], False))
    chat = RenderedChat(tuple(pieces))
    plain = str(tokenizer.apply_chat_template(chat_messages(messages), add_generation_prompt=True, tokenize=False))
    if not in_order or chat.text != plain:
        raise PolicyError(
            "the chat template rewrites, drops or reorders message text, so the text cannot be kept apart from "
            "the template's special tokens",
            hint="use a chat template that emits each text part verbatim (the Qwen-VL and LLaVA templates do)",
        )
    return chat


def assistant_segments(prefix: str, start: int = 0) -> list[tuple[str, bool]]:
    """``prefix[start:]`` as ``(text, trusted)`` segments: tool responses untrusted, the model's text trusted.

    The untrusted span runs from the first ``<tool_response>`` to the last ``</tool_response>`` (or the end), so
    an observation that spells a closing tag cannot end it early; model text between two tool responses is then
    plain text too, which costs nothing in the agent's constrained turns (free text there has no ``<``).
    """
    opening, closing = TOOL_RESPONSE_TAGS
    first = prefix.find(opening)
    if first < 0:
        spans = [(0, len(prefix), True)]
    else:
        last = prefix.rfind(closing)
        end = last + len(closing) if last > first else len(prefix)
        spans = [(0, first, True), (first, end, False), (end, len(prefix), True)]
    return [(prefix[max(a, start) : b], trusted) for a, b, trusted in spans if b > max(a, start)]


def _tokens_before_text(tokenizer: Any) -> list[int]:
    """The tokens ``tokenizer`` adds before a text with ``add_special_tokens=True`` (a BOS, or none)."""
    plain = list(tokenizer.encode("a", add_special_tokens=False))
    full = list(tokenizer.encode("a", add_special_tokens=True))
    return full[: full.index(plain[0])] if plain and plain[0] in full else []


# -- prompts for transformers -----------------------------------------------------------------------------------------
@dataclass
class EncodedPrompt:
    """Token ids of a rendered prompt (image tokens expanded) and the vision tensors that go with them."""

    input_ids: list[int]
    mm_token_type_ids: list[int]
    vision: dict[str, Any] = field(default_factory=dict)
    """``pixel_values`` and ``image_grid_thw`` (or the processor's own vision keys), batch of this prompt's images."""
    key: str = ""
    """Identity of the prompt (chat pieces and image hashes): the KV-session key."""


class PromptEncoder:
    """Encodes chat requests for one checkpoint (tokenizer + image processor, or a generic processor)."""

    def __init__(self, tokenizer: Any, image_processor: Any | None, *, processor: Any | None = None) -> None:
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.processor = processor
        self.special = SpecialTokens(tokenizer)
        image_token = IMAGE_PAD if processor is None else str(processor.image_token)
        self.image_token_id = int(tokenizer.convert_tokens_to_ids(image_token))
        self.merge = int(getattr(image_processor, "merge_size", 2)) if image_processor is not None else 2
        self._around = _tokens_before_text(tokenizer) if processor is not None else []
        """What the processor's tokenizer puts before a text (a BOS): the processor path added it, so it still does."""

    def render(self, messages: tuple[Message, ...]) -> RenderedChat:
        """The prompt: the chat template applied, with the assistant turn opened (:func:`render_chat`)."""
        return render_chat(self.tokenizer, messages)

    @staticmethod
    def key(chat: RenderedChat, images: tuple[LoadedImage, ...]) -> str:
        """Identity of a prompt: its rendered pieces and the hashes of its (prepared) images."""
        digest = hashlib.sha256(chat.digest().encode())
        for image in images:
            digest.update(image.hash.encode())
        return digest.hexdigest()

    def encode(
        self, messages: tuple[Message, ...], images: tuple[LoadedImage, ...], *, chat: RenderedChat | None = None
    ) -> EncodedPrompt:
        """Token ids and vision tensors of the prompt (``images`` already prepared for the model's frame)."""
        chat = self.render(messages) if chat is None else chat
        key = self.key(chat, images)
        ids = self.special.encode(chat.pieces)
        slots = ids.count(self.image_token_id)
        if slots != len(images):
            raise ValueError(f"the chat template produced {slots} image slots for {len(images)} images")
        if self.processor is not None:
            expansions, vision = self._processor_images(images)
        else:
            expansions, vision = self._qwen_images(images)
        out: list[int] = []
        types: list[int] = []
        n = 0
        for t in ids:
            if t == self.image_token_id:
                expanded, kinds = expansions[n]
                n += 1
                out.extend(expanded)
                types.extend(kinds)
            else:
                out.append(t)
                types.append(0)
        out = self._around + out
        types = [0] * len(self._around) + types
        return EncodedPrompt(input_ids=out, mm_token_type_ids=types, vision=vision, key=key)

    def _qwen_images(self, images: tuple[LoadedImage, ...]) -> tuple[list[tuple[list[int], list[int]]], dict[str, Any]]:
        if not images:
            return [], {}
        if self.image_processor is None:
            raise ValueError("this checkpoint has no image processor, so it cannot take images")
        vision = dict(self.image_processor(images=[i.image for i in images], return_tensors="pt"))
        counts = [int(g.prod()) // (self.merge**2) for g in vision["image_grid_thw"]]
        return [([self.image_token_id] * c, [1] * c) for c in counts], vision

    def _processor_images(
        self, images: tuple[LoadedImage, ...]
    ) -> tuple[list[tuple[list[int], list[int]]], dict[str, Any]]:
        """Each image's tokens as the processor expands its image token, and the batch of vision tensors."""
        assert self.processor is not None
        expansions: list[tuple[list[int], list[int]]] = []
        batches: list[dict[str, Any]] = []
        for image in images:
            batch = dict(
                self.processor(
                    text=[str(self.processor.image_token)],
                    images=[image.image],
                    add_special_tokens=False,
                    return_tensors="pt",
                )
            )
            ids = [int(t) for t in batch.pop("input_ids")[0]]
            batch.pop("attention_mask", None)
            types_tensor = batch.pop("mm_token_type_ids", None)
            types = [int(t) for t in types_tensor[0]] if types_tensor is not None else [0] * len(ids)
            expansions.append((ids, types))
            batches.append(batch)
        if len(batches) <= 1:
            return expansions, batches[0] if batches else {}
        import torch

        return expansions, {k: torch.cat([b[k] for b in batches], dim=0) for k in batches[0]}

    def encode_text(self, text: str, *, start: int = 0) -> list[int]:
        """Token ids of assistant text ``text[start:]`` (no special tokens added).

        ``text`` is the whole assistant prefix, so tool responses are found even when ``start`` lies inside or
        after one (:func:`assistant_segments`): the model's text keeps its special tokens, tool responses are
        plain text.
        """
        return self.special.encode(assistant_segments(text, start)) if len(text) > start else []
