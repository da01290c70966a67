"""The VisionReasoner reward (Seg-Zero repository, ``vision_reasoner.py``): strict layout, answer format, accuracy.

``total = think_format + answer_format + accuracy + non_repeat``, in the reference's order of addition; at most
7 = 1 + 2 + 3 + 1 (the project's reference notes say 6).
``think_format`` is 1 only when the whole completion is ``<think>...</think>`` then ``<answer>...</answer>``,
whitespace alone between them and nothing before or after.  The other components are shared with RegionReasoner
(:mod:`~regionreasoner.trainers.rewards.accuracy`, :func:`~regionreasoner.trainers.rewards.text.non_repeat`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from regionreasoner.trainers.rewards.accuracy import answer_content, answer_rewards, parse_truth
from regionreasoner.trainers.rewards.text import non_repeat

__all__ = ["VISION_REASONER_COMPONENTS", "score_vision_reasoner", "think_answer_layout"]

VISION_REASONER_COMPONENTS: tuple[str, ...] = (
    "think_format",
    "answer_format",
    "format",
    "accuracy",
    "non_repeat",
    "total",
)
"""The names :func:`score_vision_reasoner` returns; ``format`` = think_format + answer_format."""

_LAYOUT = re.compile(r"<think>.*?</think>\s*<answer>.*?</answer>", re.DOTALL)


def think_answer_layout(text: str) -> float:
    r"""1.0 when ``text`` is exactly ``<think>...</think>`` and ``<answer>...</answer>`` (whitespace between), else 0.

    >>> think_answer_layout("<think>left dog</think>\n<answer>[]</answer>"), think_answer_layout("ok <think></think>")
    (1.0, 0.0)
    """
    return 1.0 if _LAYOUT.fullmatch(text) else 0.0


def score_vision_reasoner(completion: str, solution: str | Sequence[Any]) -> dict[str, float]:
    """Every VisionReasoner reward component of one completion, by name, and ``total`` (0..7).

    ``solution``: the official JSON string or its parsed list of ``{"bbox_2d", "point_2d"}`` objects, in the
    policy's frame (integer pixels).

    >>> text = '<think>the left dog</think><answer>[{"bbox_2d": [10, 10, 109, 109], "point_2d": [50, 50]}]</answer>'
    >>> score_vision_reasoner(text, '[{"bbox_2d": [10, 10, 109, 109], "point_2d": [52, 49]}]')["total"]
    7.0
    """
    layout = think_answer_layout(completion)
    content = answer_content(completion)
    fmt, acc = answer_rewards(content, parse_truth(solution))
    rep = non_repeat(completion)
    return {
        "think_format": layout,
        "answer_format": fmt,
        "format": layout + fmt,
        "accuracy": acc,
        "non_repeat": rep,
        "total": layout + fmt + acc + rep,
    }
