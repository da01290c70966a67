"""The weighted RegionReasoner rubric ``R = R_base + α·R_ref + β·R_cons``, logging every component by name.

``R_base = tags + answer_format + accuracy + non_repeat`` (the per-tag format credits, VisionReasoner's answer
format and accuracy, non-repeat).  :data:`PAPER` (α = β = 1) is the reference training code's effective
weighting: it reproduces ``region_reasoner_compute_score`` bit for bit.  The paper's numeric α and β were not
published; the code adds the terms unweighted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from regionreasoner.trainers.rewards.region_reasoner import score_region_reasoner
from regionreasoner.trainers.rewards.text import Completion, completion_text

__all__ = ["PAPER", "RegionReasonerRubric", "rubric_reward_funcs"]


@dataclass(frozen=True, kw_only=True)
class RegionReasonerRubric:
    """A TRL reward function (picklable) returning ``R_base + α·R_ref + β·R_cons`` per completion.

    Called by ``GRPOTrainer`` as ``rubric(prompts=..., completions=..., completion_ids=..., solution=[...],
    problem=[...], log_metric=..., ...)``.  Each call logs the batch mean of every component under
    ``{name}/{component}`` through TRL's ``log_metric`` (weight-0 diagnostics such as ``scene`` and ``focus``
    included), and the weighted ``total``.

    >>> rubric = RegionReasonerRubric(alpha=0.5, beta=0.0)
    >>> logged = {}
    >>> text = "<scene>The image shows a cup.</scene><think>cup right of bbox=[1, 2, 3, 4]</think><answer>[]</answer>"
    >>> rubric(None, [text], None, solution=["[]"], problem=["the cup right of bbox=[1, 2, 3, 4]"],
    ...        log_metric=logged.__setitem__)
    [3.1]
    >>> logged["region_reasoner/ref"], logged["region_reasoner/consistency"], logged["region_reasoner/focus"]
    (2.0, 1.2133333333333334, 0.0)
    """

    alpha: float = field(default=1.0, metadata={"help": "weight α of the reference-citation reward R_ref (0..2)"})
    beta: float = field(default=1.0, metadata={"help": "weight β of the consistency reward R_cons (0..2.08)"})
    name: str = field(default="region_reasoner", metadata={"help": "prefix of the logged metrics and TRL's name"})

    def __post_init__(self) -> None:
        for key in ("alpha", "beta"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or value != value:
                raise ValueError(f"{key}={value!r}: set it to a finite number (1.0 reproduces the reference code)")

    @property
    def __name__(self) -> str:
        """The name TRL shows for this reward (``rewards/{name}/mean``)."""
        return self.name

    @property
    def weights(self) -> dict[str, float]:
        """The weight of every logged component; the ones of weight 0 are diagnostics (parts of ``tags``)."""
        return {
            "scene": 0.0,
            "focus": 0.0,
            "think": 0.0,
            "answer": 0.0,
            "tags": 1.0,
            "answer_format": 1.0,
            "ref": self.alpha,
            "accuracy": 1.0,
            "non_repeat": 1.0,
            "consistency": self.beta,
        }

    def score(self, problem: str | None, completion: str, solution: str | Sequence[Any]) -> dict[str, float]:
        """Every component of :func:`score_region_reasoner`, and ``total`` = the weighted sum.

        The terms are added in the reference's order, so that α = β = 1 gives its value exactly.
        """
        s = score_region_reasoner(problem, completion, solution)
        w = self.weights
        total = s["tags"] + s["answer_format"] + w["ref"] * s["ref"]
        total = total + s["accuracy"] + s["non_repeat"] + w["consistency"] * s["consistency"]
        return {**s, "total": total}

    def __call__(
        self,
        prompts: Sequence[Any] | None,
        completions: Sequence[Completion],
        completion_ids: Any = None,
        *,
        solution: Sequence[Any],
        problem: Sequence[str | None] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **columns: Any,
    ) -> list[float | None]:
        """TRL's reward contract; a row whose ``solution`` is None gets None."""
        n = len(completions)
        problems: Sequence[str | None] = problem if problem is not None else [None] * n
        if len(solution) != n or len(problems) != n:
            raise ValueError(
                f"got {n} completions, {len(solution)} solutions and {len(problems)} problems: pass one each"
            )
        out: list[float | None] = []
        sums: dict[str, float] = {}
        scored = 0
        for completion, q, sol in zip(completions, problems, solution, strict=True):
            if sol is None:
                out.append(None)
                continue
            s = self.score(q, completion_text(completion), sol)
            out.append(s["total"])
            scored += 1
            for key, value in s.items():
                sums[key] = sums.get(key, 0.0) + value
        if log_metric is not None and scored:
            for key, value in sums.items():
                log_metric(f"{self.name}/{key}", value / scored)
        return out


def rubric_reward_funcs(*, alpha: float = 1.0, beta: float = 1.0) -> list[RegionReasonerRubric]:
    """The reward functions to hand to TRL's ``GRPOTrainer(reward_funcs=...)``: the one weighted rubric.

    One function (not one per component) so that TRL's advantage sees ``R_base + α·R_ref + β·R_cons`` exactly;
    the components are logged by name through ``log_metric``.

    >>> [f.__name__ for f in rubric_reward_funcs(alpha=0.5)]
    ['region_reasoner']
    """
    return [RegionReasonerRubric(alpha=alpha, beta=beta)]


PAPER = RegionReasonerRubric()
"""α = β = 1: the reference code's effective weights (its total, to the last bit)."""
