"""Model families, and the one derivation of a checkpoint's coordinate frame (:func:`derive_frame`).

Every backend gets its frame from :func:`derive_frame`: ``TransformersPolicy`` and ``VLLMPolicy`` from the model they
load, ``OpenAIPolicy`` from the checkpoint folder given as its ``tokenizer`` (else from the served model's name).
Precedence, first match wins:

1. ``override``: the ``frame=`` given to the policy (``"smart"`` as in rule 2);
2. ``"frame"`` in a ``regionreasoner.json`` in the checkpoint folder (``{"frame": "fixed:840x840",
   "prompt_template": ...}``); ``"frame": "smart"`` means the image processor's own smart-resize settings (below);
3. the name: RegionReasoner, VisionReasoner and Seg-Zero checkpoints answer in 840x840 pixels;
4. the family of ``config.json``'s ``model_type`` (table below).  Without a ``config.json`` (a served model known by
   its name only) the family is guessed from the name: a Qwen2.5-VL name gets the released checkpoints' settings
   (the ``qwen2.5-vl`` alias, 3136..12845056 pixels), any other name 0..1000.

| model_type | family | default frame |
|---|---|---|
| ``qwen2_vl`` | Qwen2-VL | ``norm:1000`` |
| ``qwen2_5_vl`` | Qwen2.5-VL | ``smart``: its image processor's smart-resize settings |
| ``qwen3_vl``, ``qwen3_vl_moe`` | Qwen3-VL | ``norm:1000`` |
| anything else (LLaVA, ...) | generic | ``norm:1000`` unless declared |

Smart-resize settings (:class:`ProcessorSettings`) are read the way transformers reads them, so the frame is the image
the model sees: the image-processor dict is the ``image_processor`` entry of ``processor_config.json`` when there is
one, else ``preprocessor_config.json`` (``ImageProcessingMixin.get_image_processor_dict``); in it a top-level
``min_pixels`` / ``max_pixels`` wins over ``size.shortest_edge`` / ``size.longest_edge``, which win over the class
defaults :data:`~regionreasoner.core.frames.DEFAULT_MIN_PIXELS` / ``DEFAULT_MAX_PIXELS``
(``Qwen2VLImageProcessor.__init__``); the resize factor is ``patch_size * merge_size`` (class defaults 14 and 2, so
28 for Qwen2-VL/2.5-VL; Qwen3-VL's patch size 16 gives 32).  A checkpoint folder is a local directory, or the
Hugging Face cache snapshot holding a hub id's ``config.json`` (found without the network).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regionreasoner.core.frames import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_PIXELS,
    FixedResizeFrame,
    Frame,
    NormalizedFrame,
    SmartResizeFrame,
    frame_from_spec,
)

__all__ = [
    "FAMILIES",
    "Family",
    "ProcessorSettings",
    "checkpoint_folder",
    "derive_frame",
    "family_for",
    "frame_for_name",
    "processor_settings",
    "resolve_prompt_template",
]

_FIXED_840_NAMES = re.compile(r"regionreasoner|visionreasoner|seg-?zero", re.IGNORECASE)
_QWEN25_NAMES = re.compile(r"qwen2[._]5", re.IGNORECASE)


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
    """``frame`` and ``prompt_template`` declared by a checkpoint folder's ``regionreasoner.json``."""
    if path is None or not (path / "regionreasoner.json").is_file():
        return {}
    data = _read_json(path / "regionreasoner.json")
    return {k: str(v) for k, v in data.items() if k in ("frame", "prompt_template")}


@dataclass(frozen=True)
class ProcessorSettings:
    """A Qwen-VL image processor's smart-resize settings (see the module docstring for how they are read)."""

    patch_size: int = 14
    merge_size: int = 2
    min_pixels: int = DEFAULT_MIN_PIXELS
    max_pixels: int = DEFAULT_MAX_PIXELS

    @property
    def frame(self) -> SmartResizeFrame:
        """The smart-resize frame: sides multiples of ``patch_size * merge_size``, pixels within the bounds."""
        return SmartResizeFrame(self.patch_size * self.merge_size, self.min_pixels, self.max_pixels)


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    return data if isinstance(data, dict) else {}


def _image_processor_dict(folder: Path) -> dict[str, Any]:
    """The image-processor settings transformers would load from ``folder`` (empty when there are none)."""
    if (folder / "processor_config.json").is_file():
        nested = _read_json(folder / "processor_config.json").get("image_processor")
        if isinstance(nested, dict):
            return nested
    if (folder / "preprocessor_config.json").is_file():
        return _read_json(folder / "preprocessor_config.json")
    return {}


def processor_settings(folder: Path | None) -> ProcessorSettings:
    """The smart-resize settings of a checkpoint folder's image processor (class defaults where not set)."""
    data = _image_processor_dict(folder) if folder is not None else {}
    size_entry = data.get("size")
    size: dict[str, Any] = size_entry if isinstance(size_entry, dict) else {}

    def pick(*values: Any, default: int) -> int:
        return next((int(v) for v in values if v is not None), default)

    return ProcessorSettings(
        patch_size=pick(data.get("patch_size"), default=14),
        merge_size=pick(data.get("merge_size"), default=2),
        min_pixels=pick(data.get("min_pixels"), size.get("shortest_edge"), default=DEFAULT_MIN_PIXELS),
        max_pixels=pick(data.get("max_pixels"), size.get("longest_edge"), default=DEFAULT_MAX_PIXELS),
    )


def checkpoint_folder(model: str | Path) -> Path | None:
    """The folder holding ``model``'s files: a local directory, or the cache snapshot of a hub id; else None.

    Never downloads: a hub id whose ``config.json`` is not in the Hugging Face cache has no folder.
    """
    if Path(model).is_dir():
        return Path(model)
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError

    try:
        config = try_to_load_from_cache(str(model), "config.json")
    except HFValidationError:  # not a hub id either (e.g. a path that does not exist)
        return None
    return Path(config).parent if isinstance(config, str) else None


def frame_for_name(name: str) -> Frame:
    """The frame of a model known only by its name (rules 3 and 4 of the module docstring)."""
    if _FIXED_840_NAMES.search(name):
        return FixedResizeFrame(840, 840)
    if _QWEN25_NAMES.search(name):
        return frame_from_spec("qwen2.5-vl")
    return NormalizedFrame(1000)


def derive_frame(
    checkpoint: str | Path | None, *, name: str | None = None, override: Frame | str | None = None
) -> Frame:
    """The frame a checkpoint answers in, by the precedence of the module docstring.

    ``checkpoint`` is a local folder or a hub id (None: a served model known by ``name`` only); ``name`` is what
    the name rule reads (default: ``str(checkpoint)``); ``override`` is the policy's ``frame=`` (a frame, a spec,
    or ``"smart"`` for the image processor's settings).
    """
    if isinstance(override, Frame):
        return override
    name = name if name is not None else str(checkpoint or "")
    folder = checkpoint_folder(checkpoint) if checkpoint is not None else None
    spec = override or _declared(folder).get("frame")
    if spec is None:
        if _FIXED_840_NAMES.search(name) or folder is None or not (folder / "config.json").is_file():
            return frame_for_name(name)
        spec = family_for(str(_read_json(folder / "config.json").get("model_type", ""))).default_frame
    if spec == "smart":
        return processor_settings(folder).frame
    return frame_from_spec(spec)


def resolve_prompt_template(*, path: Path | None, override: str | None) -> str:
    """The prompt template name: explicit, else ``regionreasoner.json``, else the RegionReasoner eval prompt."""
    if override:
        return override
    return _declared(path).get("prompt_template", "regionreasoner-eval")
