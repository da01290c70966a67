"""Rewards: parity with the reference code's values (fixtures), TRL's contract, the rubric, doctests, import cost."""

from __future__ import annotations

import doctest
import gzip
import importlib
import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from regionreasoner.core.geometry import Box, iou
from regionreasoner.trainers import rewards
from regionreasoner.trainers.rewards import (
    COMPONENTS,
    PAPER,
    RegionReasonerRubric,
    accuracy_reward,
    region_reasoner_reward,
    score_region_reasoner,
    score_seg_zero,
    score_vision_reasoner,
)
from regionreasoner.trainers.rewards.accuracy import _pair_rewards, _rows

DATA = Path(__file__).resolve().parents[1] / "data" / "rewards"
TOL = 1e-9
MODULES = sorted(
    "regionreasoner.trainers.rewards." + p.stem
    for p in (Path(rewards.__file__).parent).glob("*.py")
    if ">>>" in p.read_text()
)


def _rows_of(name: str) -> list[dict[str, Any]]:
    with gzip.open(DATA / name, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="module")
def region_rows() -> list[dict[str, Any]]:
    return _rows_of("official_region_reasoner.jsonl.gz")


def test_region_reasoner_parity(region_rows: list[dict[str, Any]]) -> None:
    assert len(region_rows) >= 3000
    worst: dict[str, float] = {}
    for row in region_rows:
        ours = score_region_reasoner(row["problem"], row["completion"], row["solution"])
        for key, value in row["rr"].items():
            worst[key] = max(worst.get(key, 0.0), abs(ours[key] - value))
    assert set(worst) == set(COMPONENTS)
    assert max(worst.values()) <= TOL, worst


def test_parsed_solution_scores_like_the_json_string(region_rows: list[dict[str, Any]]) -> None:
    for row in region_rows[:600]:
        try:
            parsed = json.loads(row["solution"])
        except ValueError:
            continue
        ours = score_region_reasoner(row["problem"], row["completion"], parsed)
        assert abs(ours["total"] - row["rr"]["total"]) <= TOL


def test_vision_reasoner_parity(region_rows: list[dict[str, Any]]) -> None:
    worst: dict[str, float] = {}
    for row in region_rows:
        ours = score_vision_reasoner(row["completion"], row["solution"])
        for key, value in row["vr"].items():
            worst[key] = max(worst.get(key, 0.0), abs(ours[key] - value))
    assert max(worst.values()) <= TOL, worst


def test_seg_zero_parity() -> None:
    rows = _rows_of("official_seg_zero.jsonl.gz")
    assert {r["strict"] for r in rows} == {True, False}
    for row in rows:
        ours = score_seg_zero(row["completion"], row["solution"], strict=row["strict"])
        for key, value in row["values"].items():
            assert abs(ours[key] - value) <= TOL, (key, row)


def test_fixture_exercises_every_case(region_rows: list[dict[str, Any]]) -> None:
    """The fixture covers the quirks the docs describe (else the parity test proves little)."""
    rr = [r["rr"] for r in region_rows]
    assert {v["focus"] for v in rr} >= {0.0, 0.2, 0.5, 0.8}
    assert {v["ref"] for v in rr} >= {0.0, 0.5, 1.0, 2.0}
    assert {v["non_repeat"] for v in rr} == {0.0, 1.0}
    assert len({v["accuracy"] for v in rr}) > 20
    assert any(r["completion"].count("bbox_2d") > 120 for r in region_rows)
    assert any(r["problem"] and r["rr"]["focus"] == 0.0 and "<focus>" in r["completion"] for r in region_rows)


def test_inlined_iou_is_core_geometry_iou() -> None:
    """The hot loop's IoU test is core.geometry.iou(inclusive=True) written out, on boxes that can hit."""
    boxes = [[10, 10, 109, 109], [12, 11, 110, 108], [60, 60, 200, 200], [10.5, 10, 109, 109.5], [0, 0, 0, 0]]
    truth = _rows(boxes, [[0, 0]] * len(boxes))
    assert isinstance(truth, list)
    for i, b in enumerate(boxes):
        pred = _rows([b], [[-1000, -1000]])
        assert isinstance(pred, list)
        hits = {j for _, j, _ in _pair_rewards(pred, truth)}
        for j, g in enumerate(boxes):
            l1 = sum(abs(x - y) for x, y in zip(b, g, strict=True)) / 4 < 10
            if not l1:
                assert (j in hits) == (iou(Box(*b), Box(*g), inclusive=True) > 0.5), (i, j)


def test_accuracy_quirks() -> None:
    gt = [{"bbox_2d": [10, 10, 109, 109], "point_2d": [50, 50]}]
    hit = {"bbox_2d": [10, 10, 109, 109], "point_2d": [50, 50]}
    truth = json.dumps(gt)

    def acc(answer: Any) -> float:
        return score_region_reasoner("q", f"<answer>{json.dumps(answer)}</answer>", truth)["accuracy"]

    assert acc([hit]) == 3.0
    assert acc([hit, hit]) == 1.5  # divided by max(#pred, #gt)
    assert acc([hit] * 130) == 3.0 / 120  # the 120-object cap
    assert acc([{**hit, "bbox_2d": [True] * 4}]) == 0.0  # numpy cannot subtract booleans
    assert acc([{**hit, "point_2d": [True, 50]}]) == 2.0  # True reads as 1: the point is outside the box
    assert acc([{**hit, "point_2d": None}]) == 0.0
    assert acc([]) == 0.0
    assert acc(hit) == 0.0  # a bare object is iterated by its keys
    outside = {"bbox_2d": [10, 10, 109, 109], "point_2d": [120, 50]}
    assert acc([outside]) == 2.0  # close to the truth point but outside its own box


def test_trl_contract_and_conversational() -> None:
    gt = '[{"bbox_2d": [10, 10, 109, 109], "point_2d": [50, 50]}]'
    text = f"<scene>The image shows a cup.</scene><think>find the cup</think><answer>{gt}</answer>"
    plain = region_reasoner_reward(["p"], [text], [[1, 2]], solution=[gt], problem=["the cup"], trainer_state=None)
    chat = region_reasoner_reward(
        [[{"role": "user", "content": "p"}]],
        [[{"role": "assistant", "content": text}]],
        None,
        solution=[gt],
        problem=["the cup"],
        log_extra=lambda *a: None,
    )
    assert plain == chat
    assert plain[0] == score_region_reasoner("the cup", text, gt)["total"]
    with pytest.raises(ValueError, match="one value per completion"):
        accuracy_reward(None, [text, text], solution=[gt])


def test_rubric_paper_preset_is_the_reference_total(region_rows: list[dict[str, Any]]) -> None:
    rows = region_rows[:500]
    logged: dict[str, list[float]] = {}
    totals = PAPER(
        None,
        [r["completion"] for r in rows],
        None,
        solution=[r["solution"] for r in rows],
        problem=[r["problem"] for r in rows],
        log_metric=lambda k, v: logged.setdefault(k, []).append(v),
    )
    assert totals == [r["rr"]["total"] for r in rows]  # bit for bit
    assert {k.split("/")[1] for k in logged} == set(COMPONENTS)  # every component, weight-0 ones included
    assert PAPER.weights["scene"] == 0.0


def test_rubric_weights_and_validation() -> None:
    rubric = RegionReasonerRubric(alpha=0.0, beta=2.0)
    s = score_region_reasoner(
        "x bbox=[1, 2, 3, 4]", "<scene>The image</scene><think>bbox=[1, 2, 3, 4] left</think>", "[]"
    )
    got = rubric.score("x bbox=[1, 2, 3, 4]", "<scene>The image</scene><think>bbox=[1, 2, 3, 4] left</think>", "[]")
    expected = s["tags"] + s["answer_format"] + s["accuracy"] + s["non_repeat"] + 2.0 * s["consistency"]
    assert got["total"] == pytest.approx(expected)
    assert rubric(None, ["x"], solution=[None]) == [None]
    assert pickle.loads(pickle.dumps(rubric)) == rubric
    with pytest.raises(ValueError, match="alpha"):
        RegionReasonerRubric(alpha=float("nan"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_every_public_reward_has_a_doctest() -> None:
    for name in rewards.__all__:
        obj = getattr(rewards, name)
        if callable(obj) and name.endswith(("_reward", "score_region_reasoner")):
            assert ">>>" in (obj.__doc__ or ""), name


def test_import_is_light() -> None:
    code = (
        "import sys; import regionreasoner.trainers.rewards as r; "
        "r.score_region_reasoner('q', '<answer>[]</answer>', '[]'); "
        "print(sorted(m for m in ('scipy', 'torch', 'transformers', 'trl') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
