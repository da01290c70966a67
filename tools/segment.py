"""Segmenters: masks from boxes and points, in original-image pixels.

* :class:`BoxSegmenter` fills each box: the mask a box-only evaluation scores against.
* :class:`Sam2Segmenter` runs transformers' ``Sam2Model`` the way RegionReasoner's evaluation runs SAM2
  (regionreasoner.md §4): the image is embedded once (:meth:`~Sam2Segmenter.set_image`, cached by content hash),
  then every object's box + positive point is decoded in one batched call with three candidate masks per object,
  and the candidate with the highest predicted IoU is kept.  :func:`union` ORs a turn's masks, as the RegionDial
  evaluation does before scoring.

Frames: boxes are xyxy floats and points ``(x, y)`` in original-image pixels (:mod:`regionreasoner.core.geometry`);
masks are bool arrays of shape ``(H, W)`` of the original image.  torch and transformers are imported on first use,
so importing this module stays cheap.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import numpy as np
import numpy.typing as npt
from cachetools import LRUCache

from regionreasoner.core.errors import ConfigError, InputError, ModelLoadError
from regionreasoner.core.geometry import Box, Point
from regionreasoner.core.images import LoadedImage
from regionreasoner.core.masks import BoolMask, Rle, as_mask, box_to_mask, encode_rle
from regionreasoner.tools.sam2_inputs import Sam2InputSpec, pixel_values, scale_coords, upsample_masks

if TYPE_CHECKING:
    import torch

__all__ = ["BoxSegmenter", "MaskPrediction", "Prompting", "Sam2Segmenter", "union"]

logger = logging.getLogger(__name__)

Prompting = Literal["box+point", "box", "points"]
"""What :meth:`Sam2Segmenter.predict` sends per object: box and its points (RegionReasoner), box alone, points alone."""
_PROMPTINGS: tuple[str, ...] = get_args(Prompting)


class BoxSegmenter:
    """Masks that are the boxes themselves (pixels whose centres lie in the box); points are ignored."""

    def segment(self, image: LoadedImage, boxes: Sequence[Box], points: Sequence[Point | None]) -> list[Rle]:
        """One filled-box mask of shape (H, W) per box."""
        return [encode_rle(box_to_mask(b, image.height, image.width)) for b in boxes]


@dataclass(frozen=True, eq=False)
class MaskPrediction:
    """One object's mask from :meth:`Sam2Segmenter.predict`.

    ``mask``: bool ``(H, W)`` in original pixels.  ``score``: the model's predicted IoU of that mask (the largest
    of its three candidates; not calibrated, can fall outside [0, 1]).  ``box``: the prompt box (original pixels),
    None when the prompt was points only.
    """

    mask: BoolMask
    score: float
    box: Box | None


def union(masks: Iterable[npt.ArrayLike], shape: tuple[int, int]) -> BoolMask:
    """OR of a turn's object masks, bool ``shape = (H, W)``; all False when there are none.

    RegionReasoner's ``generate_masks`` ORs the objects' masks into one ``mask_all`` per turn and scores that
    against the ground truth (regionreasoner.md §4, §5.3); no object gives the all-zero mask.
    """
    out = np.zeros(shape, dtype=np.bool_)
    for mask in masks:
        m = as_mask(mask)
        if m.shape != out.shape:
            raise InputError(f"mask of shape {m.shape} in a union of shape {out.shape}", hint="use masks of one image")
        out |= m
    return out


@dataclass(frozen=True)
class _Prompt:
    """One object's prompt in original pixels: an optional box and points with labels (1 positive, 0 negative)."""

    box: Box | None
    points: tuple[Point, ...] = ()
    labels: tuple[int, ...] = ()


class Sam2Segmenter:
    """Masks from SAM2 (transformers ``Sam2Model``): embed an image once, decode many prompts in one call.

    ``checkpoint`` is a local folder (``config.json`` + ``model.safetensors``, optionally the
    ``preprocessor_config.json`` that records input size and mean/std) or a hub id such as
    ``facebook/sam2.1-hiera-large``.  Weights load on first use, never at construction; a checkpoint that cannot be
    loaded raises :class:`ModelLoadError`.  ``device`` is a torch device string.  ``cache_size`` bounds how many
    images' embeddings are kept (least recently used are dropped).  ``prompting`` is the default of
    :meth:`predict`.

    ``encoder_calls`` and ``decoder_calls`` count image-encoder runs and mask-decoder forwards since construction.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        *,
        device: str = "cpu",
        cache_size: int = 4,
        prompting: Prompting = "box+point",
    ) -> None:
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 1:
            raise ConfigError(f"cache_size={cache_size!r}: set it to an integer >= 1 (images whose embedding is kept)")
        if prompting not in _PROMPTINGS:
            raise ConfigError(f"prompting={prompting!r}: use one of {list(_PROMPTINGS)}")
        self.checkpoint = checkpoint
        self.device = device
        self.prompting: Prompting = prompting
        self.encoder_calls = 0
        """Image-encoder runs so far (one per image not found in the embedding cache)."""
        self.decoder_calls = 0
        """Mask-decoder forwards so far (one per group of prompts with the same shape, see :meth:`predict`)."""
        self._model: Any = None
        self._spec: Sam2InputSpec | None = None
        self._load_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cache: LRUCache[str, list[torch.Tensor]] = LRUCache(maxsize=cache_size)

    @property
    def loaded(self) -> bool:
        """True once the weights are in memory."""
        return self._model is not None

    @property
    def spec(self) -> Sam2InputSpec:
        """The input size and normalisation of the checkpoint (loads the weights on first use)."""
        self._load()
        assert self._spec is not None
        return self._spec

    @property
    def cached_images(self) -> tuple[str, ...]:
        """Hashes (``LoadedImage.hash``) of the images whose embeddings are cached, in no particular order."""
        with self._cache_lock:
            return tuple(self._cache.keys())

    def clear_cache(self) -> None:
        """Drop every cached image embedding (the next :meth:`set_image` or :meth:`predict` re-embeds)."""
        with self._cache_lock:
            self._cache.clear()

    def _local_folder(self) -> Path | None:
        """The checkpoint as a local folder, None for a hub id; raises for a path that is not a usable folder."""
        path = Path(self.checkpoint).expanduser()
        text = str(self.checkpoint)
        looks_local = isinstance(self.checkpoint, Path) or text.startswith(("/", ".", "~")) or text.count("/") != 1
        if not path.exists():
            if looks_local:
                raise ModelLoadError(
                    f"SAM2 checkpoint folder {text!r} does not exist",
                    hint="pass a folder with config.json and model.safetensors (regionreasoner.tools.tiny."
                    "build_tiny_sam2 makes a tiny one) or a hub id such as facebook/sam2.1-hiera-large",
                )
            return None
        if not path.is_dir():
            raise ModelLoadError(f"SAM2 checkpoint {text!r} is a file, not a folder", hint="pass its folder")
        if not any((path / name).is_file() for name in ("model.safetensors", "model.safetensors.index.json")):
            raise ModelLoadError(
                f"SAM2 checkpoint folder {text!r} has no model.safetensors (only safetensors weights are loaded)",
                hint="convert it with Sam2Model.from_pretrained(...).save_pretrained(folder, safe_serialization=True)",
            )
        return path

    def _load(self) -> None:
        """Load the model and its input spec once (thread-safe); errors become :class:`ModelLoadError`."""
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is not None:
                return
            folder = self._local_folder()
            import torch
            from transformers import Sam2Model

            source = str(folder) if folder is not None else str(self.checkpoint)
            try:
                model, info = Sam2Model.from_pretrained(source, use_safetensors=True, output_loading_info=True)
            except Exception as exc:  # any failure here is a broken or unreachable checkpoint
                raise ModelLoadError(
                    f"cannot load SAM2 weights from {source!r}: {type(exc).__name__}: {exc}",
                    hint="check the folder (config.json, a complete model.safetensors) or the hub id and network",
                ) from exc
            if info["missing_keys"]:
                # WHY: from_pretrained fills missing weights with random ones and only warns; masks would be noise.
                missing = sorted(info["missing_keys"])
                raise ModelLoadError(
                    f"SAM2 checkpoint {source!r} lacks {len(missing)} weights (e.g. {missing[:3]})",
                    hint="use a checkpoint saved from transformers' Sam2Model",
                )
            model_size = int(model.config.prompt_encoder_config.image_size)
            spec = self._read_spec(folder, source, model_size)
            if spec.image_size != model_size:
                raise ModelLoadError(
                    f"{source!r}: preprocessor size {spec.image_size} differs from the model's image_size {model_size}",
                    hint="make preprocessor_config.json's size match config.json",
                )
            model.eval().to(torch.device(self.device))
            model.mask_decoder.register_forward_hook(self._count_decoder)
            self._spec = spec
            self._model = model
            logger.info("loaded SAM2 from %s (%d px input) on %s", source, spec.image_size, self.device)

    def _read_spec(self, folder: Path | None, source: str, model_size: int) -> Sam2InputSpec:
        """The folder's (or hub repo's) ``preprocessor_config.json``, else the model's size and ImageNet stats."""
        if folder is not None:
            path: Path | None = folder / "preprocessor_config.json"
        else:
            from transformers.utils import cached_file

            found = cached_file(source, "preprocessor_config.json", _raise_exceptions_for_missing_entries=False)
            path = Path(found) if found else None
        if path is None or not path.is_file():
            return Sam2InputSpec(image_size=model_size)
        return Sam2InputSpec.from_preprocessor_config(path, default_size=model_size)

    def _count_decoder(self, module: object, args: object, output: object) -> None:
        self.decoder_calls += 1

    def set_image(self, image: LoadedImage) -> None:
        """Embed ``image`` (original RGB pixels) unless its embedding is cached; keyed by ``image.hash``.

        The embedding is the encoder's three feature maps for the ``image_size``-square resize; at most
        ``cache_size`` images are kept.  :meth:`predict` calls this itself, so calling it first only moves the cost.
        """
        self._embeddings(image)

    def _embeddings(self, image: LoadedImage) -> list[torch.Tensor]:
        with self._cache_lock:
            cached = self._cache.get(image.hash)
        if cached is not None:
            return cached
        self._load()
        import torch

        values = pixel_values(image.image, self.spec).to(torch.device(self.device))
        with torch.inference_mode():
            embeddings = list(self._model.get_image_embeddings(values))
        self.encoder_calls += 1
        with self._cache_lock:
            self._cache[image.hash] = embeddings
        return embeddings

    def predict(
        self,
        image: LoadedImage,
        boxes: Sequence[Box] | None = None,
        points: Sequence[Sequence[Point]] | None = None,
        labels: Sequence[Sequence[int]] | None = None,
        *,
        prompting: Prompting | None = None,
    ) -> list[MaskPrediction]:
        """One mask per object, in order: bool ``(H, W)`` of ``image``, original pixels.

        ``boxes``: one xyxy box per object; ``points``: per object, its points ``(x, y)``; ``labels``: per object,
        one label per point (1 foreground, 0 background; default all 1), all in original pixels.  ``prompting``
        (default: the constructor's) says which are used: ``"box+point"`` (boxes and points, RegionReasoner: one
        positive point per object), ``"box"`` (boxes only; pass no points) or ``"points"`` (points only; pass no
        boxes).  Passing what the mode does not use raises :class:`InputError`, as do mismatched lengths.

        All objects whose prompts have the same number of points go to the model in one batched decoder call
        (one call in every mode when each object has the same number of points), nothing is padded, so each mask
        is what a single-object call would give.  SAM2 returns three candidate masks per object
        (``multimask_output=True``); the one with the highest predicted IoU is kept, as RegionReasoner's and
        VisionReasoner's ``generate_masks`` do (``argsort(scores)[::-1][0]``, regionreasoner.md §4).
        """
        mode = self.prompting if prompting is None else prompting
        if mode not in _PROMPTINGS:
            raise InputError(f"prompting={mode!r}", hint=f"use one of {list(_PROMPTINGS)}")
        if mode == "box" and (points is not None or labels is not None):
            raise InputError("prompting='box' takes no points or labels", hint="pass prompting='box+point' for both")
        if mode == "points" and boxes is not None:
            raise InputError("prompting='points' takes no boxes", hint="pass prompting='box+point' for both")
        if mode != "points" and boxes is None:
            raise InputError(f"prompting={mode!r} needs boxes", hint="pass boxes, or prompting='points'")
        if mode != "box" and points is None:
            raise InputError(f"prompting={mode!r} needs points", hint="pass points, or prompting='box'")
        count = len(boxes) if boxes is not None else len(points or ())
        if points is not None and len(points) != count:
            raise InputError(f"{count} boxes but points for {len(points)} objects", hint="give one list per box")
        if labels is not None and (
            points is None or len(labels) != count or any(len(a) != len(b) for a, b in zip(labels, points, strict=True))
        ):
            raise InputError("labels do not match points", hint="give one label (1 or 0) per point, per object")
        prompts = []
        for i in range(count):
            pts = tuple(Point(*p) for p in points[i]) if points is not None else ()
            if mode != "box" and not pts:
                raise InputError(f"object {i} has no points", hint="give each object a point, or prompting='box'")
            lab = tuple(int(v) for v in labels[i]) if labels is not None else (1,) * len(pts)
            if any(v not in (0, 1) for v in lab):
                raise InputError(f"object {i} has labels {list(lab)}", hint="use 1 (foreground) or 0 (background)")
            prompts.append(_Prompt(box=Box(*boxes[i]) if boxes is not None else None, points=pts, labels=lab))
        return self._decode(image, prompts)

    def segment(self, image: LoadedImage, boxes: Sequence[Box], points: Sequence[Point | None]) -> list[Rle]:
        """:class:`~regionreasoner.tools.base.Segmenter`: one COCO RLE mask ``(H, W)`` per box.

        Each box goes with its positive point (label 1), or alone where the point is None; RegionReasoner's
        evaluation prompts every object with box + one point (regionreasoner.md §4).  Objects with a point share
        one decoder call, box-only objects another.
        """
        if len(points) != len(boxes):
            raise InputError(f"{len(boxes)} boxes but {len(points)} points", hint="give one point (or None) per box")
        prompts = [
            _Prompt(Box(*b), (Point(*p),), (1,)) if p is not None else _Prompt(Box(*b))
            for b, p in zip(boxes, points, strict=True)
        ]
        return [encode_rle(pred.mask) for pred in self._decode(image, prompts)]

    def _decode(self, image: LoadedImage, prompts: Sequence[_Prompt]) -> list[MaskPrediction]:
        """Masks for ``prompts`` on ``image``: one decoder forward per group of same-shaped prompts."""
        for i, p in enumerate(prompts):
            coords = [*(p.box or ()), *(c for pt in p.points for c in pt)]
            if not all(math.isfinite(float(c)) for c in coords):
                raise InputError(f"object {i} has a non-finite coordinate: {p}", hint="send finite pixel coordinates")
        if not prompts:
            return []
        embeddings = self._embeddings(image)
        # WHY groups: SAM2 takes a batch of prompts only when all have the same shape (a box or not, k points).
        # Padding a short prompt (label -10, as Sam2Processor does) adds a zero token the decoder attends to, so
        # the mask would differ from that object's own call; same-shaped groups keep every mask exact.
        groups: dict[tuple[bool, int], list[int]] = {}
        for i, p in enumerate(prompts):
            groups.setdefault((p.box is not None, len(p.points)), []).append(i)
        out: list[MaskPrediction | None] = [None] * len(prompts)
        for (has_box, k), idx in groups.items():
            masks, scores = self._decode_group(image, embeddings, [prompts[i] for i in idx], has_box, k)
            for j, i in enumerate(idx):
                out[i] = MaskPrediction(mask=masks[j], score=float(scores[j]), box=prompts[i].box)
        return [p for p in out if p is not None]

    def _decode_group(
        self, image: LoadedImage, embeddings: list[torch.Tensor], prompts: Sequence[_Prompt], has_box: bool, k: int
    ) -> tuple[BoolMask, npt.NDArray[np.float32]]:
        """Bool masks ``(n, H, W)`` and their predicted IoU ``(n,)`` for ``n`` prompts of one shape, one forward."""
        import torch

        hw, size, device = (image.height, image.width), self.spec.image_size, torch.device(self.device)
        inputs: dict[str, torch.Tensor] = {}
        # Shapes as Sam2Model wants them: boxes (1, n, 4), points (1, n, k, 2), labels (1, n, k); model pixels.
        if has_box:
            inputs["input_boxes"] = scale_coords([list(p.box or ()) for p in prompts], hw, size)[None].to(device)
        if k:
            pts = scale_coords([[list(pt) for pt in p.points] for p in prompts], hw, size)
            inputs["input_points"] = pts[None].to(device)
            inputs["input_labels"] = torch.tensor([list(p.labels) for p in prompts], dtype=torch.int64)[None].to(device)
        with torch.inference_mode():
            result = self._model(image_embeddings=embeddings, multimask_output=True, **inputs)
            iou = result.iou_scores[0]  # (n, 3)
            low_res = result.pred_masks[0]  # (n, 3, S/4, S/4) logits
            # RegionReasoner / VisionReasoner rule (regionreasoner.md §4): of the 3 masks keep the top-scored one.
            # Choosing before upsampling gives the same mask and upsamples n masks instead of 3n.
            best = iou.argmax(dim=-1)
            rows = torch.arange(len(prompts), device=best.device)
            masks = upsample_masks(low_res[rows, best], hw)
            return masks.cpu().numpy(), iou[rows, best].float().cpu().numpy()
