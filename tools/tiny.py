"""Tiny random SAM2 checkpoints built offline, for the tests and the segmentation benchmark.

The architecture is transformers' ``Sam2Model`` (Hiera backbone, FPN neck, prompt encoder, two-way mask decoder),
only tiny: four Hiera stages of one or two blocks, widths ``hidden_size * (1, 2, 4, 8)``.  The weights are random
(seeded), so the masks are noise: the checkpoint exists to exercise every code path of
:class:`~regionreasoner.tools.segment.Sam2Segmenter` without a download.  The folder has the layout of the released
``facebook/sam2.1-hiera-*`` folders: ``config.json``, ``model.safetensors`` and a ``preprocessor_config.json``
recording the input size and the ImageNet mean/std.
"""

from __future__ import annotations

import json
from pathlib import Path

from regionreasoner.core.errors import ConfigError
from regionreasoner.tools.sam2_inputs import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["UNTRAINED_MARKER", "build_tiny_sam2", "tiny_sam2_config"]

UNTRAINED_MARKER = "regionreasoner_tiny.json"
"""The file :mod:`regionreasoner.policies.tiny` marks random checkpoints with; the same name is used here."""


def tiny_sam2_config(*, image_size: int = 256, hidden_size: int = 16) -> object:
    """A ``Sam2Config`` of a tiny Hiera SAM2: input ``image_size``² pixels, first-stage width ``hidden_size``.

    ``image_size`` must be a multiple of 64 (the deepest Hiera stage is 1/32 of the input and windows of 4 tokens
    must tile the 1/16 stage); ``hidden_size`` a multiple of 8.  With the defaults the model has 0.35 M parameters.
    """
    if image_size < 64 or image_size % 64:
        raise ConfigError(f"image_size={image_size}: use a multiple of 64 (64, 128, 256, 512, 1024)")
    if hidden_size < 8 or hidden_size % 8:
        raise ConfigError(f"hidden_size={hidden_size}: use a multiple of 8 (8, 16, 32, ...)")
    from transformers import Sam2Config

    s, h = image_size, hidden_size
    dims = [h, 2 * h, 4 * h, 8 * h]
    return Sam2Config(
        vision_config={
            "backbone_config": {
                "model_type": "sam2_hiera_det_model",
                "image_size": [s, s],
                "hidden_size": h,
                "num_attention_heads": 1,
                "blocks_per_stage": [1, 1, 2, 1],
                "embed_dim_per_stage": dims,
                "num_attention_heads_per_stage": [1, 1, 2, 2],
                "window_size_per_stage": [8, 4, 4, 4],
                # WHY block 3 (the second block of stage 3): a global block that opens a query-pool stage gets
                # window_size 0 and divides by zero in Sam2MultiScaleBlock (cpu-stack-notes.md, SAM2 pitfalls).
                "global_attention_blocks": [3],
            },
            "backbone_channel_list": dims[::-1],
            "backbone_feature_sizes": [[s // 4, s // 4], [s // 8, s // 8], [s // 16, s // 16]],
            "fpn_hidden_size": 2 * h,
        },
        prompt_encoder_config={"hidden_size": 2 * h, "image_size": s, "patch_size": 16, "mask_input_channels": 8},
        mask_decoder_config={
            "hidden_size": 2 * h,
            "mlp_dim": 4 * h,
            "num_attention_heads": 2,
            "iou_head_hidden_dim": 2 * h,
        },
    )


def build_tiny_sam2(path: str | Path, *, seed: int = 0, image_size: int = 256, hidden_size: int = 16) -> Path:
    """Write a tiny random ``Sam2Model`` checkpoint folder to ``path`` and return it.

    Files: ``config.json`` and ``model.safetensors`` (``save_pretrained``), ``preprocessor_config.json`` (input
    ``image_size`` x ``image_size``, bilinear resize, rescale 1/255, ImageNet mean/std, as in the released
    ``facebook/sam2.1-hiera-*`` folders) and :data:`UNTRAINED_MARKER`.  The same ``seed`` gives the same weights.
    """
    import torch
    from transformers import Sam2Model

    config = tiny_sam2_config(image_size=image_size, hidden_size=hidden_size)
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    Sam2Model(config).eval().save_pretrained(out, safe_serialization=True)
    preprocessor = {
        "image_processor_type": "Sam2ImageProcessor",
        "processor_class": "Sam2Processor",
        "do_resize": True,
        "size": {"height": image_size, "width": image_size},
        "resample": 2,  # PIL.Image.BILINEAR
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(IMAGENET_MEAN),
        "image_std": list(IMAGENET_STD),
        "do_convert_rgb": True,
        "mask_size": {"height": image_size // 4, "width": image_size // 4},
    }
    (out / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    marker = {"family": "sam2", "seed": seed, "image_size": image_size, "hidden_size": hidden_size, "untrained": True}
    (out / UNTRAINED_MARKER).write_text(json.dumps(marker, indent=2))
    return out
