"""A tiny random Grounding DINO checkpoint built offline, for the tests and the demo.

The architecture is the real one (Swin backbone, BERT text encoder, deformable encoder/decoder, the PIL image
processor and a BERT WordPiece tokenizer), only tiny: about 1.5 M parameters, 30 queries, ``max_text_len`` 64,
images resized to a shortest edge of 320 and a longest edge of 480.  The folder holds the files a downloaded
``IDEA-Research/grounding-dino-tiny`` holds (``config.json``, ``model.safetensors``, ``preprocessor_config.json``,
``vocab.txt`` and the tokenizer configs), so it loads through the same code path.  The weights are random (seeded),
so its boxes are noise: it exists to exercise every code path without a download.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

__all__ = ["TINY_DINO_MARKER", "TINY_VOCAB_SIZE", "build_tiny_grounding_dino", "tiny_vocab"]

TINY_VOCAB_SIZE = 1100
"""Vocabulary size of the tiny tokenizer: just above 1029, the largest id Grounding DINO hard-codes."""

TINY_DINO_MARKER = "regionreasoner_tiny.json"
"""File the folder carries: its weights are untrained (the name ``policies.tiny`` uses for its checkpoints)."""

# WHY: modeling_grounding_dino.SPECIAL_TOKENS = [101, 102, 1012, 1029] hard-codes bert-base-uncased's ids of
# [CLS], [SEP], "." and "?": they mark the boundaries between phrases, so a custom vocabulary must put those
# tokens at exactly those ids or every phrase bleeds into the next.
_FIXED_IDS = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]", 1012: ".", 1029: "?"}

_WORDS = (  # one string, split where the vocabulary is built
    "a an the of to in on at by with and or is are this that it its my your his her their one two three four five "
    "red blue green yellow white black orange purple pink brown grey gray dark light small large big little tall "
    "short left right top bottom middle center front back above below under over inside outside near next behind "
    "person people man woman boy girl child player car bus truck bike bicycle motorcycle train boat plane tree "
    "ball kite sun sky grass dog cat horse cow sheep bird chair table cup bottle bowl plate laptop phone book "
    "clock vase umbrella bag shirt hat shoe window door wall road street sign light building house water field"
)


def tiny_vocab() -> list[str]:
    """The tiny WordPiece vocabulary, indexed by token id (length :data:`TINY_VOCAB_SIZE`).

    Special tokens sit at bert-base-uncased's ids; letters, digits and punctuation (plain and ``##`` continuation
    pieces) guarantee that any lowercase ASCII phrase tokenizes without ``[UNK]``; common words fill more slots.
    """
    vocab = [f"[unused{i}]" for i in range(TINY_VOCAB_SIZE)]
    for i, token in _FIXED_IDS.items():
        vocab[i] = token
    pieces = [*string.ascii_lowercase, *string.digits]
    # WHY dict.fromkeys: a token at two ids would collapse in the tokenizer's dict ("a" is a letter and a word).
    fill = dict.fromkeys(
        [*pieces, *(f"##{p}" for p in pieces), *(p for p in string.punctuation if p not in ".?"), *_WORDS.split()]
    )
    free = (i for i in range(104, TINY_VOCAB_SIZE) if i not in _FIXED_IDS)
    for i, token in zip(free, fill, strict=False):
        vocab[i] = token
    return vocab


def _model_config(max_text_len: int) -> Any:
    from transformers import BertConfig, GroundingDinoConfig, SwinConfig

    return GroundingDinoConfig(
        backbone_config=SwinConfig(
            image_size=224,
            embed_dim=24,
            depths=[1, 1, 1, 1],
            num_heads=[1, 1, 2, 2],
            window_size=7,
            out_indices=[2, 3, 4],
        ),
        text_config=BertConfig(
            vocab_size=TINY_VOCAB_SIZE, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
        ),
        d_model=32,
        encoder_layers=1,
        # WHY: decoder_layers=1 fails in transformers 5 (the tied bbox_embed weights need at least two layers).
        decoder_layers=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        num_queries=30,
        max_text_len=max_text_len,
        num_feature_levels=4,
        encoder_n_points=2,
        decoder_n_points=2,
        disable_custom_kernels=True,
    )


def build_tiny_grounding_dino(path: str | Path, *, seed: int = 0, max_text_len: int = 64) -> Path:
    """Write a tiny random ``GroundingDinoForObjectDetection`` checkpoint folder to ``path``; returns the folder.

    ``seed`` seeds the random weights (the same seed gives the same weights).  ``max_text_len`` is the number of
    text tokens the model attends to (the real checkpoints use 256).  The folder loads offline with
    :class:`~regionreasoner.tools.detect.GroundingDinoDetector` exactly as a downloaded real checkpoint does; it
    takes about a second to build.
    """
    import torch
    from transformers import BertTokenizer, GroundingDinoForObjectDetection
    from transformers.models.grounding_dino.image_processing_pil_grounding_dino import GroundingDinoImageProcessorPil

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = GroundingDinoForObjectDetection(_model_config(max_text_len)).eval()
    model.save_pretrained(out, safe_serialization=True)
    # WHY: in transformers 5 BertTokenizer(vocab_file=...) is silently ignored (a 5-token vocabulary that maps every
    # word to [UNK]); the vocabulary must be passed as a dict.
    vocab = tiny_vocab()
    tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    tokenizer.save_pretrained(out)
    (out / "vocab.txt").write_text("".join(f"{w}\n" for w in vocab))  # the file bert-base-uncased ships too
    GroundingDinoImageProcessorPil(size={"shortest_edge": 320, "longest_edge": 480}).save_pretrained(out)
    # WHY: a downloaded grounding-dino-tiny names the torchvision class and the processor; writing the same names
    # makes the tests take the path a real checkpoint takes (the detector must still pick the PIL class).
    config_file = out / "preprocessor_config.json"
    settings = json.loads(config_file.read_text())
    settings.update(image_processor_type="GroundingDinoImageProcessor", processor_class="GroundingDinoProcessor")
    config_file.write_text(json.dumps(settings, indent=2))
    (out / TINY_DINO_MARKER).write_text(
        json.dumps({"family": "grounding-dino", "seed": seed, "untrained": True}, indent=2)
    )
    return out
