"""The synthetic-world report of a run: ``world.json``, ``world.md`` and ``world_rounds.png``.

:func:`report_world` scores a run folder against its benchmark folder (:func:`~regionreasoner.evals.world_scoring.
score_world`) and writes the three files: JSON keeps fractions in [0, 1]; Markdown shows a per-round table (R1..Rk,
then "All") and a per-language table in percent with one decimal; the plot draws per-round Acc@0.5 and citation
rate through a bare matplotlib ``Figure`` (Agg canvas), imported only when a plot is written.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import NamedTuple

from regionreasoner.evals.report import plot_percent_lines
from regionreasoner.evals.world_scoring import (
    WorldGoals,
    WorldSummary,
    check_goals,
    score_world,
)

__all__ = [
    "WorldGoals",
    "WorldReportPaths",
    "check_goals",
    "plot_world_rounds",
    "report_world",
    "score_world",
    "world_markdown",
    "world_tables",
    "write_world_report",
]

logger = logging.getLogger(__name__)


class WorldReportPaths(NamedTuple):
    """The three files of a world report."""

    json: Path
    markdown: Path
    plot: Path


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def world_tables(summary: WorldSummary) -> str:
    """The per-round table (rounds as columns, then "All") and the per-language table, in Markdown (percent)."""
    rows = [*summary.rounds, summary.all]
    lines = [
        "| metric | " + " | ".join(r.label for r in rows) + " |",
        "|---|" + "---|" * len(rows),
        "| Acc@0.5 | " + " | ".join(_pct(r.acc50) for r in rows) + " |",
        "| parse rate | " + " | ".join(_pct(r.parse_rate) for r in rows) + " |",
        "| citation rate | " + " | ".join(_pct(r.citation_rate) for r in rows) + " |",
        "| scene precision | " + " | ".join(_pct(r.scene_precision) for r in rows) + " |",
        "| turns | " + " | ".join(str(r.turns) for r in rows) + " |",
        "| citing turns | " + " | ".join(str(r.citing_turns) for r in rows) + " |",
        "",
        "| language | " + " | ".join(r.language for r in summary.languages) + " |",
        "|---|" + "---|" * len(summary.languages),
        "| Acc@0.5 | " + " | ".join(_pct(r.acc50) for r in summary.languages) + " |",
        "| turns | " + " | ".join(str(r.turns) for r in summary.languages) + " |",
    ]
    return "\n".join(lines) + "\n"


def world_markdown(summary: WorldSummary, *, title: str = "Synthetic world results") -> str:
    """``world.md``: a title, :func:`world_tables` and how each number is computed."""
    lines = [f"# {title}", "", world_tables(summary), "How each number is computed (percentages, one decimal):", ""]
    lines += [f"- {text}" for text in summary.definitions.values()]
    return "\n".join(lines) + "\n"


def plot_world_rounds(summary: WorldSummary, path: str | Path, *, title: str = "Synthetic world per round") -> Path:
    """Write a PNG of Acc@0.5 and citation rate (percent) over rounds; returns the path."""
    rounds = [r.round for r in summary.rounds if r.round is not None]
    series = [(f"Acc@0.5 (All {_pct(summary.all.acc50)})", rounds, [100 * r.acc50 for r in summary.rounds])]
    cited = [
        (r.round, 100 * r.citation_rate) for r in summary.rounds if r.round is not None and r.citation_rate is not None
    ]
    if cited:
        series.append(
            (f"citation rate (All {_pct(summary.all.citation_rate)})", [x for x, _ in cited], [y for _, y in cited])
        )
    return plot_percent_lines(path, rounds, series, title=title)


def write_world_report(
    summary: WorldSummary, out_dir: str | Path, *, title: str = "Synthetic world results"
) -> WorldReportPaths:
    """Write ``world.json``, ``world.md`` and ``world_rounds.png`` into ``out_dir`` (created if missing)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "world.json"
    json_path.write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
    md_path = out / "world.md"
    md_path.write_text(world_markdown(summary, title=title), encoding="utf-8")
    plot_path = plot_world_rounds(summary, out / "world_rounds.png", title=title)
    logger.info("world report for %d turns written to %s", summary.all.turns, out)
    return WorldReportPaths(json_path, md_path, plot_path)


def report_world(
    bench_dir: str | Path, results: str | Path, out_dir: str | Path, *, title: str = "Synthetic world results"
) -> tuple[WorldSummary, WorldReportPaths]:
    """Score ``results`` (a run's ``results.jsonl``) against ``bench_dir`` and write the report into ``out_dir``."""
    summary = score_world(bench_dir, results)
    return summary, write_world_report(summary, out_dir, title=title)
