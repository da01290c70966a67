"""Tiny random Qwen2.5-VL / Qwen3-VL checkpoints built offline, for the demo and the tests.

The architectures are the real ones (vision tower, M-RoPE, chat template, image processor), only tiny: hidden size
128 with head_dim 32 (vLLM's CPU attention accepts it), two layers, a byte-level BPE tokenizer trained on the
project's own prompt texts with Qwen's special tokens at Qwen's ids and Qwen's digit splitting.  The weights are
random (seeded), so the model's words are noise: it exists to exercise every code path without a download.
A build takes a few seconds and is cached (see :func:`tiny_model_path`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.prompts import PROMPTS
from regionreasoner.core.protocol import AnswerObject, format_action

__all__ = [
    "QWEN_CHAT_TEMPLATE",
    "TINY_FAMILIES",
    "UNTRAINED_MARKER",
    "TinyFamily",
    "build_tiny_model",
    "is_untrained_checkpoint",
    "save_qwen_checkpoint",
    "set_pixel_limits",
    "tiny_model_path",
    "train_tokenizer",
]

logger = logging.getLogger(__name__)

TinyFamily = Literal["qwen2.5-vl", "qwen3-vl", "llava"]
TINY_FAMILIES: tuple[TinyFamily, ...] = ("qwen2.5-vl", "qwen3-vl", "llava")
"""``llava`` (CLIP vision tower + Llama text) exercises the generic path: its processor builds the inputs."""
_RECIPE_VERSION = "1"

UNTRAINED_MARKER = "regionreasoner_tiny.json"
"""File a tiny random checkpoint carries in its folder: its weights are untrained."""


def is_untrained_checkpoint(model: str | Path) -> bool:
    """True when ``model`` is a checkpoint folder holding :data:`UNTRAINED_MARKER` (random, untrained weights)."""
    return (Path(model) / UNTRAINED_MARKER).is_file()


SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
"""Qwen's special tokens in Qwen's order, so ids match the real vocabularies (``<|image_pad|>`` = 12, ...)."""

QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""The Qwen2-VL/Qwen2.5-VL chat template layout (default system prompt when none is given)."""


def _corpus() -> list[str]:
    words = " ".join(
        [
            "a the red blue green yellow white black small large left right above below inside next to near",
            "touching overlapping person car tree ball box kite sun sky grass dog cat man woman player chair",
            "table cup scene image shows contains visible appears located target reference region bbox compare",
        ]
    ).split(" ")
    lines = [p.render("find the red ball to the left of bbox=[12, 345, 67, 890]") for p in PROMPTS.values()]
    for i in range(200):
        w = [words[(i * 7 + k * 13) % len(words)] for k in range(8)]
        obj = AnswerObject(box=(i % 97, (i * 3) % 89, 100 + i % 700, 120 + i % 700), point=(50 + i % 40, 60 + i % 50))
        lines.append(format_action(scene=" ".join(w), focus=" ".join(w[:4]), think=" ".join(w[2:]), objects=[obj]))
    return lines * 3


def _build_tokenizer(chat_template: str) -> Any:
    return train_tokenizer(_corpus(), chat_template=chat_template, vocab_size=1024, split_digits=True)


def train_tokenizer(
    corpus: Iterable[str], *, chat_template: str = QWEN_CHAT_TEMPLATE, vocab_size: int = 1024, split_digits: bool = True
) -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``corpus``, with Qwen's special tokens at Qwen's ids.

    Byte-level, so every script (and any byte string) is covered; ``split_digits`` splits numbers into single
    digits as Qwen does, else a number such as ``57`` may become one token (the embedded model's choice: one
    coordinate, one prediction).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.pre_tokenizer = (
        pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
        if split_digits
        else byte_level
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=chat_template,
        padding_side="left",
        model_max_length=32768,
    )


def _model_config(family: TinyFamily, vocab_size: int) -> object:
    ids = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
    common = {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
        "tie_word_embeddings": False,
    }
    text: dict[str, object] = {
        "vocab_size": vocab_size,
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32768,
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "pad_token_id": ids["<|endoftext|>"],
    }
    if family == "qwen2.5-vl":
        from transformers import Qwen2_5_VLConfig

        text["rope_parameters"] = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [4, 6, 6]}
        vision = {
            "depth": 2,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_heads": 2,
            "out_hidden_size": 128,
            "fullatt_block_indexes": [1],
            "window_size": 112,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "tokens_per_second": 2,
        }
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, **common)
    from transformers import Qwen3VLConfig

    text["head_dim"] = 32
    text["rope_parameters"] = {
        "rope_type": "default",
        "rope_theta": 5e6,
        "mrope_section": [6, 5, 5],
        "mrope_interleaved": True,
    }
    vision = {
        "depth": 2,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_heads": 2,
        "patch_size": 16,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "out_hidden_size": 128,
        "num_position_embeddings": 64,
        "deepstack_visual_indexes": [0],
    }
    return Qwen3VLConfig(text_config=text, vision_config=vision, **common)


def _build_llava(out: Path, seed: int) -> None:
    import torch
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    template = QWEN_CHAT_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", "<image>")
    tokenizer: Any = _build_tokenizer(template)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56})
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=template,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=56,
            patch_size=14,
        ),
        text_config=LlamaConfig(
            vocab_size=1024,
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=32768,
            eos_token_id=SPECIAL_TOKENS.index("<|im_end|>"),
            pad_token_id=0,
        ),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(seed)
    LlavaForConditionalGeneration(config).eval().save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)


def build_tiny_model(path: str | Path, family: TinyFamily = "qwen2.5-vl", *, seed: int = 0) -> Path:
    """Write a tiny random checkpoint of ``family`` to ``path`` (config, safetensors, tokenizer, image processor).

    The image processor allows 4..256 merged patches (small images, fast tests); the same directory loads with
    ``TransformersPolicy`` and with vLLM.
    """
    if family not in TINY_FAMILIES:
        raise ConfigError(f"unknown tiny family {family!r}", hint=f"use one of {list(TINY_FAMILIES)}")
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    if family == "llava":
        _build_llava(out, seed)
    else:
        _build_qwen(out, family, seed)
    (out / UNTRAINED_MARKER).write_text(
        json.dumps({"family": family, "seed": seed, "recipe": _RECIPE_VERSION, "untrained": True}, indent=2)
    )
    return out


def _build_qwen(out: Path, family: TinyFamily, seed: int) -> None:
    import torch
    from transformers import AutoModelForImageTextToText

    tokenizer = _build_tokenizer(QWEN_CHAT_TEMPLATE)
    config = _model_config(family, 1024)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32).eval()
    factor = 14 if family == "qwen2.5-vl" else 16
    save_qwen_checkpoint(
        out, model, tokenizer, family, min_pixels=(factor * 2) ** 2 * 4, max_pixels=(factor * 2) ** 2 * 256
    )


def save_qwen_checkpoint(
    out: str | Path, model: Any, tokenizer: Any, family: TinyFamily, *, min_pixels: int, max_pixels: int
) -> Path:
    """Write ``model`` (a Qwen2.5-VL or Qwen3-VL ``PreTrainedModel``) as a complete checkpoint folder.

    Weights (safetensors), generation config (greedy, ``<|im_end|>`` ends), ``tokenizer``, the PIL image processor
    with smart-resize limits ``min_pixels..max_pixels`` (pixels of the resized image), the processor class and the
    chat template: everything TransformersPolicy, vLLM and the trainers load.
    """
    from transformers import GenerationConfig
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    folder = Path(out)
    model.save_pretrained(folder, safe_serialization=True)
    eos = [SPECIAL_TOKENS.index("<|im_end|>"), SPECIAL_TOKENS.index("<|endoftext|>")]
    GenerationConfig(bos_token_id=0, eos_token_id=eos, pad_token_id=0, do_sample=False).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    factor = 14 if family == "qwen2.5-vl" else 16
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=factor,
        merge_size=2,
        temporal_patch_size=2,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        **({} if family == "qwen2.5-vl" else {"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}),
    )
    image_processor.save_pretrained(folder)
    processor_class = "Qwen2_5_VLProcessor" if family == "qwen2.5-vl" else "Qwen3VLProcessor"
    (folder / "processor_config.json").write_text(json.dumps({"processor_class": processor_class}, indent=2))
    (folder / "chat_template.jinja").write_text(QWEN_CHAT_TEMPLATE)
    return folder


def set_pixel_limits(path: str | Path, *, min_pixels: int, max_pixels: int) -> Path:
    """Give a built checkpoint's image processor other smart-resize pixel limits; returns the folder.

    The limits are written where transformers reads the image-processor settings (the ``image_processor`` entry of
    ``processor_config.json`` when there is one, else ``preprocessor_config.json``) as top-level ``min_pixels`` /
    ``max_pixels``, the spelling of the released Qwen2.5-VL checkpoints, which transformers prefers over the
    ``size`` entry the build wrote (left as it is).  A LLaVA's CLIP image processor does not use them.
    """
    out = Path(path)
    nested = out / "processor_config.json"
    if nested.is_file() and "image_processor" in (data := json.loads(nested.read_text())):
        data["image_processor"].update(min_pixels=min_pixels, max_pixels=max_pixels)
        nested.write_text(json.dumps(data, indent=2))
        return out
    flat = out / "preprocessor_config.json"
    data = json.loads(flat.read_text())
    data.update(min_pixels=min_pixels, max_pixels=max_pixels)
    flat.write_text(json.dumps(data, indent=2))
    return out


def _cache_root() -> Path:
    if root := os.environ.get("REGIONREASONER_CACHE"):
        return Path(root)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "regionreasoner"


def tiny_model_path(family: TinyFamily = "qwen2.5-vl", *, seed: int = 0, cache_dir: str | Path | None = None) -> Path:
    """The cached tiny checkpoint of ``family``, built on first use.

    Location: ``cache_dir``, else ``$REGIONREASONER_CACHE``, else ``$XDG_CACHE_HOME/regionreasoner`` (default
    ``~/.cache/regionreasoner``), under ``models/tiny-<family>-<recipe hash>``.  Built into a temporary folder
    and renamed, so concurrent first uses never see a half-written checkpoint.
    """
    key = hashlib.sha256(f"{family}:{seed}:{_RECIPE_VERSION}".encode()).hexdigest()[:12]
    root = Path(cache_dir) if cache_dir is not None else _cache_root()
    target = root / "models" / f"tiny-{family}-{key}"
    if (target / UNTRAINED_MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tiny-{family}-", dir=target.parent))
    try:
        logger.info("building tiny random %s checkpoint in %s", family, target)
        build_tiny_model(tmp, family, seed=seed)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / UNTRAINED_MARKER).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
