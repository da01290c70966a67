"""A decode loop for transformers VLMs with explicit positions, KV reuse, constraints and stop strings.

Why not ``generate()``: a turn is produced in four pieces that must continue one KV cache exactly.  Continuing
``generate()`` from a returned cache with several new tokens is not exact for Qwen2.5-VL (the multimodal rotary
positions of the continuation are recomputed from a stale state), and passing ``pixel_values`` again with the cache
fails.  Here positions are explicit: the prompt's 3-D M-RoPE positions come from the model's ``get_rope_index``
once, and every later token ``t`` (0-based index among the real tokens of its row) gets ``t + rope_delta`` on all
three axes, which is what a full forward computes.  A continuation with k tokens therefore reproduces a full
forward's logits to float rounding (tests check 1e-4).

Rows of a batch share one ``DynamicCache``; prompts are left-padded.  A single-row batch is what the KV sessions of
:class:`~regionreasoner.policies.transformers_policy.TransformersPolicy` keep between the pieces of a turn.

The cache is passed to the model under the name its ``forward`` declares: ``cache`` in transformers releases that
renamed it, ``past_key_values`` before (vLLM's environment pins an older transformers), so no call of ours goes
through a deprecated argument.
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import Any

from regionreasoner.policies.base import Completion, DeltaCallback, FinishReason, SamplingParams, Timings
from regionreasoner.policies.constraints import TokenConstraint

__all__ = ["Detokenizer", "Row", "RowCall", "cache_argument", "prime", "run_rows"]


class Detokenizer:
    """Incremental detokenization: text deltas that never split a multi-byte character."""

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer
        self._ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def push(self, token_id: int) -> str:
        """Add a token; return the newly completed text (possibly empty).

        Decoding tokens one by one is wrong for byte-level BPE (a character may span tokens, and decoding can
        depend on the neighbours), so the window from ``_prefix`` is decoded and compared with the window up to the
        last emitted token; the difference is emitted once it no longer ends in U+FFFD (a partial character).
        """
        self._ids.append(token_id)
        prefix_text = self._tok.decode(self._ids[self._prefix : self._read], skip_special_tokens=False)
        full_text = self._tok.decode(self._ids[self._prefix :], skip_special_tokens=False)
        if len(full_text) > len(prefix_text) and not full_text.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self._ids)
            return str(full_text[len(prefix_text) :])
        return ""


@dataclass
class Row:
    """One sequence: its tokens, how many of them are in the KV cache, and its constraint state."""

    ids: list[int]
    prompt_len: int
    mm_token_type_ids: list[int]
    """Modality of each token of the first prefill (1: image); continuations are text and need none."""
    vision: dict[str, Any] = field(default_factory=dict)
    fed: int = 0
    rope_delta: int = 0
    machine: TokenConstraint | None = None

    @property
    def assistant_ids(self) -> list[int]:
        """Tokens after the prompt (the assistant message so far)."""
        return self.ids[self.prompt_len :]


@dataclass
class RowCall:
    """What one call asks of a row, and what it produced."""

    row: Row
    sampling: SamplingParams
    stop: tuple[str, ...] = ()
    seed: int | None = None
    """Seed of this call's sampling generator (None: torch's global generator)."""
    on_delta: DeltaCallback | None = None
    cached_tokens: int = 0
    input_tokens: int = 0
    new_ids: list[int] = field(default_factory=list)
    text: str = ""
    finish: FinishReason | None = None
    stop_hit: str | None = None


def cache_argument(model: Any) -> str:
    """The keyword under which ``model.forward`` takes the KV cache: ``cache``, or ``past_key_values`` before it.

    Read once per call of :func:`prime` / :func:`run_rows`, not at every decode step.
    """
    return "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"


def _positions(torch: Any, start: list[int], k: int, deltas: list[int], mrope: bool) -> Any:
    """Positions of ``k`` tokens per row starting at index ``start[row]``: shape (B, k), or (3, B, k) for M-RoPE.

    The M-RoPE rule: after the last image, Qwen-VL's ``get_rope_index`` gives a text token at index ``t`` the
    position ``t + rope_delta`` on all three axes (temporal, height, width), where ``rope_delta`` (<= 0) is how many
    positions the image saved (an image of h x w merged patches spans h * w indices but only max(h, w) positions).
    So continuation tokens need no call to ``get_rope_index``, only the row's delta.  Feeding plain ``t`` instead
    would shift every continuation token by ``-rope_delta`` positions: the logits would drift from a full forward
    (the KV tests catch it at 1e-4).
    """
    text = torch.tensor([[s + i for i in range(k)] for s in start], dtype=torch.long)
    if not mrope:
        return text
    shifted = text + torch.tensor(deltas, dtype=torch.long)[:, None]
    return shifted[None].expand(3, -1, -1).contiguous()


def _prefill(
    model: Any, torch: Any, calls: list[RowCall], mrope: bool, pad_id: int, cache_kw: str
) -> tuple[Any, Any, Any]:
    """Feed every row's tokens at once (left-padded). Returns (cache, attention mask, last logits)."""
    from transformers import DynamicCache

    rows = [c.row for c in calls]
    # Left padding puts every row's last token in the last column, so one logits_to_keep=1 serves them all, and
    # later steps append columns for every row at once.
    length = max(len(r.ids) for r in rows)
    pad = [length - len(r.ids) for r in rows]
    input_ids = torch.tensor([[pad_id] * p + r.ids for p, r in zip(pad, rows, strict=True)], dtype=torch.long)
    mask = torch.tensor([[0] * p + [1] * len(r.ids) for p, r in zip(pad, rows, strict=True)], dtype=torch.long)
    types = torch.tensor([[0] * p + r.mm_token_type_ids for p, r in zip(pad, rows, strict=True)], dtype=torch.long)
    vision: dict[str, Any] = {}
    for key in rows[0].vision:
        parts = [r.vision[key] for r in rows if key in r.vision]
        vision[key] = torch.cat(parts, dim=0)
    if mrope and "image_grid_thw" in vision:
        # The one call that knows the image layout: 3-D positions for the prompt and each row's rope_delta, which
        # is all later tokens need (see _positions).  It reads the attention mask, so padding takes no positions.
        positions, deltas = model.model.get_rope_index(
            input_ids, mm_token_type_ids=types, image_grid_thw=vision["image_grid_thw"], attention_mask=mask
        )
        for r, d in zip(rows, deltas[:, 0].tolist(), strict=True):
            r.rope_delta = int(d)
    else:
        # Text-only rows (or 1-D families): position = index among the row's real tokens, padding excluded.
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        if mrope:
            positions = positions[None].expand(3, -1, -1).contiguous()
        for r in rows:
            r.rope_delta = 0
    cache = DynamicCache(config=model.config)
    dev = model.device
    moved = {k: v.to(dev, dtype=model.dtype) if v.is_floating_point() else v.to(dev) for k, v in vision.items()}
    out = model(
        input_ids=input_ids.to(dev),
        attention_mask=mask.to(dev),
        position_ids=positions.to(dev),
        use_cache=True,
        logits_to_keep=1,  # only the next-token logits: a (B, L, V) tensor would dwarf the model at long prompts
        **{cache_kw: cache},
        **moved,
    )
    for r in rows:
        r.fed = len(r.ids)
    return cache, mask, out.logits[:, -1, :].float().cpu()


def _feed(
    model: Any, torch: Any, cache: Any, calls: list[RowCall], mrope: bool, pad_id: int, mask_len: Any, cache_kw: str
) -> Any:
    """Feed each row's unfed tokens (same count per row; finished rows feed padding). Returns last logits.

    ``mask_len`` is a one-element list holding the attention mask of everything in the cache; it is extended.
    """
    rows = [c.row for c in calls]
    # Rows may have different numbers of unfed tokens (a resumed session feeds several, a decode step one); the
    # step is k columns wide and shorter rows are left-padded inside it.  A padded row starts k - len(todo)
    # positions early so that its real tokens land on their true positions; its padding is masked out.  A finished
    # row feeds k masked pads: the batch stays rectangular and its cache rows keep lining up with the others.
    k = max(len(r.ids) - r.fed for r in rows)
    ids, starts, new_mask = [], [], []
    for c in calls:
        r = c.row
        todo = r.ids[r.fed :]
        live = c.finish is None
        ids.append([pad_id] * (k - len(todo)) + todo if live else [pad_id] * k)
        starts.append(r.fed - (k - len(todo)) if live else r.fed)
        new_mask.append([0] * (k - len(todo)) + [1] * len(todo) if live else [0] * k)
    # One tensor, grown by one step's columns (concatenating every step's piece again would cost O(n^2)).
    attention = torch.cat([mask_len[0], torch.tensor(new_mask, dtype=torch.long)], dim=1)
    mask_len[0] = attention
    dev = model.device
    # The mask spans every cached position (old padding included), so a masked position stays invisible forever.
    out = model(
        input_ids=torch.tensor(ids, dtype=torch.long).to(dev),
        attention_mask=attention.to(dev),
        position_ids=_positions(torch, starts, k, [r.rope_delta for r in rows], mrope).to(dev),
        use_cache=True,
        logits_to_keep=1,
        **{cache_kw: cache},
    )
    for c in calls:
        if c.finish is None:
            c.row.fed = len(c.row.ids)
    return out.logits[:, -1, :].float().cpu()


def _sample(torch: Any, logits: Any, s: SamplingParams, generator: Any) -> int:
    if s.greedy:
        return int(torch.argmax(logits))
    scores = logits / s.temperature
    if s.top_k > 0:
        kth = torch.topk(scores, min(s.top_k, scores.shape[-1])).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    if s.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        keep = sorted_probs.cumsum(-1) - sorted_probs < s.top_p
        probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_probs[keep])
    return int(torch.multinomial(probs, 1, generator=generator))


def prime(
    model: Any, calls: list[RowCall], *, mrope: bool, pad_id: int, cache: Any | None
) -> tuple[Any, list[Any], Any]:
    """Feed every row's unfed tokens: a batched prefill without ``cache``, a continuation with it.

    Returns the cache, the attention-mask pieces so far, and the next-token logits (float32, CPU, shape (B, V)).
    """
    import torch

    mask_len: list[Any] = []
    with torch.inference_mode():
        if cache is None:
            cache, mask, logits = _prefill(model, torch, calls, mrope, pad_id, cache_argument(model))
            mask_len.append(mask)
        else:
            # A continued cache is a single-row session without padding, so its mask so far is all ones.
            mask_len.append(torch.ones(1, calls[0].row.fed, dtype=torch.long))
            logits = _feed(model, torch, cache, calls, mrope, pad_id, mask_len, cache_argument(model))
    return cache, mask_len, logits


def run_rows(
    model: Any,
    tokenizer: Any,
    calls: list[RowCall],
    *,
    mrope: bool,
    eos_ids: set[int],
    pad_id: int,
    cache: Any | None = None,
    bitmask: Any | None = None,
) -> tuple[Any, list[Completion]]:
    """Decode every call until it stops; returns the KV cache (for sessions) and one completion per call.

    With ``cache`` (a single-row session) only the row's unfed tokens are fed; otherwise all rows are prefilled
    together.  ``bitmask`` is an xgrammar token bitmask with one row per call (needed when any row has a machine).
    """
    import torch
    import xgrammar as xgr

    t0 = time.perf_counter()
    cache_kw = cache_argument(model)
    cache, mask_len, logits = prime(model, calls, mrope=mrope, pad_id=pad_id, cache=cache)
    t_prefill = time.perf_counter()
    with torch.inference_mode():
        generators = [torch.Generator().manual_seed(c.seed) if c.seed is not None else None for c in calls]
        detoks = [Detokenizer(tokenizer) for _ in calls]
        while True:
            # One step: constrain, sample, stop-check every live row, then feed all rows' new tokens in one forward.
            if bitmask is not None:
                # Refilled every step from each row's machine (the allowed set depends on everything so far); a
                # row without a constraint gets all bits set (-1), i.e. every token allowed.
                for i, c in enumerate(calls):
                    if c.row.machine is not None:
                        c.row.machine.fill_bitmask(bitmask, i)
                    else:
                        bitmask[i].fill_(-1)
                xgr.apply_token_bitmask_inplace(logits, bitmask[: len(calls)])
            for i, c in enumerate(calls):
                if c.finish is None:
                    _advance(c, _sample(torch, logits[i], c.sampling, generators[i]), detoks[i], eos_ids)
            if all(c.finish is not None for c in calls):
                break
            logits = _feed(model, torch, cache, calls, mrope, pad_id, mask_len, cache_kw)
    t_end = time.perf_counter()
    completions = [
        Completion(
            text=c.text,
            finish_reason=c.finish or "length",
            stop=c.stop_hit,
            prompt_tokens=c.input_tokens,
            cached_tokens=c.cached_tokens,
            generated_tokens=len(c.new_ids),
            timings=Timings(
                prefill_ms=(t_prefill - t0) * 1e3, decode_ms=(t_end - t_prefill) * 1e3, total_ms=(t_end - t0) * 1e3
            ),
            token_ids=tuple(c.new_ids),
        )
        for c in calls
    ]
    return cache, completions


def _advance(c: RowCall, token: int, detok: Detokenizer, eos_ids: set[int]) -> None:
    """Take one sampled token into a row: end-of-message, constraint, text delta, stop strings, limits."""
    machine = c.row.machine
    # Under a constraint the grammar alone decides where the message ends: the row finishes as "constraint" the
    # moment its language is complete, so an end-of-message token only counts as one without a constraint.
    if token in eos_ids and machine is None and not c.sampling.ignore_eos:
        c.finish = "eos"
        return
    if machine is not None and not machine.accept_token(token):
        # The token was sampled under this machine's own mask: a rejection is a bug, never a model error.
        raise RuntimeError(f"constraint rejected token {token} that its own mask allowed")
    c.row.ids.append(token)
    c.new_ids.append(token)
    delta = detok.push(token)
    before = len(c.text)
    c.text += delta
    for s in c.stop:
        # Search from where a stop string could first overlap the new text: it may span two deltas, and text
        # already searched is not searched again.
        idx = c.text.find(s, max(0, before - len(s) + 1))
        if idx >= 0:
            c.text = c.text[: idx + len(s)]
            c.finish, c.stop_hit = "stop", s
            break
    if c.on_delta is not None and len(c.text) > before:
        c.on_delta(c.text[before:])
    if c.finish is None and machine is not None and machine.done:
        c.finish = "constraint"
    elif c.finish is None and len(c.new_ids) >= c.sampling.max_new_tokens:
        c.finish = "length"
