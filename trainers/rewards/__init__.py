"""Rewards of RegionReasoner, VisionReasoner and Seg-Zero: pure functions, equal to the reference code's values.

The one scorer shared by training and evaluation is :func:`score_region_reasoner` (every component by name and
``total``).  TRL reward functions (``f(prompts, completions, completion_ids, **columns)``) are in
:mod:`~regionreasoner.trainers.rewards.functions`; the weighted rubric ``R_base + α·R_ref + β·R_cons`` that logs
every component is :class:`RegionReasonerRubric`.  The components, their ranges and the reference's quirks are
tabled in docs/training.md ("Rewards").  Importing this package loads neither torch, TRL nor scipy (scipy loads
on the first answer large enough to need it; numpy comes with regionreasoner.core).
"""

from __future__ import annotations

from regionreasoner.trainers.rewards.accuracy import accuracy, answer_format, parse_truth
from regionreasoner.trainers.rewards.functions import (
    accuracy_reward,
    answer_format_reward,
    consistency_reward,
    reference_reward,
    region_reasoner_reward,
    seg_zero_loose_reward,
    seg_zero_reward,
    tag_format_reward,
    think_answer_layout_reward,
    vision_reasoner_reward,
)
from regionreasoner.trainers.rewards.region_reasoner import COMPONENTS, score_region_reasoner
from regionreasoner.trainers.rewards.rubric import PAPER, RegionReasonerRubric, rubric_reward_funcs
from regionreasoner.trainers.rewards.seg_zero import SEG_ZERO_COMPONENTS, score_seg_zero
from regionreasoner.trainers.rewards.text import completion_text, non_repeat, non_repeat_reward
from regionreasoner.trainers.rewards.vision_reasoner import VISION_REASONER_COMPONENTS, score_vision_reasoner

__all__ = [
    "COMPONENTS",
    "PAPER",
    "SEG_ZERO_COMPONENTS",
    "VISION_REASONER_COMPONENTS",
    "RegionReasonerRubric",
    "accuracy",
    "accuracy_reward",
    "answer_format",
    "answer_format_reward",
    "completion_text",
    "consistency_reward",
    "non_repeat",
    "non_repeat_reward",
    "parse_truth",
    "reference_reward",
    "region_reasoner_reward",
    "rubric_reward_funcs",
    "score_region_reasoner",
    "score_seg_zero",
    "score_vision_reasoner",
    "seg_zero_loose_reward",
    "seg_zero_reward",
    "tag_format_reward",
    "think_answer_layout_reward",
    "vision_reasoner_reward",
]
