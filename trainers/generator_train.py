"""The generator recipe: a caption tokenizer, MAGVIT-v2 reconstruction, NeoBabel masked-token training.

Both models are the library's own classes (:class:`~regionreasoner.tools.generate.magvit.Magvit`,
:class:`~regionreasoner.tools.generate.model.NeoBabel` on transformers' Gemma-2), trained from random weights on the
synthetic world's pictures (:mod:`regionreasoner.trainers.generator_data`).

* **tokenizer**: byte-level BPE on the training captions (six languages and mixes), Gemma's special ids, with
  NeoBabel's ten tokens added; ``OUTPUT_DIR/tokenizer``.
* **vq**: MAGVIT-v2 as an autoencoder through its lookup-free quantiser: ``z = encoder(x)``, ``q = sign(z)`` (the
  library's bit rule, ``z > 0``), the decoder reads ``z + (q - z).detach()`` (straight-through).  Loss = L1 + L2 of
  the reconstruction + ``vq_commit`` · ||z - sg(q)||² + ``vq_entropy`` · (per-position entropy − codebook entropy)
  of ``softmax(2 z·c / τ)`` over the ``2**bits`` codes (MAGVIT-v2's LFQ entropy penalty: confident codes, all of
  them used); with ``vq_entropy_cells: shapes`` the codebook part looks only at cells holding a shape, so the
  background keeps one code.  The library's quantiser only tokenizes, so these losses live here.
  ``OUTPUT_DIR/vq/final``.
* **lm**: NeoBabel on the frozen tokenizer's codes with MaskGIT's objective: per picture a share
  ``cos(π/2 · u)``, u ~ U(0, 1), of the codes is replaced by MASK and the cross-entropy of the code logits is taken
  at the masked positions; the t2i sequence and attention mask are the sampler's own
  (:func:`~regionreasoner.tools.generate.prompting.build_t2i_batch`, ``attention_mask``); ``cond_dropout`` of the
  captions are the empty prompt, which classifier-free guidance uses; an inpainting picture masks exactly its
  region; cells holding a shape weigh ``1 + lm_shape_weight`` (decaying to 1 at half the steps).
  ``OUTPUT_DIR/lm/final``.

Every stage resumes from its newest checkpoint, logs ``metrics.jsonl`` and plots ``metrics.png``; a stage whose
``final/`` exists is skipped.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.world.scene import BACKGROUND
from regionreasoner.trainers.generator_config import GeneratorRunConfig
from regionreasoner.trainers.generator_data import (
    caption_corpus,
    draw_picture,
    pictures_to_tensor,
    train_caption_tokenizer,
)
from regionreasoner.trainers.generator_stage import (
    StageLog,
    cosine_lr,
    latest_checkpoint,
    plot_stage,
    save_checkpoint,
)

if TYPE_CHECKING:
    import torch

    from regionreasoner.tools.generate.magvit import Magvit

__all__ = ["lfq_losses", "neobabel_config", "shape_pixels", "train_lm", "train_tokenizer", "train_vq"]

log = logging.getLogger(__name__)

_VQ_STREAM, _LM_STREAM = 1, 2


def train_tokenizer(cfg: GeneratorRunConfig) -> Path:
    """Train (or find) the caption tokenizer in ``OUTPUT_DIR/tokenizer``; checks every caption fits the text part."""
    from transformers import AutoTokenizer

    from regionreasoner.tools.generate.prompting import prepare_tokenizer

    folder = Path(cfg.output_dir) / "tokenizer"
    if (folder / "tokenizer.json").is_file():
        return folder
    captions = caption_corpus(cfg.tokenizer_captions, seed=cfg.seed, languages=cfg.language_list())
    tokenizer = train_caption_tokenizer(captions, vocab_size=cfg.tokenizer_vocab)
    prepare_tokenizer(tokenizer, 2**cfg.vq_z_channels)
    longest = max(len(ids) for ids in tokenizer(captions)["input_ids"])
    if longest + 1 > cfg.max_seq_length:
        raise ConfigError(
            f"captions reach {longest} tokens; max_seq_length={cfg.max_seq_length} cuts them",
            hint=f"set max_seq_length >= {longest + 1}",
        )
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    AutoTokenizer.from_pretrained(folder)  # loads back as the generator will load it
    log.info("tokenizer: %d tokens, longest caption %d", len(tokenizer), longest)
    return folder


def _pictures(cfg: GeneratorRunConfig, stream: int, step: int, count: int, free_share: float = 0.0) -> list[Any]:
    """``count`` pictures of step ``step`` of a stream; ``free_share`` of them placed freely (no lattice)."""
    rng = np.random.default_rng([cfg.seed, stream, step])
    languages = cfg.language_list()
    out = []
    for _ in range(count):
        free = not cfg.lattice or rng.random() < free_share  # a free picture draws no inpainting task
        out.append(
            draw_picture(
                rng,
                resolution=cfg.resolution,
                languages=languages,
                switch_share=cfg.switch_share,
                lattice=0 if free else cfg.stride,
                footprint=cfg.lattice_footprint,
            )
        )
    return out


def lfq_losses(
    z: torch.Tensor, embedding: torch.Tensor, temperature: float, cells: torch.Tensor | None = None
) -> tuple[torch.Tensor, ...]:
    """``(quantised, commitment, entropy)`` of latents ``z`` (B, bits, h, w) under the ±1 code table (2**bits, bits).

    ``quantised`` is the straight-through ±1 latent the decoder reads; ``entropy`` is the mean per-position entropy
    minus the entropy of the mean code distribution (both of ``softmax(2 z·c / temperature)``).  ``cells`` (B, h, w)
    bool restricts the second (codebook) term to those positions: the shapes' cells, so that the codebook spreads
    over what the shapes look like while the background keeps one code.
    """
    import torch

    q = torch.where(z > 0, 1.0, -1.0).to(z.dtype)
    quantised = z + (q - z).detach()
    commitment = ((z - q.detach()) ** 2).mean()
    flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    logp = torch.log_softmax(2 * flat @ embedding.T / temperature, dim=-1)
    p = logp.exp()
    per_sample = -(p * logp).sum(-1).mean()
    chosen = p if cells is None else p[cells.reshape(-1)]
    if chosen.shape[0] == 0:
        return quantised, commitment, per_sample
    mean_p = chosen.mean(0)
    codebook = -(mean_p * torch.log(mean_p.clamp(min=1e-12))).sum()
    return quantised, commitment, per_sample - codebook


def shape_pixels(pixels: torch.Tensor) -> torch.Tensor:
    """(B, 1, R, R) float: 1 where a picture (B, 3, R, R) in [-1, 1] differs from the world's background."""
    import torch

    background = torch.tensor(BACKGROUND, dtype=pixels.dtype).view(1, 3, 1, 1) / 127.5 - 1.0
    return (pixels - background).abs().amax(dim=1, keepdim=True).gt(0.02).to(pixels.dtype)


def _set_lr(opt: Any, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


def train_vq(cfg: GeneratorRunConfig) -> Path:
    """Train the MAGVIT-v2 tokenizer (resuming); returns ``OUTPUT_DIR/vq/final`` (a Magvit folder)."""
    import torch

    from regionreasoner.tools.generate.magvit import Magvit

    folder = Path(cfg.output_dir) / "vq"
    final = folder / "final"
    if (final / "config.json").is_file():
        return final
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = Magvit(cfg.magvit_config())
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.vq_lr, betas=(0.9, 0.99), weight_decay=0.0)
    start = _resume(folder, model, opt)
    metrics = StageLog(folder / "metrics.jsonl", start)
    model.train()
    tick = time.perf_counter()
    for step in range(start, cfg.vq_steps):
        _set_lr(opt, cosine_lr(step, cfg.vq_steps, cfg.vq_lr, cfg.lm_warmup))
        x = pictures_to_tensor(_pictures(cfg, _VQ_STREAM, step, cfg.vq_batch, cfg.vq_free_share), cfg.resolution)
        z = model.encode(x)
        shapes = shape_pixels(x)
        cells = None
        if cfg.vq_entropy_cells == "shapes":  # cells holding a shape pixel, (B, h, w)
            cells = torch.nn.functional.max_pool2d(shapes, cfg.stride)[:, 0].bool()
        quantised, commitment, entropy = lfq_losses(z, model.quantize.embedding, cfg.vq_entropy_temperature, cells)
        recon = model.decoder(quantised)
        # The shapes cover a tenth of the pixels: weigh them up, or the background wins the loss for long.
        weight = 1.0 + cfg.vq_shape_weight * shapes
        l1 = ((recon - x).abs() * weight).mean() / weight.mean()
        l2 = (((recon - x) ** 2) * weight).mean() / weight.mean()
        loss = l1 + l2 + cfg.vq_commit * commitment + cfg.vq_entropy * entropy
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        done = step + 1
        if done % cfg.log_steps == 0 or done == cfg.vq_steps:
            with torch.no_grad():
                codes = model.quantize.codes(z)
                # pixels off by more than the exact scorer's palette radius (RGB distance 60 of 255 = 0.47 here)
                far = ((recon.clamp(-1, 1) - x).norm(dim=1) > 0.47).float().mean()
            metrics.write(
                {
                    "step": done,
                    "loss": float(loss.detach()),
                    "l1": float(l1.detach()),
                    "l2": float(l2.detach()),
                    "commitment": float(commitment.detach()),
                    "entropy": float(entropy.detach()),
                    "codes_used": int(codes.unique().numel()),
                    "far_pixels": float(far),
                    "lr": opt.param_groups[0]["lr"],
                    "seconds": round(time.perf_counter() - tick, 1),
                }
            )
        if cfg.save_steps and done % cfg.save_steps == 0 and done < cfg.vq_steps:
            save_checkpoint(folder, done, {"model": model.state_dict(), "opt": opt.state_dict(), "step": done})
    save_checkpoint(folder, cfg.vq_steps, {"model": model.state_dict(), "opt": opt.state_dict(), "step": cfg.vq_steps})
    model.eval().save_pretrained(final)
    plot_stage(folder / "metrics.jsonl", folder / "metrics.png", "MAGVIT-v2 reconstruction")
    return final


def _resume(folder: Path, model: Any, opt: Any) -> int:
    import torch

    found = latest_checkpoint(folder)
    if found is None:
        return 0
    step, path = found
    state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    log.info("resuming %s from step %d", folder, step)
    return int(state["step"])


def neobabel_config(cfg: GeneratorRunConfig, text_vocab_size: int) -> Any:
    """The :class:`~regionreasoner.tools.generate.model.NeoBabelConfig` of this run (inline Gemma-2 config)."""
    from regionreasoner.tools.generate.model import GEMMA2_2B_IT, NeoBabelConfig
    from regionreasoner.tools.generate.prompting import VocabLayout

    head_dim = cfg.lm_hidden // cfg.lm_heads
    codebook = 2**cfg.vq_z_channels
    llm = {
        **GEMMA2_2B_IT,
        "vocab_size": text_vocab_size,
        "hidden_size": cfg.lm_hidden,
        "intermediate_size": cfg.lm_intermediate,
        "num_hidden_layers": cfg.lm_layers,
        "num_attention_heads": cfg.lm_heads,
        "num_key_value_heads": max(1, cfg.lm_heads // 2),
        "head_dim": head_dim,
        "query_pre_attn_scalar": head_dim,
        "max_position_embeddings": 2 * (cfg.max_seq_length + cfg.num_vq_tokens + 3),
    }
    vocab = VocabLayout(text_vocab_size=text_vocab_size, codebook_size=codebook).vocab_size
    return NeoBabelConfig(
        vocab_size=vocab,
        llm_vocab_size=text_vocab_size,
        codebook_size=codebook,
        num_vq_tokens=cfg.num_vq_tokens,
        llm_config=llm,
    )


def _regions(pictures: list[Any], cfg: GeneratorRunConfig) -> np.ndarray:
    """(B, N) bool: the cells an inpainting picture regenerates; all False for the others."""
    grid = cfg.resolution // cfg.stride
    out = np.zeros((len(pictures), grid, grid), dtype=bool)
    for i, picture in enumerate(pictures):
        if picture.region is not None:
            x0, y0, x1, y1 = picture.region
            out[i, y0:y1, x0:x1] = True  # codes are row-major: row = y
    return out.reshape(len(pictures), -1)


def _masked_batch(
    codes: torch.Tensor, rng: np.random.Generator, mask_id: int, offset: int, regions: np.ndarray | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """MaskGIT corruption: ``(tokens, masked)``; a share cos(π/2·u) of each row's codes (at least one) is MASK.

    A row with cells in ``regions`` (B, N) bool is an inpainting sample instead: exactly its region is MASK.
    """
    import torch

    b, n = codes.shape
    shares = np.cos(np.pi / 2 * rng.uniform(0, 1, size=b))
    counts = torch.from_numpy(np.maximum(1, np.ceil(shares * n)).astype(np.int64))
    ranks = torch.from_numpy(np.argsort(rng.uniform(size=(b, n)), axis=1).argsort(axis=1))
    masked = ranks < counts[:, None]
    if regions is not None and regions.any():
        inpaint = torch.from_numpy(regions.any(axis=1))
        masked = torch.where(inpaint[:, None], torch.from_numpy(regions), masked)
    return torch.where(masked, mask_id, codes + offset), masked


def train_lm(cfg: GeneratorRunConfig, vq_folder: Path, tokenizer_folder: Path) -> Path:
    """Train NeoBabel on the frozen tokenizer's codes (resuming); returns ``OUTPUT_DIR/lm/final``."""
    import torch
    from transformers import AutoTokenizer

    from regionreasoner.tools.generate.magvit import Magvit
    from regionreasoner.tools.generate.model import NeoBabel
    from regionreasoner.tools.generate.prompting import attention_mask, build_t2i_batch, prepare_tokenizer

    folder = Path(cfg.output_dir) / "lm"
    final = folder / "final"
    if (final / "config.json").is_file():
        return final
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder, padding_side="left")
    vq: Magvit = Magvit.from_pretrained(vq_folder)
    layout = prepare_tokenizer(tokenizer, vq.codebook_size)
    model = NeoBabel(neobabel_config(cfg, layout.text_vocab_size))
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "norm" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "norm" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.lm_weight_decay}, {"params": rest, "weight_decay": 0.0}],
        lr=cfg.lm_lr,
        betas=(0.9, 0.98),
    )
    start = _resume(folder, model, opt)
    metrics = StageLog(folder / "metrics.jsonl", start)
    model.train()
    n = cfg.num_vq_tokens
    tick = time.perf_counter()
    for step in range(start, cfg.lm_steps):
        _set_lr(opt, cosine_lr(step, cfg.lm_steps, cfg.lm_lr, cfg.lm_warmup))
        pictures = _pictures(cfg, _LM_STREAM, step, cfg.lm_batch)
        rng = np.random.default_rng([cfg.seed, _LM_STREAM + 10, step])
        captions = ["" if rng.random() < cfg.cond_dropout else p.caption for p in pictures]
        with torch.no_grad():
            pixels = pictures_to_tensor(pictures, cfg.resolution)
            codes = vq.get_code(pixels)
            # cells holding a shape pixel weigh 1 + lm_shape_weight: the background is most cells and easy
            shape_cells = torch.nn.functional.max_pool2d(shape_pixels(pixels), cfg.stride).reshape(len(pictures), -1)
            # decays to 0 at half the steps: the extra weight speeds up learning the shapes, and would leave the
            # model over-predicting them (weighted cross-entropy's optimum scales their probability by 1 + w)
            extra = cfg.lm_shape_weight * max(0.0, 1.0 - step / (0.5 * cfg.lm_steps))
            weight = 1.0 + extra * shape_cells
        tokens, masked = _masked_batch(codes, rng, layout.mask_id, layout.image_offset, _regions(pictures, cfg))
        ids = build_t2i_batch(tokenizer(captions)["input_ids"], tokens, layout, cfg.max_seq_length)
        mask = attention_mask(ids, layout.pad_id, layout.soi_id, layout.eoi_id, dtype=model.dtype)
        logits = model.image_logits(ids, mask, n)
        per_code = torch.nn.functional.cross_entropy(logits[masked], codes[masked], reduction="none")
        loss = (per_code * weight[masked]).sum() / weight[masked].sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        done = step + 1
        if done % cfg.log_steps == 0 or done == cfg.lm_steps:
            with torch.no_grad():
                accuracy = (logits[masked].argmax(-1) == codes[masked]).float().mean()
            metrics.write(
                {
                    "step": done,
                    "loss": float(loss.detach()),
                    "masked_accuracy": float(accuracy),
                    "perplexity": math.exp(min(20.0, float(loss.detach()))),
                    "lr": opt.param_groups[0]["lr"],
                    "seconds": round(time.perf_counter() - tick, 1),
                }
            )
        if cfg.save_steps and done % cfg.save_steps == 0 and done < cfg.lm_steps:
            save_checkpoint(folder, done, {"model": model.state_dict(), "opt": opt.state_dict(), "step": done})
    save_checkpoint(folder, cfg.lm_steps, {"model": model.state_dict(), "opt": opt.state_dict(), "step": cfg.lm_steps})
    model.eval().save_pretrained(final)
    tokenizer.save_pretrained(final)
    plot_stage(folder / "metrics.jsonl", folder / "metrics.png", "NeoBabel masked-token training")
    return final
