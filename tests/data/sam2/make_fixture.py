"""Write parity.npz: what transformers' Sam2Processor gives for two small images (see README.md).

Run in a throwaway venv that has torchvision (never the project's .venv):
``/tmp/tvenv/bin/python tests/data/sam2/make_fixture.py``.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import torch

# WHY: the PyPI torchvision wheel is built against CUDA torch, so on CPU torch its C ops (nms, roi_align) do not
# load and ``import torchvision`` fails registering a fake kernel for the missing ``torchvision::nms``.  Declaring
# the two op schemas first lets it import; the code used here (v2 resize) is pure Python over torch.
_lib = torch.library.Library("torchvision", "DEF")
_lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
_lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")

import torchvision  # noqa: E402
import transformers  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import Sam2ImageProcessor, Sam2Processor  # noqa: E402

SIZE = 256
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def test_image(width: int, height: int) -> Image.Image:
    """A deterministic RGB picture with smooth gradients and a fine checker (so antialiasing shows)."""
    x, y = np.meshgrid(np.arange(width), np.arange(height))
    r = x * 255 // max(1, width - 1)
    g = y * 255 // max(1, height - 1)
    b = ((x // 2 + y // 3) % 2) * 200 + (x * y) % 50
    return Image.fromarray(np.stack([r, g, b], axis=-1).astype(np.uint8), "RGB")


def main(out: Path) -> None:
    processor = Sam2Processor(image_processor=Sam2ImageProcessor(size={"height": SIZE, "width": SIZE}))
    data: dict[str, np.ndarray] = {}
    for name, (w, h) in {"small": (97, 61), "wide": (320, 200)}.items():
        image = test_image(w, h)
        boxes = [[10.5, 5.0, 60.0, 40.0], [0.0, 0.0, float(w), float(h)]]
        points = [[[30.0, 20.0]], [[w - 26.75, h - 11.0]]]
        labels = [[1], [0]]
        enc = processor(
            images=image, input_boxes=[boxes], input_points=[points], input_labels=[labels], return_tensors="pt"
        )
        pv = enc["pixel_values"]
        assert pv.dtype == torch.float32 and tuple(pv.shape) == (1, 3, SIZE, SIZE), (pv.dtype, pv.shape)
        # The resized uint8 picture, recovered from pixel_values (normalisation is affine), kept for diagnosis.
        resized = np.rint(pv[0].numpy() * (STD[:, None, None] * 255) + MEAN[:, None, None] * 255)
        assert np.abs(resized - np.rint(resized)).max() < 1e-3
        data[f"{name}_image_sha256"] = np.array(hashlib.sha256(np.asarray(image).tobytes()).hexdigest())
        data[f"{name}_resized_u8"] = np.clip(resized, 0, 255).astype(np.uint8)
        data[f"{name}_pv_sha256"] = np.array(hashlib.sha256(pv.numpy().tobytes()).hexdigest())
        data[f"{name}_pv_row100"] = pv[0, :, 100, :].numpy()
        data[f"{name}_boxes_in"] = np.array(boxes, dtype=np.float32)
        data[f"{name}_points_in"] = np.array(points, dtype=np.float32)
        data[f"{name}_input_boxes"] = enc["input_boxes"].numpy()
        data[f"{name}_input_points"] = enc["input_points"].numpy()
        data[f"{name}_input_labels"] = enc["input_labels"].numpy()
        # Post-processing: low-res logits (float16-exact values) upsampled to (h, w) and thresholded at 0.
        gen = torch.Generator().manual_seed(0)
        logits = torch.randn(1, 2, 3, 16, 16, generator=gen).half().float()
        masks = processor.post_process_masks(logits, enc["original_sizes"])[0]
        assert tuple(masks.shape) == (2, 3, h, w), masks.shape
        data[f"{name}_lowres_logits"] = logits.numpy().astype(np.float16)
        data[f"{name}_masks_packed"] = np.packbits(masks.numpy().astype(np.uint8), axis=-1)
    versions = (
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, transformers {transformers.__version__}"
    )
    data["versions"] = np.array(versions)
    np.savez_compressed(out, **data)
    print(f"wrote {out} ({out.stat().st_size} bytes) with {versions}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("parity.npz"))
