"""Benchmark reports from result records: ``summary.json``, ``summary.md`` and ``rounds.png``.

JSON keeps fractions in [0, 1]; Markdown shows percentages with one decimal, laid out like the papers' tables
(rounds R1..Rk as columns, then the pooled "Avg").  The plot is rendered by matplotlib's Agg canvas through a bare
``Figure`` (no pyplot state), imported only when a plot is written.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

from regionreasoner.core.errors import DependencyMissingError
from regionreasoner.evals.metrics import DEFINITIONS, Summary, summarise
from regionreasoner.evals.results import ResultsFormatError, read_results

__all__ = [
    "ReportPaths",
    "plot_percent_lines",
    "plot_rounds",
    "report_from_results",
    "summary_markdown",
    "write_report",
]

logger = logging.getLogger(__name__)

_METRICS: tuple[tuple[str, str], ...] = (("acc50", "Acc@0.5"), ("giou", "gIoU"), ("ciou", "cIoU"))


class ReportPaths(NamedTuple):
    """The three files a report consists of."""

    json: Path
    markdown: Path
    plot: Path


def summary_markdown(summary: Summary, *, title: str = "RegionDial-Bench results") -> str:
    """A Markdown table: one column per round (R1..Rk) and "Avg", rows Acc@0.5, gIoU, cIoU (percent) and turns."""
    rows = [*summary.rounds, summary.avg]
    header = "| metric | " + " | ".join(r.label for r in rows) + " |"
    rule = "|---|" + "---|" * len(rows)
    lines = [f"# {title}", "", header, rule]
    for key, name in _METRICS:
        lines.append(f"| {name} | " + " | ".join(f"{100 * getattr(r, key):.1f}" for r in rows) + " |")
    lines.append("| turns | " + " | ".join(str(r.count) for r in rows) + " |")
    lines.append("| failed | " + " | ".join(str(r.failed) for r in rows) + " |")
    lines += ["", "How each number is computed (percentages, one decimal):", ""]
    lines += [f"- {text}" for text in DEFINITIONS.values()]
    return "\n".join(lines) + "\n"


def plot_percent_lines(
    path: str | Path, rounds: list[int], series: list[tuple[str, list[int], list[float]]], *, title: str
) -> Path:
    """Write a PNG of percentages over rounds, one line per ``(label, rounds, values)`` of ``series``; the path."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no global backend or figure registry is touched
    except ImportError as exc:
        raise DependencyMissingError(
            "matplotlib is needed to plot rounds", hint="pip install 'regionreasoner[eval]'"
        ) from exc
    p = Path(path)
    fig = Figure(figsize=(7, 4), dpi=100)
    ax = fig.subplots()
    for k, (label, xs, values) in enumerate(series):
        ax.plot(xs, values, marker="osd^v"[k % 5], label=label)
    ax.set_xticks(rounds, [f"R{r}" for r in rounds])
    ax.set_ylim(0, 100)
    ax.set_xlabel("round")
    ax.set_ylabel("percent")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(p, format="png")  # rendered by matplotlib's Agg canvas
    return p


def plot_rounds(summary: Summary, path: str | Path, *, title: str = "Metrics per round") -> Path:
    """Write a PNG with one line per metric (Acc@0.5, gIoU, cIoU, in percent) over rounds; returns the path."""
    rounds = [r.round for r in summary.rounds if r.round is not None]
    series = [
        (f"{name} (Avg {100 * getattr(summary.avg, key):.1f})", rounds, [100 * getattr(r, key) for r in summary.rounds])
        for key, name in _METRICS
    ]
    return plot_percent_lines(path, rounds, series, title=title)


def write_report(summary: Summary, out_dir: str | Path, *, title: str = "RegionDial-Bench results") -> ReportPaths:
    """Write ``summary.json``, ``summary.md`` and ``rounds.png`` into ``out_dir`` (created if missing)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "summary.json"
    json_path.write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
    md_path = out / "summary.md"
    md_path.write_text(summary_markdown(summary, title=title), encoding="utf-8")
    plot_path = plot_rounds(summary, out / "rounds.png", title=title)
    logger.info("report for %d turns written to %s", summary.turns, out)
    return ReportPaths(json_path, md_path, plot_path)


def report_from_results(
    results_path: str | Path, out_dir: str | Path, *, title: str | None = None
) -> tuple[Summary, ReportPaths]:
    """Re-summarise a JSON-lines results file (streamed) and write the report files."""
    summary = summarise(read_results(results_path))
    if summary.turns == 0:
        raise ResultsFormatError(f"{results_path} holds no results", hint="run the benchmark first, or pick the file")
    return summary, write_report(summary, out_dir, title=title or f"Results of {Path(results_path).name}")
