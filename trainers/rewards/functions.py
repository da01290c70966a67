"""Every reward as a TRL reward function: ``f(prompts, completions, completion_ids, **columns) -> list[float | None]``.

``completions`` are strings or conversational message lists; the columns read are ``solution`` (the ground truth,
the official JSON string or its parsed list; a None solution gives None) and ``problem`` (the round question,
RegionReasoner only).  Other columns TRL passes (``trainer_state``, ``log_metric``, ...) are ignored.  The
weighted total with per-component logging is :class:`~regionreasoner.trainers.rewards.rubric.RegionReasonerRubric`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from regionreasoner.trainers.rewards.accuracy import accuracy, answer_content, answer_format, parse_truth
from regionreasoner.trainers.rewards.region_reasoner import consistency, reference, score_region_reasoner, tag_credits
from regionreasoner.trainers.rewards.region_reasoner import sections as _sections
from regionreasoner.trainers.rewards.seg_zero import score_seg_zero
from regionreasoner.trainers.rewards.text import Completion, map_rewards
from regionreasoner.trainers.rewards.vision_reasoner import score_vision_reasoner, think_answer_layout

__all__ = [
    "accuracy_reward",
    "answer_format_reward",
    "consistency_reward",
    "reference_reward",
    "region_reasoner_reward",
    "seg_zero_loose_reward",
    "seg_zero_reward",
    "tag_format_reward",
    "think_answer_layout_reward",
    "vision_reasoner_reward",
]

_Prompts = Sequence[Any] | None


def tag_format_reward(
    prompts: _Prompts, completions: Sequence[Completion], completion_ids: Any = None, **columns: Any
) -> list[float | None]:
    """RegionReasoner per-tag format credits summed (0..2.3 with a reference box in the question, 0..2.0 without).

    >>> q = ["find the cup right of bbox=[1, 2, 3, 4]"] * 3
    >>> scene, think = "<scene>The image shows a table.</scene>", "<think>the cup is right of it</think>"
    >>> texts = [
    ...     scene + "<focus>a white plate with a fork</focus>" + think + "<answer>[1]</answer>",
    ...     scene + "<focus>the cup right of bbox=[1, 2, 3, 4]</focus><think>ok</think>",
    ...     "<scene>two cups</scene>" + think + "<answer>[1]</answer>",
    ... ]
    >>> [round(r, 2) for r in tag_format_reward(None, texts, problem=q)]  # full; focus copies the question; no focus
    [2.3, 0.7, 1.2]
    >>> tag_format_reward(None, ["<focus>a plate</focus>"], problem=["find the cup"])  # no reference: focus is 0
    [0.0]
    """

    def score(problem: str | None, text: str, _solution: Any) -> float:
        c = tag_credits(text, problem)
        return c["scene"] + c["focus"] + c["think"] + c["answer"]

    return map_rewards(score, completions, columns, needs_solution=False)


def answer_format_reward(
    prompts: _Prompts, completions: Sequence[Completion], completion_ids: Any = None, **columns: Any
) -> list[float | None]:
    """VisionReasoner answer format (0..2): ``bbox_2d`` of 4 and ``point_2d`` of 2 per object, averaged.

    >>> answer_format_reward(None, ['<answer>[{"bbox_2d": [1, 2, 3, 4], "point_2d": [2, 3]}]</answer>', "none"])
    [2.0, 0.0]
    """
    return map_rewards(
        lambda _p, text, _s: answer_format(answer_content(text)), completions, columns, needs_solution=False
    )


def accuracy_reward(
    prompts: _Prompts, completions: Sequence[Completion], completion_ids: Any = None, **columns: Any
) -> list[float | None]:
    """VisionReasoner accuracy (0..3), policy-frame pixels.

    Hungarian matching on IoU > 0.5 (``+1``-pixel convention), mean L1 < 10 px, point < 30 px and inside its own
    box; divided by max(#pred, #gt); 120 objects at most on each side.

    >>> gt = '[{"bbox_2d": [10, 10, 109, 109], "point_2d": [50, 50]}]'
    >>> hit = '<answer>[{"bbox_2d": [12, 11, 110, 108], "point_2d": [60, 55]}]</answer>'
    >>> accuracy_reward(None, [hit, [{"role": "assistant", "content": hit}], "no answer"], solution=[gt, gt, gt])
    [3.0, 3.0, 0.0]
    >>> accuracy_reward(None, [hit], solution=[None])  # no ground truth: not applicable
    [None]
    """
    return map_rewards(lambda _p, text, sol: accuracy(answer_content(text), parse_truth(sol)), completions, columns)


def reference_reward(
    prompts: _Prompts, completions: Sequence[Completion], completion_ids: Any = None, **columns: Any
) -> list[float | None]:
    """R_ref (0..2): ``<think>`` cites the question's ``bbox=[...]`` exactly.

    η = 0.5 halves it for any hallucinated box; questions without a reference get the constant 1.0.

    >>> q = ["the cup right of bbox=[1, 2, 3, 4]"] * 2 + ["the cup"]
    >>> texts = ["<think>right of bbox=[1, 2, 3, 4]</think>", "<think>right of bbox=[1, 2, 3, 5]</think>"]
    >>> texts.append("<think>x</think>")
    >>> reference_reward(None, texts, problem=q)
    [2.0, 0.5, 1.0]
    """
    return map_rewards(
        lambda problem, text, _s: reference(_sections(text)["think"], problem),
        completions,
        columns,
        needs_solution=False,
    )


def consistency_reward(
    prompts: _Prompts, completions: Sequence[Completion], completion_ids: Any = None, **columns: Any
) -> list[float | None]:
    """R_cons (0..2.08): ``<scene>``/``<focus>`` keywords found in ``<think>``, plus cue-word bonuses.

    0 when the question is empty or missing (as the reference code gives).

    >>> text = "<scene>a dog on grass</scene><think>the dog left of the grass; choose it</think><answer>[]</answer>"
    >>> [round(r, 2) for r in consistency_reward(None, [text, text], problem=["find the dog", ""])]
    [1.92, 0.0]
    """

    def score(problem: str | None, text: str, _solution: Any) -> float:
        if not problem:
            return 0.0
        s = _sections(text)
        return consistency(s["scene"], s["focus"], s["think"], s["answer"])

    return map_rewards(score, completions, columns, needs_solution=False)


def region_reasoner_reward(
    prompts: _Prompts, completions: Sequence[Completion], completion_ids: Any = None, **columns: Any
) -> list[float | None]:
    """The RegionReasoner total (0..12.38), equal to the reference ``region_reasoner_compute_score``.

    >>> gt = '[{"bbox_2d": [10, 10, 109, 109], "point_2d": [50, 50]}]'
    >>> text = f"<scene>The image shows a cup.</scene><think>the cup, find it</think><answer>{gt}</answer>"
    >>> region_reasoner_reward(None, [text], solution=[gt], problem=["the cup"])
    [10.053333333333333]
    """
    return map_rewards(
        lambda problem, text, sol: score_region_reasoner(problem, text, sol)["total"], completions, columns
    )


def think_answer_layout_reward(
    prompts: _Prompts, completions: Sequence[Completion], completion_ids: Any = None, **columns: Any
) -> list[float | None]:
    """VisionReasoner/Seg-Zero strict layout (0/1): exactly ``<think>...</think>`` then ``<answer>...</answer>``.

    >>> think_answer_layout_reward(None, ["<think>a</think> <answer>[]</answer>", "<answer>[]</answer>"])
    [1.0, 0.0]
    """
    return map_rewards(lambda _p, text, _s: think_answer_layout(text), completions, columns, needs_solution=False)


def vision_reasoner_reward(
    prompts: _Prompts, completions: Sequence[Completion], completion_ids: Any = None, **columns: Any
) -> list[float | None]:
    """The VisionReasoner total (0..7): layout + answer format + accuracy + non-repeat.

    >>> gt = '[{"bbox_2d": [10, 10, 109, 109], "point_2d": [50, 50]}]'
    >>> vision_reasoner_reward(None, [f"<think>the cup</think><answer>{gt}</answer>"], solution=[gt])
    [7.0]
    """
    return map_rewards(lambda _p, text, sol: score_vision_reasoner(text, sol)["total"], completions, columns)


def seg_zero_reward(
    prompts: _Prompts, completions: Sequence[Completion], completion_ids: Any = None, **columns: Any
) -> list[float | None]:
    """The original Seg-Zero total (0..5), strict keys (``seg_strict``, as ``seg_zero_7b.yaml`` trains).

    >>> answer = '{"bbox": [10, 10, 109, 109], "points_1": [30, 30], "points_2": [80, 80]}'
    >>> truth = "<box>(10,10),(109,109)</box><points>(30,30),(80,80)</points>"
    >>> seg_zero_reward(None, [f"<think>cup</think><answer>{answer}</answer>"], solution=[truth])
    [5.0]
    """
    return map_rewards(lambda _p, text, sol: score_seg_zero(text, sol)["total"], completions, columns)


def seg_zero_loose_reward(
    prompts: _Prompts, completions: Sequence[Completion], completion_ids: Any = None, **columns: Any
) -> list[float | None]:
    """The original Seg-Zero total with loose keys (``seg.py``: any key containing ``bbox`` / ``point(s)``).

    >>> answer = '{"Bbox": [10, 10, 109, 109], "points_a": [30, 30], "points_b": [80, 80]}'
    >>> truth = "<box>(10,10),(109,109)</box><points>(30,30),(80,80)</points>"
    >>> seg_zero_loose_reward(None, [f"<think>cup</think><answer>{answer}</answer>"], solution=[truth])
    [5.0]
    """
    return map_rewards(lambda _p, text, sol: score_seg_zero(text, sol, strict=False)["total"], completions, columns)
