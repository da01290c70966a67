"""The processor TRL needs for a Qwen-VL checkpoint, built without torchvision.

``AutoProcessor.from_pretrained`` fails on a torchvision-free machine (transformers' video processors are
torchvision-only, and the Qwen-VL processors insist on one), and TRL calls it itself when no ``processing_class``
is given.  So the trainers always build it: the checkpoint's tokenizer and PIL image processor, in a processor
subclass that accepts "no video processor".  On a machine with torchvision nothing changes (the same classes).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from regionreasoner.core.errors import ModelLoadError

__all__ = ["load_processor", "model_path", "save_processor"]


@cache
def _no_video(base: type) -> type:
    """``base`` (a Qwen-VL processor class) accepting ``video_processor=None``."""

    def check_argument_for_proper_class(self: Any, name: str, arg: Any) -> Any:
        if name == "video_processor" and arg is None:
            return None
        return base.check_argument_for_proper_class(self, name, arg)  # type: ignore[attr-defined]

    def save_pretrained(self: Any, save_directory: str | Path, *args: Any, **kwargs: Any) -> list[str]:
        # The base class would save the (absent) video processor too; TRL calls this with every checkpoint.
        save_processor(self, save_directory)
        return []

    namespace = {"check_argument_for_proper_class": check_argument_for_proper_class, "save_pretrained": save_pretrained}
    return type(f"NoVideo{base.__name__}", (base,), namespace)


def model_path(name: str) -> str:
    """The checkpoint to train: ``"tiny"`` (random, built offline), ``"embedded"`` (shipped) or a folder / hub id."""
    from regionreasoner.policies.embedded import resolve_model

    return resolve_model(name)


def load_processor(checkpoint: str | Path) -> Any:
    """The (tokenizer + image processor) processor of a Qwen2.5-VL, Qwen2-VL or Qwen3-VL checkpoint (folder or id)."""
    from transformers import AutoConfig, AutoImageProcessor, AutoTokenizer

    name = str(checkpoint)
    try:
        config = AutoConfig.from_pretrained(name)
        tokenizer = AutoTokenizer.from_pretrained(name)
        image_processor = AutoImageProcessor.from_pretrained(name)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"cannot load the tokenizer and image processor of {name!r}: {exc}",
            hint="pass a Qwen-VL checkpoint folder (config.json, tokenizer files, preprocessor_config.json)",
        ) from exc
    model_type = getattr(config, "model_type", "")
    from transformers import Qwen2_5_VLProcessor, Qwen2VLProcessor, Qwen3VLProcessor

    bases = {"qwen2_5_vl": Qwen2_5_VLProcessor, "qwen2_vl": Qwen2VLProcessor, "qwen3_vl": Qwen3VLProcessor}
    if model_type not in bases:
        raise ModelLoadError(
            f"{name!r} is a {model_type or 'unknown'} checkpoint; training takes the Qwen-VL family",
            hint=f"use a checkpoint whose config.json model_type is one of {sorted(bases)}",
        )
    return _no_video(bases[model_type])(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=None,
        chat_template=tokenizer.chat_template,
    )


def save_processor(processor: Any, folder: str | Path) -> None:
    """Write ``processor``'s tokenizer and image processor into ``folder`` (beside the weights).

    ``save_pretrained`` of the processor itself would also write its (absent) video processor; the two parts are
    what every loader of this project reads.
    """
    if processor is None:
        return
    tokenizer = getattr(processor, "tokenizer", processor)
    tokenizer.save_pretrained(str(folder))
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is not None:
        image_processor.save_pretrained(str(folder))
