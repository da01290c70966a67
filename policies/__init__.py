"""Policy backends behind one interface (:class:`~regionreasoner.policies.base.Policy`).

* :class:`~regionreasoner.policies.transformers_policy.TransformersPolicy`: local weights through transformers;
* :class:`~regionreasoner.policies.vllm_policy.VLLMPolicy`: the vLLM offline engine (prefix caching, batches);
* :class:`~regionreasoner.policies.openai_policy.OpenAIPolicy`: any OpenAI-compatible server (``vllm serve``, ...);
* :class:`~regionreasoner.policies.scripted.ScriptedPolicy`: pre-written turns through the same path;
* :mod:`~regionreasoner.policies.tiny`: tiny random Qwen2.5-VL / Qwen3-VL checkpoints built offline.

Backends are loaded on first access, so ``import regionreasoner.policies`` imports neither torch nor transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from regionreasoner.policies.base import (
    Completion,
    ImageSlot,
    Message,
    Policy,
    PolicyRequest,
    SamplingParams,
    TurnConstraint,
)

if TYPE_CHECKING:
    from regionreasoner.policies.openai_policy import OpenAIPolicy
    from regionreasoner.policies.scripted import ScriptedPolicy
    from regionreasoner.policies.transformers_policy import TransformersPolicy
    from regionreasoner.policies.vllm_policy import VLLMPolicy

__all__ = [
    "Completion",
    "ImageSlot",
    "Message",
    "OpenAIPolicy",
    "Policy",
    "PolicyRequest",
    "SamplingParams",
    "ScriptedPolicy",
    "TransformersPolicy",
    "TurnConstraint",
    "VLLMPolicy",
]

_BACKENDS = {
    "ScriptedPolicy": "regionreasoner.policies.scripted",
    "TransformersPolicy": "regionreasoner.policies.transformers_policy",
    "VLLMPolicy": "regionreasoner.policies.vllm_policy",
    "OpenAIPolicy": "regionreasoner.policies.openai_policy",
}


def __getattr__(name: str) -> Any:
    if name in _BACKENDS:
        import importlib

        return getattr(importlib.import_module(_BACKENDS[name]), name)
    raise AttributeError(f"module 'regionreasoner.policies' has no attribute {name!r}")
