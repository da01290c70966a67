"""Policy backends behind one interface (:class:`~regionreasoner.policies.base.Policy`).

* :class:`~regionreasoner.policies.transformers_policy.TransformersPolicy`: local weights through transformers;
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
    from regionreasoner.policies.scripted import ScriptedPolicy
    from regionreasoner.policies.transformers_policy import TransformersPolicy

__all__ = [
    "Completion",
    "ImageSlot",
    "Message",
    "Policy",
    "PolicyRequest",
    "SamplingParams",
    "ScriptedPolicy",
    "TransformersPolicy",
    "TurnConstraint",
]


def __getattr__(name: str) -> Any:
    if name == "ScriptedPolicy":
        from regionreasoner.policies.scripted import ScriptedPolicy

        return ScriptedPolicy
    if name == "TransformersPolicy":
        from regionreasoner.policies.transformers_policy import TransformersPolicy

        return TransformersPolicy
    raise AttributeError(f"module 'regionreasoner.policies' has no attribute {name!r}")
