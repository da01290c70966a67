"""m-DPG: DPG-Bench's questions, 2x2 grids of four samples, a pluggable VQA model, ELLA's dependency rule.

``dpg_bench.csv`` has one row per question (proposition): ``item_id, text, keywords, proposition_id, dependency,
category_broad, category_detailed, tuple, question_natural_language``; ``dependency`` lists parent proposition ids
("0" for none, "1,2" for two).  Only the prompt is translated (neobabel.md §5.2): questions stay English.

Scoring (``compute_dpg_bench.py``): each tile of a prompt's 2x2 grid is asked every question; a question scores 1
when the answer is "yes"; then, in proposition order, a question whose parent scored 0 is set to 0 (in place, so a
zeroed parent zeroes its children in turn); tile score = mean over questions; prompt score = mean of the tiles;
DPG = mean over prompts (x100 in DPG-Bench's tables).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image

from regionreasoner.core.errors import InputError
from regionreasoner.evals.generation.embed import VQAModel
from regionreasoner.evals.generation.meta import LANGUAGE_NAMES
from regionreasoner.evals.generation.run import (
    DEFAULT_SEED,
    GenerationStats,
    ImageGenerator,
    generate_samples,
    progress_bar,
)

__all__ = [
    "DPG_COLUMNS",
    "DPGItem",
    "DPGQuestion",
    "DPGResult",
    "generate_dpg",
    "make_grid",
    "question_scores",
    "read_dpg_csv",
    "read_translations",
    "score_dpg",
    "score_tile",
    "split_grid",
    "write_dpg_csv",
]

DPG_COLUMNS: tuple[str, ...] = (
    "item_id",
    "text",
    "keywords",
    "proposition_id",
    "dependency",
    "category_broad",
    "category_detailed",
    "tuple",
    "question_natural_language",
)
"""The columns of DPG-Bench's ``dpg_bench.csv``, in its order."""


@dataclass(frozen=True)
class DPGQuestion:
    """One proposition of a prompt: its id, parents (none: empty), categories, tuple and English question."""

    proposition_id: int
    dependency: tuple[int, ...]
    category_broad: str
    category_detailed: str
    tuple: str
    question: str


@dataclass(frozen=True)
class DPGItem:
    """One DPG prompt: id (the grid's file stem), English text, keywords and its questions in proposition order."""

    item_id: str
    text: str
    keywords: str
    questions: tuple[DPGQuestion, ...]


def _dependency(text: str, where: str) -> tuple[int, ...]:
    try:
        parents = tuple(int(x) for x in str(text).replace(" ", "").split(",") if x)
    except ValueError as exc:
        raise InputError(f"{where}: dependency {text!r} is not a list of ids", hint='write "0" or "1,2"') from exc
    return tuple(p for p in parents if p != 0)


def read_dpg_csv(path: str | Path) -> list[DPGItem]:
    """The items of a DPG-Bench CSV, in file order (questions sorted by proposition id)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no DPG CSV at {p}", hint="pass DPG-Bench's dpg_bench.csv")
    rows: dict[str, list[dict[str, str]]] = {}
    with p.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in DPG_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{p} lacks the columns {missing}", hint=f"DPG-Bench's columns: {', '.join(DPG_COLUMNS)}")
        for row in reader:
            rows.setdefault(row["item_id"], []).append(row)
    items = []
    for item_id, group in rows.items():
        questions = []
        for row in group:
            where = f"{p.name}, item {item_id}"
            try:
                pid = int(row["proposition_id"])
            except ValueError as exc:
                raise InputError(f"{where}: proposition_id {row['proposition_id']!r}") from exc
            questions.append(
                DPGQuestion(
                    pid,
                    _dependency(row["dependency"], where),
                    row["category_broad"],
                    row["category_detailed"],
                    row["tuple"],
                    row["question_natural_language"],
                )
            )
        questions.sort(key=lambda q: q.proposition_id)
        items.append(DPGItem(item_id, group[0]["text"], group[0]["keywords"], tuple(questions)))
    if not items:
        raise InputError(f"{p} holds no questions")
    return items


def write_dpg_csv(path: str | Path, items: Sequence[DPGItem]) -> Path:
    """Write ``items`` as a DPG-Bench CSV (one row per question); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(DPG_COLUMNS)
        for item in items:
            for q in item.questions:
                dep = ",".join(str(d) for d in q.dependency) or "0"
                writer.writerow(
                    [
                        item.item_id,
                        item.text,
                        item.keywords,
                        q.proposition_id,
                        dep,
                        q.category_broad,
                        q.category_detailed,
                        q.tuple,
                        q.question,
                    ]
                )
    return p


def read_translations(folder: str | Path, language: str) -> dict[str, str]:
    """Translated prompts of ``language`` by item id, one prompt per file.

    Read from ``<folder>/<language>/<item_id>.txt`` or NeoBabel's ``<folder>/<name>-prompts/<item_id>.txt`` (the
    name as in :data:`LANGUAGE_NAMES`, e.g. ``dutch-prompts``).
    """
    root = Path(folder)
    for sub in (root / language, root / f"{LANGUAGE_NAMES.get(language, language)}-prompts"):
        if sub.is_dir():
            return {f.stem: f.read_text(encoding="utf-8").strip() for f in sorted(sub.glob("*.txt"))}
    raise InputError(f"no {language} prompts in {root}", hint=f"add {root / language}/<item_id>.txt files")


def make_grid(images: Sequence[Image.Image]) -> Image.Image:
    """Four same-size images as one 2x2 grid (row-major), twice their width and height."""
    if len(images) != 4 or len({im.size for im in images}) != 1:
        raise InputError(f"a grid needs four images of one size, got {len(images)}")
    w, h = images[0].size
    grid = Image.new("RGB", (2 * w, 2 * h))
    for k, im in enumerate(images):
        grid.paste(im.convert("RGB"), ((k % 2) * w, (k // 2) * h))
    return grid


def split_grid(grid: Image.Image) -> list[Image.Image]:
    """The four tiles of a 2x2 grid, row-major (``--pic-num 4`` of DPG-Bench's script)."""
    w, h = grid.width // 2, grid.height // 2
    return [grid.crop(((k % 2) * w, (k // 2) * h, (k % 2 + 1) * w, (k // 2 + 1) * h)) for k in range(4)]


def generate_dpg(
    generator: ImageGenerator,
    prompts: Mapping[str, str],
    out: str | Path,
    *,
    seed: int = DEFAULT_SEED,
    progress: bool = True,
    desc: str = "dpg",
) -> GenerationStats:
    """Four samples of each prompt (``{item_id: text}``, one seeded call) saved as ``out/<item_id>.png``; resumable."""
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    start, done, skipped = time.monotonic(), 0, 0
    bar = progress_bar(len(prompts), desc, progress)
    try:
        for item_id, text in prompts.items():
            path = root / f"{item_id}.png"
            if path.is_file():
                skipped += 1
            else:
                tmp = path.with_suffix(".part.png")
                make_grid(generate_samples(generator, text, 4, seed)).save(tmp)
                tmp.replace(path)
                done += 1
            bar.update(1)
    finally:
        bar.close()
    return GenerationStats(generated=done, skipped=skipped, seconds=time.monotonic() - start)


def question_scores(tile: Image.Image, questions: Sequence[DPGQuestion], vqa: VQAModel) -> dict[int, float]:
    """Each proposition's score on ``tile``: 1.0 for the answer "yes", then ELLA's dependency rule.

    The rule runs in place, in proposition order: a question whose parent scored 0 scores 0.
    """
    if not questions:
        raise InputError("a DPG item without questions", hint="check the CSV")
    scores = {q.proposition_id: float(vqa.answer(tile, q.question) == "yes") for q in questions}
    for q in questions:
        if any(scores.get(parent, 1.0) == 0 for parent in q.dependency):
            scores[q.proposition_id] = 0.0
    return scores


def score_tile(tile: Image.Image, questions: Sequence[DPGQuestion], vqa: VQAModel) -> float:
    """The tile's score: the mean of :func:`question_scores`."""
    scores = question_scores(tile, questions, vqa)
    return sum(scores.values()) / len(scores)


@dataclass(frozen=True)
class DPGResult:
    """One prompt's DPG result (a line of ``results.jsonl``)."""

    item_id: str
    score: float
    """Mean of the four tiles' scores, in [0, 1]."""
    tiles: tuple[float, ...]
    categories: dict[str, float]
    """Mean score of the questions per ``category_broad`` (after the dependency rule), over tiles."""


def _categories(tile_scores: list[dict[int, float]], questions: Sequence[DPGQuestion]) -> dict[str, float]:
    by: dict[str, list[float]] = {}
    for scores in tile_scores:
        for q in questions:
            by.setdefault(q.category_broad, []).append(scores[q.proposition_id])
    return {c: sum(v) / len(v) for c, v in by.items()}


def score_dpg(
    out: str | Path,
    items: Sequence[DPGItem],
    vqa: VQAModel,
    *,
    results: str | Path | None = None,
    progress: bool = True,
    desc: str = "score",
) -> list[DPGResult]:
    """Score the grids ``out/<item_id>.png`` of ``items`` (missing grids are skipped); resumable.

    New records are appended to ``results`` (default ``out/results.jsonl``); returns the records of these items.
    """
    root = Path(out)
    path = Path(results) if results is not None else root / "results.jsonl"
    known: dict[str, DPGResult] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                data = json.loads(line)
                known[data["item_id"]] = DPGResult(
                    data["item_id"], data["score"], tuple(data["tiles"]), data["categories"]
                )
    bar = progress_bar(len(items), desc, progress, "prompt")
    try:
        with path.open("a", encoding="utf-8") as sink:
            for item in items:
                grid_path = root / f"{item.item_id}.png"
                if item.item_id not in known and grid_path.is_file():
                    with Image.open(grid_path) as grid:
                        tiles = split_grid(grid.convert("RGB"))
                    tile_scores = [question_scores(tile, item.questions, vqa) for tile in tiles]
                    per_tile = tuple(sum(t.values()) / len(t) for t in tile_scores)
                    record = DPGResult(
                        item.item_id, sum(per_tile) / 4, per_tile, _categories(tile_scores, item.questions)
                    )
                    sink.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
                    sink.flush()
                    known[item.item_id] = record
                bar.update(1)
    finally:
        bar.close()
    return [known[i.item_id] for i in items if i.item_id in known]
