"""SAM2 model inputs without torchvision: what ``Sam2Processor`` / ``Sam2ImageProcessor`` compute, in plain torch.

transformers' ``Sam2ImageProcessor`` is a ``TorchvisionBackend`` with no PIL fallback, and torchvision is kept out of
the project's environment (cpu-stack-notes.md, SAM2).  Read from transformers 5.24 (``models/sam2/``,
``image_processing_backends.py``), the processor does, and this module repeats, for one RGB image of ``(H, W)``:

* **pixels**: uint8 ``(3, H, W)`` -> ``torchvision.transforms.v2.functional.resize`` to ``size x size`` with
  BILINEAR and ``antialias=True``.  On CPU torchvision resizes uint8 natively (no float round trip), that is
  ``F.interpolate(uint8, mode="bilinear", align_corners=False, antialias=True)``; then float32 and the *fused*
  rescale+normalise ``(x - mean * 255) / (std * 255)`` (``TorchvisionBackend.rescale_and_normalize``).
* **coordinates** (``Sam2Processor._normalize_coordinates``): x times ``size / W`` and y times ``size / H``, in
  float32 (the square resize does not keep the aspect ratio); boxes are xyxy, points ``(x, y)``.  The half-pixel
  shift (+0.5) happens inside the model's prompt encoder.
* **masks** (``post_process_masks``): the low-res logits ``(n, h', w')`` upsampled straight to ``(H, W)`` with
  bilinear, ``align_corners=False``, no antialias, then ``> 0``.

``tests/tools/test_segment_sam2.py`` checks the three against a fixture made with the real processor
(``tests/data/sam2/README.md``): pixel values bit-identical, coordinates equal.  torch is imported inside the
functions, so importing this module stays cheap.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from regionreasoner.core.errors import ModelLoadError

if TYPE_CHECKING:
    import torch

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "Sam2InputSpec", "pixel_values", "scale_coords", "upsample_masks"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""Per-channel mean (RGB, in [0, 1]): ``IMAGENET_DEFAULT_MEAN``, the processor's default."""
IMAGENET_STD = (0.229, 0.224, 0.225)
"""Per-channel standard deviation (RGB, in [0, 1]): ``IMAGENET_DEFAULT_STD``, the processor's default."""

_BILINEAR = 2  # PIL.Image.BILINEAR, as preprocessor_config.json spells "resample"


@dataclass(frozen=True)
class Sam2InputSpec:
    """How a SAM2 checkpoint wants its image: ``image_size`` x ``image_size`` pixels, normalised per channel.

    ``mean`` and ``std`` are RGB in [0, 1] units (applied after rescaling by ``rescale_factor``, 1/255).
    """

    image_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    rescale_factor: float = 1 / 255

    @classmethod
    def from_preprocessor_config(cls, path: Path, *, default_size: int) -> Sam2InputSpec:
        """Read a ``preprocessor_config.json`` (the layout of ``facebook/sam2.1-hiera-*``).

        Missing keys take the processor's defaults (``default_size``, ImageNet mean/std, 1/255).  Settings this
        module does not implement (a non-bilinear resample, a non-square size, resizing or normalising switched
        off) raise :class:`ModelLoadError` rather than being silently ignored.
        """
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot read {path}: {exc}", hint="fix or delete the file") from exc
        size = data.get("size") or {"height": default_size, "width": default_size}
        height, width = int(size.get("height", default_size)), int(size.get("width", default_size))
        problems = []
        if height != width:
            problems.append(f"size {height}x{width} is not square")
        if data.get("resample", _BILINEAR) != _BILINEAR:
            problems.append(f"resample={data['resample']} is not bilinear ({_BILINEAR})")
        problems += [f"{key}=false" for key in ("do_resize", "do_rescale", "do_normalize") if data.get(key) is False]
        if problems:
            raise ModelLoadError(
                f"{path}: {'; '.join(problems)}: Sam2Segmenter implements only the released SAM2 preprocessing",
                hint="use a square size, resample=2 and do_resize/do_rescale/do_normalize true",
            )
        mean = tuple(float(v) for v in data.get("image_mean", IMAGENET_MEAN))
        std = tuple(float(v) for v in data.get("image_std", IMAGENET_STD))
        if len(mean) != 3 or len(std) != 3:
            raise ModelLoadError(f"{path}: image_mean and image_std need 3 values (RGB)", hint="fix the file")
        return cls(
            image_size=height,
            mean=(mean[0], mean[1], mean[2]),
            std=(std[0], std[1], std[2]),
            rescale_factor=float(data.get("rescale_factor", 1 / 255)),
        )


def pixel_values(image: Image.Image, spec: Sam2InputSpec) -> torch.Tensor:
    """The model's input for one RGB PIL image: float32 ``(1, 3, S, S)`` with ``S = spec.image_size``, on CPU.

    Bit-identical to ``Sam2Processor(images=image)["pixel_values"]`` (see the module docstring).
    """
    import torch
    import torch.nn.functional as F

    arr = np.array(image.convert("RGB"))  # a writable copy: torch.from_numpy warns on read-only arrays
    # WHY permute without .contiguous(): torchvision receives the same channels-last strided view from
    # transformers, and uint8 antialiased bilinear on CPU has a channels-last fast path; keep the same memory layout.
    u8 = torch.from_numpy(arr).permute(2, 0, 1)[None]
    size = spec.image_size
    if u8.shape[-2:] != (size, size):
        u8 = F.interpolate(u8, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    # WHY fused: TorchvisionBackend folds 1/255 into mean and std (mean / factor, std / factor) and normalises once;
    # rescaling first and normalising after rounds differently in the last bit.
    mean = torch.tensor(spec.mean) * (1.0 / spec.rescale_factor)
    std = torch.tensor(spec.std) * (1.0 / spec.rescale_factor)
    x = u8.to(torch.float32)
    return (x - mean[:, None, None]) / std[:, None, None]


def scale_coords(coords: npt.ArrayLike, original_hw: tuple[int, int], image_size: int) -> torch.Tensor:
    """Coordinates in original pixels -> the model's ``image_size``-square frame, float32, same shape.

    ``coords`` has ``(..., 2)`` points ``(x, y)`` or ``(..., 4)`` boxes ``(x1, y1, x2, y2)``; ``original_hw`` is
    ``(H, W)``.  Matches ``Sam2Processor._normalize_coordinates`` (x * S/W, y * S/H, float32 arithmetic).
    """
    import torch

    height, width = original_hw
    a = torch.as_tensor(np.asarray(coords, dtype=np.float32)).clone()
    if a.shape[-1] not in (2, 4):
        raise ValueError(f"coordinates must end in 2 (x, y) or 4 (x1, y1, x2, y2), got shape {tuple(a.shape)}")
    pairs = a.reshape(*a.shape[:-1], -1, 2)
    pairs[..., 0] = pairs[..., 0] * (image_size / width)
    pairs[..., 1] = pairs[..., 1] * (image_size / height)
    return pairs.reshape(a.shape)


def upsample_masks(low_res: torch.Tensor, original_hw: tuple[int, int], threshold: float = 0.0) -> torch.Tensor:
    """Low-res mask logits ``(n, h', w')`` -> bool masks ``(n, H, W)`` in original pixels (``post_process_masks``)."""
    import torch.nn.functional as F

    up = F.interpolate(low_res[:, None].float(), size=original_hw, mode="bilinear", align_corners=False)
    return up[:, 0] > threshold
