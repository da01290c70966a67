"""Image embedders for CLC/CSS and a VQA model for m-DPG, pluggable, with transformers backends.

* :class:`ImageEmbedder`: ``embed(images) -> (N, D)`` float array, rows L2-normalised.
  :class:`HFImageEmbedder` reads a DINOv2 checkpoint's CLS token (``pooler_output``: the layer-normed CLS token,
  DINOv2's ``x_norm_clstoken``) or a CLIP-family model's projected image embedding (``get_image_features``: CLIP,
  SigLIP, in EVA-CLIP's role); :class:`ExactWorldEmbedder` counts the synthetic world's
  objects per (kind, colour) with the exact detector.
* :class:`VQAModel`: ``answer(image, question) -> str``.  :class:`HFVQA` drives any
  ``AutoModelForVisualQuestionAnswering``: generative ones (BLIP) decode an answer, classifiers (ViLT) take the
  best label.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from PIL import Image

from regionreasoner.core.errors import InputError
from regionreasoner.core.world import COLOURS, KINDS
from regionreasoner.evals.generation.backends import LazyCheckpoint, as_features
from regionreasoner.evals.generation.exact import ExactWorldDetector

__all__ = ["HFVQA", "ExactWorldEmbedder", "HFImageEmbedder", "ImageEmbedder", "VQAModel", "normalise_rows"]

Matrix = npt.NDArray[np.float64]


@runtime_checkable
class ImageEmbedder(Protocol):
    """Global image embeddings."""

    def embed(self, images: Sequence[Image.Image]) -> Matrix:
        """``(len(images), D)`` float64, each row of unit length (a zero row when nothing can be embedded)."""
        ...


@runtime_checkable
class VQAModel(Protocol):
    """Answers a question about an image in words ("yes", "no", ...)."""

    def answer(self, image: Image.Image, question: str) -> str:
        """The answer text for ``question`` on ``image``."""
        ...


def normalise_rows(matrix: npt.ArrayLike) -> Matrix:
    """``matrix`` (N, D) with each row divided by its L2 norm (zero rows stay zero)."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2:
        raise InputError(f"embeddings of shape {m.shape}", hint="an embedder returns an (N, D) matrix")
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return np.divide(m, norms, out=np.zeros_like(m), where=norms > 0)


class HFImageEmbedder(LazyCheckpoint):
    """DINOv2 (CLS token) or CLIP-family (projected image embedding) embeddings from a checkpoint.

    ``kind`` "auto" takes the CLIP path when the model has ``get_image_features``, else the CLS path.  Remote code
    is never run: an EVA-CLIP that needs it plugs in as a ``module:attribute`` embedder instead.
    """

    tokenizer = False

    def __init__(self, checkpoint: str | Path, *, device: str = "cpu", kind: str = "auto", batch_size: int = 16):
        super().__init__(checkpoint, device=device)
        if kind not in ("auto", "dinov2", "clip"):
            raise InputError(f"kind={kind!r}", hint="use auto, dinov2 or clip")
        self.kind = kind
        self.batch_size = max(1, batch_size)

    def embed(self, images: Sequence[Image.Image]) -> Matrix:
        """``(N, D)`` unit rows; N may be 0."""
        import torch

        model, _, processor = self.load()
        clip = self.kind == "clip" or (self.kind == "auto" and hasattr(model, "get_image_features"))
        rows: list[Any] = []
        for start in range(0, len(images), self.batch_size):
            chunk = [im.convert("RGB") for im in images[start : start + self.batch_size]]
            pixels = processor(images=chunk, return_tensors="pt")["pixel_values"].to(self.device)
            with torch.inference_mode():
                feats = (
                    as_features(model.get_image_features(pixel_values=pixels))
                    if clip
                    else (model(pixel_values=pixels).pooler_output)
                )
            rows.append(feats.float().cpu().numpy())
        if not rows:
            return np.zeros((0, 1))
        return normalise_rows(np.concatenate(rows))


class ExactWorldEmbedder:
    """Counts of the world's objects per (kind, colour), found by the exact detector: 42 dims, rows normalised.

    Two pictures of the same shapes in the same colours have cosine 1 wherever the shapes lie; an image without
    any world object embeds as a zero row (cosine 0 with everything).
    """

    def __init__(self, detector: ExactWorldDetector | None = None) -> None:
        self.detector = detector or ExactWorldDetector()
        self._index = {(k, c): i for i, (k, c) in enumerate((k, c) for k in KINDS for c in COLOURS)}

    def embed(self, images: Sequence[Image.Image]) -> Matrix:
        """``(N, 42)`` unit rows (zero rows for images with no object)."""
        out = np.zeros((len(images), len(self._index)))
        for row, image in enumerate(images):
            for obj in self.detector.segment(image):
                out[row, self._index[(obj.kind, obj.colour)]] += 1
        return normalise_rows(out)


class HFVQA(LazyCheckpoint):
    """Any ``AutoModelForVisualQuestionAnswering`` checkpoint (BLIP generates, ViLT classifies)."""

    model_class = "AutoModelForVisualQuestionAnswering"

    def __init__(self, checkpoint: str | Path, *, device: str = "cpu", max_new_tokens: int = 8) -> None:
        super().__init__(checkpoint, device=device)
        self.max_new_tokens = max_new_tokens

    def answer(self, image: Image.Image, question: str) -> str:
        """The model's answer, lower-cased and stripped."""
        import torch

        model, tokenizer, processor = self.load()
        text = tokenizer([question], return_tensors="pt", padding=True)
        pixels = processor(images=[image.convert("RGB")], return_tensors="pt")["pixel_values"].to(self.device)
        inputs = {
            "input_ids": text["input_ids"].to(self.device),
            "attention_mask": text["attention_mask"].to(self.device),
            "pixel_values": pixels,
        }
        with torch.inference_mode():
            if model.can_generate():  # BLIP and other answer generators
                ids = model.generate(**inputs, max_new_tokens=self.max_new_tokens)
                answer = tokenizer.decode(ids[0], skip_special_tokens=True)
            else:  # answer classifiers (ViLT)
                logits = model(**inputs).logits
                answer = str(model.config.id2label[int(logits[0].argmax())])
        return str(answer).strip().lower()
