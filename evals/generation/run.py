"""Generation folders as the official scripts write them, resumable, and GenEval scoring of such a folder.

m-GenEval (``benchmarking/geneval/generate.py``): ``<out>/<idx:05d>/metadata.jsonl`` (one JSON object) and
``<out>/<idx:05d>/samples/<k:05d>.png``, one sample per prompt by default, the seed set again for every prompt (so
prompt ``i`` gets the same seed in every language).  A prompt whose metadata file and samples all exist is skipped,
so an interrupted run resumes; metadata is written last.  Scores go to ``results.jsonl`` beside the samples, one
line per image, and a rerun scores only the images not yet there.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from regionreasoner.core.errors import InputError, ModelLoadError
from regionreasoner.evals.generation.geneval import ColourClassifier, GenEvalRules, ObjectDetector, evaluate_image
from regionreasoner.evals.generation.meta import TASKS, GenEvalPrompt

__all__ = [
    "DEFAULT_SEED",
    "GenerationStats",
    "ImageGenerator",
    "ImageResult",
    "TaskScores",
    "generate_geneval",
    "generate_samples",
    "progress_bar",
    "read_results",
    "sample_paths",
    "score_geneval",
    "summarise_geneval",
]

logger = logging.getLogger(__name__)

DEFAULT_SEED = 123456
"""The seed of NeoBabel's generation scripts."""


@runtime_checkable
class ImageGenerator(Protocol):
    """Text to images: what the suite needs of a generator (``regionreasoner.tools.generate.Generator`` is one)."""

    def generate(self, prompts: Sequence[str], *, seed: int | None = None) -> list[Image.Image]:
        """One PIL image per prompt; the same seed gives the same images."""
        ...


@dataclass(frozen=True)
class GenerationStats:
    """What a generation call did: prompts generated now, prompts found finished, wall seconds."""

    generated: int
    skipped: int
    seconds: float


def progress_bar(total: int, desc: str, enabled: bool, unit: str = "prompt") -> Any:
    """A tqdm bar on stderr (disabled when not ``enabled``)."""
    from tqdm import tqdm  # a dependency of transformers

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not enabled)


def sample_paths(folder: Path, samples: int) -> list[Path]:
    """``folder/samples/00000.png`` ... for ``samples`` images."""
    return [folder / "samples" / f"{k:05d}.png" for k in range(samples)]


def generate_samples(generator: ImageGenerator, prompt: str, samples: int, seed: int) -> list[Image.Image]:
    """``samples`` images of ``prompt`` in one seeded call; :class:`ModelLoadError` when the generator misbehaves."""
    images = generator.generate([prompt] * samples, seed=seed)
    if len(images) != samples or not all(isinstance(i, Image.Image) for i in images):
        raise ModelLoadError(
            f"the generator returned {len(images)} objects for {samples} prompts",
            hint="generate(prompts, seed=...) must return one PIL image per prompt",
        )
    return images


def generate_geneval(
    generator: ImageGenerator,
    prompts: Sequence[GenEvalPrompt],
    out: str | Path,
    *,
    seed: int = DEFAULT_SEED,
    samples: int = 1,
    progress: bool = True,
    desc: str = "geneval",
) -> GenerationStats:
    """Generate ``samples`` images per prompt into ``out`` in the official layout (module docstring); resumable."""
    root = Path(out)
    start, done, skipped = time.monotonic(), 0, 0
    bar = progress_bar(len(prompts), desc, progress)
    try:
        for index, meta in enumerate(prompts):
            folder = root / f"{index:05d}"
            paths = sample_paths(folder, samples)
            if (folder / "metadata.jsonl").is_file() and all(p.is_file() for p in paths):
                skipped += 1
            else:
                paths[0].parent.mkdir(parents=True, exist_ok=True)
                for image, path in zip(generate_samples(generator, meta.prompt, samples, seed), paths, strict=True):
                    image.convert("RGB").save(path)
                (folder / "metadata.jsonl").write_text(
                    json.dumps(meta.to_json(), ensure_ascii=False) + "\n", encoding="utf-8"
                )
                done += 1
            bar.update(1)
    finally:
        bar.close()
    return GenerationStats(generated=done, skipped=skipped, seconds=time.monotonic() - start)


@dataclass(frozen=True)
class ImageResult:
    """The GenEval verdict on one image (a line of ``results.jsonl``)."""

    index: int
    """The prompt's index (its folder name)."""
    sample: int
    tag: str
    prompt: str
    correct: bool
    reason: str


def read_results(path: str | Path) -> list[ImageResult]:
    """The records of a ``results.jsonl`` (none when the file does not exist)."""
    p = Path(path)
    if not p.is_file():
        return []
    out = []
    for number, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                out.append(ImageResult(**json.loads(line)))
            except (TypeError, json.JSONDecodeError) as exc:
                raise InputError(f"{p}:{number} is not a result record", hint="delete the file to score again") from exc
    return out


def _folders(root: Path) -> Iterator[tuple[int, Path]]:
    for folder in sorted(root.iterdir()):
        if folder.is_dir() and folder.name.isdigit() and (folder / "metadata.jsonl").is_file():
            yield int(folder.name), folder


def score_geneval(
    out: str | Path,
    detector: ObjectDetector,
    colours: ColourClassifier,
    *,
    rules: GenEvalRules | None = None,
    results: str | Path | None = None,
    progress: bool = True,
    desc: str = "score",
) -> list[ImageResult]:
    """Score every image of a generation folder with GenEval's rules; resumable.

    New records are appended to ``results`` (default ``out/results.jsonl``); returns all its records, old and new,
    ordered by (index, sample).
    """
    root = Path(out)
    if not root.is_dir():
        raise InputError(f"no generation folder at {root}", hint="generate the images first")
    path = Path(results) if results is not None else root / "results.jsonl"
    known = {(r.index, r.sample) for r in read_results(path)}
    todo = [(i, f, s) for i, f in _folders(root) for s in sorted((f / "samples").glob("*.png"))]
    bar = progress_bar(len(todo), desc, progress, "image")
    try:
        with path.open("a", encoding="utf-8") as sink:
            for index, folder, sample_path in todo:
                sample = int(sample_path.stem)
                if (index, sample) not in known:
                    meta = GenEvalPrompt.from_json(json.loads((folder / "metadata.jsonl").read_text("utf-8")))
                    with Image.open(sample_path) as image:
                        verdict = evaluate_image(image, meta, detector, colours, rules)
                    record = ImageResult(index, sample, meta.tag, meta.prompt, verdict.correct, verdict.reason)
                    sink.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
                    sink.flush()
                bar.update(1)
    finally:
        bar.close()
    return sorted(read_results(path), key=lambda r: (r.index, r.sample))


@dataclass(frozen=True)
class TaskScores:
    """GenEval accuracy per task (fraction of correct images), images per task, and the mean over tasks."""

    tasks: dict[str, float]
    counts: dict[str, int]
    overall: float
    """Mean of the task accuracies (``summary_scores.py``): each task weighs the same, whatever its size."""


def summarise_geneval(results: Iterable[ImageResult]) -> TaskScores:
    """Per-task accuracy and their unweighted mean; tasks without images are left out (:class:`InputError` if all)."""
    hits: dict[str, list[bool]] = {}
    for r in results:
        hits.setdefault(r.tag, []).append(r.correct)
    if not hits:
        raise InputError("no scored images", hint="generate and score images first")
    order = [t for t in TASKS if t in hits] + sorted(t for t in hits if t not in TASKS)
    tasks = {t: sum(hits[t]) / len(hits[t]) for t in order}
    return TaskScores(tasks=tasks, counts={t: len(hits[t]) for t in order}, overall=sum(tasks.values()) / len(tasks))
