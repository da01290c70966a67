"""Open-vocabulary detection with Grounding DINO: :class:`GroundingDinoDetector` and the ``detect`` tool.

The detector finds boxes for several phrases in one forward pass (the phrases joined as ``"a. b. c."``, as
Grounding DINO was trained) and returns them in original-image pixels (xyxy floats, clipped to the image), each
labelled with the caller's phrase it belongs to.  Weights load lazily, on first use; torch and transformers are
imported only then, so importing this module is cheap.  The image processor is transformers' PIL one
(``GroundingDinoImageProcessorPil``): torchvision is not needed.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from regionreasoner.core.errors import ConfigError, ModelLoadError, ToolError
from regionreasoner.core.geometry import Box
from regionreasoner.core.images import LoadedImage
from regionreasoner.tools.base import Detection, Detector, Tool, ToolResult
from regionreasoner.tools.detect_tiny import TINY_DINO_MARKER

__all__ = ["DEFAULT_DETECTOR", "DetectTool", "GroundingDinoDetector"]

logger = logging.getLogger(__name__)

DEFAULT_DETECTOR = "IDEA-Research/grounding-dino-tiny"
"""The hub id of the released checkpoint this detector is written for (Swin-T + BERT-base, 172 M parameters)."""

_DELIMITER_IDS = frozenset({101, 102, 1012, 1029})
"""Token ids Grounding DINO treats as phrase boundaries ([CLS], [SEP], "." and "?" of bert-base-uncased);
``modeling_grounding_dino.SPECIAL_TOKENS`` hard-codes them."""
_LABEL_NOISE = re.compile(r"\[(?:CLS|SEP|PAD|UNK|MASK)\]")


def _threshold(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name}={value!r}: set it to a number >= 0 (scores are probabilities in [0, 1])")
    return float(value)


def _normalize(phrase: str) -> str:
    """A phrase as Grounding DINO reads it: lowercase, single spaces, no trailing "." or "?"."""
    return " ".join(phrase.lower().split()).rstrip(".? ").strip()


class GroundingDinoDetector:
    """Boxes for text phrases on one image, from a Grounding DINO checkpoint (a local folder or a hub id).

    ``box_threshold`` keeps a query whose best token probability exceeds it; ``text_threshold`` selects the tokens
    that spell its label (both probabilities in [0, 1]; a threshold above 1 keeps nothing).  Nothing loads until
    the first :meth:`detect` (or :meth:`load`); loading is guarded by a lock, so concurrent first calls load once.
    """

    def __init__(
        self,
        checkpoint: str | Path = DEFAULT_DETECTOR,
        *,
        box_threshold: float = 0.35,
        text_threshold: float = 0.25,
        device: str = "cpu",
    ) -> None:
        self.checkpoint = checkpoint
        self.box_threshold = _threshold("box_threshold", box_threshold)
        self.text_threshold = _threshold("text_threshold", text_threshold)
        self.device = device
        self._lock = threading.Lock()
        self._model: Any = None
        self._processor: Any = None

    @property
    def loaded(self) -> bool:
        """True once the weights are in memory."""
        return self._model is not None

    @property
    def model(self) -> Any:
        """The ``GroundingDinoForObjectDetection`` module (loads it on first access)."""
        self.load()
        return self._model

    @property
    def max_text_len(self) -> int:
        """Most text tokens one forward attends to, [CLS] and [SEP] included (loads the model)."""
        return int(self.model.config.max_text_len)

    def load(self) -> None:
        """Load the weights, the PIL image processor and the tokenizer (once; later calls return at once).

        Raises :class:`ModelLoadError` naming the checkpoint and the fix when anything is missing or unreadable.
        """
        with self._lock:
            if self._model is None:
                self._model, self._processor = self._load()

    def _load(self) -> tuple[Any, Any]:
        source = str(self.checkpoint)
        local = Path(source).expanduser()
        looks_local = local.exists() or source.startswith((".", "/", "~")) or "\\" in source or source.count("/") > 1
        if looks_local and not local.is_dir():
            raise ModelLoadError(
                f"no Grounding DINO checkpoint folder at {source!r}",
                hint="pass a folder holding config.json and model.safetensors (download one with "
                f"`hf download {DEFAULT_DETECTOR} --local-dir DIR`, or build a tiny random one with "
                "regionreasoner.tools.detect_tiny.build_tiny_grounding_dino(DIR))",
            )
        try:
            import torch
            from transformers import AutoTokenizer, GroundingDinoForObjectDetection, GroundingDinoProcessor
            from transformers.models.grounding_dino.image_processing_pil_grounding_dino import (
                GroundingDinoImageProcessorPil,
            )
        except ImportError as exc:
            raise ModelLoadError(
                f"cannot load Grounding DINO {source!r}: {exc}", hint="pip install 'torch' 'transformers>=5'"
            ) from exc
        where = str(local) if looks_local else source
        try:
            model = GroundingDinoForObjectDetection.from_pretrained(where, dtype=torch.float32)
            model = model.to(self.device).eval()
            # WHY the PIL class by name: AutoProcessor would pick the torchvision image processor when torchvision
            # is installed and fall back (with a warning) when not; the PIL one needs neither and gives the model
            # the same inputs.  The checkpoint's preprocessor_config.json (sizes, mean/std) is still read.
            processor = GroundingDinoProcessor(
                image_processor=GroundingDinoImageProcessorPil.from_pretrained(where),
                tokenizer=AutoTokenizer.from_pretrained(where),
            )
        except Exception as exc:  # WHY broad: from_pretrained raises OSError, ValueError, safetensors and hub errors
            hint = (
                "check that the folder holds a complete checkpoint (config.json, model.safetensors, "
                "preprocessor_config.json, tokenizer files); re-download it if model.safetensors is truncated"
                if looks_local
                else f"download it first (`hf download {source}`) or allow hub access (HF_HUB_OFFLINE=0)"
            )
            raise ModelLoadError(f"cannot load Grounding DINO checkpoint {source!r}: {exc}", hint=hint) from exc
        if looks_local and (local / TINY_DINO_MARKER).is_file():
            logger.warning("Grounding DINO %s has RANDOM, UNTRAINED weights: its boxes are noise", source)
        logger.info("loaded Grounding DINO %s on %s", source, self.device)
        return model, processor

    def _prompt(self, phrases: Sequence[str]) -> tuple[list[str], list[str]]:
        """The caller's distinct phrases and their normalized forms (same order), checked; raises ToolError."""
        if isinstance(phrases, str) or not isinstance(phrases, Sequence) or len(phrases) == 0:
            raise ToolError(
                "detect needs a non-empty list of phrases", hint='pass e.g. ["red car", "cat"], one object per phrase'
            )
        originals: list[str] = []
        normalized: list[str] = []
        for phrase in phrases:
            if not isinstance(phrase, str):
                raise ToolError(f"a phrase must be a string, got {type(phrase).__name__}", hint="pass text phrases")
            norm = _normalize(phrase)
            if not norm:
                raise ToolError(f"empty phrase {phrase!r}", hint="name the object to find, e.g. 'red car'")
            if "." in norm or "?" in norm:
                # WHY: "." and "?" are the phrase separators the model was trained with; inside a phrase they
                # would split it in two, and its boxes could not be labelled with the caller's phrase.
                raise ToolError(f"phrase {phrase!r} contains '.' or '?'", hint="write each object as its own phrase")
            if norm not in normalized:  # WHY: two spellings of one phrase would compete for the same boxes
                originals.append(phrase)
                normalized.append(norm)
        return originals, normalized

    def detect(
        self,
        image: LoadedImage,
        phrases: Sequence[str],
        *,
        box_threshold: float | None = None,
        text_threshold: float | None = None,
    ) -> list[Detection]:
        """Boxes on ``image`` for ``phrases``, all in one forward pass, best score first.

        Each :class:`Detection` has ``box`` in original-image pixels (xyxy floats, clipped to the image; boxes that
        fall entirely outside it are dropped), ``score`` (the query's best token probability, in [0, 1]) and
        ``label``: the caller's phrase the box belongs to, as the caller spelled it.  The thresholds default to
        the detector's.  Bad phrases (none, empty, containing "." or "?", too many tokens for the model's
        ``max_text_len``) raise :class:`ToolError` whose hint names the fix.
        """
        box_t = self.box_threshold if box_threshold is None else _threshold("box_threshold", box_threshold)
        text_t = self.text_threshold if text_threshold is None else _threshold("text_threshold", text_threshold)
        originals, normalized = self._prompt(phrases)
        self.load()
        import torch

        text = ". ".join(normalized) + "."
        ids: list[int] = self._processor.tokenizer(text)["input_ids"]  # checked before the image is processed
        limit = int(self._model.config.max_text_len)
        if len(ids) > limit:
            # WHY refuse: the model silently truncates the text to max_text_len tokens, dropping the last phrases.
            raise ToolError(
                f"the phrases take {len(ids)} tokens; this detector reads at most {limit}",
                hint="pass fewer or shorter phrases",
            )
        spans = _phrase_spans(ids)
        if len(spans) != len(normalized):
            raise ToolError(f"could not split {text!r} into {len(normalized)} phrases", hint="use plain words")
        inputs = self._processor(images=image.image, text=text, return_tensors="pt")
        with torch.inference_mode():
            outputs = self._model(**inputs.to(self.device))
        # WHY target size (H, W) of the original: pred_boxes are normalized cxcywh of the unpadded image, so
        # scaling by the original size undoes the processor's resize in one step.
        results = self._processor.post_process_grounded_object_detection(
            outputs,
            inputs["input_ids"],
            threshold=box_t,
            text_threshold=text_t,
            target_sizes=[(image.height, image.width)],
        )[0]
        probs = outputs.logits[0].sigmoid()
        kept = probs[probs.max(dim=-1).values > box_t]  # the queries post-processing kept, in the same order
        # (queries, phrases): each phrase's best token probability, to break ties between candidate labels.
        strength = torch.stack([kept[:, a:b].max(dim=-1).values for a, b in spans], dim=-1).cpu().tolist()
        detections = []
        for row, (score, xyxy, label) in enumerate(
            zip(results["scores"].tolist(), results["boxes"].tolist(), results["text_labels"], strict=True)
        ):
            box = Box(*(float(v) for v in Box(*xyxy).clip(image.width, image.height)))
            if box.area <= 0:
                continue
            best = _match_label(label, normalized, strength[row])
            detections.append(Detection(box=box, score=float(score), label=originals[best]))
        detections.sort(key=lambda d: -d.score)
        return detections


def _phrase_spans(ids: Sequence[int]) -> list[tuple[int, int]]:
    """``[start, end)`` token positions of each phrase in ``ids`` (the runs between delimiter tokens)."""
    spans, start = [], None
    for pos, token in enumerate(ids):
        if token in _DELIMITER_IDS:
            if start is not None:
                spans.append((start, pos))
            start = None
        elif start is None:
            start = pos
    if start is not None:
        spans.append((start, len(ids)))
    return spans


def _match_label(label: str, phrases: Sequence[str], strength: Sequence[float]) -> int:
    """Index of the phrase a post-processed ``text_labels`` entry belongs to.

    ``label`` is the text of the query's tokens above ``text_threshold``; it can span several phrases ("red car.
    cat.") or none ("").  Phrases equal to a segment come first, then phrases sharing the most words with the
    label; ties among them (and empty labels) go to the phrase whose tokens the query scored highest (``strength``).
    """
    segments = [" ".join(s.split()) for s in _LABEL_NOISE.sub(" ", label).lower().split(".")]
    words = Counter(w for s in segments for w in s.split())

    def rank(i: int) -> tuple[bool, int, float]:
        if phrases[i] in segments:
            return True, 0, strength[i]  # WHY 0: between exact matches, word counts would favour long phrases
        return False, sum((words & Counter(phrases[i].split())).values()), strength[i]

    return max(range(len(phrases)), key=rank)


class DetectTool(Tool):
    """The ``detect`` tool: boxes (original pixels) for up to 8 phrases on the current image."""

    name: ClassVar[str] = "detect"
    description: ClassVar[str] = (
        "Find objects by name: returns a box and a confidence score for each object matching one of the phrases "
        '(e.g. {"phrases": ["red car", "person on the left"]}).'
    )
    inputs: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "properties": {"phrases": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 8}},
        "required": ["phrases"],
        "additionalProperties": False,
    }

    def __init__(self, detector: Detector | str | Path = DEFAULT_DETECTOR, *, max_detections: int = 10):
        """Wrap ``detector``, or build one with default thresholds from a checkpoint (folder or hub id).

        ``max_detections`` is the most boxes one call returns (the best scores).
        """
        super().__init__()
        if isinstance(max_detections, bool) or not isinstance(max_detections, int) or max_detections < 1:
            raise ConfigError(f"max_detections={max_detections!r}: set it to an integer >= 1")
        self.detector: Detector = detector if isinstance(detector, Detector) else GroundingDinoDetector(detector)
        self.max_detections = max_detections

    def setup(self) -> None:
        """Load the detector's weights (once, on the first call; a Detector without ``load`` loads itself)."""
        load = getattr(self.detector, "load", None)
        if callable(load):
            load()

    def run(self, image: LoadedImage, arguments: Mapping[str, Any]) -> ToolResult:
        """Detect ``arguments["phrases"]`` on ``image``; the result's detections are in original pixels."""
        phrases = arguments["phrases"]
        most = self.inputs["properties"]["phrases"]["maxItems"]
        if not phrases or len(phrases) > most or not all(isinstance(p, str) for p in phrases):
            raise ToolError(
                f"tool 'detect' takes 1 to {most} string phrases, got {len(phrases)} items",
                hint='pass e.g. {"phrases": ["red car", "cat"]}',
            )
        found = self.detector.detect(image, phrases)
        shown = tuple(found[: self.max_detections])
        if not shown:
            return ToolResult(text="no object found for " + ", ".join(repr(p) for p in phrases))
        listed = ", ".join(f"{d.label} ({d.score:.2f})" for d in shown)
        more = f" (the best {len(shown)} of {len(found)})" if len(found) > len(shown) else ""
        noun = "object" if len(shown) == 1 else "objects"
        return ToolResult(text=f"{len(shown)} {noun}{more}: {listed}", detections=shown)
