"""NeoBabel's vocabulary layout, the t2i token sequence and its attention mask (neobabel.md §1.2–§1.4).

One vocabulary holds text, ten added tokens and the image codes, in this order::

    [0, T)                    the text tokenizer's own tokens (Gemma-2: T = 256000; <bos> 2, <eos> 1)
    T                         [PAD]      (the new pad token; Gemma's own <pad> = 0 is not used)
    T+1 .. T+9                <|soi|> <|eoi|> <|sov|> <|eov|> <|t2i|> <|mmu|> <|t2v|> <|v2v|> <|lvg|>
    T+10 + k, k < K           image code k  (the offset T+10 is ``len(tokenizer)`` once the ten are added)
    T+10 + K                  MASK = vocab_size - 1

A t2i sequence is ``[PAD]*k, <|t2i|>, <bos>, text, <eos>, <|soi|>, img_1 .. img_N, <|eoi|>``, the text part
left-padded to exactly ``max_seq_length + 1`` tokens.  Importing this module loads neither torch nor transformers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regionreasoner.core.errors import ConfigError, InputError

if TYPE_CHECKING:
    import torch

__all__ = [
    "NEW_TOKENS",
    "NUM_NEW_SPECIAL_TOKENS",
    "PAD_TOKEN",
    "VocabLayout",
    "attention_mask",
    "build_t2i_batch",
    "encode_prompts",
    "gemma_bpe_tokenizer",
    "prepare_tokenizer",
    "t2i_text_part",
    "tiny_gemma_tokenizer",
]

PAD_TOKEN = "[PAD]"
"""NeoBabel's pad token, added as the tokenizer's ``pad_token`` (so ``len(tokenizer)`` grows by one)."""
NEW_TOKENS = ("<|soi|>", "<|eoi|>", "<|sov|>", "<|eov|>", "<|t2i|>", "<|mmu|>", "<|t2v|>", "<|v2v|>", "<|lvg|>")
"""The nine task/segment tokens, added after ``[PAD]`` in this order (``UniversalPrompting``)."""
NUM_NEW_SPECIAL_TOKENS = 1 + len(NEW_TOKENS)
"""``num_new_special_tokens`` of the released config: ``[PAD]`` plus the nine."""


@dataclass(frozen=True)
class VocabLayout:
    """Token ids of one NeoBabel vocabulary; everything follows from the text size T and the codebook size K."""

    text_vocab_size: int
    """T = ``llm_vocab_size``: the text tokenizer's length before NeoBabel's ten tokens were added."""
    codebook_size: int
    """K: image codes ``0..K-1`` (8192 for MAGVIT-v2)."""
    bos_id: int = 2
    """``<bos>`` (SOT), which the Gemma tokenizer prepends to every text."""
    eos_id: int = 1
    """``<eos>`` (EOT), appended after the text."""

    def __post_init__(self) -> None:
        if self.text_vocab_size < 1 or self.codebook_size < 2:
            raise ConfigError(
                f"text_vocab_size={self.text_vocab_size}, codebook_size={self.codebook_size}",
                hint="use a text vocabulary of >= 1 token and a codebook of >= 2 codes",
            )

    @property
    def pad_id(self) -> int:
        """``[PAD]`` = T."""
        return self.text_vocab_size

    def token_id(self, token: str) -> int:
        """Id of ``[PAD]`` or one of :data:`NEW_TOKENS` (``<|soi|>`` = T+1, ..., ``<|lvg|>`` = T+9)."""
        if token == PAD_TOKEN:
            return self.pad_id
        if token not in NEW_TOKENS:
            raise InputError(f"{token!r} is not a NeoBabel token", hint=f"use {PAD_TOKEN!r} or one of {NEW_TOKENS}")
        return self.text_vocab_size + 1 + NEW_TOKENS.index(token)

    @property
    def soi_id(self) -> int:
        """``<|soi|>``: opens the image segment."""
        return self.token_id("<|soi|>")

    @property
    def eoi_id(self) -> int:
        """``<|eoi|>``: closes the image segment."""
        return self.token_id("<|eoi|>")

    @property
    def t2i_id(self) -> int:
        """``<|t2i|>``: the task token in front of the text."""
        return self.token_id("<|t2i|>")

    @property
    def image_offset(self) -> int:
        """Token id of image code 0: T + 10 (= ``len(tokenizer)`` with the ten tokens added)."""
        return self.text_vocab_size + NUM_NEW_SPECIAL_TOKENS

    @property
    def mask_id(self) -> int:
        """MASK = image_offset + K = vocab_size - 1 (never sampled: the code logits stop before it)."""
        return self.image_offset + self.codebook_size

    @property
    def vocab_size(self) -> int:
        """T + 10 + K + 1 (Gemma-2 with MAGVIT-v2: 264203)."""
        return self.mask_id + 1


def prepare_tokenizer(tokenizer: Any, codebook_size: int) -> VocabLayout:
    """Add ``[PAD]`` (as pad token) and :data:`NEW_TOKENS` to ``tokenizer`` in place, return the layout it gives.

    Idempotent: a tokenizer saved with the tokens already added keeps its ids.  Raises :class:`ConfigError` when
    the ten tokens do not sit contiguously right after the text vocabulary (then image code ids would be off).
    """
    tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
    tokenizer.add_tokens(list(NEW_TOKENS))
    pad_id = int(tokenizer.convert_tokens_to_ids(PAD_TOKEN))
    layout = VocabLayout(
        text_vocab_size=pad_id,
        codebook_size=codebook_size,
        bos_id=int(tokenizer.bos_token_id),
        eos_id=int(tokenizer.eos_token_id),
    )
    got = [int(tokenizer.convert_tokens_to_ids(t)) for t in NEW_TOKENS]
    want = [layout.token_id(t) for t in NEW_TOKENS]
    if got != want or len(tokenizer) != layout.image_offset:
        raise ConfigError(
            f"tokenizer ids {PAD_TOKEN}={pad_id}, {dict(zip(NEW_TOKENS, got, strict=True))}, len={len(tokenizer)} "
            f"are not [PAD]=T, then the nine at T+1..T+9, len=T+10",
            hint="use the text tokenizer the model was trained with (google/gemma-2-2b-it for NeoBabel)",
        )
    return layout


def encode_prompts(tokenizer: Any, prompts: Sequence[str]) -> list[list[int]]:
    """Token ids of each prompt as the text tokenizer gives them (Gemma prepends ``<bos>``; no padding)."""
    if isinstance(prompts, str) or not all(isinstance(p, str) for p in prompts):
        raise InputError("prompts must be a sequence of strings", hint='pass ["a red ball"], not "a red ball"')
    if not prompts:
        raise InputError("no prompts", hint="pass at least one prompt")
    return [list(map(int, ids)) for ids in tokenizer(list(prompts))["input_ids"]]


def t2i_text_part(text_ids: Sequence[int], layout: VocabLayout, max_seq_length: int) -> list[int]:
    """The text part of a t2i sequence: exactly ``max_seq_length + 1`` ids, left-padded with ``[PAD]``.

    ``<|t2i|>, <bos>, text..., <eos>``; ``<bos>`` is prepended when the tokenizer did not.  Too long a text is cut
    to ``max_seq_length`` ids and closed with ``<eos>`` (``UniversalPrompting.t2i_gen_prompt``).  The empty prompt
    (unconditional, for CFG) becomes ``[PAD]*(max_seq_length-2), <|t2i|>, <bos>, <eos>``.

    >>> t2i_text_part([2, 7, 8], VocabLayout(text_vocab_size=20, codebook_size=4), max_seq_length=6)
    [20, 20, 25, 2, 7, 8, 1]
    >>> t2i_text_part([7, 8, 9, 10, 11, 12], VocabLayout(text_vocab_size=20, codebook_size=4), max_seq_length=6)
    [25, 2, 7, 8, 9, 10, 1]
    """
    if max_seq_length < 3:
        raise ConfigError(f"max_seq_length={max_seq_length}: set it >= 3 (room for <|t2i|>, <bos>, <eos>)")
    text = list(text_ids)
    if not text or text[0] != layout.bos_id:
        text = [layout.bos_id, *text]
    ids = [layout.t2i_id, *text, layout.eos_id]
    max_text_len = max_seq_length + 1
    if len(ids) <= max_text_len:
        return [layout.pad_id] * (max_text_len - len(ids)) + ids
    return [*ids[: max_text_len - 1], layout.eos_id]


def build_t2i_batch(
    text_ids: Sequence[Sequence[int]], image_tokens: torch.Tensor, layout: VocabLayout, max_seq_length: int
) -> torch.Tensor:
    """(B, L) long ids ``text part, <|soi|>, image_tokens, <|eoi|>`` with L = max_seq_length + 1 + N + 2.

    ``image_tokens`` (B, N) are vocabulary ids (``code + image_offset``, or ``mask_id`` where unknown); one row of
    ``text_ids`` per row.  The image slice of the result is ``ids[:, -(N+1):-1]``.
    """
    import torch

    if image_tokens.ndim != 2 or image_tokens.shape[0] != len(text_ids):
        raise InputError(
            f"image_tokens of shape {tuple(image_tokens.shape)} for {len(text_ids)} texts",
            hint="pass image tokens of shape (len(texts), N)",
        )
    tokens = image_tokens.long()
    is_code = (tokens >= layout.image_offset) & (tokens < layout.mask_id)
    if not bool((is_code | (tokens == layout.mask_id)).all()):
        raise InputError(
            "image_tokens hold ids outside the image codes and MASK",
            hint=f"pass code + {layout.image_offset} (image_offset) or {layout.mask_id} (mask_id)",
        )
    text = torch.tensor([t2i_text_part(t, layout, max_seq_length) for t in text_ids], dtype=torch.long)
    b = len(text_ids)
    soi = torch.full((b, 1), layout.soi_id, dtype=torch.long)
    eoi = torch.full((b, 1), layout.eoi_id, dtype=torch.long)
    return torch.cat([text.to(tokens.device), soi.to(tokens.device), tokens, eoi.to(tokens.device)], dim=1)


def attention_mask(
    ids: torch.Tensor,
    pad_id: int,
    soi_id: int,
    eoi_id: int,
    *,
    rm_pad_in_image: bool = True,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Additive attention mask (B, 1, L, L) of ``ids`` (B, L): 0 where row i may attend column j, dtype's min else.

    ``create_attention_mask_predict_next`` (neobabel.md §1.4).  The image segment is ``<|soi|>`` .. ``<|eoi|>``
    inclusive; every other position is text.  Text rows are causal; image rows see every non-pad position, text and
    image, in both directions.  With ``rm_pad_in_image`` (what inference uses), rows after the last ``[PAD]`` see
    nothing up to it and image rows skip pad columns; pad rows stay causal among themselves (no empty softmax row).
    ``dtype`` is the model's (float32 by default): HF Gemma-2 adds a 4-D float mask to the scores as given.
    """
    import torch

    if ids.ndim != 2:
        raise InputError(f"ids of shape {tuple(ids.shape)}", hint="pass token ids of shape (B, L)")
    dtype = dtype or torch.float32
    _, length = ids.shape
    pos = torch.arange(length, device=ids.device)
    is_pad = ids == pad_id
    # cumsum: positions after an <|soi|> and up to (excluding) its <|eoi|>, plus both delimiters themselves.
    opened = torch.cumsum(ids == soi_id, dim=1) > torch.cumsum(ids == eoi_id, dim=1)
    in_image = opened | (ids == soi_id) | (ids == eoi_id)
    allowed = (pos[None, :, None] >= pos[None, None, :]).expand(ids.shape[0], length, length)  # text: causal
    image_rows = torch.ones_like(is_pad)[:, None, :].expand_as(allowed)
    if rm_pad_in_image:
        # WHY the last pad, not every pad: the reference blanks the whole block [last_pad+1:, :last_pad+1], so a
        # non-pad text token never sees anything left of (or at) the padding, pad rows keep their causal block.
        last_pad = torch.where(is_pad, pos, -1).amax(dim=1)  # (B,), -1 when a row has no pad
        after = pos[None, :] > last_pad[:, None]
        allowed = allowed & ~(after[:, :, None] & (pos[None, None, :] <= last_pad[:, None, None]))
        image_rows = ~is_pad[:, None, :].expand_as(allowed)
    allowed = torch.where(in_image[:, :, None], image_rows, allowed)
    out = torch.zeros(allowed.shape, dtype=dtype, device=ids.device)
    return out.masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]


def gemma_bpe_tokenizer(texts: list[str], *, vocab_size: int) -> Any:
    """An offline byte-level BPE ``PreTrainedTokenizerFast`` shaped like Gemma's, trained on ``texts``.

    ``<pad>`` 0, ``<eos>`` 1, ``<bos>`` 2, ``<unk>`` 3 as in Gemma, ``<bos>`` prepended to every text, left padding;
    byte-level, so any script encodes.  NeoBabel's ten tokens are not added (:func:`prepare_tokenizer` does that,
    as for the real one).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<eos>", "<bos>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        padding_side="left",
        model_max_length=8192,
    )


def tiny_gemma_tokenizer(*, vocab_size: int = 512) -> Any:
    """:func:`gemma_bpe_tokenizer` trained in well under a second on the synthetic world's words in six languages."""
    from regionreasoner.core.world.languages import LANGUAGES, vocabulary

    corpus = [" ".join(word for table in vocabulary(lang).values() for word in table.values()) for lang in LANGUAGES]
    corpus += ["a photo of a red ball left of a blue box", "replace the region with a yellow umbrella"]
    return gemma_bpe_tokenizer(corpus * 8, vocab_size=vocab_size)
