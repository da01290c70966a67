"""Cross-Lingual Consistency (CLC) and Code-Switching Similarity (CSS) of a generator (neobabel.md §5.3).

No formula or code was published; this is the implementable definition the reference flags as an assumption:

* ``E`` is an L2-normalised global image embedding (DINOv2 CLS token; a CLIP-family image tower in EVA-CLIP's
  role), so the cosine is a dot product;
* ``CLC(l) = mean over prompts p of cos(E(G(p_en)), E(G(p_l)))`` for each non-English language ``l``, images
  generated with the same seed; CLC = the mean over languages (= over all pairs, as each language has the same
  prompts);
* ``CSS_EF(l) = mean over p of cos(E(G(p_cs)), E(G(p_en)))`` where ``p_cs`` starts in English and switches to ``l``,
  ``CSS_ES`` the reverse.

For prompts of several sentences (the paper's long prompts) a switch is sentence-level: the first half of the
sentences from one language, the rest from the other (:func:`sentence_switch`).  The synthetic world's prompts are
one clause each, so there the switch is word-level, as the world's own mixes are: English-first keeps the English
frame with ``l``'s colour and shape words, English-second keeps ``l``'s frame with the English words
(:func:`world_switch`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from regionreasoner.core.errors import InputError
from regionreasoner.core.world import CodeSwitch
from regionreasoner.evals.generation.embed import ImageEmbedder
from regionreasoner.evals.generation.meta import GenEvalPrompt
from regionreasoner.evals.generation.world_prompts import reword

__all__ = ["SWITCHED", "pair_cosines", "sentence_switch", "split_sentences", "world_switch"]

SWITCHED: tuple[str, ...] = ("colour", "kind")
"""The world words a synthetic code switch takes from the other language."""

_SENTENCE_END = re.compile(r"(?<=[.!?。！？।؟])\s*")


def split_sentences(text: str) -> list[str]:
    """``text`` cut after each sentence end (. ! ? and the Chinese, Hindi and Persian marks), stripped."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def sentence_switch(english: str, other: str, *, english_first: bool) -> str | None:
    """The first ceil(n/2) sentences of one text and the rest of the other's, or None when they do not align.

    ``english`` and ``other`` are translations of each other; they align when both have the same number n >= 2 of
    sentences.  English-first takes the English beginning.
    """
    en, ot = split_sentences(english), split_sentences(other)
    if len(en) < 2 or len(en) != len(ot):
        return None
    k = math.ceil(len(en) / 2)
    first, second = (en, ot) if english_first else (ot, en)
    return " ".join(first[:k] + second[k:])


def world_switch(prompt: GenEvalPrompt, language: str, *, english_first: bool) -> GenEvalPrompt:
    """A synthetic prompt switched between English and ``language`` (word-level; module docstring)."""
    if language == "en":
        raise InputError("a code switch needs a language other than English", hint="pick zh, nl, fr, hi or fa")
    matrix, donor = ("en", language) if english_first else (language, "en")
    return reword(prompt, CodeSwitch(matrix=matrix, donor=donor, switched=SWITCHED))


def pair_cosines(embedder: ImageEmbedder, left: Sequence[Path], right: Sequence[Path], batch: int = 32) -> list[float]:
    """``cos(E(left[i]), E(right[i]))`` for each pair of image files (embeddings L2-normalised by the embedder)."""
    if len(left) != len(right):
        raise InputError(f"{len(left)} images against {len(right)}", hint="pair the images one to one")
    out: list[float] = []
    for start in range(0, len(left), batch):
        images = []
        for path in [*left[start : start + batch], *right[start : start + batch]]:
            with Image.open(path) as im:
                images.append(im.convert("RGB"))
        n = len(images) // 2
        emb = np.asarray(embedder.embed(images), dtype=np.float64)
        if emb.shape[0] != 2 * n:
            raise InputError(f"the embedder returned {emb.shape[0]} rows for {2 * n} images")
        out += [float(v) for v in (emb[:n] * emb[n:]).sum(axis=1)]
    return out
