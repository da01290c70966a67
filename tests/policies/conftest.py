"""Helpers of the policy tests: the KV-reuse check of ``TransformersPolicy`` (test-only, not part of the policy)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from regionreasoner.policies.base import PolicyRequest
from regionreasoner.policies.decoding import Row, RowCall, prime
from regionreasoner.policies.transformers_policy import TransformersPolicy

KvCheck = Callable[[TransformersPolicy, PolicyRequest], tuple[Any, Any]]


def kv_check(policy: TransformersPolicy, request: PolicyRequest) -> tuple[Any, Any]:
    """Next-token logits after the request's prompt and prefix, computed twice over the same tokens.

    Returns ``(continued, full)``: the logits from continuing the turn's KV session exactly as ``complete`` would
    (through the policy's own ``_prepare``; the continued session is kept), and from one fresh forward pass over the
    whole token sequence.  Both are float32 tensors of shape (V,); KV reuse is exact when they agree to float
    rounding.
    """
    with policy._lock:
        call, cache, key = policy._prepare(request)
        row = call.row
        # The same tokens as one fresh prompt: image tokens keep their modality, everything after the prompt is text.
        fresh = Row(
            ids=list(row.ids),
            prompt_len=row.prompt_len,
            mm_token_type_ids=row.mm_token_type_ids[: row.prompt_len] + [0] * (len(row.ids) - row.prompt_len),
            vision=row.vision,
        )
        mrope, pad = policy.family.mrope, policy.pad_id
        _, _, full = prime(
            policy.model, [RowCall(row=fresh, sampling=request.sampling)], mrope=mrope, pad_id=pad, cache=None
        )
        cache, _, continued = prime(policy.model, [call], mrope=mrope, pad_id=pad, cache=cache)
        policy._keep(key, row, cache)
        return continued[0], full[0]


@pytest.fixture(name="kv_check")
def kv_check_fixture() -> KvCheck:
    """:func:`kv_check`, for tests of KV reuse."""
    return kv_check
