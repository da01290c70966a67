"""Reports of the generation suite: ``summary.json``, ``summary.md`` and one bar plot per language.

A :class:`ScoreTable` holds one row per language (and the unweighted mean over languages) and one column per
metric (GenEval's tasks and overall, DPG categories, embedders).  JSON keeps fractions in [0, 1]; Markdown shows
percent with one decimal (or cosines with three); plots are drawn through a bare matplotlib ``Figure`` (Agg canvas,
no pyplot state), imported only when a plot is written.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from regionreasoner.core.errors import DependencyMissingError, InputError

__all__ = ["ReportPaths", "ScoreTable", "mean_row", "plot_bars", "table_markdown", "write_report"]

logger = logging.getLogger(__name__)

MEAN = "mean"
"""The row name of the unweighted mean over languages."""


def mean_row(rows: Mapping[str, Mapping[str, float | None]], columns: Sequence[str]) -> dict[str, float | None]:
    """Per column, the unweighted mean over the rows that have a value (None when none has)."""
    out: dict[str, float | None] = {}
    for col in columns:
        values = [v for r in rows.values() if (v := r.get(col)) is not None]
        out[col] = sum(values) / len(values) if values else None
    return out


@dataclass(frozen=True)
class ScoreTable:
    """Scores by language (rows) and metric (columns), plus the mean over languages."""

    name: str
    """The benchmark: geneval, dpg, clc, css (file and plot names)."""
    title: str
    columns: tuple[str, ...]
    rows: dict[str, dict[str, float | None]]
    """``rows[language][column]``: a fraction in [0, 1] (or a cosine in [-1, 1]), None when not measured."""
    percent: bool = True
    """Show values as percent (accuracies) or as they are (cosines)."""
    counts: dict[str, int] = field(default_factory=dict)
    """Items scored per language (images, prompts, pairs)."""
    notes: tuple[str, ...] = ()
    """Sentences under the table: how each number is computed."""

    def __post_init__(self) -> None:
        if not self.rows:
            raise InputError(f"{self.name}: nothing was scored", hint="generate and score at least one language")

    @property
    def mean(self) -> dict[str, float | None]:
        """The unweighted mean over languages, per column."""
        return mean_row(self.rows, self.columns)

    def to_json(self) -> dict[str, object]:
        """The content of ``summary.json``."""
        return {
            "benchmark": self.name,
            "title": self.title,
            "columns": list(self.columns),
            "languages": self.rows,
            MEAN: self.mean,
            "counts": self.counts,
            "notes": list(self.notes),
        }


def _fmt(value: float | None, percent: bool) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f}" if percent else f"{value:.3f}"


def table_markdown(table: ScoreTable) -> str:
    """The table in Markdown: a row per language, then the mean; columns as in ``table.columns``."""
    unit = " (percent)" if table.percent else ""
    lines = [f"# {table.title}", "", "| language | " + " | ".join(table.columns) + " | n |"]
    lines.append("|---|" + "---|" * (len(table.columns) + 1))
    for lang, row in [*table.rows.items(), (MEAN, table.mean)]:
        n = str(table.counts.get(lang, "")) if lang != MEAN else str(sum(table.counts.values()))
        cells = " | ".join(_fmt(row.get(c), table.percent) for c in table.columns)
        lines.append(f"| {'**mean**' if lang == MEAN else lang} | {cells} | {n} |")
    lines += ["", f"Values{unit}; the mean row weighs every language the same."]
    lines += [f"- {note}" for note in table.notes]
    return "\n".join(lines) + "\n"


def plot_bars(
    path: str | Path, labels: Sequence[str], values: Sequence[float | None], *, title: str, percent: bool
) -> Path:
    """Write a PNG bar chart of ``values`` (None: no bar) labelled ``labels``; returns the path."""
    try:
        from matplotlib.figure import Figure  # no pyplot: no global backend or figure registry is touched
    except ImportError as exc:
        raise DependencyMissingError(
            "matplotlib is needed for plots", hint="pip install 'regionreasoner[eval]'"
        ) from exc
    p = Path(path)
    shown = [0.0 if v is None else (100 * v if percent else v) for v in values]
    fig = Figure(figsize=(max(4.0, 0.9 * len(labels) + 1.5), 3.6), dpi=100)
    ax = fig.subplots()
    bars = ax.bar(range(len(labels)), shown, color="#3b6ea8")
    ax.bar_label(bars, labels=[_fmt(v, percent) for v in values], fontsize=8)
    ax.set_xticks(range(len(labels)), list(labels), rotation=20, ha="right")
    ax.set_ylim(min(0.0, *shown), 110 if percent else 1.1)  # room for the labels above full bars; cosines may be < 0
    ax.set_yticks([0, 20, 40, 60, 80, 100] if percent else [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel("percent" if percent else "cosine")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(p, format="png")  # rendered by matplotlib's Agg canvas
    return p


class ReportPaths(NamedTuple):
    """The files a report consists of."""

    json: Path
    markdown: Path
    plots: tuple[Path, ...]
    """``plots/<name>_<language>.png`` per language, then ``plots/<name>_<first column>.png`` across languages."""


def write_report(table: ScoreTable, out: str | Path, *, extra: Mapping[str, object] | None = None) -> ReportPaths:
    """Write ``summary.json`` (with ``extra`` keys), ``summary.md`` and the plots into ``out``."""
    root = Path(out)
    (root / "plots").mkdir(parents=True, exist_ok=True)
    json_path = root / "summary.json"
    json_path.write_text(json.dumps({**table.to_json(), **(extra or {})}, indent=2, ensure_ascii=False) + "\n", "utf-8")
    md_path = root / "summary.md"
    md_path.write_text(table_markdown(table), encoding="utf-8")
    plots = [
        plot_bars(
            root / "plots" / f"{table.name}_{lang}.png",
            table.columns,
            [row.get(c) for c in table.columns],
            title=f"{table.title}: {lang}",
            percent=table.percent,
        )
        for lang, row in table.rows.items()
    ]
    head = table.columns[-1]
    plots.append(
        plot_bars(
            root / "plots" / f"{table.name}_languages.png",
            [*table.rows, MEAN],
            [*(row.get(head) for row in table.rows.values()), table.mean.get(head)],
            title=f"{table.title}: {head} per language",
            percent=table.percent,
        )
    )
    logger.info("%s report written to %s", table.name, root)
    return ReportPaths(json_path, md_path, tuple(plots))
