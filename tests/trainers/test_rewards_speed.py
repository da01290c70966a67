"""Rewards: the fast paths give exactly what the general (reference-shaped) paths give, on random inputs."""

from __future__ import annotations

import importlib.util
import json
import random
import re
from pathlib import Path
from types import ModuleType

import numpy as np

from regionreasoner.trainers.rewards.matching import (
    best_matching,
    best_total,
    dense_rewards,
    matrix_total,
    pair_rewards,
)
from regionreasoner.trainers.rewards.region_reasoner import STOP_WORDS, _keywords, score_region_reasoner

A = importlib.import_module("regionreasoner.trainers.rewards.accuracy")
GENERATOR = Path(__file__).resolve().parents[1] / "data" / "rewards" / "make_fixture.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reward_fixture_generator_speed", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fast_answer_path_equals_the_general_path() -> None:
    for problem, completion, solution in _generator().region_cases(3000, seed=11, group=4):
        content = A.answer_content(completion)
        truth = A.parse_truth(solution)
        data = A._decode(content)
        general = (A._format_of(data), A._accuracy_of(data, truth))
        assert A.answer_rewards(content, truth) == general, (problem, completion, solution)
        if content is not None and data is not A.UNREADABLE:
            assert json.dumps(data) == json.dumps(json.loads(content))


def test_keywords_pattern_is_the_reference_one() -> None:
    rng = random.Random(3)
    alphabet = "ab cdé_9.,-\u0130\u00df\u0661 THEand\n"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        words = re.findall(r"\b\w+\b", text.lower())
        assert _keywords(text) == [w for w in words if len(w) > 2 and w not in STOP_WORDS][:10], text


def _row(rng: random.Random) -> tuple[int, ...]:
    x1, y1 = rng.randrange(-5, 200), rng.randrange(-5, 200)
    x2, y2 = x1 + rng.randrange(-3, 60), y1 + rng.randrange(-3, 60)
    return (x1, y1, x2, y2, (x2 - x1 + 1) * (y2 - y1 + 1), rng.randrange(x1 - 5, x2 + 6), rng.randrange(y1 - 5, y2 + 6))


def test_dense_pair_rewards_and_matching_equal_the_python_ones() -> None:
    rng = random.Random(5)
    for _ in range(400):
        preds = [_row(rng) for _ in range(rng.randint(1, 12))]
        truth = [_row(rng) for _ in range(rng.randint(1, 12))]
        edges = pair_rewards(preds, truth)  # type: ignore[arg-type]
        matrix = dense_rewards(preds, np.array(truth, dtype=np.float64).T)  # type: ignore[arg-type]
        assert sorted(zip(*matrix.nonzero(), matrix[matrix.nonzero()], strict=True)) == sorted(edges)
        expected = best_matching(edges)
        assert matrix_total(matrix) == expected
        assert best_total(preds, truth) == expected  # type: ignore[arg-type]


def test_many_objects_score_as_the_general_path() -> None:
    rng = random.Random(9)
    truth_objs = [{"bbox_2d": list(_row(rng)[:4]), "point_2d": list(_row(rng)[5:])} for _ in range(125)]
    solution = json.dumps(truth_objs)
    answer = json.dumps(truth_objs[:60] + [{"bbox_2d": list(_row(rng)[:4]), "point_2d": [1, 2]}] * 70)
    text = f"<think>ok, find it</think><answer>{answer}</answer>"
    truth = A.parse_truth(solution)
    data = A._decode(answer)
    assert score_region_reasoner("q", text, solution)["accuracy"] == A._accuracy_of(data, truth)
