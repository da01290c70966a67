"""The layers of the MAGVIT-v2 image tokenizer: a VQGAN-style encoder and decoder and the lookup-free quantiser.

Module and parameter names follow Show-o's ``models/modeling_magvitv2.py`` and ``models/common_modules.py``
(showlab/Show-o@45a5a2de), so that a released ``showlab/magvitv2`` state dict loads strictly into
:class:`~regionreasoner.tools.generate.magvit.Magvit`: ``encoder.down.<level>.block.<i>.norm1.weight``,
``decoder.up.<level>.upsample.conv.weight``, ``quantize.embedding`` and so on.  Every block is a plain
``torch.nn`` module; nothing here knows about checkpoints or files.

Shapes: feature maps are ``(B, C, H, W)``; the encoder divides H and W by ``2 ** (levels - 1)``, the decoder
multiplies them back.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "AttnBlock",
    "Downsample",
    "LookupFreeQuantizer",
    "MagvitDecoder",
    "MagvitEncoder",
    "ResnetBlock",
    "Upsample",
]

NORM_EPS = 1e-6
"""GroupNorm epsilon of every norm in the released tokenizer (taming-transformers' ``Normalize``)."""


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=groups, num_channels=channels, eps=NORM_EPS, affine=True)


class ResnetBlock(nn.Module):
    """norm → SiLU → 3x3 conv, twice, plus a skip (a 1x1 ``nin_shortcut`` when the width changes).

    ``(B, in_channels, H, W) -> (B, out_channels, H, W)``.  The released model has no timestep embedding and
    dropout 0, so neither is built (neither has parameters).
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int) -> None:
        super().__init__()
        self.norm1 = _norm(in_channels, groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm2 = _norm(out_channels, groups)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.nin_shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The residual block applied to ``x`` of shape ``(B, in_channels, H, W)``."""
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        skip = x if self.nin_shortcut is None else self.nin_shortcut(x)
        return skip + h


class AttnBlock(nn.Module):
    """Single-head self-attention over all H*W positions, with 1x1-conv q/k/v/proj_out and a residual.

    ``(B, C, H, W) -> (B, C, H, W)``; scores are scaled by ``C ** -0.5`` (the head is all C channels), which is
    what ``scaled_dot_product_attention`` does by default.
    """

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.norm = _norm(channels, groups)
        self.q = nn.Conv2d(channels, channels, kernel_size=1)
        self.k = nn.Conv2d(channels, channels, kernel_size=1)
        self.v = nn.Conv2d(channels, channels, kernel_size=1)
        self.proj_out = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attention applied to ``x`` of shape ``(B, C, H, W)``."""
        b, c, h, w = x.shape
        normed = self.norm(x)
        # (B, C, H, W) -> (B, 1, H*W, C): one head whose width is every channel.
        q, k, v = (conv(normed).flatten(2).transpose(1, 2).unsqueeze(1) for conv in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)
        out = out.squeeze(1).transpose(1, 2).reshape(b, c, h, w)
        return x + self.proj_out(out)


class Downsample(nn.Module):
    """Halve H and W with a stride-2 3x3 conv after padding one zero row/column at the bottom/right.

    ``(B, C, H, W) -> (B, C, H/2, W/2)`` for even H, W; the asymmetric pad is taming-transformers' (torch convs
    only pad symmetrically).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` downsampled by 2."""
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))


class Upsample(nn.Module):
    """Double H and W by nearest-neighbour repetition, then a 3x3 conv: ``(B, C, H, W) -> (B, C, 2H, 2W)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` upsampled by 2."""
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    """One resolution level: ``block`` (res blocks) and ``attn`` (empty unless the level's resolution is listed).

    The owner sets a ``downsample`` (encoder) or ``upsample`` (decoder) on every level but the last one.
    """

    downsample: Downsample
    upsample: Upsample

    def __init__(self, blocks: list[ResnetBlock], attns: list[AttnBlock]) -> None:
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.attn = nn.ModuleList(attns)

    def run_blocks(self, h: torch.Tensor) -> torch.Tensor:
        """Each res block, each followed by its attention block when the level has them."""
        for i, block in enumerate(self.block):
            h = block(h)
            if len(self.attn) > 0:
                h = self.attn[i](h)
        return h


class _Middle(nn.Module):
    """res block → attention → res block at the lowest resolution (``mid.block_1``, ``mid.attn_1``, ``mid.block_2``)."""

    def __init__(self, channels: int, groups: int) -> None:
        super().__init__()
        self.block_1 = ResnetBlock(channels, channels, groups)
        self.attn_1 = AttnBlock(channels, groups)
        self.block_2 = ResnetBlock(channels, channels, groups)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """The middle stack applied to ``h`` of shape ``(B, C, h, w)``."""
        return self.block_2(self.attn_1(self.block_1(h)))


def _level(in_channels: int, out_channels: int, n_blocks: int, groups: int, with_attn: bool) -> tuple[_Level, int]:
    blocks = []
    channels = in_channels
    for _ in range(n_blocks):
        blocks.append(ResnetBlock(channels, out_channels, groups))
        channels = out_channels
    attns = [AttnBlock(out_channels, groups) for _ in range(n_blocks)] if with_attn else []
    return _Level(blocks, attns), channels


class MagvitEncoder(nn.Module):
    """Pixels ``(B, in_ch, H, W)`` → continuous latent ``(B, z_channels, H/s, W/s)``, ``s = 2 ** (len(ch_mult)-1)``.

    conv_in → per level: res blocks (+ attention where ``resolution / 2**level`` is in ``attn_resolutions``, which
    the released config never hits) and a downsample except on the last level → mid → norm, SiLU, conv_out →
    1x1 ``quant_conv`` (Show-o keeps the quant conv inside the encoder, hence ``encoder.quant_conv``).
    """

    def __init__(
        self,
        *,
        ch: int,
        ch_mult: Sequence[int],
        num_res_blocks: Sequence[int],
        z_channels: int,
        in_ch: int,
        resolution: int,
        attn_resolutions: Sequence[int],
        groups: int,
    ) -> None:
        super().__init__()
        self.conv_in = nn.Conv2d(in_ch, ch, kernel_size=3, padding=1)
        self.down = nn.ModuleList()
        channels, res = ch, resolution
        for level, (mult, n_blocks) in enumerate(zip(ch_mult, num_res_blocks, strict=True)):
            stage, channels = _level(channels, ch * mult, n_blocks, groups, res in attn_resolutions)
            if level != len(ch_mult) - 1:
                stage.downsample = Downsample(channels)
                res //= 2
            self.down.append(stage)
        self.mid = _Middle(channels, groups)
        self.norm_out = _norm(channels, groups)
        self.conv_out = nn.Conv2d(channels, z_channels, kernel_size=3, padding=1)
        self.quant_conv = nn.Conv2d(z_channels, z_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The latent of ``x``: ``(B, in_ch, H, W) -> (B, z_channels, H/s, W/s)``."""
        h = self.conv_in(x)
        last = len(self.down) - 1
        for level, stage in enumerate(self.down):
            h = stage.run_blocks(h)
            if level != last:
                h = stage.downsample(h)
        h = self.mid(h)
        h = self.conv_out(F.silu(self.norm_out(h)))
        return self.quant_conv(h)


class MagvitDecoder(nn.Module):
    """Quantised latent ``(B, z_channels, h, w)`` → pixels ``(B, out_ch, h*s, w*s)``, unbounded (≈ [-1, 1]).

    1x1 ``post_quant_conv`` → conv_in → mid → levels from the lowest resolution up (``up[level]`` is indexed by
    level, so ``up.0`` is the full-resolution one), each with res blocks and an upsample except level 0 →
    norm, SiLU, conv_out.  No tanh or clamp: the released model leaves the range to the post-processing.
    """

    def __init__(
        self,
        *,
        ch: int,
        ch_mult: Sequence[int],
        num_res_blocks: Sequence[int],
        z_channels: int,
        out_ch: int,
        resolution: int,
        attn_resolutions: Sequence[int],
        groups: int,
    ) -> None:
        super().__init__()
        levels = len(ch_mult)
        channels = ch * ch_mult[-1]
        res = resolution // 2 ** (levels - 1)
        self.post_quant_conv = nn.Conv2d(z_channels, z_channels, kernel_size=1)
        self.conv_in = nn.Conv2d(z_channels, channels, kernel_size=3, padding=1)
        self.mid = _Middle(channels, groups)
        stages: list[_Level] = []
        for level in reversed(range(levels)):
            stage, channels = _level(
                channels, ch * ch_mult[level], num_res_blocks[level], groups, res in attn_resolutions
            )
            if level != 0:
                stage.upsample = Upsample(channels)
                res *= 2
            stages.insert(0, stage)
        self.up = nn.ModuleList(stages)
        self.norm_out = _norm(channels, groups)
        self.conv_out = nn.Conv2d(channels, out_ch, kernel_size=3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Pixels from ``z``: ``(B, z_channels, h, w) -> (B, out_ch, h*s, w*s)``."""
        h = self.mid(self.conv_in(self.post_quant_conv(z)))
        for level in reversed(range(len(self.up))):
            stage = self.up[level]
            h = stage.run_blocks(h)
            if level != 0:
                h = stage.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


def lfq_tables(bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The two constant tables of a ``bits``-bit lookup-free quantiser, on the current default device.

    ``embedding``: float ``(2**bits, bits)``, row k = the bits of k, most significant first, mapped 0 → -1, 1 → +1.
    ``power_vals``: int64 ``(bits,)`` = ``2 ** (bits-1 ... 0)``, so ``index = sum(power_vals * (z > 0))``.
    """
    power_vals = 2 ** torch.arange(bits - 1, -1, -1, dtype=torch.long)
    codes = torch.arange(2**bits, dtype=torch.long)
    embedding = ((codes.unsqueeze(1) // power_vals) % 2).to(torch.float32) * 2 - 1
    return embedding, power_vals


class LookupFreeQuantizer(nn.Module):
    """Lookup-free quantisation (MAGVIT-v2): each latent channel is one bit, ``z_c > 0``.

    A latent vector ``z`` of ``bits`` channels gets the code ``sum_c 2**(bits-1-c) * [z_c > 0]`` (channel 0 is the
    most significant bit; exactly 0 counts as a 0 bit) and decodes to its bits mapped to ±1.  There are no learnt
    parameters: the buffers ``embedding`` and ``power_vals`` (:func:`lfq_tables`) are kept, persistent, because
    the released state dict carries them under ``quantize.*``.  The training losses (commitment, entropy) are not
    implemented: this module only tokenizes.
    """

    embedding: torch.Tensor
    power_vals: torch.Tensor

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.bits = bits
        embedding, power_vals = lfq_tables(bits)
        self.register_buffer("embedding", embedding)
        self.register_buffer("power_vals", power_vals)

    @property
    def codebook_size(self) -> int:
        """``2 ** bits``."""
        return int(2**self.bits)

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        """Codes of a latent ``(B, bits, h, w)`` as int64 ``(B, h*w)``, raster (row-major) order."""
        on = (z > 0).to(torch.long)
        index = (on * self.power_vals.view(1, -1, 1, 1)).sum(dim=1)  # integer sum: exact for any bit count
        return index.flatten(1)

    def latent(self, codes: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """The ±1 latent ``(B, bits, height, width)`` of int64 codes ``(B, height*width)`` in raster order."""
        z = self.embedding[codes]  # (B, N, bits)
        return z.view(codes.shape[0], height, width, self.bits).permute(0, 3, 1, 2).contiguous()
