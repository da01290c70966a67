"""End to end: a source (synthetic world, VisionReasoner samples, RegionReasoner train JSON) -> a TrainingSet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.frames import FixedResizeFrame, Frame
from regionreasoner.core.prompts import get_prompt
from regionreasoner.trainers.data.dataset import TrainingSet
from regionreasoner.trainers.data.decompose import chain_rounds, decompose
from regionreasoner.trainers.data.feeding import DEFAULT_PROMPT, build_records
from regionreasoner.trainers.data.records import Dialogue, FeedMode, Source
from regionreasoner.trainers.data.sources import load_samples
from regionreasoner.trainers.data.synthetic import TraceStyle, build_synthetic

__all__ = ["SOURCES", "build_dialogues", "build_training_set", "synthetic_dataset"]

SOURCES: tuple[Source, ...] = ("synthetic", "visionreasoner", "regionreasoner")
"""The sources ``--from`` accepts."""


def build_dialogues(
    source: Source,
    *,
    input_path: str | Path | None = None,
    images_dir: str | Path | None = None,
    frame: Frame | None = None,
    count: int | None = None,
    seed: int = 0,
    style: TraceStyle = "full",
    language: str = "en",
    rounds: tuple[int, int] = (2, 5),
    sizes: tuple[tuple[int, int], ...] = ((320, 240),),
) -> list[Dialogue]:
    """Dialogues from ``source`` in ``frame`` (default 840x840).

    ``synthetic`` builds ``count`` dialogues (default 100) from ``seed``; the file sources read ``input_path`` (images
    relative to ``images_dir``, else to the file's folder) and keep the first ``count`` dialogues when it is given.
    """
    policy_frame = frame or FixedResizeFrame(840, 840)
    if source == "synthetic":
        return build_synthetic(
            count or 100, seed, policy_frame, size=sizes, rounds=rounds, style=style, language=language
        )
    if source not in SOURCES:
        raise ConfigError(f"unknown source {source!r}", hint=f"use one of {list(SOURCES)}")
    if input_path is None:
        raise ConfigError(f"--from {source} reads a file", hint="pass --input PATH (a .json or .jsonl of samples)")
    samples = list(load_samples(input_path, source, images_dir=images_dir))
    if source == "regionreasoner":
        dialogues = chain_rounds(samples, policy_frame)
    else:
        dialogues = [decompose(s, policy_frame) for s in samples]
    return dialogues[:count] if count is not None else dialogues


def build_training_set(
    source: Source,
    mode: FeedMode = "official",
    *,
    input_path: str | Path | None = None,
    images_dir: str | Path | None = None,
    frame: Frame | None = None,
    count: int | None = None,
    seed: int = 0,
    style: TraceStyle = "full",
    language: str = "en",
    rounds: tuple[int, int] = (2, 5),
    template: str = DEFAULT_PROMPT,
    sizes: tuple[tuple[int, int], ...] = ((320, 240),),
) -> TrainingSet:
    """:func:`build_dialogues` fed in ``mode`` (``official`` or ``multiturn``) as a :class:`TrainingSet`.

    ``style``, ``language`` and ``rounds`` shape synthetic dialogues; ``template`` names the prompt template.
    """
    dialogues = build_dialogues(
        source,
        input_path=input_path,
        images_dir=images_dir,
        frame=frame,
        count=count,
        seed=seed,
        style=style,
        language=language,
        rounds=rounds,
        sizes=sizes,
    )
    return TrainingSet(tuple(build_records(dialogues, mode, template=get_prompt(template))))


def synthetic_dataset(
    count: int = 100,
    seed: int = 0,
    mode: FeedMode = "official",
    *,
    frame: Frame | None = None,
    cache_dir: str | Path | None = None,
    style: TraceStyle = "full",
    language: str = "en",
    rounds: tuple[int, int] = (2, 5),
    template: str = DEFAULT_PROMPT,
    sizes: tuple[tuple[int, int], ...] = ((320, 240),),
) -> Any:
    """A ``datasets.Dataset`` of ``count`` synthetic dialogues fed in ``mode``, built in memory (no folder written).

    The same rows as ``regionreasoner-train data --from synthetic``; see :meth:`TrainingSet.to_dataset`.
    """
    training_set = build_training_set(
        "synthetic",
        mode,
        frame=frame,
        count=count,
        seed=seed,
        style=style,
        language=language,
        rounds=rounds,
        template=template,
        sizes=sizes,
    )
    return training_set.to_dataset(cache_dir=cache_dir)
