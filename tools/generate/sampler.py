"""NeoBabel's MaskGIT sampler with classifier-free guidance (``NeoBabel.t2i_generate``, neobabel.md §2.1).

Every step runs the transformer over the whole sequence (no KV cache: image rows attend to the image, which
changes), samples a code at every image position, keeps the known ones, and re-masks the ``mask_len`` least
confident new ones, ``mask_len = floor(N · schedule((step+1)/T))``.  With the same seed, the same logits and the
same device this makes the same random draws as the release (one multinomial, one uniform tensor per step).
Importing this module loads no torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from regionreasoner.core.errors import ConfigError, InputError
from regionreasoner.tools.generate.prompting import VocabLayout, attention_mask, build_t2i_batch

if TYPE_CHECKING:
    import torch

__all__ = [
    "SCHEDULES",
    "ImageLogitsModel",
    "SamplerSettings",
    "SamplerStep",
    "generate_codes",
    "mask_ratio",
    "sample_codes",
]

SCHEDULES = ("cosine", "linear", "pow<p>", "sigmoid")
"""Mask schedules (``get_mask_chedule``): ``pow2``, ``pow0.5``, ... for ``pow<p>``."""


def mask_ratio(schedule: str, ratio: float) -> float:
    """Share of the N codes still masked after progress ``ratio`` in (0, 1], computed in float32 like the release.

    ``cosine`` cos(πr/2) (default), ``linear`` 1-r, ``pow<p>`` 1-r^p, ``sigmoid`` (start -3, end 3, tau 1); the
    last three are clipped to [1e-6, 1].

    >>> mask_ratio("cosine", 0.5), mask_ratio("linear", 0.25), mask_ratio("pow2", 0.5)
    (0.7071067..., 0.75, 0.75)
    """
    import torch

    t = torch.tensor(ratio, dtype=torch.float32)
    if schedule == "cosine":
        return float(torch.cos(t * math.pi * 0.5))
    if schedule == "linear":
        return float((1 - t).clamp(1e-6, 1.0))
    if schedule.startswith("pow"):
        try:
            exponent = float(schedule.removeprefix("pow"))
        except ValueError:
            exponent = -1.0
        if not exponent > 0:
            raise ConfigError(f"schedule={schedule!r}", hint="write pow<p> with a positive p, e.g. pow2 or pow0.5")
        return float((1.0 - t**exponent).clamp(1e-6, 1.0))
    if schedule == "sigmoid":
        start, end = torch.sigmoid(torch.tensor(-3.0)), torch.sigmoid(torch.tensor(3.0))
        return float(((end - torch.sigmoid(t * 6.0 - 3.0)) / (end - start)).clip(1e-6, 1.0))
    raise ConfigError(f"schedule={schedule!r}", hint=f"use one of {list(SCHEDULES)}")


@dataclass(kw_only=True)
class SamplerSettings:
    """How :func:`sample_codes` samples (the release's ``t2i_generate`` arguments)."""

    timesteps: int = 50
    """T, forward passes per image (released: 50 at 512², 12 at 256², 25 for inpainting)."""
    guidance_scale: float = 5.0
    """w in ``(1+w)·cond − w·uncond`` (MUSE style; w=5 is 6 in the ``uncond + s(cond−uncond)`` convention). 0: no
    unconditional pass at all."""
    temperature: float = 1.0
    """Gumbel-noise scale on the confidence (not on the sampling); multiplied by ``1 - (step+1)/T`` every step."""
    schedule: str = "cosine"
    """Mask schedule, one of :data:`SCHEDULES`."""
    code_temperature: float = 1.0
    """Temperature of the code draw itself: 1 = the release (plain multinomial), below 1 sharper, 0 = argmax.
    A small model leaves a little probability on shape codes in every background cell; at 1 some of those draws
    land and become stray blobs, which GenEval counts as objects."""
    batched_cfg: bool = True
    """Run cond and uncond as ONE batch of 2B per step; False runs two forwards (same result, for benchmarks)."""
    progress: bool = False
    """Show a tqdm bar over the steps."""

    def __post_init__(self) -> None:
        if isinstance(self.timesteps, bool) or not isinstance(self.timesteps, int) or self.timesteps < 1:
            raise ConfigError(f"timesteps={self.timesteps!r}: set it to an integer >= 1 (50 at 512², 12 at 256²)")
        if not math.isfinite(self.guidance_scale) or self.guidance_scale < 0:
            raise ConfigError(f"guidance_scale={self.guidance_scale!r}: set it >= 0 (5 is the released default)")
        if not math.isfinite(self.temperature) or self.temperature < 0:
            raise ConfigError(f"temperature={self.temperature!r}: set it >= 0 (1.0 is the released default)")
        if not math.isfinite(self.code_temperature) or self.code_temperature < 0:
            raise ConfigError(f"code_temperature={self.code_temperature!r}: set it >= 0 (1.0 is the release's draw)")
        mask_ratio(self.schedule, 0.5)  # validates the name


@dataclass(frozen=True)
class SamplerStep:
    """The state after one step, given to the ``callback`` of :func:`sample_codes` (tensors on the model device)."""

    step: int
    """0-based step index; the last is ``timesteps - 1``."""
    ratio: float
    """Progress ``(step+1)/T``."""
    temperature: float
    """Gumbel temperature used at this step (the compounded product)."""
    mask_len: torch.Tensor
    """(B,) long: how many codes the schedule re-masks, ``clamp(floor(N·ratio'), 1, unknown-1)``."""
    masked: torch.Tensor
    """(B, N) bool: positions masked for the next step (after the last step the output ignores it)."""
    sampled: torch.Tensor
    """(B, N) long: codes of this step, known ones copied; after the last step this is the output."""


class ImageLogitsModel(Protocol):
    """What the sampler needs of a model: :meth:`NeoBabel.image_logits` and the mask dtype."""

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the additive attention mask."""
        ...

    def image_logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, num_image_tokens: int
    ) -> torch.Tensor:
        """Float code logits (B, N, K) at the image positions."""
        ...


def _gumbel(shape: torch.Size, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    import torch

    u = torch.zeros(shape, device=device).uniform_(0, 1, generator=generator)
    # -log(-log U) with the release's clamp(1e-20) inside both logs (U = 0 or 1 stays finite).
    return -torch.log((-torch.log(u.clamp(min=1e-20))).clamp(min=1e-20))


def sample_codes(
    model: ImageLogitsModel,
    input_ids: torch.Tensor,
    *,
    layout: VocabLayout,
    num_image_tokens: int,
    uncond_input_ids: torch.Tensor | None = None,
    settings: SamplerSettings | None = None,
    generator: torch.Generator | None = None,
    callback: Callable[[SamplerStep], None] | None = None,
) -> torch.Tensor:
    """Sample the masked image codes of ``input_ids`` (B, L); returns codes (B, N) long in ``[0, K)``.

    ``input_ids`` is a t2i batch (:func:`~regionreasoner.tools.generate.prompting.build_t2i_batch`) whose image
    slice ``[-(N+1):-1]`` holds ``layout.mask_id`` where a code is to be generated and ``code + image_offset``
    where it is given (inpainting); given codes come back unchanged.  ``uncond_input_ids`` is the same batch with
    the empty prompt (needed when ``guidance_scale > 0``); only its text part is used, joined every step to the
    current image state.  ``generator`` must live on the model's device.  Nothing in ``input_ids`` is modified.
    Runs without autograd.
    """
    import torch

    with torch.no_grad():
        return _sample(model, input_ids, layout, num_image_tokens, uncond_input_ids, settings, generator, callback)


def _sample(
    model: ImageLogitsModel,
    input_ids: torch.Tensor,
    layout: VocabLayout,
    num_image_tokens: int,
    uncond_input_ids: torch.Tensor | None,
    settings: SamplerSettings | None,
    generator: torch.Generator | None,
    callback: Callable[[SamplerStep], None] | None,
) -> torch.Tensor:
    import torch
    from tqdm.auto import tqdm

    s = settings or SamplerSettings()
    n, off, k = num_image_tokens, layout.image_offset, layout.codebook_size
    if n < 2 or input_ids.ndim != 2 or input_ids.shape[1] < n + 3:
        raise InputError(
            f"input_ids of shape {tuple(input_ids.shape)} for {n} image tokens",
            hint="pass (B, L) t2i ids with N >= 2 image tokens",
        )
    guided = s.guidance_scale > 0
    if guided and (uncond_input_ids is None or uncond_input_ids.shape != input_ids.shape):
        raise InputError(
            f"guidance_scale={s.guidance_scale} needs uncond_input_ids of shape {tuple(input_ids.shape)}",
            hint="build them with the empty prompt '' and the same image tokens, or set guidance_scale=0",
        )
    ids = input_ids.clone()
    image = slice(ids.shape[1] - n - 1, ids.shape[1] - 1)
    tokens = ids[:, image]
    unknown = tokens == layout.mask_id
    if not bool((unknown | ((tokens >= off) & (tokens < off + k))).all()):
        raise InputError("the image slice holds ids that are neither codes nor MASK", hint="use build_t2i_batch")
    codes = torch.where(unknown, 0, tokens - off)
    text_len = ids.shape[1] - n - 2  # max_seq_length + 1: everything before <|soi|>
    uncond_text = uncond_input_ids[:, :text_len] if guided and uncond_input_ids is not None else None

    def mask_of(batch: torch.Tensor) -> torch.Tensor:
        return attention_mask(batch, layout.pad_id, layout.soi_id, layout.eoi_id, dtype=model.dtype)

    # The mask depends only on where [PAD], <|soi|>, <|eoi|> sit, never on the image codes: build it once.
    if uncond_text is None:
        masks = [mask_of(ids)]
    else:
        uncond = torch.cat([uncond_text, ids[:, text_len:]], dim=1)
        masks = [mask_of(torch.cat([ids, uncond]))] if s.batched_cfg else [mask_of(ids), mask_of(uncond)]

    temperature = s.temperature
    sampled = codes
    for step in tqdm(range(s.timesteps), desc="NeoBabel", disable=not s.progress, leave=False):
        if uncond_text is None:
            logits = model.image_logits(ids, masks[0], n)
        else:
            # The unconditional branch sees the empty prompt and the CURRENT image state (re-joined each step).
            uncond = torch.cat([uncond_text, ids[:, text_len:]], dim=1)
            if s.batched_cfg:
                cond_logits, uncond_logits = model.image_logits(torch.cat([ids, uncond]), masks[0], n).chunk(2)
            else:
                cond_logits = model.image_logits(ids, masks[0], n)
                uncond_logits = model.image_logits(uncond, masks[1], n)
            logits = (1 + s.guidance_scale) * cond_logits - s.guidance_scale * uncond_logits
        probs = logits.float().softmax(dim=-1)  # (B, N, K); the confidence below is always of these
        if s.code_temperature == 1.0:  # the release's draw, bit for bit
            drawn = torch.multinomial(probs.reshape(-1, k), 1, generator=generator).view(probs.shape[:-1])
        elif s.code_temperature == 0.0:
            drawn = probs.argmax(dim=-1)
        else:
            sharp = (logits.float() / s.code_temperature).softmax(dim=-1)
            drawn = torch.multinomial(sharp.reshape(-1, k), 1, generator=generator).view(probs.shape[:-1])
        sampled = torch.where(unknown, drawn, codes)
        ratio = (step + 1) / s.timesteps
        # WHY relative to N (not to the unknown count): the schedule counts all codes, so inpainting with few
        # masked codes unmasks them late; the clamp keeps >= 1 new code per step and >= 1 masked for the next.
        planned = int(torch.floor(n * torch.tensor(mask_ratio(s.schedule, ratio), dtype=torch.float32)))
        mask_len = torch.clamp(unknown.sum(dim=-1, keepdim=True) - 1, max=planned).clamp(min=1)
        temperature *= 1.0 - ratio  # compounds: the release multiplies the running value, not the initial one
        chosen = torch.gather(probs, -1, sampled[..., None]).squeeze(-1)
        noise = _gumbel(chosen.shape, generator, chosen.device)
        # Known codes get +inf confidence, so they are never re-masked (the release uses log(finfo.max) + noise).
        confidence = torch.where(unknown, torch.log(chosen.clamp(min=1e-20)) + temperature * noise, math.inf)
        cutoff = torch.sort(confidence, dim=-1).values.gather(1, mask_len)
        remask = confidence < cutoff  # the mask_len least confident new codes
        ids[:, image] = torch.where(remask, layout.mask_id, sampled + off)
        codes, unknown = sampled, remask
        if callback is not None:
            callback(SamplerStep(step, ratio, temperature, mask_len[:, 0], remask, sampled))
    return sampled


def generate_codes(
    model: ImageLogitsModel,
    text_ids: Sequence[Sequence[int]],
    image_tokens: torch.Tensor,
    *,
    layout: VocabLayout,
    max_seq_length: int,
    settings: SamplerSettings | None = None,
    generator: torch.Generator | None = None,
    callback: Callable[[SamplerStep], None] | None = None,
) -> torch.Tensor:
    """Codes (B, N) for prompts ``text_ids`` (one token list per row) and ``image_tokens`` (B, N) on the device.

    Builds the t2i batch and, when guidance is on, the unconditional one from the empty prompt (which becomes
    ``<|t2i|>, <bos>, <eos>``), then runs :func:`sample_codes`.  All-MASK ``image_tokens`` is text-to-image.
    """
    s = settings or SamplerSettings()
    cond = build_t2i_batch(text_ids, image_tokens, layout, max_seq_length)
    uncond = build_t2i_batch([[]] * len(text_ids), image_tokens, layout, max_seq_length) if s.guidance_scale else None
    return sample_codes(
        model,
        cond,
        layout=layout,
        num_image_tokens=image_tokens.shape[1],
        uncond_input_ids=uncond,
        settings=s,
        generator=generator,
        callback=callback,
    )
