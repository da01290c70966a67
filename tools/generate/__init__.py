"""The generator and inpainter (NeoBabel) and its MAGVIT-v2 image tokenizer.

Importing this package does not import torch: every name below loads its module on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from regionreasoner.tools.generate.generator import Generator, GeneratorDefaults, build_tiny_generator
    from regionreasoner.tools.generate.images import (
        mask_to_grid,
        postprocess_image,
        postprocess_images,
        preprocess_image,
        preprocess_mask,
    )
    from regionreasoner.tools.generate.magvit import Magvit, MagvitConfig
    from regionreasoner.tools.generate.model import NeoBabel, NeoBabelConfig
    from regionreasoner.tools.generate.prompting import VocabLayout, attention_mask
    from regionreasoner.tools.generate.sampler import SamplerSettings, SamplerStep, sample_codes

__all__ = [
    "Generator",
    "GeneratorDefaults",
    "Magvit",
    "MagvitConfig",
    "NeoBabel",
    "NeoBabelConfig",
    "SamplerSettings",
    "SamplerStep",
    "VocabLayout",
    "attention_mask",
    "build_tiny_generator",
    "mask_to_grid",
    "postprocess_image",
    "postprocess_images",
    "preprocess_image",
    "preprocess_mask",
    "sample_codes",
]

_LAZY = {
    "Generator": "regionreasoner.tools.generate.generator",
    "GeneratorDefaults": "regionreasoner.tools.generate.generator",
    "build_tiny_generator": "regionreasoner.tools.generate.generator",
    "NeoBabel": "regionreasoner.tools.generate.model",
    "NeoBabelConfig": "regionreasoner.tools.generate.model",
    "VocabLayout": "regionreasoner.tools.generate.prompting",
    "attention_mask": "regionreasoner.tools.generate.prompting",
    "SamplerSettings": "regionreasoner.tools.generate.sampler",
    "SamplerStep": "regionreasoner.tools.generate.sampler",
    "sample_codes": "regionreasoner.tools.generate.sampler",
    "Magvit": "regionreasoner.tools.generate.magvit",
    "MagvitConfig": "regionreasoner.tools.generate.magvit",
    "mask_to_grid": "regionreasoner.tools.generate.images",
    "postprocess_image": "regionreasoner.tools.generate.images",
    "postprocess_images": "regionreasoner.tools.generate.images",
    "preprocess_image": "regionreasoner.tools.generate.images",
    "preprocess_mask": "regionreasoner.tools.generate.images",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
