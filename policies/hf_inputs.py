"""Turning a :class:`~regionreasoner.policies.base.PolicyRequest` into model inputs for transformers.

Qwen-VL families are encoded without the processor classes (which need torchvision on CPU): the chat template is
rendered by the tokenizer, each ``<|image_pad|>`` is expanded to ``t*h*w / merge^2`` copies from the image
processor's grid, and ``mm_token_type_ids`` marks them.  Other families go through their ``AutoProcessor``.
Prompt text and the assistant prefix are tokenized separately, exactly as generation produced them (generated tokens
follow the prompt's tokens), so a cached prefix and a re-tokenized one line up.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from regionreasoner.core.images import LoadedImage
from regionreasoner.policies.base import ImageSlot, Message

__all__ = ["EncodedPrompt", "PromptEncoder", "chat_messages"]

IMAGE_PAD = "<|image_pad|>"


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


@dataclass
class EncodedPrompt:
    """Token ids of a rendered prompt (image tokens expanded) and the vision tensors that go with them."""

    input_ids: list[int]
    mm_token_type_ids: list[int]
    vision: dict[str, Any] = field(default_factory=dict)
    """``pixel_values`` and ``image_grid_thw`` (or the processor's own vision keys), batch of this prompt's images."""
    key: str = ""
    """Identity of the prompt (tokens and image hashes): the KV-session key."""


class PromptEncoder:
    """Encodes chat requests for one checkpoint (tokenizer + image processor, or a generic processor)."""

    def __init__(self, tokenizer: Any, image_processor: Any | None, *, processor: Any | None = None) -> None:
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.processor = processor
        self.image_token_id = int(tokenizer.convert_tokens_to_ids(IMAGE_PAD)) if processor is None else -1
        self.merge = int(getattr(image_processor, "merge_size", 2)) if image_processor is not None else 2

    def render(self, messages: tuple[Message, ...]) -> str:
        """The prompt text: the chat template applied, with the assistant turn opened."""
        text = self.tokenizer.apply_chat_template(chat_messages(messages), add_generation_prompt=True, tokenize=False)
        return str(text)

    @staticmethod
    def key(text: str, images: tuple[LoadedImage, ...]) -> str:
        """Identity of a prompt: its rendered text and the hashes of its (prepared) images."""
        digest = hashlib.sha256(text.encode())
        for image in images:
            digest.update(image.hash.encode())
        return digest.hexdigest()

    def encode(
        self, messages: tuple[Message, ...], images: tuple[LoadedImage, ...], *, text: str | None = None
    ) -> EncodedPrompt:
        """Token ids and vision tensors of the prompt (``images`` already prepared for the model's frame)."""
        text = self.render(messages) if text is None else text
        key = self.key(text, images)
        if self.processor is not None:
            return self._encode_generic(text, images, key)
        vision: dict[str, Any] = {}
        counts: list[int] = []
        if images:
            if self.image_processor is None:
                raise ValueError("this checkpoint has no image processor, so it cannot take images")
            vision = dict(self.image_processor(images=[i.image for i in images], return_tensors="pt"))
            counts = [int(g.prod()) // (self.merge**2) for g in vision["image_grid_thw"]]
        chunks = text.split(IMAGE_PAD)
        if len(chunks) - 1 != len(images):
            raise ValueError(f"the chat template produced {len(chunks) - 1} image slots for {len(images)} images")
        ids: list[int] = []
        types: list[int] = []
        for i, chunk in enumerate(chunks):
            piece = self.tokenizer.encode(chunk, add_special_tokens=False) if chunk else []
            ids.extend(piece)
            types.extend([0] * len(piece))
            if i < len(counts):
                ids.extend([self.image_token_id] * counts[i])
                types.extend([1] * counts[i])
        return EncodedPrompt(input_ids=ids, mm_token_type_ids=types, vision=vision, key=key)

    def _encode_generic(self, text: str, images: tuple[LoadedImage, ...], key: str) -> EncodedPrompt:
        assert self.processor is not None
        kwargs: dict[str, Any] = {"text": [text], "return_tensors": "pt"}
        if images:
            kwargs["images"] = [i.image for i in images]
        batch = dict(self.processor(**kwargs))
        ids = [int(t) for t in batch.pop("input_ids")[0]]
        batch.pop("attention_mask", None)
        types_tensor = batch.pop("mm_token_type_ids", None)
        types = [int(t) for t in types_tensor[0]] if types_tensor is not None else [0] * len(ids)
        return EncodedPrompt(input_ids=ids, mm_token_type_ids=types, vision=batch, key=key)

    def encode_text(self, text: str) -> list[int]:
        """Token ids of assistant text (no special tokens added)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False)) if text else []
