"""The RegionReasoner reward: per-tag format credits, R_ref, R_cons, plus VisionReasoner's answer format and accuracy.

``score_region_reasoner(problem, completion, solution)`` returns every component by name; ``total`` is the sum the
reference training code optimises (``lmsdss/RegionReasoner`` ``region_reasoner_compute_score``), to the last bit:

    total = scene + focus + think + answer + answer_format + ref + accuracy + non_repeat + consistency

``problem`` is the raw round question (the reference bbox written as ``bbox=[x1, y1, x2, y2]`` in the policy's
frame, integer pixels), not the whole prompt.  Sections are read as the reference reads them: the first
``<tag> ... </tag>`` of each tag anywhere in the text (order and duplicates are not checked), content stripped.
Component ranges and the reference's quirks are tabled in docs/training.md ("Rewards").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from regionreasoner.trainers.rewards.accuracy import answer_rewards, parse_truth
from regionreasoner.trainers.rewards.text import non_repeat

__all__ = [
    "COMPONENTS",
    "consistency",
    "focus_credit",
    "reference",
    "scene_credit",
    "score_region_reasoner",
    "sections",
    "tag_credits",
]

COMPONENTS: tuple[str, ...] = (
    "scene",
    "focus",
    "think",
    "answer",
    "tags",
    "answer_format",
    "ref",
    "format",
    "accuracy",
    "non_repeat",
    "consistency",
    "total",
)
"""The names :func:`score_region_reasoner` returns, in order.  ``tags`` = scene + focus + think + answer;
``format`` = tags + answer_format + ref (the reference's "format reward")."""

_TAGS = ("scene", "focus", "think", "answer")
_REF_BOX = re.compile(r"bbox\s*=\s*\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]")
_CITED_BOX = re.compile(r"bbox\s*=?\s*\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]")
_KEYWORD = re.compile(r"\b\w{3,}\b")
r"""WHY ``\w{3,}``: the reference's ``\b\w+\b`` matches whole runs of word characters, and it keeps those longer
than 2 characters; this pattern matches exactly those runs (tests/trainers/test_rewards_speed.py checks it)."""
_MARKS_SIZED = tuple((f"<{tag}>", len(tag) + 2, f"</{tag}>") for tag in ("scene", "focus", "think", "answer"))
_NO_BOXES: frozenset[tuple[int, ...]] = frozenset()
_MARKS = tuple((f"<{tag}>", f"</{tag}>") for tag in ("scene", "focus", "think", "answer"))

SCENE_WORDS = ("scene", "image", "picture", "photo", "shows", "contains", "visible", "appears", "located")
BOX_WORDS = ("bbox", "bounding box", "coordinates")
STOP_WORDS = frozenset(
    (
        "the", "a", "an", "and", "or", "but", "in", "on", "at", "to", "for", "of", "with", "by", "is", "are", "was",
        "were", "be", "been", "being", "have", "has", "had", "do", "does", "did", "will", "would", "could", "should",
    )
)  # fmt: skip
CUES: tuple[tuple[float, tuple[str, ...]], ...] = (
    (0.5, ("above", "below", "left", "right", "inside", "overlapping", "near", "touching", "next to")),
    (0.3, ("compare", "similar", "different", "match", "closest", "best", "choose", "select", "find")),
    (0.2, ("locate", "identify", "position", "area", "region", "corner", "center", "coordinates")),
    (0.2, ("reference", "bbox", "guidance", "based on", "according to")),
)
"""R_cons cue-word bonuses, each group counted once (substring tests on the lowercased ``<think>``): spatial,
comparison, location, reference."""

HALLUCINATION_PENALTY = 0.5
"""η: R_ref is multiplied by this when ``<think>`` cites a box that is not a reference box."""

ANTI_COPY_OVERLAP = 0.6
"""``<focus>`` scores 0 when more than this fraction of the question's distinct words reappear in it."""


class _Problem(NamedTuple):
    """What the rewards read from the round question, computed once per question."""

    boxes: frozenset[tuple[int, ...]]  # reference boxes written as bbox=[d, d, d, d] (lowercased question)
    tokens: frozenset[str]  # distinct whitespace-separated words of the lowercased question
    copy_limit: float  # the anti-copy test's denominator, len(tokens) + 1e-6


_PROBLEM_CACHE: dict[str, _Problem] = {}


def _problem(problem: str) -> _Problem:
    cached = _PROBLEM_CACHE.get(problem)
    if cached is None:
        lower = problem.lower()
        boxes = frozenset(tuple(int(v) for v in m) for m in _REF_BOX.findall(lower))
        tokens = frozenset(lower.split())
        cached = _Problem(boxes, tokens, len(tokens) + 1e-6)
        if len(_PROBLEM_CACHE) >= 4096:
            _PROBLEM_CACHE.clear()
        _PROBLEM_CACHE[problem] = cached
    return cached


def sections(text: str) -> dict[str, str | None]:
    """The first ``<tag> ... </tag>`` content of each tag, without surrounding whitespace (None: no such section)."""
    return dict(zip(_TAGS, _sections(text), strict=True))


def _sections(text: str) -> list[str | None]:
    """:func:`~regionreasoner.trainers.rewards.accuracy.section` of scene, focus, think and answer, inlined."""
    out: list[str | None] = []
    for opening, closing in _MARKS:
        start = text.find(opening)
        if start < 0:
            out.append(None)
            continue
        start += len(opening)
        end = text.find(closing, start)
        out.append(None if end < 0 else text[start:end].strip())
    return out


def scene_credit(scene: str | None) -> float:
    """``<scene>`` credit: 0 missing, 0.2 under 10 characters, 0.5 with a scene word, else 0.3.

    >>> scene_credit("The image shows two dogs."), scene_credit("two dogs on grass"), scene_credit("dogs")
    (0.5, 0.3, 0.2)
    """
    if scene is None:
        return 0.0
    scene = scene.strip()
    if len(scene) < 10:
        return 0.2
    lower = scene.lower()
    for word in SCENE_WORDS:
        if word in lower:
            return 0.5
    return 0.3


def focus_credit(focus: str | None, problem: str | None) -> float:
    """``<focus>`` credit, 0..0.8.

    With a reference box in the question: 0 missing or empty, 0.2 under 5 words, else 0.8, and 0 when it copies
    the question (anti-copy rule).  Without one: 0.5 for no ``<focus>``, 0 for a hallucinated one.

    >>> q = "find the dog to the left of bbox=[10, 20, 30, 40]"
    >>> focus_credit("a brown sofa with two red cushions", q), focus_credit("a sofa", q)
    (0.8, 0.2)
    >>> focus_credit("the dog to the left of bbox=[10, 20, 30, 40]", q)  # copies the question
    0.0
    >>> focus_credit(None, "find the dog"), focus_credit("a sofa", "find the dog")  # no reference
    (0.5, 0.0)
    """
    info = _problem(problem) if problem else None
    if info is None or not info.boxes:
        return 0.0 if focus is not None else 0.5
    if focus is None:
        return 0.0
    focus = focus.strip()
    if not focus:
        return 0.0
    words = focus.lower().split()
    credit = 0.2 if len(words) < 5 else 0.8
    if len(info.tokens & set(words)) / (len(info.tokens) + 1e-6) > ANTI_COPY_OVERLAP:
        return 0.0
    return credit


def _length_credit(content: str | None, minimum: int, short: float) -> float:
    if content is None:
        return 0.0
    return short if len(content.strip()) < minimum else 0.5


def tag_credits(text: str, problem: str | None) -> dict[str, float]:
    """The four per-tag format credits of a completion.

    ``scene`` 0..0.5, ``focus`` 0..0.8, ``think`` 0..0.5 (0.2 under 10 characters), ``answer`` 0..0.5 (0.1 under
    3 characters).

    >>> tag_credits("<scene>The image shows a dog.</scene><think>the dog is left</think><answer>[]</answer>", None)
    {'scene': 0.5, 'focus': 0.5, 'think': 0.5, 'answer': 0.1}
    """
    scene, focus, think, answer = _sections(text)
    return {
        "scene": scene_credit(scene),
        "focus": focus_credit(focus, problem),
        "think": _length_credit(think, 10, 0.2),
        "answer": _length_credit(answer, 3, 0.1),
    }


def reference(think: str | None, problem: str | None) -> float:
    """R_ref in 0..2: does ``<think>`` cite the question's reference box.

    No ``<think>``: 0.  A question without a ``bbox=[...]`` reference: the constant 1.0 (``problem`` None: 0, as
    the reference code's error path gives).  Otherwise +1 when ``<think>`` names a box at all ("bbox", "bounding
    box", "coordinates"), + the fraction of distinct cited ``bbox=[...]``/``bbox [...]`` integer boxes that equal a
    reference box exactly, and the whole halved (η = 0.5) when any cited box is not a reference box.

    >>> q = "find the cup next to bbox=[10, 20, 30, 40]"
    >>> reference("the cup is right of bbox=[10, 20, 30, 40]", q)
    2.0
    >>> reference("right of bbox=[10, 20, 30, 40], not bbox [11, 20, 30, 40]", q)  # one hallucinated box
    0.75
    >>> reference("the cup is on the right", q), reference("the cup", "find the cup")
    (0.0, 1.0)
    """
    if think is None or problem is None:
        return 0.0
    return _reference(think.lower(), _problem(problem).boxes)


def _reference(lower: str, boxes: frozenset[tuple[int, ...]]) -> float:
    """:func:`reference` of the lowercased ``<think>`` against the question's reference boxes."""
    if not boxes:
        return 1.0
    if "bbox" not in lower:  # WHY: every cited box and the most common box word start with "bbox"
        return 1.0 if "bounding box" in lower or "coordinates" in lower else 0.0
    value = 1.0  # "bbox" is a box word
    cited = {tuple(map(int, m)) for m in _CITED_BOX.findall(lower)}
    if cited:
        matched = len(cited & boxes)
        if matched:
            value += 1.0 * (matched / len(cited))
        if matched < len(cited):
            value *= HALLUCINATION_PENALTY
    return value


def _keywords(text: str) -> list[str]:
    r"""The first 10 words (``\b\w+\b``, lowercased) longer than 2 characters and not stop words, repeats kept."""
    return [w for w in _KEYWORD.findall(text.lower()) if w not in STOP_WORDS][:10]


def _coverage(content: str, think: str) -> float:
    return _coverage_lower(content.lower(), think)


def _coverage_lower(lower: str, think: str) -> float:
    """The fraction of the first 10 keywords of ``lower`` (a lowercased section) found in ``think``."""
    keywords = [w for w in _KEYWORD.findall(lower) if w not in STOP_WORDS][:10]
    hits = sum(map(think.__contains__, keywords))
    return min(hits / max(len(keywords), 1), 1.0)


def _cues(lower: str) -> float:
    """The :data:`CUES` bonuses found in the lowercased ``<think>``, summed in the reference's order."""
    cues = 0.0
    has = lower.__contains__
    for bonus, words in CUES:
        if any(map(has, words)):
            cues += bonus
    return cues


def consistency(scene: str | None, focus: str | None, think: str | None, answer: str | None) -> float:
    """R_cons in 0..2.08: keyword overlap of ``<scene>`` and ``<focus>`` with ``<think>``, plus cue-word bonuses.

    0 without ``<scene>``, ``<think>`` or ``<answer>``.  Otherwise ``1.0·scene_cov + 0.6·focus_cov + 0.4·cues``,
    where a coverage is the fraction of a section's first 10 keywords found as substrings of the lowercased
    ``<think>`` (``focus_cov`` = 1 when there is no focus text) and ``cues`` sums the :data:`CUES` bonuses (≤ 1.2).

    >>> round(consistency("a dog on grass", None, "the dog is left of the grass, choose it", "[]"), 6)
    1.92
    >>> consistency(None, None, "anything", "[]")
    0.0
    """
    if scene is None or answer is None or think is None:
        return 0.0
    return _consistency(scene.strip(), focus.strip() if focus is not None else "", think.lower())


def _consistency(scene: str, focus: str, lower: str) -> float:
    """:func:`consistency` of stripped ``<scene>`` and ``<focus>`` ("" for none) and the lowercased ``<think>``."""
    focus_cov = _coverage(focus, lower) if focus else 1.0
    return _coverage(scene, lower) * 1.0 + focus_cov * 0.6 + _cues(lower) * 0.4


def score_region_reasoner(problem: str | None, completion: str, solution: str | Sequence[Any]) -> dict[str, float]:
    """Every RegionReasoner reward component of one completion, by name (see :data:`COMPONENTS`), and ``total``.

    ``problem``: the round question (None: no question, as when the dataset has no ``problem`` column).
    ``completion``: the policy's text.  ``solution``: the ground truth as the official JSON string
    (``'[{"bbox_2d": [x1, y1, x2, y2], "point_2d": [x, y]}, ...]'``) or its parsed list; policy-frame pixels.

    >>> q = "find the cup to the right of bbox=[10, 10, 109, 109]"
    >>> text = (
    ...     "<scene>The image shows a table with a cup and a plate.</scene>"
    ...     "<focus>a white plate with a fork on it</focus>"
    ...     "<think>The cup is right of the plate at bbox=[10, 10, 109, 109]; choose the closest cup.</think>"
    ...     '<answer>[{"bbox_2d": [120, 10, 219, 109], "point_2d": [170, 60]}]</answer>'
    ... )
    >>> s = score_region_reasoner(q, text, '[{"bbox_2d": [121, 12, 220, 110], "point_2d": [165, 62]}]')
    >>> s["tags"], s["answer_format"], s["ref"], s["accuracy"], s["non_repeat"], round(s["consistency"], 4)
    (2.3, 2.0, 2.0, 3.0, 1.0, 1.0)
    >>> s["total"]
    11.3
    """
    find = completion.find
    found: list[str | None] = []
    for opening, size, closing in _MARKS_SIZED:  # _sections, inlined
        start = find(opening)
        if start < 0:
            found.append(None)
            continue
        end = find(closing, start + size)
        found.append(None if end < 0 else completion[start + size : end].strip())
    scene, focus, think, answer = found
    info = _problem(problem) if problem else None
    # the four tag credits, as scene_credit, focus_credit and _length_credit give them (sections are stripped)
    scene_lower = None
    if scene is None:
        c_scene = 0.0
    elif len(scene) < 10:
        c_scene = 0.2
    else:
        scene_lower = scene.lower()
        c_scene = 0.5 if any(map(scene_lower.__contains__, SCENE_WORDS)) else 0.3
    focus_lower = None
    if info is None or not info.boxes:
        c_focus = 0.0 if focus is not None else 0.5
    elif not focus:  # None or empty
        c_focus = 0.0
    else:
        focus_lower = focus.lower()
        words = focus_lower.split()
        c_focus = 0.2 if len(words) < 5 else 0.8
        if len(info.tokens.intersection(words)) / info.copy_limit > ANTI_COPY_OVERLAP:
            c_focus = 0.0
    c_think = 0.0 if think is None else (0.2 if len(think) < 10 else 0.5)
    c_answer = 0.0 if answer is None else (0.1 if len(answer) < 3 else 0.5)
    tag_sum = c_scene + c_focus + c_think + c_answer
    fmt, acc = answer_rewards(answer, parse_truth(solution))
    if think is None:
        ref = 0.0
        cons = 0.0
    else:
        lower = think.lower()
        ref = 0.0 if problem is None else _reference(lower, info.boxes if info is not None else _NO_BOXES)
        cons = 0.0
        if problem and scene is not None and answer is not None:
            # _consistency, with the lowercased scene and focus shared with the credits above
            if focus:
                focus_cov = _coverage_lower(focus_lower if focus_lower is not None else focus.lower(), lower)
            else:
                focus_cov = 1.0
            scene_cov = _coverage_lower(scene_lower if scene_lower is not None else scene.lower(), lower)
            cons = scene_cov * 1.0 + focus_cov * 0.6 + _cues(lower) * 0.4
    rep = non_repeat(completion)
    fmt_total = tag_sum + fmt + ref
    return {
        "scene": c_scene,
        "focus": c_focus,
        "think": c_think,
        "answer": c_answer,
        "tags": tag_sum,
        "answer_format": fmt,
        "ref": ref,
        "format": fmt_total,
        "accuracy": acc,
        "non_repeat": rep,
        "consistency": cons,
        "total": fmt_total + acc + rep + cons,
    }
