"""The MaskGIT sampler: schedule of masked counts, fixed known codes, CFG, seeds (neobabel.md §2.1)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from regionreasoner.core.errors import ConfigError, InputError
from regionreasoner.tools.generate.prompting import VocabLayout, build_t2i_batch
from regionreasoner.tools.generate.sampler import (
    SamplerSettings,
    SamplerStep,
    generate_codes,
    mask_ratio,
    sample_codes,
)

MAX_SEQ = 32


def _parts(gen: Any) -> tuple[Any, VocabLayout, int]:
    model, _, _, layout = gen.load()
    return model, layout, model.config.num_vq_tokens


def _run(gen: Any, *, seed: int = 0, batch: int = 2, **settings: Any) -> tuple[torch.Tensor, list[SamplerStep]]:
    model, layout, n = _parts(gen)
    steps: list[SamplerStep] = []
    tokens = torch.full((batch, n), layout.mask_id)
    texts = [[2, 40 + i, 41] for i in range(batch)]
    codes = generate_codes(
        model,
        texts,
        tokens,
        layout=layout,
        max_seq_length=MAX_SEQ,
        settings=SamplerSettings(**settings),
        generator=torch.Generator().manual_seed(seed),
        callback=steps.append,
    )
    return codes, steps


def test_schedules() -> None:
    assert mask_ratio("cosine", 0.5) == pytest.approx(math.cos(math.pi / 4))
    assert mask_ratio("cosine", 1.0) == pytest.approx(0.0, abs=1e-7)
    assert mask_ratio("linear", 1.0) == pytest.approx(1e-6)  # clipped, as the release
    assert mask_ratio("pow3", 0.5) == pytest.approx(0.875)
    assert mask_ratio("sigmoid", 0.0) == pytest.approx(1.0)
    assert mask_ratio("sigmoid", 0.5) == pytest.approx(0.5)
    for bad in ("cosin", "pow", "pow-1"):
        with pytest.raises(ConfigError):
            mask_ratio(bad, 0.5)
    for kwargs in ({"timesteps": 0}, {"guidance_scale": -1.0}, {"temperature": float("nan")}, {"schedule": "x"}):
        with pytest.raises(ConfigError):
            SamplerSettings(**kwargs)


@pytest.mark.parametrize(("schedule", "steps"), [("cosine", 8), ("linear", 5), ("pow2", 6)])
def test_masked_count_follows_the_schedule(tiny_generator: Any, schedule: str, steps: int) -> None:
    codes, history = _run(tiny_generator, timesteps=steps, guidance_scale=2.0, schedule=schedule)
    n = codes.shape[1]
    unknown = [n, n]
    assert [s.step for s in history] == list(range(steps))
    for s in history:
        # floor(N * ratio(step)) counted from N, clamped to [1, unknown - 1] (the lower bound wins).
        planned = math.floor(n * mask_ratio(schedule, (s.step + 1) / steps))
        want = [max(1, min(u - 1, planned)) for u in unknown]
        assert s.mask_len.tolist() == want
        assert s.masked.sum(dim=1).tolist() == want
        unknown = want
    assert torch.equal(codes, history[-1].sampled)
    assert codes.min() >= 0 and codes.max() < 64


def test_unmasked_codes_never_change(tiny_generator: Any) -> None:
    _, history = _run(tiny_generator, timesteps=8, guidance_scale=5.0)
    fixed = torch.zeros_like(history[0].masked)
    value = torch.zeros_like(history[0].sampled)
    for s in history:
        assert torch.equal(s.sampled[fixed], value[fixed])
        assert not (s.masked & fixed).any()  # a code once revealed is never masked again
        value = torch.where(fixed, value, s.sampled)
        fixed = fixed | ~s.masked


def test_temperature_compounds(tiny_generator: Any) -> None:
    _, history = _run(tiny_generator, timesteps=4, guidance_scale=0.0, temperature=2.0)
    t, want = 2.0, []
    for k in range(1, 5):
        t *= 1 - k / 4
        want.append(t)
    assert [s.temperature for s in history] == pytest.approx(want)


def test_same_seed_same_codes_other_seed_other_codes(tiny_generator: Any) -> None:
    a, _ = _run(tiny_generator, seed=3, timesteps=6)
    b, _ = _run(tiny_generator, seed=3, timesteps=6)
    c, _ = _run(tiny_generator, seed=4, timesteps=6)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


class _Counting:
    """Wraps a model and records the batch size of every forward."""

    def __init__(self, model: Any) -> None:
        self.model, self.batches = model, []  # type: list[int]
        self.dtype = model.dtype

    def image_logits(self, ids: torch.Tensor, mask: torch.Tensor, n: int) -> torch.Tensor:
        self.batches.append(ids.shape[0])
        return self.model.image_logits(ids, mask, n)


def test_guidance_zero_is_the_conditional_pass_alone(tiny_generator: Any) -> None:
    model, layout, n = _parts(tiny_generator)
    tokens = torch.full((2, n), layout.mask_id)
    cond = build_t2i_batch([[2, 40], [2, 41, 42]], tokens, layout, MAX_SEQ)
    uncond = build_t2i_batch([[], []], tokens, layout, MAX_SEQ)
    settings = SamplerSettings(timesteps=5, guidance_scale=0.0)
    counting = _Counting(model)
    with_uncond = sample_codes(
        counting,
        cond,
        layout=layout,
        num_image_tokens=n,
        uncond_input_ids=uncond,
        settings=settings,
        generator=torch.Generator().manual_seed(0),
    )
    assert counting.batches == [2] * 5  # never the 2B cond+uncond batch
    alone = sample_codes(
        model, cond, layout=layout, num_image_tokens=n, settings=settings, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(with_uncond, alone)
    assert (cond[:, -(n + 1) : -1] == layout.mask_id).all()  # the caller's ids are not modified


def test_cfg_batched_in_one_forward_equals_two_forwards(tiny_generator: Any) -> None:
    from regionreasoner.tools.generate.prompting import attention_mask

    model, layout, n = _parts(tiny_generator)
    tokens = torch.full((2, n), layout.mask_id)
    cond = build_t2i_batch([[2, 40], [2, 41, 42]], tokens, layout, MAX_SEQ)
    uncond = build_t2i_batch([[], []], tokens, layout, MAX_SEQ)
    results = {}
    for batched in (True, False):
        counting = _Counting(model)
        results[batched] = sample_codes(
            counting,
            cond,
            layout=layout,
            num_image_tokens=n,
            uncond_input_ids=uncond,
            settings=SamplerSettings(timesteps=4, guidance_scale=3.0, batched_cfg=batched),
            generator=torch.Generator().manual_seed(0),
        )
        assert counting.batches == ([4] * 4 if batched else [2, 2] * 4)

    def mask(ids: torch.Tensor) -> torch.Tensor:
        return attention_mask(ids, layout.pad_id, layout.soi_id, layout.eoi_id)

    both = torch.cat([cond, uncond])
    with torch.no_grad():
        one = model.image_logits(both, mask(both), n)
        two = torch.cat([model.image_logits(cond, mask(cond), n), model.image_logits(uncond, mask(uncond), n)])
    torch.testing.assert_close(one, two, rtol=1e-5, atol=1e-5)
    if torch.equal(one, two):  # batch-invariant matmuls (this CPU stack): then the draws are identical too
        assert torch.equal(results[True], results[False])


class _TwoWorlds:
    """A fake model: code 0 is likely under the prompt, code 1 under the empty prompt; L-1-N text tokens."""

    dtype = torch.float32

    def __init__(self, layout: VocabLayout) -> None:
        self.layout = layout

    def image_logits(self, ids: torch.Tensor, mask: torch.Tensor, n: int) -> torch.Tensor:
        conditional = (ids[:, : ids.shape[1] - n - 2] == 40).any(dim=1)  # token 40 only in the real prompt
        logits = torch.zeros(ids.shape[0], n, self.layout.codebook_size)
        logits[conditional, :, 0] = 2.0
        logits[conditional, :, 1] = 1.0
        logits[~conditional, :, 1] = 2.0
        return logits


def test_cfg_mixes_cond_and_uncond_logits() -> None:
    layout = VocabLayout(text_vocab_size=50, codebook_size=8)
    n = 64
    tokens = torch.full((1, n), layout.mask_id)
    fake = _TwoWorlds(layout)
    out = {}
    for w in (0.0, 4.0):
        out[w] = generate_codes(
            fake,
            [[2, 40]],
            tokens,
            layout=layout,
            max_seq_length=8,
            settings=SamplerSettings(timesteps=4, guidance_scale=w),
            generator=torch.Generator().manual_seed(0),
        )
    # (1+w)*cond - w*uncond: code 0 gets 2(1+w), code 1 gets 1+w-2w = 1-w, others 0. With w=4: 10 vs -3 vs 0.
    assert (out[4.0] == 0).all()
    share = np.mean(out[0.0].numpy() == 0)
    assert 0.2 < share < 0.8  # without guidance: softmax(2, 1, 0, ...) gives code 0 about 45%


def test_bad_inputs_raise_typed_errors(tiny_generator: Any) -> None:
    model, layout, n = _parts(tiny_generator)
    tokens = torch.full((1, n), layout.mask_id)
    cond = build_t2i_batch([[2]], tokens, layout, MAX_SEQ)
    with pytest.raises(InputError, match="uncond_input_ids"):
        sample_codes(model, cond, layout=layout, num_image_tokens=n, settings=SamplerSettings(guidance_scale=1.0))
    broken = cond.clone()
    broken[0, -3] = 5  # a text id inside the image slice
    with pytest.raises(InputError):
        sample_codes(model, broken, layout=layout, num_image_tokens=n, settings=SamplerSettings(guidance_scale=0))
    with pytest.raises(InputError):
        sample_codes(model, cond[0], layout=layout, num_image_tokens=n)


def test_generator_same_seed_same_image(tiny_generator: Any) -> None:
    prompts = ["a red ball", "一个红色的球"]
    a = tiny_generator.generate(prompts, seed=7, steps=4)
    b = tiny_generator.generate(prompts, seed=7, steps=4)
    c = tiny_generator.generate(prompts, seed=8, steps=4)
    assert [im.size for im in a] == [(32, 32)] * 2 and a[0].mode == "RGB"
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(np.asarray(a[0]), np.asarray(c[0]))
    with pytest.raises(InputError):
        tiny_generator.generate("a red ball", seed=1)
    with pytest.raises(InputError):
        tiny_generator.generate(["x"], seed=-1)


def _reference_t2i_generate(
    model: Any, input_ids: torch.Tensor, uncond_input_ids: torch.Tensor, layout: VocabLayout, n: int, **kw: Any
) -> torch.Tensor:
    """neobabel.md §2.1 transcribed line by line (finfo.max confidence, mask_by_random_topk), same logits source."""
    from regionreasoner.tools.generate.prompting import attention_mask

    timesteps, w, temperature, generator = kw["timesteps"], kw["guidance_scale"], kw["temperature"], kw["generator"]
    input_ids = input_ids.clone()
    mask_id, off = layout.mask_id, layout.image_offset
    mask = attention_mask(torch.cat([input_ids, uncond_input_ids]), layout.pad_id, layout.soi_id, layout.eoi_id)
    cur = input_ids[:, -(n + 1) : -1].clone()
    cur = torch.where(cur == mask_id, mask_id, cur - off)
    prefix = uncond_input_ids[:, : MAX_SEQ + 1]
    sampled = cur
    for step in range(timesteps):
        uncond = torch.cat([prefix, input_ids[:, MAX_SEQ + 1 :]], dim=1)
        cond_logits, uncond_logits = model.image_logits(torch.cat([input_ids, uncond]), mask, n).chunk(2)
        logits = (1 + w) * cond_logits - w * uncond_logits
        probs = logits.softmax(dim=-1)
        sampled = torch.multinomial(probs.reshape(-1, logits.size(-1)), 1, generator=generator)[:, 0].view(
            *logits.shape[:-1]
        )
        unknown = cur == mask_id
        sampled = torch.where(unknown, sampled, cur)
        ratio = 1.0 * (step + 1) / timesteps
        mask_ratio_t = torch.cos(torch.tensor(ratio) * math.pi * 0.5)
        selected = torch.gather(probs, -1, sampled.long()[..., None]).squeeze(-1)
        selected = torch.where(unknown, selected, torch.finfo(selected.dtype).max)
        mask_len = (n * mask_ratio_t).floor().unsqueeze(0)
        mask_len = torch.max(torch.tensor([1]), torch.min(unknown.sum(dim=-1, keepdim=True) - 1, mask_len))
        temperature = temperature * (1.0 - ratio)
        noise = torch.zeros_like(selected).uniform_(0, 1, generator=generator)
        gumbel = -torch.log((-torch.log(noise.clamp(min=1e-20))).clamp(min=1e-20))
        confidence = torch.log(selected.clamp(min=1e-20)) + temperature * gumbel
        cut_off = torch.gather(torch.sort(confidence, dim=-1).values, 1, mask_len.long())
        masking = confidence < cut_off
        input_ids[:, -(n + 1) : -1] = torch.where(masking, mask_id, sampled + off)
        cur = torch.where(masking, mask_id, sampled)
    return sampled


def test_draw_for_draw_equal_to_the_reference_loop(tiny_generator: Any) -> None:
    model, layout, n = _parts(tiny_generator)
    tokens = torch.full((2, n), layout.mask_id)
    tokens[1, :10] = torch.arange(10) + layout.image_offset  # one row with given codes (inpainting)
    cond = build_t2i_batch([[2, 40], [2, 41, 42]], tokens, layout, MAX_SEQ)
    uncond = build_t2i_batch([[], []], tokens, layout, MAX_SEQ)
    kw = {"timesteps": 6, "guidance_scale": 2.0, "temperature": 1.0}
    with torch.no_grad():
        ours = sample_codes(
            model,
            cond,
            layout=layout,
            num_image_tokens=n,
            uncond_input_ids=uncond,
            settings=SamplerSettings(**kw),
            generator=torch.Generator().manual_seed(5),
        )
        ref = _reference_t2i_generate(model, cond, uncond, layout, n, generator=torch.Generator().manual_seed(5), **kw)
    assert torch.equal(ours, ref)
    assert torch.equal(ours[1, :10], torch.arange(10))


def test_code_temperature_one_is_the_release_draw_and_zero_is_argmax(tiny_generator: Any) -> None:
    release, _ = _run(tiny_generator, seed=3, timesteps=4)
    same, _ = _run(tiny_generator, seed=3, timesteps=4, code_temperature=1.0)
    greedy_a, _ = _run(tiny_generator, seed=3, timesteps=4, code_temperature=0.0, temperature=0.0)
    greedy_b, _ = _run(tiny_generator, seed=9, timesteps=4, code_temperature=0.0, temperature=0.0)
    sharp, _ = _run(tiny_generator, seed=3, timesteps=4, code_temperature=0.3)
    assert torch.equal(release, same)
    assert torch.equal(greedy_a, greedy_b)  # no randomness left: the seed does not matter
    assert sharp.shape == release.shape
    with pytest.raises(ConfigError, match="code_temperature"):
        SamplerSettings(code_temperature=-1.0)
