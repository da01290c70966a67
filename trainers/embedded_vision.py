"""Dense pretraining of the embedded model's vision tower on the synthetic world (before any text is trained).

WHY: trained end to end from random weights through four coordinate tokens per answer, the tower learns colour in a
few hundred steps but not which merged patch holds which shape, nor where that patch is: Qwen2.5-VL's tower has no
absolute position embedding (2-D rotary attention only), so "where" must be built from relative attention and image
edges, and the coordinate loss of an answer is a weak, late signal for it (docs/embedded-model.md, probes).  The
world's ground truth gives a dense one for free: for every merged 28x28 patch, the colour, kind, texture and size of
the shape covering most of it, whether a shape's box centre lies in it, that shape's box, and the patch's own place
in the image.  A linear read-out of the tower's output (the merger's, the very vectors the language model reads)
is trained on those labels and then thrown away, so the checkpoint keeps the real architecture unchanged while its
image tokens already carry what a question needs: what is here, and where "here" is.

    regionreasoner-train embedded-vision --base runs/embedded/base --steps 1500

Units: boxes and places are fractions of the image side (0..1, x right, y down); a patch's label uses the scene's
exact masks, resized with the image exactly as the Qwen2-VL processor resizes it.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from regionreasoner.core.errors import InputError
from regionreasoner.core.world.scene import COLOURS, KINDS, SIZES, TEXTURES
from regionreasoner.policies.checkpoint_files import read_config

__all__ = ["DenseLabels", "VisionPretrainConfig", "dense_labels", "pretrain_vision"]

_log = logging.getLogger(__name__)

_COLOURS, _KINDS, _TEXTURES, _SIZES = tuple(COLOURS), KINDS, TEXTURES, SIZES
_HEADS = (len(_COLOURS) + 1, len(_KINDS) + 1, len(_TEXTURES) + 1, len(_SIZES) + 1)
"""Classes of the four attribute read-outs; class 0 is background (no shape covers the patch enough)."""

_MIN_COVER = 0.08
"""A patch is labelled with a shape when that shape covers at least this share of it (small shapes cover ~10%)."""


@dataclass(frozen=True)
class DenseLabels:
    """Per merged patch of one image (row-major, as the processor orders them; ``n`` patches)."""

    classes: npt.NDArray[np.int64]
    """``(n, 4)``: colour, kind, texture, size class of the covering shape (0: background)."""
    centre: npt.NDArray[np.float32]
    """``(n,)``: 1 where some shape's box centre lies in the patch."""
    box: npt.NDArray[np.float32]
    """``(n, 4)``: x1, y1, x2, y2 of that shape's box (fractions of the image side; 0 where ``centre`` is 0)."""
    place: npt.NDArray[np.float32]
    """``(n, 2)``: the patch centre's x, y (fractions of the image side)."""


def dense_labels(scene: Any, rows: int, cols: int) -> DenseLabels:
    """Labels of ``scene`` (a :class:`~regionreasoner.core.world.Scene`) on a ``rows x cols`` merged-patch grid."""
    width, height = scene.image.size
    ids = np.zeros((height, width), dtype=np.int64)
    for obj in scene.objects:  # masks are disjoint (visible pixels), so one id per pixel
        ids[obj.mask] = obj.id
    xs = np.linspace(0, width, cols + 1).round().astype(int)
    ys = np.linspace(0, height, rows + 1).round().astype(int)
    n = rows * cols
    classes = np.zeros((n, 4), dtype=np.int64)
    centre = np.zeros(n, dtype=np.float32)
    box = np.zeros((n, 4), dtype=np.float32)
    place = np.zeros((n, 2), dtype=np.float32)
    by_id = {o.id: o for o in scene.objects}
    for r in range(rows):
        for c in range(cols):
            k = r * cols + c
            place[k] = ((xs[c] + xs[c + 1]) / 2 / width, (ys[r] + ys[r + 1]) / 2 / height)
            cell = ids[ys[r] : ys[r + 1], xs[c] : xs[c + 1]]
            counts = np.bincount(cell.ravel(), minlength=len(scene.objects) + 1)
            counts[0] = 0
            best = int(counts.argmax())
            if best and counts[best] >= _MIN_COVER * cell.size:
                o = by_id[best]
                classes[k] = (
                    1 + _COLOURS.index(o.colour),
                    1 + _KINDS.index(o.kind),
                    1 + _TEXTURES.index(o.texture),
                    1 + _SIZES.index(o.size),
                )
    for o in scene.objects:
        cx, cy = (o.box.x1 + o.box.x2) / 2, (o.box.y1 + o.box.y2) / 2
        c = min(cols - 1, int(np.searchsorted(xs, cx, side="right")) - 1)
        r = min(rows - 1, int(np.searchsorted(ys, cy, side="right")) - 1)
        k = r * cols + c
        centre[k] = 1.0
        box[k] = (o.box.x1 / width, o.box.y1 / height, o.box.x2 / width, o.box.y2 / height)
    return DenseLabels(classes, centre, box, place)


@dataclass(frozen=True)
class VisionPretrainConfig:
    """How long and on what the tower is pretrained (scenes: the world's canvas sizes, 1 to 8 shapes)."""

    steps: int = 1500
    batch: int = 16
    learning_rate: float = 1e-3
    seed: int = 0
    """Scene stream ``(seed, index, 11)``: disjoint from SFT's, GRPO's and the benchmark's streams."""
    sizes: tuple[tuple[int, int], ...] = ((320, 240), (240, 240), (400, 300), (240, 320))
    objects: tuple[int, int] = (1, 8)
    threads: int = 2
    log_every: int = 50


def _loss(out: Any, labels: list[DenseLabels]) -> tuple[Any, dict[str, float]]:
    """Sum of the read-outs' losses over a batch's patches, and its parts (for the log)."""
    import torch
    import torch.nn.functional as F

    classes = torch.from_numpy(np.concatenate([lab.classes for lab in labels]))
    centre = torch.from_numpy(np.concatenate([lab.centre for lab in labels]))
    box = torch.from_numpy(np.concatenate([lab.box for lab in labels]))
    place = torch.from_numpy(np.concatenate([lab.place for lab in labels]))
    parts: dict[str, Any] = {}
    start = 0
    for name, width, column in zip(("colour", "kind", "texture", "size"), _HEADS, range(4), strict=True):
        parts[name] = F.cross_entropy(out[:, start : start + width], classes[:, column])
        start += width
    parts["centre"] = F.binary_cross_entropy_with_logits(out[:, start], centre)
    where = centre > 0  # the box is asked only of the patch holding its centre
    parts["box"] = 10 * F.smooth_l1_loss(out[where, start + 1 : start + 5], box[where], beta=0.05)
    parts["place"] = 10 * F.smooth_l1_loss(out[:, start + 5 : start + 7], place, beta=0.05)
    total = sum(parts.values())
    return total, {k: round(float(v.detach()), 4) for k, v in parts.items()}


def pretrain_vision(base: str | Path, config: VisionPretrainConfig, *, log: Path | None = None) -> dict[str, float]:
    """Pretrain the vision tower of the embedded checkpoint ``base`` in place; returns the last step's losses.

    Only ``model.visual`` (its merger included) is trained; the language model and tokenizer are untouched.  One JSON
    line per ``log_every`` steps goes to ``log`` (and the logger): losses, the mean absolute error of the place and box
    read-outs in fractions of the image side, and seconds.
    """
    import torch
    from transformers import AutoModelForImageTextToText

    from regionreasoner.core.world import make_scene
    from regionreasoner.trainers.processing import load_processor

    folder = Path(base)
    if not (folder / "config.json").is_file():
        raise InputError(f"{folder} is not a checkpoint", hint="write one with regionreasoner-train embedded-base")
    model_type = read_config(folder).get("model_type")
    if model_type != "qwen2_5_vl":  # Qwen3-VL's tower returns deepstack features too; its labels are not wired
        raise InputError(
            f"{folder} is a {model_type} checkpoint", hint="pretrain the tower of a qwen2.5-vl embedded base"
        )
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    processor = load_processor(str(folder))
    model = AutoModelForImageTextToText.from_pretrained(str(folder), dtype=torch.float32)
    visual = model.model.visual
    merge = visual.spatial_merge_size
    # a free linear read-out; scoring classes by the text model's word embeddings instead did worse downstream
    # (docs/embedded-model.md, "Probes, 2026-12-04, third session")
    head = torch.nn.Linear(model.config.text_config.hidden_size, sum(_HEADS) + 7)
    params = list(visual.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
    warm = max(1, config.steps // 20)

    def factor(step: int) -> float:  # linear warm-up over 5% of the steps, then cosine to zero
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, config.steps - warm)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    visual.train()
    started, last = time.time(), {}
    stream = log.open("a", encoding="utf-8") if log else None
    try:
        for step in range(1, config.steps + 1):
            scenes = []
            for j in range(config.batch):
                index = (step - 1) * config.batch + j
                size = config.sizes[index % len(config.sizes)]
                scenes.append(make_scene((config.seed, index, 11), size=size, n_objects=config.objects))
            enc = processor.image_processor(images=[s.image for s in scenes], return_tensors="pt")
            grid = enc["image_grid_thw"]
            labels = [
                dense_labels(s, int(g[1]) // merge, int(g[2]) // merge) for s, g in zip(scenes, grid, strict=True)
            ]
            out = head(visual(enc["pixel_values"], grid_thw=grid).pooler_output)
            loss, parts = _loss(out, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            if step % config.log_every == 0 or step == config.steps:
                with torch.no_grad():
                    place = torch.from_numpy(np.concatenate([lab.place for lab in labels]))
                    centre = torch.from_numpy(np.concatenate([lab.centre for lab in labels])) > 0
                    box = torch.from_numpy(np.concatenate([lab.box for lab in labels]))
                    at = sum(_HEADS)
                    parts["place_mae"] = round(float((out[:, at + 5 : at + 7] - place).abs().mean()), 4)
                    parts["box_mae"] = round(float((out[centre, at + 1 : at + 5] - box[centre]).abs().mean()), 4)
                seconds = round(time.time() - started)
                last = {"step": step, **parts, "loss": round(float(loss.detach()), 4), "seconds": seconds}
                line = json.dumps(last)
                _log.info("%s", line)
                if stream:
                    stream.write(line + "\n")
                    stream.flush()
    finally:
        if stream:
            stream.close()
    model.save_pretrained(str(folder), safe_serialization=True)
    return last
