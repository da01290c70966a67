"""Fixtures of the generation-suite tests: tiny random transformers checkpoints (built offline, once a session)."""

from __future__ import annotations

from pathlib import Path

import pytest


def _tokenizer(out: Path) -> int:
    from transformers import BertTokenizer

    from regionreasoner.tools.detect_tiny import tiny_vocab

    vocab = tiny_vocab()
    BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True).save_pretrained(out)
    return len(vocab)


_TINY_TEXT = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
_TINY_VISION = {**_TINY_TEXT, "image_size": 32, "patch_size": 8}


def build_owlvit(out: Path) -> Path:
    """A tiny random OWL-ViT (64x64 input), loaded like google/owlvit-base-patch32."""
    import torch
    from transformers import OwlViTConfig, OwlViTForObjectDetection
    from transformers.models.owlvit.image_processing_pil_owlvit import OwlViTImageProcessorPil

    n = _tokenizer(out)
    text = {**_TINY_TEXT, "vocab_size": n, "max_position_embeddings": 16, "bos_token_id": 101, "eos_token_id": 102}
    config = OwlViTConfig(
        text_config=text, vision_config={**_TINY_VISION, "image_size": 64, "patch_size": 16}, projection_dim=32
    )
    torch.manual_seed(0)
    OwlViTForObjectDetection(config).save_pretrained(out)
    OwlViTImageProcessorPil(size={"height": 64, "width": 64}, crop_size={"height": 64, "width": 64}).save_pretrained(
        out
    )
    return out


def build_clip(out: Path) -> Path:
    """A tiny random CLIP (32x32 input), loaded like openai/clip-vit-large-patch14."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    n = _tokenizer(out)
    text = {**_TINY_TEXT, "vocab_size": n, "max_position_embeddings": 32, "bos_token_id": 101, "eos_token_id": 102}
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config=text, vision_config=_TINY_VISION, projection_dim=16)).save_pretrained(out)
    CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(out)
    return out


def build_dinov2(out: Path) -> Path:
    """A tiny random DINOv2 (32x32 input), loaded like facebook/dinov2-base."""
    import torch
    from transformers import BitImageProcessorPil, Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    Dinov2Model(Dinov2Config(**_TINY_VISION)).save_pretrained(out)
    BitImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(out)
    return out


def build_blip_vqa(out: Path) -> Path:
    """A tiny random BLIP VQA (32x32 input), loaded like Salesforce/blip-vqa-base."""
    import torch
    from transformers import BlipConfig, BlipForQuestionAnswering, BlipImageProcessorPil

    n = _tokenizer(out)
    text = {
        **_TINY_TEXT,
        "vocab_size": n,
        "encoder_hidden_size": 32,
        "bos_token_id": 1,
        "sep_token_id": 102,
        "pad_token_id": 0,
        "max_position_embeddings": 64,
    }
    torch.manual_seed(0)
    BlipForQuestionAnswering(
        BlipConfig(text_config=text, vision_config=_TINY_VISION, projection_dim=16)
    ).save_pretrained(out)
    BlipImageProcessorPil(size={"height": 32, "width": 32}).save_pretrained(out)
    return out


def build_mask2former(out: Path) -> Path:
    """A tiny random Mask2Former (Swin backbone, three world classes), loaded like a COCO instance checkpoint."""
    import torch
    from transformers import Mask2FormerConfig, Mask2FormerForUniversalSegmentation, SwinConfig
    from transformers.models.mask2former.image_processing_pil_mask2former import Mask2FormerImageProcessorPil

    backbone = SwinConfig(
        image_size=64,
        embed_dim=16,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 2, 2],
        window_size=4,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    labels = {0: "circle", 1: "square", 2: "star"}
    config = Mask2FormerConfig(
        backbone_config=backbone,
        feature_size=32,
        mask_feature_size=32,
        hidden_dim=32,
        encoder_feedforward_dim=64,
        dim_feedforward=64,
        encoder_layers=1,
        decoder_layers=2,
        num_attention_heads=2,
        num_queries=6,
        num_labels=3,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
        use_pretrained_backbone=False,
    )
    torch.manual_seed(0)
    Mask2FormerForUniversalSegmentation(config).save_pretrained(out)
    Mask2FormerImageProcessorPil(size={"shortest_edge": 64, "longest_edge": 96}).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_backends(model_cache: Path) -> dict[str, Path]:
    """Folders of tiny random OWL-ViT, CLIP, DINOv2, BLIP VQA and Mask2Former checkpoints, by name."""
    root = model_cache / "generation-eval"
    builders = {
        "owlvit": build_owlvit,
        "clip": build_clip,
        "dinov2": build_dinov2,
        "blip": build_blip_vqa,
        "mask2former": build_mask2former,
    }
    return {name: build(root / name) for name, build in builders.items()}
