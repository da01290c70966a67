"""Model families: the coordinate frame each one answers in, and how its vision inputs are laid out.

Lookup order for a checkpoint (first match wins):

1. an explicit ``frame=`` / ``prompt_template=`` given to the policy;
2. a ``regionreasoner.json`` file in the checkpoint folder: ``{"frame": "fixed:840x840", "prompt_template": ...}``;
3. the checkpoint name: RegionReasoner, VisionReasoner and Seg-Zero checkpoints answer in 840x840 pixels;
4. the family default from ``config.model_type`` (table below).

| model_type | family | default frame |
|---|---|---|
| ``qwen2_vl`` | Qwen2-VL | ``norm:1000`` |
| ``qwen2_5_vl`` | Qwen2.5-VL | ``smart:28:<min_pixels>:<max_pixels>`` of its image processor |
| ``qwen3_vl``, ``qwen3_vl_moe`` | Qwen3-VL | ``norm:1000`` |
| anything else | generic | ``norm:1000`` unless configured |
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from regionreasoner.core.frames import FixedResizeFrame, Frame, NormalizedFrame, SmartResizeFrame, frame_from_spec

__all__ = ["FAMILIES", "Family", "family_for", "processor_settings", "resolve_frame", "resolve_prompt_template"]

_FIXED_840_NAMES = re.compile(r"regionreasoner|visionreasoner|seg-?zero", re.IGNORECASE)


@dataclass(frozen=True)
class Family:
    """How a model family is driven: Qwen-style M-RoPE inputs or the generic processor path, and its frame."""

    name: str
    mrope: bool
    """Qwen-VL multimodal rotary positions (3-D for image tokens), computed by the model's ``get_rope_index``."""
    default_frame: str
    """Frame spec; ``smart`` means the image processor's own smart-resize settings."""


FAMILIES: dict[str, Family] = {
    "qwen2_vl": Family("qwen2-vl", mrope=True, default_frame="norm:1000"),
    "qwen2_5_vl": Family("qwen2.5-vl", mrope=True, default_frame="smart"),
    "qwen3_vl": Family("qwen3-vl", mrope=True, default_frame="norm:1000"),
    "qwen3_vl_moe": Family("qwen3-vl", mrope=True, default_frame="norm:1000"),
}
GENERIC = Family("generic", mrope=False, default_frame="norm:1000")


def family_for(model_type: str) -> Family:
    """The family of a transformers ``model_type`` (the generic family for unknown types)."""
    return FAMILIES.get(model_type, GENERIC)


def _declared(path: Path | None) -> dict[str, str]:
    if path is None or not (path / "regionreasoner.json").is_file():
        return {}
    data = json.loads((path / "regionreasoner.json").read_text())
    return {k: str(v) for k, v in data.items() if k in ("frame", "prompt_template")}


def resolve_frame(
    family: Family,
    *,
    name: str,
    path: Path | None,
    override: Frame | str | None,
    patch_size: int = 14,
    merge_size: int = 2,
    min_pixels: int = 56 * 56,
    max_pixels: int = 28 * 28 * 1280,
) -> Frame:
    """The frame a checkpoint answers in, by the lookup order of this module's docstring."""
    if override is not None:
        return frame_from_spec(override) if isinstance(override, str) else override
    if spec := _declared(path).get("frame"):
        return frame_from_spec(spec)
    if _FIXED_840_NAMES.search(name):
        return FixedResizeFrame(840, 840)
    if family.default_frame == "smart":
        return SmartResizeFrame(patch_size * merge_size, min_pixels, max_pixels)
    if family.default_frame == "norm:1000":
        return NormalizedFrame(1000)
    return frame_from_spec(family.default_frame)


def resolve_prompt_template(*, path: Path | None, override: str | None) -> str:
    """The prompt template name: explicit, else ``regionreasoner.json``, else the RegionReasoner eval prompt."""
    if override:
        return override
    return _declared(path).get("prompt_template", "regionreasoner-eval")


def processor_settings(path: Path | None) -> dict[str, int]:
    """patch/merge sizes and pixel bounds from a checkpoint's preprocessor_config.json (defaults when absent)."""
    if path is None or not (path / "preprocessor_config.json").is_file():
        return {}
    data = json.loads((path / "preprocessor_config.json").read_text())
    size = data.get("size") or {}
    out = {
        "patch_size": int(data.get("patch_size", 14)),
        "merge_size": int(data.get("merge_size", 2)),
        "min_pixels": int(data.get("min_pixels") or size.get("shortest_edge") or 56 * 56),
        "max_pixels": int(data.get("max_pixels") or size.get("longest_edge") or 28 * 28 * 1280),
    }
    return out
