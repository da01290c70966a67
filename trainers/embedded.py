"""The embedded model's starting point: an untrained Qwen2.5-VL of a few million parameters, sized for two CPU cores.

``regionreasoner-train embedded-base --out DIR`` writes it; ``make model`` then trains it with the project's own
SFT and GRPO (``trainers/configs/embedded-*.yaml``) and ships the result in ``policies/weights/embedded/``
(docs/embedded-model.md has the recipe and the numbers).

What is chosen here, and why:

* **The architecture is the real one** (vision tower with window and full attention, 2x2 patch merger, M-RoPE,
  Qwen's chat template and special-token ids, the Qwen2-VL image processor), so the folder runs unchanged through
  TransformersPolicy, VLLMPolicy and any OpenAI-compatible server.  Only the sizes are small (:class:`EmbeddedSpec`).
* **Coordinates are one token each.**  The frame is ``norm:100`` (both axes 0..100) and the tokenizer does not split
  numbers into digits, so ``57`` is one token: a coordinate is one 101-way choice instead of a digit sequence, which
  a small model learns far faster.  The tokenizer is byte-level BPE trained on the world's questions in all six
  languages and the short traces, so every word of the world is a token or two and any other text still encodes.
* **Images are small**: the processor resizes to at most :attr:`EmbeddedSpec.max_image_tokens` merged patches
  (28x28 pixels each; a 320x240 scene becomes 280x196, 70 tokens).
* **The prompt is short** (``regionreasoner-short``: the question, then the image); the checkpoint declares it and
  its frame in ``regionreasoner.json``, so the agent picks both up.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from regionreasoner.core.errors import ConfigError

__all__ = ["EMBEDDED_FRAME", "EMBEDDED_TEMPLATE", "EmbeddedSpec", "build_base", "tokenizer_corpus"]

EMBEDDED_FRAME = "norm:100"
"""The embedded model's coordinate frame: both axes normalised to 0..100."""

EMBEDDED_TEMPLATE = "regionreasoner-short"
"""The embedded model's prompt template (:data:`regionreasoner.core.prompts.PROMPTS`)."""


@dataclass(frozen=True)
class EmbeddedSpec:
    """Sizes of the embedded model (defaults: about 5 M parameters, 20 MB of float32 safetensors)."""

    family: str = "qwen2.5-vl"
    """``qwen2.5-vl`` or ``qwen3-vl`` (whose vision tower adds learned absolute position embeddings)."""
    text_hidden: int = 256
    text_layers: int = 4
    text_heads: int = 4
    text_kv_heads: int = 2
    text_intermediate: int = 768
    vision_hidden: int = 128
    vision_depth: int = 4
    vision_heads: int = 4
    vision_intermediate: int = 512
    vocab_size: int = 2048
    min_image_tokens: int = 4
    """Fewest merged 28x28 patches an image is resized to."""
    max_image_tokens: int = 80
    """Most merged 28x28 patches an image is resized to (the vision tokens the language model reads)."""
    rope_theta: float = 10000.0
    """Base of the language model's rotary (M-RoPE) frequencies (Qwen2.5-VL: 1e6; see :meth:`config`)."""
    mrope_section: tuple[int, int, int] | None = None
    """Rotary pairs per head given to (time, height, width); None: 1, 1/8, the rest (32 pairs: 1, 4, 27)."""
    smooth_init: bool = True
    """Initialise coordinate tokens (and Qwen3-VL's position grid) with sinusoidal features (:func:`smooth_init`)."""

    def __post_init__(self) -> None:
        head_dim, rem = divmod(self.text_hidden, self.text_heads)
        if self.family not in ("qwen2.5-vl", "qwen3-vl"):
            raise ConfigError(f"EmbeddedSpec.family={self.family!r}", hint="use qwen2.5-vl or qwen3-vl")
        if rem or head_dim % 16 or self.text_heads % self.text_kv_heads or self.vision_hidden % self.vision_heads:
            raise ConfigError(
                f"EmbeddedSpec {self}: heads must divide the hidden sizes, kv heads the heads",
                hint="choose sizes whose text head_dim is a multiple of 16",
            )
        if self.mrope_section is not None and (sum(self.mrope_section) != head_dim // 2 or min(self.mrope_section) < 1):
            raise ConfigError(
                f"EmbeddedSpec.mrope_section={self.mrope_section}: the three parts must be positive and sum to "
                f"{head_dim // 2} (half the text head size)",
                hint="give (time, height, width) rotary pairs that add up to text_hidden // text_heads // 2",
            )
        if self.rope_theta <= 1:
            raise ConfigError(f"EmbeddedSpec.rope_theta={self.rope_theta}", hint="use a rotary base above 1")

    @property
    def patch(self) -> int:
        """Vision patch side in pixels (a merged token covers twice that)."""
        return 14 if self.family == "qwen2.5-vl" else 16

    def config(self) -> Any:
        """The ``Qwen2_5_VLConfig`` / ``Qwen3VLConfig`` (Qwen's special-token ids, untied embeddings, M-RoPE)."""
        from transformers import Qwen2_5_VLConfig, Qwen3VLConfig

        from regionreasoner.policies.tiny import SPECIAL_TOKENS

        ids = {t: i for i, t in enumerate(SPECIAL_TOKENS)}
        # The rotary base and split are knobs (docs/embedded-model.md, probes of 2026-12-03 and -04): M-RoPE gives
        # pair i the frequency theta**(-i/half) and hands the pairs to (time, height, width) in that order, so width
        # gets the slowest.  With theta 1e4 and Qwen's 1/4, 3/8, 3/8 split the width pairs turn under 0.05 rad across
        # an image (left and right look alike by phase) and one shape is not localised in 600 steps; theta 10
        # localises it but leaves text no slow pairs for matching words by content.  Time is constant over one
        # image, so it needs one pair; height takes the next 1/8 (fast pairs, a few rows), and width the rest, which
        # runs from pairs that turn ~0.2 rad per column down to theta 1e4's slow pairs, so both the image axes and
        # text (all three positions equal) keep the whole spectrum: one shape's IoU 0.49 at step 600.
        half = self.text_hidden // self.text_heads // 2  # rotary pairs per head, split over (t, h, w)
        section = [1, half // 8, half - 1 - half // 8]
        if self.mrope_section is not None:
            section = list(self.mrope_section)
        text = {
            "vocab_size": self.vocab_size,
            "hidden_size": self.text_hidden,
            "intermediate_size": self.text_intermediate,
            "num_hidden_layers": self.text_layers,
            "num_attention_heads": self.text_heads,
            "num_key_value_heads": self.text_kv_heads,
            "max_position_embeddings": 4096,
            "layer_types": ["full_attention"] * self.text_layers,
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
            "rope_parameters": {"rope_type": "default", "rope_theta": self.rope_theta, "mrope_section": section},
        }
        common = {
            "image_token_id": ids["<|image_pad|>"],
            "video_token_id": ids["<|video_pad|>"],
            "vision_start_token_id": ids["<|vision_start|>"],
            "vision_end_token_id": ids["<|vision_end|>"],
            "tie_word_embeddings": False,
        }
        if self.family == "qwen3-vl":
            text["head_dim"] = self.text_hidden // self.text_heads
            text["rope_parameters"] = {**text["rope_parameters"], "mrope_interleaved": True}  # type: ignore[dict-item]
            vision3 = {
                "depth": self.vision_depth,
                "hidden_size": self.vision_hidden,
                "intermediate_size": self.vision_intermediate,
                "num_heads": self.vision_heads,
                "out_hidden_size": self.text_hidden,
                "patch_size": 16,
                "spatial_merge_size": 2,
                "temporal_patch_size": 2,
                "num_position_embeddings": 256,  # a 16x16 grid of learned positions, interpolated to the image
                "deepstack_visual_indexes": [self.vision_depth // 2],
            }
            return Qwen3VLConfig(text_config=text, vision_config=vision3, **common)
        vision = {
            "depth": self.vision_depth,
            "hidden_size": self.vision_hidden,
            "intermediate_size": self.vision_intermediate,
            "num_heads": self.vision_heads,
            "out_hidden_size": self.text_hidden,
            # every other block attends over the whole image, the rest within 112-pixel windows (as Qwen2.5-VL)
            "fullatt_block_indexes": list(range(1, self.vision_depth, 2)),
            "window_size": 112,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "tokens_per_second": 2,
        }
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, **common)


def tokenizer_corpus(count: int = 1200, seed: int = 7) -> list[str]:
    """Texts the embedded tokenizer is trained on: world questions in every language and mix, and short traces.

    Every coordinate 0..100 is added with and without a leading space, so each is one token whatever the corpus.
    """
    from regionreasoner.core.frames import frame_from_spec
    from regionreasoner.core.prompts import get_prompt
    from regionreasoner.trainers.data.feeding import user_text
    from regionreasoner.trainers.data.synthetic import build_synthetic

    template = get_prompt(EMBEDDED_TEMPLATE)
    frame = frame_from_spec(EMBEDDED_FRAME)
    texts: list[str] = []
    for dialogue in build_synthetic(count, seed, frame, rounds=(1, 5), style="short", language="any"):
        for rnd in dialogue.rounds:
            texts.append(user_text(rnd.question, template))
            texts.append(rnd.trace or "")
    numbers = " ".join(f"{n} [{n}, {n},{n}]" for n in range(101))
    return texts + [numbers] * 50


def sinusoids(values: list[float], dim: int) -> Any:
    """``(len(values), dim)`` smooth features of coordinates in 0..100.

    Cos and sin at ``dim // 2`` geometric periods from 200 down to 4 units: nearby coordinates, nearby features.
    """
    import math

    import torch

    k = dim // 2
    periods = [200.0 * (4 / 200.0) ** (i / max(1, k - 1)) for i in range(k)]
    v = torch.tensor(values, dtype=torch.float32)[:, None]
    w = torch.tensor([2 * math.pi / q for q in periods])[None, :]
    return torch.cat([torch.cos(v * w), torch.sin(v * w)], dim=1)


def smooth_init(model: Any, tokenizer: Any, *, dim: int = 64) -> int:
    """Give the coordinate tokens ``0``..``100`` smooth embeddings; returns how many tokens were set.

    WHY: a random initialisation makes the 101 coordinate classes unrelated, so a near miss costs as much as a far
    one and the model must discover their order.  Writing sinusoidal features of the number into the first ``dim``
    dimensions of both the input embedding and the output (``lm_head``) rows, at the rows' own scale, makes a
    hidden state that prefers 40 also prefer 39 and 41 from the first step: coordinate prediction starts as a
    smooth, ordinal problem.  Other tokens are untouched.
    """
    import re

    import torch

    vocab = tokenizer.get_vocab()
    pairs = [(i, int(t.removeprefix("Ġ"))) for t, i in vocab.items() if re.fullmatch(r"Ġ?[0-9]{1,3}", t)]
    pairs = [(i, n) for i, n in pairs if n <= 100]
    ids = [i for i, _ in pairs]
    features = sinusoids([float(n) for _, n in pairs], dim)
    with torch.no_grad():
        for weight in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
            scale = weight[ids].norm(dim=1).mean() / features.norm(dim=1).mean()
            weight[ids, :dim] = features * scale * 2
            weight[ids, dim:] *= 0.3
    return len(ids)


def build_base(out: str | Path, spec: EmbeddedSpec | None = None, *, seed: int = 0) -> Path:
    """Write the untrained embedded checkpoint to ``out``; returns the folder.

    Config, random weights (``seed``), tokenizer, processor, and ``regionreasoner.json`` declaring
    :data:`EMBEDDED_FRAME`, :data:`EMBEDDED_TEMPLATE` and the spec.
    """
    import torch
    from transformers import AutoModelForImageTextToText

    from regionreasoner.policies.tiny import save_qwen_checkpoint, train_tokenizer

    spec = spec or EmbeddedSpec()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in ("vision-pretrain.json", "vision-metrics.jsonl"):  # new random weights: the tower is untrained again
        (folder / stale).unlink(missing_ok=True)
    tokenizer = train_tokenizer(tokenizer_corpus(), vocab_size=spec.vocab_size, split_digits=False)
    config = spec.config()
    config.text_config.vocab_size = len(tokenizer)
    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32).eval()
    if spec.smooth_init:
        smooth_init(model, tokenizer)
    merged = (2 * spec.patch) ** 2  # pixels of one merged patch
    save_qwen_checkpoint(
        folder,
        model,
        tokenizer,
        "qwen2.5-vl" if spec.family == "qwen2.5-vl" else "qwen3-vl",
        min_pixels=merged * spec.min_image_tokens,
        max_pixels=merged * spec.max_image_tokens,
    )
    declared = {"frame": EMBEDDED_FRAME, "prompt_template": EMBEDDED_TEMPLATE, "spec": asdict(spec), "seed": seed}
    (folder / "regionreasoner.json").write_text(json.dumps(declared, indent=2) + "\n")
    return folder
