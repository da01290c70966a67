"""Rewards: the fast paths give exactly what the general (reference-shaped) paths give, on random inputs."""

from __future__ import annotations

import importlib.util
import json
import random
import re
from pathlib import Path
from types import ModuleType

import numpy as np

from regionreasoner.trainers.rewards.dense import SMALL_INT, dense_rewards, int_columns, int_rewards, matrix_total
from regionreasoner.trainers.rewards.matching import best_matching, best_total, pair_rewards
from regionreasoner.trainers.rewards.region_reasoner import STOP_WORDS, _keywords, score_region_reasoner

A = importlib.import_module("regionreasoner.trainers.rewards.accuracy")
C = importlib.import_module("regionreasoner.trainers.rewards.canonical")
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


def _row(rng: random.Random, scale: int = 1) -> tuple[int, ...]:
    offset = -(1 << 23) if scale > 1 << 8 else 0  # large values: toward -2**24 as well as +2**24
    x1, y1 = rng.randrange(-5, 200) * scale + offset, rng.randrange(-5, 200) * scale
    x2, y2 = x1 + rng.randrange(-3, 60) * scale, y1 + rng.randrange(-3, 60) * scale
    px = rng.randrange(min(x1, x2) - 5, max(x1, x2) + 6)
    py = rng.randrange(min(y1, y2) - 5, max(y1, y2) + 6)
    return (x1, y1, x2, y2, (x2 - x1 + 1) * (y2 - y1 + 1), px, py)


def test_int_pair_rewards_and_matching_equal_the_python_ones() -> None:
    rng = random.Random(5)
    for case in range(600):
        scale = (1, 20, 1 << 16)[case % 3]  # int32 (values of at most SMALL_INT), then int64
        dtype = np.int32 if scale == 1 else np.int64
        preds = [_row(rng, scale) for _ in range(rng.randint(1, 12))]
        truth = [_row(rng, scale) for _ in range(rng.randint(1, 12))]
        if rng.random() < 0.3:  # near copies: many matches
            preds = [(*t[:4], t[4], t[5] + rng.randint(-40, 40), t[6]) for t in truth][: len(preds)]
        if dtype == np.int32:
            assert all(abs(v) <= SMALL_INT for r in preds + truth for v in (*r[:4], *r[5:]))
        edges = pair_rewards(preds, truth)  # type: ignore[arg-type]
        columns = np.array([[r[k] for r in preds] for k in (0, 1, 2, 3, 5, 6)], dtype=dtype)
        matrix = int_rewards(columns, int_columns(truth, dtype)).T  # type: ignore[arg-type]
        assert sorted(zip(*matrix.nonzero(), matrix[matrix.nonzero()], strict=True)) == sorted(edges)
        expected = best_matching(edges)
        assert matrix_total(matrix) == matrix_total(matrix.T) == expected
        assert best_total(preds, truth) == expected  # type: ignore[arg-type]


def test_float_pair_rewards_equal_the_python_ones() -> None:
    rng = random.Random(6)
    for _ in range(400):
        preds = [_float_row(rng) for _ in range(rng.randint(1, 12))]
        truth = [_float_row(rng) for _ in range(rng.randint(1, 12))]
        if rng.random() < 0.3:  # near copies: many matches
            preds = [(*t[:5], t[5] + rng.choice([-30.0, -29.5, 0.25, 29.75]), t[6]) for t in truth][: len(preds)]
        edges = pair_rewards(preds, truth)
        matrix = dense_rewards(preds, np.array(truth, dtype=np.float64).T)
        assert sorted(zip(*matrix.nonzero(), matrix[matrix.nonzero()], strict=True)) == sorted(edges)
        assert matrix_total(matrix) == best_matching(edges)


def _float_row(rng: random.Random) -> tuple[float, ...]:
    x1, y1, x2, y2, _, px, py = _row(rng, rng.choice([1, 1 << 16]))
    x1, x2, px = (v + rng.choice([0.0, 0.5, 0.25, -0.3, 1e-9]) for v in (x1, x2, px))
    if rng.random() < 0.2:
        y1, y2 = float(y1), y2 + rng.choice([True, False, 0.1])
    return (x1, y1, x2, y2, (x2 - x1 + 1) * (y2 - y1 + 1), px, py)


def test_many_objects_score_as_the_general_path() -> None:
    rng = random.Random(9)
    truth_objs = [{"bbox_2d": list(_row(rng)[:4]), "point_2d": list(_row(rng)[5:])} for _ in range(125)]
    solution = json.dumps(truth_objs)
    for extra in ([1, 2], [1.5, 2], [True, 2]):  # ints (int32), floats, a boolean past the 120 cap
        objs = truth_objs[:60] + [{"bbox_2d": list(_row(rng)[:4]), "point_2d": [1, 2]}] * 69
        answer = json.dumps([*objs, {"bbox_2d": [1, 2, 3, 4], "point_2d": extra}])
        text = f"<think>ok, find it</think><answer>{answer}</answer>"
        truth = A.parse_truth(solution)
        data = A._decode(answer)
        assert score_region_reasoner("q", text, solution)["accuracy"] == A._accuracy_of(data, truth)
        assert score_region_reasoner("q", text, json.dumps(truth_objs[:3]))["accuracy"] == A._accuracy_of(
            data, A.parse_truth(json.dumps(truth_objs[:3]))
        )
    far = [{"bbox_2d": [v * 4000 for v in o["bbox_2d"]], "point_2d": o["point_2d"]} for o in truth_objs]  # int64
    answer = json.dumps(far[:100] + truth_objs[:30])
    truth = A.parse_truth(json.dumps(far))
    assert A.answer_rewards(answer, truth)[1] == A._accuracy_of(A._decode(answer), truth) > 0


def _canonical_text(rng: random.Random, n: int) -> str:
    """A long answer in the canonical form, with random spacing, values near the 7-digit cap and mutations."""
    sep, colon = rng.choice([(", ", ": "), (",", ":"), (", ", ":")])
    scale = rng.choice([1, 1, 1000, 10**6])
    objs = []
    for _ in range(n):
        box = sep.join(str(rng.randrange(-2 * scale, 9 * scale)) for _ in range(4))
        point = sep.join(str(rng.randrange(-scale, 9 * scale)) for _ in range(2))
        objs.append(f'{{"bbox_2d"{colon}[{box}]{sep}"point_2d"{colon}[{point}]}}')
    text = "[" + sep.join(objs) + "]"
    if rng.random() < 0.5:  # break it somewhere: JSON or not, canonical or not
        i = rng.randrange(len(text))
        text = (
            text[:i] + rng.choice(["", " ", "0", "-", "1", "e1", ".5", "\u0663", ",", "]", '"', "true"]) + text[i + 1 :]
        )
    return text


def test_canonical_reader_equals_json_loads() -> None:
    rng = random.Random(12)
    read = 0
    for _ in range(1500):
        text = _canonical_text(rng, rng.randint(1, 130))
        values = C.canonical_values(text)
        if values is None:
            continue
        read += 1
        data = json.loads(text)  # the reader accepts only what json.loads reads as canonical objects
        assert type(data) is list and all(list(o) == ["bbox_2d", "point_2d"] for o in data)
        expected = [[*o["bbox_2d"], *o["point_2d"]] for o in data]
        assert all(type(v) is int and abs(v) < A._LIMIT for row in expected for v in row)
        assert values.tolist() == expected, text
    assert read > 700


def test_long_canonical_answers_score_as_the_general_path() -> None:
    rng = random.Random(13)
    for _ in range(300):
        answer = _canonical_text(rng, rng.randint(30, 140))
        truth_objs = [
            {"bbox_2d": list(_row(rng)[:4]), "point_2d": list(_row(rng)[5:])} for _ in range(rng.randint(1, 125))
        ]
        truth = A.parse_truth(json.dumps(truth_objs))
        data = A._decode(answer)
        assert A.answer_rewards(answer, truth) == (A._format_of(data), A._accuracy_of(data, truth)), answer
