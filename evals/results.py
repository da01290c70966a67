"""Per-turn result records: what a benchmark runner writes (JSON lines) and what reports read back.

One :class:`TurnResult` per scored turn.  Frames: every box and point is in **original-image pixels** (continuous
xyxy, see :mod:`regionreasoner.core.geometry`); mask counts are pixels of the original image.  Turn indices are
0-based, rounds 1-based (``round == turn + 1``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from regionreasoner.core.errors import InputError
from regionreasoner.core.geometry import Box, Point, as_box, as_point
from regionreasoner.core.types import Sections

__all__ = ["ResultsFormatError", "TurnResult", "read_results", "write_results"]

ValidBox = Annotated[Box, AfterValidator(as_box)]
ValidPoint = Annotated[Point, AfterValidator(as_point)]


class ResultsFormatError(InputError):
    """A results file (JSON lines of :class:`TurnResult`) is malformed; the message names the line and the fix."""


class TurnResult(BaseModel):
    """The score of one benchmark turn (one JSON line of a results file).

    ``box_iou``, ``hit``, ``intersection`` and ``union`` come from
    :func:`regionreasoner.evals.metrics.score_turn`; everything else is written by the runner.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    image_id: int | str = Field(description="image id of the benchmark item")
    dialogue_index: int = Field(ge=0, description="0-based position of the dialogue in the benchmark file")
    turn: int = Field(ge=0, description="0-based turn index within the dialogue")
    round: int = Field(ge=1, description="1-based round, always turn + 1")
    question: str = Field(description="the question as stored in the benchmark (placeholder included)")
    rendered_question: str = Field(description="the question the policy saw (placeholder filled)")
    context_from_turn: int | None = Field(default=None, description="0-based turn whose box filled the placeholder")
    context_source: Literal["pred", "gt"] | None = Field(
        default=None, description="'pred': first predicted box of that turn; 'gt': its ground-truth box (fallback)"
    )
    gt_box: ValidBox = Field(description="ground-truth box, original pixels")
    pred_boxes: list[ValidBox] = Field(default_factory=list, description="predicted boxes, original pixels")
    pred_points: list[ValidPoint] = Field(default_factory=list, description="predicted points, original pixels")
    status: Literal["ok", "failed"] = Field(description="'failed': no usable answer (see problems)")
    box_iou: float = Field(ge=0.0, le=1.0, description="max IoU of any predicted box with the GT box; 0 when none")
    hit: bool = Field(description="box_iou > 0.5 (the official binarised bbox_AP, i.e. Acc@0.5)")
    intersection: int = Field(ge=0, description="mask intersection in pixels")
    union: int = Field(ge=0, description="mask union in pixels")
    problems: list[str] = Field(default_factory=list, description="problem kinds of the turn (core ProblemKind)")
    latency_ms: float = Field(default=0.0, ge=0.0, description="wall time of the turn, milliseconds")
    generated_tokens: int = Field(default=0, ge=0)
    sections: Sections | None = Field(
        default=None,
        description="the turn's section texts (scene, focus, think, answer); None in files written before they were",
    )

    @model_validator(mode="after")
    def _consistent(self) -> TurnResult:
        if self.round != self.turn + 1:
            raise ValueError(f"round={self.round} but turn={self.turn}: round must be turn + 1")
        if self.intersection > self.union:
            raise ValueError(f"intersection={self.intersection} > union={self.union}: counts are swapped")
        if not math.isfinite(self.box_iou):
            raise ValueError("box_iou must be finite")
        if self.hit != (self.box_iou > 0.5):
            raise ValueError(f"hit={self.hit} disagrees with box_iou={self.box_iou}: hit means box_iou > 0.5")
        if (self.context_source is None) != (self.context_from_turn is None):
            raise ValueError("context_source and context_from_turn must be given together")
        return self

    @property
    def mask_iou(self) -> float:
        """``intersection / union``; 0 when the union is empty (the official gIoU rule)."""
        return self.intersection / self.union if self.union else 0.0


def write_results(path: str | Path, results: Iterable[TurnResult], *, append: bool = False) -> int:
    """Write results as JSON lines (one :class:`TurnResult` per line); returns how many were written."""
    count = 0
    with Path(path).open("a" if append else "w", encoding="utf-8") as fh:
        for result in results:
            fh.write(result.model_dump_json())
            fh.write("\n")
            count += 1
    return count


def read_results(path: str | Path) -> Iterator[TurnResult]:
    """Stream :class:`TurnResult` records from a JSON-lines file (blank lines are skipped).

    Raises :class:`ResultsFormatError` naming the line for anything that is not a valid record.
    """
    p = Path(path)
    if not p.is_file():
        raise ResultsFormatError(f"results file {p} does not exist", hint="pass the .jsonl file the runner wrote")
    with p.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield TurnResult.model_validate(json.loads(line))
            except (json.JSONDecodeError, ValidationError) as exc:
                first = str(exc).splitlines()[0:3]
                raise ResultsFormatError(
                    f"{p}:{number}: not a TurnResult record: {' '.join(first)}",
                    hint="each line must be one JSON object with the TurnResult fields (see docs/evaluation.md)",
                ) from exc
