import argparse
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from regionreasoner.core.errors import RegionReasonerError
from regionreasoner.core.masks import decode_rle
from regionreasoner.evals.cli import SUBCOMMANDS, Subcommand, main, register
from regionreasoner.evals.metrics import Summary, score_turn
from regionreasoner.evals.regiondial import load_regiondial
from regionreasoner.evals.report import report_from_results, summary_markdown, write_report
from regionreasoner.evals.results import ResultsFormatError, TurnResult, read_results, write_results

# The official question files sit next to the checkout on development machines; CI clones only the project.
OFFICIAL = Path(os.environ.get("REGIONDIAL_DIR", Path(__file__).resolve().parents[3] / "shared/data/regiondial"))
needs_official = pytest.mark.skipif(
    not (OFFICIAL / "refcocog.json").is_file(),
    reason=f"official RegionDial-Bench question files not present at {OFFICIAL} (not part of the project)",
)


def _results(bench: Path) -> list[TurnResult]:
    """Perfect answers on even dialogues, failed turns (no box) on odd ones."""
    out = []
    for index, dialogue in enumerate(load_regiondial(bench)):
        for t, turn in enumerate(dialogue.turns):
            assert turn.masks is not None
            height, width = turn.masks.size
            boxes = [turn.gt_box] if index % 2 == 0 else []
            s = score_turn(turn.gt_box, turn.masks, boxes, decode_rle(turn.masks), (width, height))
            out.append(
                TurnResult(
                    image_id=dialogue.image_id,
                    dialogue_index=index,
                    turn=t,
                    round=t + 1,
                    question=turn.question,
                    rendered_question=turn.question,
                    context_from_turn=turn.context_from_turn,
                    context_source=None if turn.context_from_turn is None else "gt",
                    gt_box=turn.gt_box,
                    pred_boxes=boxes,
                    status="ok" if boxes else "failed",
                    box_iou=s.box_iou,
                    hit=s.hit,
                    intersection=s.intersection,
                    union=s.union,
                    problems=[] if boxes else ["missing_tag"],
                )
            )
    return out


def test_report_files_are_written_and_parse(tmp_path: Path, synthetic_bench: Path) -> None:
    results = _results(synthetic_bench)
    path = tmp_path / "results.jsonl"
    assert write_results(path, results) == len(results)
    assert list(read_results(path)) == results
    summary, paths = report_from_results(path, tmp_path / "report")
    assert summary == Summary.model_validate_json(paths.json.read_text())
    hits = sum(r.hit for r in results)
    assert summary.avg.acc50 == pytest.approx(hits / len(results))
    assert summary.avg.failed == len(results) - hits
    markdown = paths.markdown.read_text()
    labels = [r.label for r in summary.rounds]
    assert f"| metric | {' | '.join(labels)} | Avg |" in markdown
    assert (
        f"| Acc@0.5 | {' | '.join(f'{100 * r.acc50:.1f}' for r in summary.rounds)} | {100 * summary.avg.acc50:.1f} |"
        in markdown
    )
    assert "pooled over all turns" in markdown and "I = 0, U = |GT mask|" in markdown
    with Image.open(paths.plot) as image:
        assert image.format == "PNG" and image.size[0] > 100


def test_markdown_uses_percent_with_one_decimal(tmp_path: Path) -> None:
    summary = Summary.model_validate(
        {
            "rounds": [_row("R1", 1, 2, 0.5, 0.33333, 0.25)],
            "avg": _row("Avg", None, 2, 0.5, 0.33333, 0.25),
        }
    )
    text = summary_markdown(summary)
    assert "| Acc@0.5 | 50.0 | 50.0 |" in text and "| gIoU | 33.3 | 33.3 |" in text and "| turns | 2 | 2 |" in text
    paths = write_report(summary, tmp_path)
    assert json.loads(paths.json.read_text())["avg"]["giou"] == 0.33333  # fractions in JSON


def _row(label: str, round_: int | None, count: int, acc: float, giou: float, ciou: float) -> dict[str, object]:
    return {
        "label": label,
        "round": round_,
        "count": count,
        "acc50": acc,
        "giou": giou,
        "ciou": ciou,
        "mean_box_iou": acc,
        "failed": 0,
        "intersection": 1,
        "union": 4,
        "mask_pass_rates": {},
    }


def test_results_reader_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    good = _row("x", 1, 1, 1, 1, 1)  # not a TurnResult at all
    path.write_text("\n" + json.dumps(good) + "\n")
    with pytest.raises(ResultsFormatError, match=r"r.jsonl:2: not a TurnResult"):
        list(read_results(path))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ResultsFormatError, match="holds no results"):
        report_from_results(empty, tmp_path / "out")


def test_cli_stats_synthetic_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synthetic", "--out", str(tmp_path / "bench"), "--images", "3", "--seed", "2"]) == 0
    written = json.loads(capsys.readouterr().out)
    bench = Path(written["path"])
    assert bench.is_file() and written["images"] == 3 and (tmp_path / "bench" / "images" / "3.png").is_file()
    assert main(["stats", str(bench)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["images"] == 3 and stats["turns"] == sum(stats["turns_per_round"]) == written["turns"]
    results = tmp_path / "results.jsonl"
    write_results(results, _results(bench))
    assert main(["report", str(results), "--out", str(tmp_path / "report")]) == 0
    reported = json.loads(capsys.readouterr().out)
    assert reported["turns"] == stats["turns"] and len(reported["files"]) == 3
    assert main(["stats", str(tmp_path / "absent.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


@needs_official
def test_cli_stats_on_the_official_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", str(OFFICIAL / "refcocog.json")]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["images"], stats["turns"], stats["turns_citing"]) == (1580, 4115, 2491)
    assert stats["turns_per_round"] == [1580, 1580, 568, 269, 81, 28, 7, 1, 1]
    assert main(["stats", "--strict", str(OFFICIAL / "refcocog.json")]) == 2
    assert "image_path" in capsys.readouterr().err


def test_registering_a_run_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--n", type=int, default=1)

    def run(args: argparse.Namespace) -> int:
        print(json.dumps({"n": args.n}))
        return 0

    sub = Subcommand("a test run", add, run)
    register("dummy-run", sub)
    try:
        assert main(["dummy-run", "--n", "3"]) == 0
        assert json.loads(capsys.readouterr().out) == {"n": 3}
        with pytest.raises(RegionReasonerError, match="already registered"):
            register("dummy-run", Subcommand("other", add, run))
    finally:
        SUBCOMMANDS.pop("dummy-run")
