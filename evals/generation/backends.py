"""Real GenEval backends through transformers: detectors and a zero-shot colour classifier.

Detectors: OWL-ViT/OWLv2, Grounding DINO, Mask2Former; colours: CLIP or SigLIP.  Weights load lazily, on first
use, from a local folder or a hub id; torch and transformers are imported only then, and image processors are the
PIL ones (no torchvision).

GenEval's official numbers come from mmdet's Mask2Former Swin-S (COCO instance) and open_clip ViT-L-14 (OpenAI
weights); the transformers checkpoints closest to them are ``facebook/mask2former-swin-small-coco-instance`` (same
architecture and training data, converted from the Detectron2 release rather than mmdet's) and
``openai/clip-vit-large-patch14`` (the very OpenAI ViT-L/14 weights open_clip loads as ``pretrained="openai"``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from regionreasoner.core.errors import ModelLoadError
from regionreasoner.core.geometry import Box
from regionreasoner.core.masks import mask_to_box
from regionreasoner.evals.generation.geneval import Detection
from regionreasoner.evals.generation.meta import GENEVAL_COLORS

__all__ = [
    "COLOUR_TEMPLATES",
    "ClipColourClassifier",
    "GroundingDinoGenEvalDetector",
    "LazyCheckpoint",
    "Mask2FormerDetector",
    "ZeroShotDetector",
    "as_features",
    "load_parts",
]

logger = logging.getLogger(__name__)

COLOUR_TEMPLATES: tuple[str, ...] = (
    "a photo of a {c} {cls}",
    "a photo of a {c}-colored {cls}",
    "a photo of a {c} object",
)
"""GenEval's zero-shot colour templates (``{c}`` the colour, ``{cls}`` the object's class)."""


def load_parts(
    checkpoint: str | Path, model_class: str, *, device: str, tokenizer: bool = True, image_processor: bool = True
) -> tuple[Any, Any, Any]:
    """``(model, tokenizer, image_processor)`` of ``checkpoint`` (a folder or hub id).

    The model is the transformers class named ``model_class``, in eval mode on ``device``; the tokenizer and the
    PIL image processor are None when not asked for.

    Raises :class:`ModelLoadError` naming the checkpoint and the fix.
    """
    source = str(checkpoint)
    local = Path(source).expanduser()
    if (local.exists() or source.startswith((".", "/", "~"))) and not local.is_dir():
        raise ModelLoadError(f"no checkpoint folder at {source!r}", hint="pass a folder with config.json and weights")
    where = str(local) if local.is_dir() else source
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ModelLoadError(f"cannot load {source!r}: {exc}", hint="pip install torch 'transformers>=5'") from exc
    try:
        model = getattr(transformers, model_class).from_pretrained(where, dtype=torch.float32).to(device).eval()
        tok = transformers.AutoTokenizer.from_pretrained(where) if tokenizer else None
        proc = transformers.AutoImageProcessor.from_pretrained(where, backend="pil") if image_processor else None
    except Exception as exc:  # WHY broad: from_pretrained raises OSError, ValueError, safetensors and hub errors
        raise ModelLoadError(
            f"cannot load {model_class} from {source!r}: {exc}",
            hint="check the folder (config.json, weights, tokenizer and preprocessor files) or download it first",
        ) from exc
    logger.info("loaded %s %s on %s", model_class, source, device)
    return model, tok, proc


class LazyCheckpoint:
    """A checkpoint loaded once, on first use (thread-safe): subclasses name ``model_class`` and ``tokenizer``."""

    model_class = "AutoModel"
    tokenizer = True

    def __init__(self, checkpoint: str | Path, *, device: str = "cpu") -> None:
        self.checkpoint = checkpoint
        self.device = device
        self._lock = threading.Lock()
        self._parts: tuple[Any, Any, Any] | None = None

    def load(self) -> tuple[Any, Any, Any]:
        """``(model, tokenizer, image_processor)``, loaded on the first call."""
        with self._lock:
            if self._parts is None:
                self._parts = load_parts(
                    self.checkpoint, self.model_class, device=self.device, tokenizer=self.tokenizer
                )
            return self._parts


class ZeroShotDetector(LazyCheckpoint):
    """OWL-ViT / OWLv2 (``AutoModelForZeroShotObjectDetection``): one text query per class, ``template`` filled.

    Boxes are in the image's pixels (OWLv2 pads to a square at the bottom and right: boxes are scaled to that
    square and clipped); scores are the query's sigmoid probability; no masks.
    """

    model_class = "AutoModelForZeroShotObjectDetection"

    def __init__(self, checkpoint: str | Path, *, device: str = "cpu", template: str = "a photo of a {}") -> None:
        super().__init__(checkpoint, device=device)
        self.template = template

    def detect(self, image: Image.Image, classes: Sequence[str]) -> list[Detection]:
        """Every box for ``classes`` with its best class (unthresholded but for scores > 0)."""
        import torch

        model, tokenizer, processor = self.load()
        rgb = image.convert("RGB")
        text = tokenizer(
            [self.template.format(c) for c in classes],
            padding="max_length",
            truncation=True,
            max_length=int(model.config.text_config.max_position_embeddings),
            return_tensors="pt",
        )
        pixels = processor(images=rgb, return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            outputs = model(
                input_ids=text["input_ids"].to(self.device),
                attention_mask=text["attention_mask"].to(self.device),
                pixel_values=pixels.to(self.device),
            )
        side = max(rgb.size)
        target = (side, side) if model.config.model_type == "owlv2" else (rgb.height, rgb.width)
        found = processor.post_process_object_detection(outputs, threshold=0.0, target_sizes=[target])[0]
        out = []
        for score, label, xyxy in zip(
            found["scores"].tolist(), found["labels"].tolist(), found["boxes"].tolist(), strict=True
        ):
            box = Box(*(float(v) for v in Box(*xyxy).clip(rgb.width, rgb.height)))
            if box.area > 0:
                out.append(Detection(label=classes[int(label)], box=box, score=float(score)))
        return out


class GroundingDinoGenEvalDetector:
    """Grounding DINO through :class:`regionreasoner.tools.detect.GroundingDinoDetector` (all classes in one pass).

    ``box_threshold`` is low (0.05) so that GenEval's own thresholds decide; labels are the caller's class names.
    """

    def __init__(self, checkpoint: str | Path, *, device: str = "cpu", box_threshold: float = 0.05) -> None:
        from regionreasoner.tools.detect import GroundingDinoDetector

        self.detector = GroundingDinoDetector(
            checkpoint, box_threshold=box_threshold, text_threshold=0.0, device=device
        )
        self.box_threshold = box_threshold

    def detect(self, image: Image.Image, classes: Sequence[str]) -> list[Detection]:
        """Boxes for ``classes`` in image pixels, with the probability of their phrase."""
        from regionreasoner.core.images import load_image

        found = self.detector.detect(load_image(image), list(classes), box_threshold=self.box_threshold)
        return [Detection(label=d.label, box=d.box, score=d.score) for d in found]


class Mask2FormerDetector(LazyCheckpoint):
    """Mask2Former instance segmentation (``Mask2FormerForUniversalSegmentation``), GenEval's official detector.

    Class names are the checkpoint's ``id2label`` (COCO's 80 for the COCO instance checkpoints); each instance has
    its binary mask (H, W) and the box of that mask.
    """

    model_class = "Mask2FormerForUniversalSegmentation"
    tokenizer = False

    def detect(self, image: Image.Image, classes: Sequence[str]) -> list[Detection]:
        """Instances of ``classes`` (names from ``id2label``) with masks, scores = class probability x mask score."""
        import torch

        model, _, processor = self.load()
        rgb = image.convert("RGB")
        inputs = processor(images=rgb, return_tensors="pt")
        with torch.inference_mode():
            outputs = model(pixel_values=inputs["pixel_values"].to(self.device))
        result = processor.post_process_instance_segmentation(
            outputs, threshold=0.0, target_sizes=[(rgb.height, rgb.width)], return_binary_maps=True
        )[0]
        names = model.config.id2label
        wanted = set(classes)
        maps = result["segmentation"]
        out = []
        for k, info in enumerate(result["segments_info"]):
            label = names[int(info["label_id"])]
            if label not in wanted or maps is None:
                continue
            mask = np.asarray(maps[k].cpu().numpy() > 0, dtype=bool)
            box = mask_to_box(mask)
            if box is not None:
                out.append(Detection(label=label, box=box, score=float(info["score"]), mask=mask))
        return out


def as_features(output: Any) -> Any:
    """A ``get_*_features`` result as a tensor (transformers 5 returns a ModelOutput with the projection pooled)."""
    return output if hasattr(output, "norm") else output.pooler_output


class ClipColourClassifier(LazyCheckpoint):
    """Zero-shot colour of object crops with a CLIP-family model (CLIP, SigLIP): GenEval's colour classifier.

    For each class, the text embeddings of ``templates`` x ``colours`` are normalised and averaged per colour (the
    clip_benchmark zero-shot classifier); a crop's colour is the one whose embedding is nearest its image embedding.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        device: str = "cpu",
        colours: Sequence[str] = GENEVAL_COLORS,
        templates: Sequence[str] = COLOUR_TEMPLATES,
    ) -> None:
        super().__init__(checkpoint, device=device)
        self.colours = tuple(colours)
        self.templates = tuple(templates)
        self._classifiers: dict[str, Any] = {}

    def _text(self, texts: list[str]) -> Any:
        import torch

        model, tokenizer, _ = self.load()
        siglip = model.config.model_type.startswith("siglip")
        # WHY max_length for SigLIP: it was trained on texts padded to 64 tokens.
        tokens = tokenizer(
            texts,
            padding="max_length" if siglip else True,
            max_length=64 if siglip else None,
            truncation=True,
            return_tensors="pt",
        )
        with torch.inference_mode():
            ids, mask = tokens["input_ids"].to(self.device), tokens["attention_mask"].to(self.device)
            feats = as_features(model.get_text_features(input_ids=ids, attention_mask=mask))
        return feats / feats.norm(dim=-1, keepdim=True)

    def classifier(self, classname: str) -> Any:
        """The (colours, D) matrix of normalised class embeddings for ``classname`` (built once per class)."""
        if classname not in self._classifiers:
            rows = []
            for c in self.colours:
                emb = self._text([t.format(c=c, cls=classname) for t in self.templates]).mean(dim=0)
                rows.append(emb / emb.norm())
            import torch

            self._classifiers[classname] = torch.stack(rows)
        return self._classifiers[classname]

    def classify(self, crops: Sequence[Image.Image], classname: str) -> list[str]:
        """The colour of each crop (one of ``colours``)."""
        import torch

        if not crops:
            return []
        model, _, processor = self.load()
        clf = self.classifier(classname)
        pixels = processor(images=[c.convert("RGB") for c in crops], return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            feats = as_features(model.get_image_features(pixel_values=pixels.to(self.device)))
        feats = feats / feats.norm(dim=-1, keepdim=True)
        return [self.colours[int(i)] for i in (feats @ clf.T).argmax(dim=-1).tolist()]
