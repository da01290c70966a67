"""Completion text and TRL batch plumbing shared by every reward, and the non-repeat reward.

TRL's ``GRPOTrainer`` calls a reward function as ``f(prompts=..., completions=..., completion_ids=..., **columns)``
where ``columns`` are the dataset's other columns, one value per completion (``solution``, ``problem``, ...), plus
``trainer_state``, ``log_extra`` and ``log_metric``.  A completion is a string (plain datasets) or a list of
messages (conversational datasets: ``[{"role": "assistant", "content": "..."}]``, the content a string or a list of
``{"type": "text", "text": ...}`` parts).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

__all__ = [
    "Completion",
    "completion_text",
    "map_rewards",
    "non_repeat",
    "non_repeat_reward",
]

Completion: TypeAlias = str | Sequence[Mapping[str, Any]]
"""A plain completion string, or a conversational completion (a list of chat messages)."""


def completion_text(completion: Completion) -> str:
    """The text a policy wrote: the string itself, or its assistant messages' text joined in order.

    Messages without a ``role`` count as the assistant's; ``tool`` messages (tool results) are not the policy's.

    >>> completion_text("<think>ok</think>")
    '<think>ok</think>'
    >>> completion_text([{"role": "assistant", "content": [{"type": "text", "text": "<answer>[]</answer>"}]}])
    '<answer>[]</answer>'
    """
    if isinstance(completion, str):
        return completion
    parts: list[str] = []
    for message in completion:
        if message.get("role", "assistant") != "assistant":
            continue
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, Sequence):
            parts.extend(p["text"] for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    return "".join(parts)


def _column(columns: Mapping[str, Any], name: str, n: int) -> Sequence[Any]:
    """Column ``name`` of a TRL batch (one value per completion); all None when the dataset has no such column."""
    values = columns.get(name)
    if values is None:
        return [None] * n
    if isinstance(values, str) or len(values) != n:
        got = "a string" if isinstance(values, str) else f"{len(values)} values"
        raise ValueError(f"column {name!r} has {got} for {n} completions: pass one value per completion")
    return values


def map_rewards(
    score: Callable[[str | None, str, Any], float],
    completions: Sequence[Completion],
    columns: Mapping[str, Any],
    *,
    needs_solution: bool = True,
) -> list[float | None]:
    """Apply ``score(problem, text, solution)`` to every completion of a TRL batch.

    A row whose ``solution`` is None gets None (TRL: "this reward does not apply"), when ``needs_solution``.
    """
    n = len(completions)
    problems = _column(columns, "problem", n)
    solutions = _column(columns, "solution", n)
    out: list[float | None] = []
    for completion, problem, solution in zip(completions, problems, solutions, strict=True):
        if needs_solution and solution is None:
            out.append(None)
        else:
            out.append(score(problem, completion_text(completion), solution))
    return out


def non_repeat(text: str) -> float:
    """1.0 unless at least two ``.``-separated sentences repeat an earlier one (then 0.0); VisionReasoner's rule.

    Sentences are the stripped, non-empty pieces of ``text.split(".")``; each piece equal to an earlier one counts
    as one repeat.

    >>> non_repeat("A dog. A dog. A cat.")
    1.0
    >>> non_repeat("A dog. A dog. A dog.")
    0.0
    """
    pieces = text.split(".")
    if len(pieces) < 3:  # WHY: two repeats need three sentences
        return 1.0
    sentences = list(filter(None, map(str.strip, pieces)))
    return 0.0 if len(sentences) - len(set(sentences)) >= 2 else 1.0


def non_repeat_reward(
    prompts: Sequence[Any] | None, completions: Sequence[Completion], completion_ids: Any = None, **columns: Any
) -> list[float | None]:
    """TRL reward: :func:`non_repeat` of each completion (0 or 1).

    >>> non_repeat_reward(None, ["Look left. Look left. Look left.", [{"content": "Fine."}]])
    [0.0, 1.0]
    """
    return map_rewards(lambda _p, text, _s: non_repeat(text), completions, columns, needs_solution=False)
