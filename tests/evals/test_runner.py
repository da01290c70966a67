"""The benchmark runner through the agent: oracle and wrong policies, both protocols, resuming, the CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from regionreasoner.agent.api import RegionAgent
from regionreasoner.core.errors import PolicyError
from regionreasoner.core.geometry import Box, Point
from regionreasoner.core.images import LoadedImage
from regionreasoner.core.masks import Rle, decode_rle
from regionreasoner.core.protocol import AnswerObject, format_action
from regionreasoner.evals.metrics import summarise
from regionreasoner.evals.regiondial import BenchDialogue, load_regiondial
from regionreasoner.evals.results import read_results
from regionreasoner.evals.runner import run_benchmark
from regionreasoner.policies.base import Completion, PolicyRequest
from regionreasoner.policies.scripted import ScriptedPolicy


def answer_text(box: Box, *, cites: bool) -> str:
    """A well-formed turn answering ``box`` in the pixel frame (corners rounded, point at the centre)."""
    b = tuple(round(v) for v in box)
    point = (round((b[0] + b[2]) / 2), round((b[1] + b[3]) / 2))
    obj = AnswerObject(box=b, point=point)  # type: ignore[arg-type]
    return format_action(scene="shapes", focus="the cited shape" if cites else None, think="look", objects=[obj])


def scripts(items: Sequence[BenchDialogue], box: Box | None = None) -> list[str]:
    """Turn texts in the order a sequential run asks them: the GT box of each turn, or ``box`` every time."""
    return [
        answer_text(box or turn.gt_box, cites=turn.context_from_turn is not None)
        for item in items
        for turn in item.turns
    ]


class OracleSegmenter:
    """An explicit fake: the GT mask of the turn whose (rounded) GT box is the predicted box."""

    def __init__(self, items: Sequence[BenchDialogue]) -> None:
        self.masks: dict[tuple[int, ...], Rle] = {}
        for item in items:
            for turn in item.turns:
                assert turn.masks is not None
                self.masks[tuple(round(v) for v in turn.gt_box)] = turn.masks

    def segment(self, image: LoadedImage, boxes: Sequence[Box], points: Sequence[Point | None]) -> list[Rle]:
        return [self.masks[tuple(round(v) for v in b)] for b in boxes]


@pytest.fixture
def items(synthetic_bench: Path) -> list[BenchDialogue]:
    return load_regiondial(synthetic_bench)[:5]


def run(agent: RegionAgent, items: list[BenchDialogue], bench: Path, out: Path, **kw: object) -> list[object]:
    run_benchmark(agent, items, images=bench.parent, results=out / "results.jsonl", name="syn", **kw)  # type: ignore[arg-type]
    return list(read_results(out / "results.jsonl"))


def test_oracle_scores_100_percent_on_every_round(
    items: list[BenchDialogue], synthetic_bench: Path, tmp_path: Path
) -> None:
    policy = ScriptedPolicy(scripts(items), frame="pixels")
    agent = RegionAgent(policy, memory=f"sqlite:///{tmp_path}/m.db", segmenter=OracleSegmenter(items))
    results = run(agent, items, synthetic_bench, tmp_path)
    assert len(results) == sum(len(i.turns) for i in items)
    summary = summarise(read_results(tmp_path / "results.jsonl"))
    assert len(summary.rounds) >= 3
    for row in [*summary.rounds, summary.avg]:
        assert (row.acc50, row.giou, row.ciou) == (1.0, 1.0, 1.0), row
    citing = [r for r in read_results(tmp_path / "results.jsonl") if r.context_from_turn is not None]
    assert citing and all(r.context_source == "pred" for r in citing)
    assert all("bbox=[" in r.rendered_question and "<box>" not in r.rendered_question for r in citing)


def test_a_fixed_wrong_box_scores_zero(items: list[BenchDialogue], synthetic_bench: Path, tmp_path: Path) -> None:
    corner = Box(0, 0, 1, 1)
    for item in items:  # the premise: no target covers the top-left pixel
        for turn in item.turns:
            assert turn.masks is not None and not decode_rle(turn.masks)[0, 0]
    agent = RegionAgent(ScriptedPolicy(scripts(items, corner), frame="pixels"), memory=f"sqlite:///{tmp_path}/m.db")
    run(agent, items, synthetic_bench, tmp_path)
    summary = summarise(read_results(tmp_path / "results.jsonl"))
    for row in [*summary.rounds, summary.avg]:
        assert (row.acc50, row.giou, row.ciou) == (0.0, 0.0, 0.0), row


def test_official_protocol_pastes_original_pixel_boxes(
    items: list[BenchDialogue], synthetic_bench: Path, tmp_path: Path
) -> None:
    texts = [answer_text(t.gt_box, cites=False) for i in items for t in i.turns]
    agent = RegionAgent(ScriptedPolicy(texts, frame="fixed:840x840"), memory=f"sqlite:///{tmp_path}/m.db")
    results = list(
        read_results(run(agent, items, synthetic_bench, tmp_path, protocol="official") and tmp_path / "results.jsonl")
    )
    citing = [r for r in results if r.context_from_turn is not None]
    for r in citing:
        assert "bbox=" not in r.rendered_question and "[" in r.rendered_question


class FailingAfter(ScriptedPolicy):
    """An explicit fake: a scripted policy whose server dies after ``n`` requests."""

    def __init__(self, turns: list[str], n: int) -> None:
        super().__init__(turns, frame="pixels")
        self.left = n

    def complete(self, request: PolicyRequest, *, on_delta: object = None) -> Completion:  # type: ignore[override]
        if self.left == 0:
            raise PolicyError("the server went away")
        self.left -= 1
        return super().complete(request)


def test_an_interrupted_run_resumes_without_duplicates(
    items: list[BenchDialogue], synthetic_bench: Path, tmp_path: Path
) -> None:
    texts = scripts(items)
    agent = RegionAgent(FailingAfter(texts, 13), memory=f"sqlite:///{tmp_path}/m.db")
    with pytest.raises(PolicyError):
        run(agent, items, synthetic_bench, tmp_path)
    partial = list(read_results(tmp_path / "results.jsonl"))
    assert 0 < len(partial) < sum(len(i.turns) for i in items)
    agent.close()
    # The rerun continues where the first stopped: the scripts of the turns already scored are skipped.
    agent = RegionAgent(ScriptedPolicy(texts[len(partial) :], frame="pixels"), memory=f"sqlite:///{tmp_path}/m.db")
    stats = run_benchmark(agent, items, images=synthetic_bench.parent, results=tmp_path / "results.jsonl", name="syn")
    assert stats.skipped == len(partial)
    results = list(read_results(tmp_path / "results.jsonl"))
    keys = [(r.dialogue_index, r.turn) for r in results]
    assert len(keys) == len(set(keys)) == sum(len(i.turns) for i in items)
    assert all(r.hit for r in results)


def test_refcoco_records_through_the_runner(tmp_path: Path) -> None:
    from regionreasoner.core.masks import encode_rle
    from regionreasoner.evals.refcoco import RefcocoRecord, load_refcoco, write_refcoco_records

    (tmp_path / "img").mkdir()
    records = []
    for i in range(3):
        mask = np.zeros((60, 80), dtype=bool)
        mask[10 + i : 30 + i, 20 : 50 + i] = True
        Image.fromarray(np.where(mask[..., None], 200, 30).astype(np.uint8).repeat(3, axis=2)).save(
            tmp_path / "img" / f"{i}.png"
        )
        records.append(
            RefcocoRecord(image=f"img/{i}.png", text=f"the block {i}", image_id=i, ann_id=100 + i,
                          mask=encode_rle(mask), img_height=60, img_width=80)
        )  # fmt: skip
    path = write_refcoco_records(tmp_path / "refs.jsonl", records)
    items = load_refcoco(path)
    agent = RegionAgent(ScriptedPolicy(scripts(items), frame="pixels"), memory=f"sqlite:///{tmp_path}/m.db")
    run_benchmark(agent, items, images=tmp_path, results=tmp_path / "out" / "results.jsonl", name="ref")
    summary = summarise(read_results(tmp_path / "out" / "results.jsonl"))
    assert summary.avg.count == 3 and summary.avg.acc50 == 1.0 and summary.avg.giou == 1.0


def test_cli_runs_a_tiny_model_end_to_end(
    synthetic_bench: Path, tiny_qwen25: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from regionreasoner.evals.cli import main

    out = tmp_path / "run"
    args = ["regiondial", "--data", str(synthetic_bench), "--out", str(out), "--model", str(tiny_qwen25)]
    assert main([*args, "--frame", "fixed:840x840", "--limit", "3", "--section-chars", "60", "--max-objects", "2"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    total = sum(len(i.turns) for i in load_regiondial(synthetic_bench)[:3])
    assert printed["turns"] == printed["scored_now"] == total
    assert 0.0 <= printed["acc50"] <= 1.0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["avg"]["count"] == total
    assert "| Acc@0.5 |" in (out / "summary.md").read_text()
    with Image.open(out / "rounds.png") as plot:
        assert plot.size[0] > 200
    # A second run finds everything done.
    assert main([*args, "--frame", "fixed:840x840", "--limit", "3", "--section-chars", "60"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["skipped"] == total
