"""Rows <-> pydantic types: what a stored turn, region, image or dialogue looks like in each world.

Reads use lean Core selects of the columns below (no ORM identity map), so looking one region up costs one
indexed SELECT and one pydantic model.  Datetimes are stored timezone-aware and always come back in UTC.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeAlias

from sqlalchemy import Row

from regionreasoner.core.masks import Rle
from regionreasoner.core.types import (
    Citation,
    Dialogue,
    ImageInfo,
    ImageVersion,
    Problem,
    Region,
    RegionDraft,
    Sections,
    Turn,
    TurnDraft,
    TurnStatus,
    Usage,
    VersionDraft,
)
from regionreasoner.memory.models import CitationRow, DialogueRow, ImageRow, ImageVersionRow, RegionRow, TurnRow

__all__ = [
    "CITATION_COLUMNS",
    "DIALOGUE_COLUMNS",
    "IMAGE_COLUMNS",
    "REGION_COLUMNS",
    "REQUEST_FIELDS",
    "TURN_COLUMNS",
    "VERSION_COLUMNS",
    "AnyRow",
    "as_utc",
    "citation_values",
    "content_hash",
    "dialogue_from_row",
    "image_from_row",
    "image_values",
    "region_from_row",
    "region_name",
    "region_values",
    "turn_from_draft",
    "turn_from_row",
    "turn_values",
    "version_from_row",
    "version_values",
]

AnyRow: TypeAlias = Row[*tuple[Any, ...]]
"""A result row of any columns (read by attribute name)."""

COMMON_TURN_FIELDS = tuple(name for name in TurnDraft.model_fields if name not in ("regions", "versions", "index"))
"""Fields a TurnDraft and a Turn share (question, sections, citations, ..., key)."""

IMAGE_COLUMNS = (ImageRow.hash, ImageRow.width, ImageRow.height, ImageRow.parent_hash, ImageRow.created_at)
DIALOGUE_COLUMNS = tuple(DialogueRow.__table__.c)
TURN_COLUMNS = tuple(TurnRow.__table__.c)
REGION_COLUMNS = (*RegionRow.__table__.c, TurnRow.turn_index)
"""Region columns plus the index of the turn that found it (select them joined with ``turns``)."""
CITATION_COLUMNS = (*CitationRow.__table__.c, RegionRow.number.label("region_number"))
"""Citation columns plus the cited region's number (select them outer-joined with ``regions``)."""
VERSION_COLUMNS = (*ImageVersionRow.__table__.c, TurnRow.turn_index)
"""Image-version columns plus the index of the turn that made it (select them outer-joined with ``turns``)."""


def region_name(number: int) -> str:
    """``R<number>``."""
    return f"R{number}"


def as_utc(value: datetime) -> datetime:
    """A stored datetime in UTC (SQLite returns naive UTC values, Postgres aware ones)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


REQUEST_FIELDS = frozenset({"question", "rendered_question", "image", "frame", "referenced"})
"""The fields of a draft that say what was asked (the question, its rendering, the image, the frame, the regions it
cites): what :func:`content_hash` covers.  What the model made of it (sections, text, regions, citations, status,
problems, usage, model, trace id) is left out: a retried turn may sample another answer and take another time."""


def content_hash(draft: TurnDraft) -> str:
    """sha256 of the request a draft answers (:data:`REQUEST_FIELDS`), used to detect conflicting re-appends.

    A key (or explicit index) names one request: re-appending it with the same request returns the stored turn
    whatever the new answer says (the first answer stored wins); the same key for another question is a conflict.
    """
    return hashlib.sha256(draft.model_dump_json(include=set(REQUEST_FIELDS)).encode()).hexdigest()


def turn_values(
    draft: TurnDraft, *, dialogue_id: str, index: int, digest: str, created_at: datetime
) -> dict[str, object]:
    """Column values of the ``turns`` row for ``draft``."""
    return {
        "dialogue_id": dialogue_id,
        "turn_index": index,
        "key": draft.key,
        "content_hash": digest,
        "question": draft.question,
        "rendered_question": draft.rendered_question,
        "image_hash": draft.image,
        "frame": draft.frame,
        "scene": draft.sections.scene,
        "focus": draft.sections.focus,
        "think": draft.sections.think,
        "answer": draft.sections.answer,
        "raw_text": draft.raw_text,
        "status": draft.status.value,
        "problems": [p.model_dump(mode="json") for p in draft.problems],
        "usage": draft.usage.model_dump(mode="json"),
        "model": draft.model,
        "trace_id": draft.trace_id,
        "created_at": created_at,
    }


def region_values(
    region: RegionDraft, *, dialogue_id: str, number: int, turn_id: int, image_hash: str
) -> dict[str, object]:
    """Column values of the ``regions`` row for a draft region named ``R<number>``."""
    return {
        "dialogue_id": dialogue_id,
        "number": number,
        "turn_id": turn_id,
        "image_hash": image_hash,
        "x1": region.box.x1,
        "y1": region.box.y1,
        "x2": region.box.x2,
        "y2": region.box.y2,
        "point_x": region.point.x if region.point is not None else None,
        "point_y": region.point.y if region.point is not None else None,
        "mask_height": region.mask.size[0] if region.mask is not None else None,
        "mask_width": region.mask.size[1] if region.mask is not None else None,
        "mask_counts": region.mask.counts if region.mask is not None else None,
        "label": region.label,
        "score": region.score,
    }


def citation_values(draft: TurnDraft, *, turn_id: int, region_ids: dict[int, int]) -> list[dict[str, object]]:
    """Rows of ``citations`` for a draft: its referenced regions, then its <think> citations, in order.

    ``region_ids`` maps region numbers of the dialogue to their row ids.
    """
    rows: list[dict[str, object]] = []
    for position, name in enumerate(draft.referenced):
        rows.append(_citation(turn_id, "question", position, region_ids[int(name[1:])]))
    for position, cit in enumerate(draft.citations):
        region_id = region_ids[int(cit.region[1:])] if cit.region is not None else None
        row = _citation(turn_id, "think", position, region_id)
        row.update(
            x1=cit.box.x1,
            y1=cit.box.y1,
            x2=cit.box.x2,
            y2=cit.box.y2,
            model_box=list(cit.model_box),
            verified=cit.verified,
        )
        rows.append(row)
    return rows


def _citation(turn_id: int, kind: str, position: int, region_id: int | None) -> dict[str, object]:
    return {
        "turn_id": turn_id,
        "kind": kind,
        "position": position,
        "region_id": region_id,
        "x1": None,
        "y1": None,
        "x2": None,
        "y2": None,
        "model_box": None,
        "verified": None,
    }


def version_values(
    version: VersionDraft, *, dialogue_id: str, number: int, turn_id: int | None, created_at: datetime
) -> dict[str, object]:
    """Column values of the ``image_versions`` row for version ``number`` of a dialogue."""
    return {
        "dialogue_id": dialogue_id,
        "number": number,
        "image_hash": version.image,
        "parent_hash": version.parent,
        "turn_id": turn_id,
        "tool": version.tool,
        "prompt": version.prompt,
        "region_number": int(version.region[1:]) if version.region is not None else None,
        "created_at": created_at,
    }


def image_values(image_hash: str, *, dialogue_id: str, number: int, turn_id: int | None) -> dict[str, object]:
    """Column values (``created_at`` aside) of a version no tool made: a starting image, or one a caller sent."""
    return {
        "dialogue_id": dialogue_id,
        "number": number,
        "image_hash": image_hash,
        "parent_hash": None,
        "turn_id": turn_id,
        "tool": None,
        "prompt": None,
        "region_number": None,
    }


def version_from_row(row: AnyRow) -> ImageVersion:
    """An ImageVersion from a row of :data:`VERSION_COLUMNS`."""
    return ImageVersion(
        number=row.number,
        dialogue_id=row.dialogue_id,
        image=row.image_hash,
        parent=row.parent_hash,
        turn=row.turn_index,
        tool=row.tool,
        prompt=row.prompt,
        region=region_name(row.region_number) if row.region_number is not None else None,
        created_at=as_utc(row.created_at),
    )


def turn_from_draft(
    draft: TurnDraft,
    *,
    dialogue_id: str,
    index: int,
    first_number: int,
    created_at: datetime,
    first_version: int = 1,
) -> Turn:
    """The Turn that storing ``draft`` produces: its regions named from ``R<first_number>`` on, in answer order.

    Its tool-made image versions are numbered from ``first_version`` on.
    """
    regions = [
        Region(
            id=region_name(first_number + i),
            dialogue_id=dialogue_id,
            turn=index,
            image=draft.image,
            box=r.box,
            point=r.point,
            mask=r.mask,
            label=r.label,
            score=r.score,
        )
        for i, r in enumerate(draft.regions)
    ]
    versions = [
        ImageVersion(
            number=first_version + i,
            dialogue_id=dialogue_id,
            turn=index,
            created_at=created_at,
            **v.model_dump(),
        )
        for i, v in enumerate(draft.versions)
    ]
    common = {name: getattr(draft, name) for name in COMMON_TURN_FIELDS}
    return Turn(
        **common, index=index, dialogue_id=dialogue_id, regions=regions, versions=versions, created_at=created_at
    )


def region_from_row(row: AnyRow) -> Region:
    """A Region from a row of :data:`REGION_COLUMNS`."""
    mask = None
    if row.mask_counts is not None:
        mask = Rle(size=(row.mask_height, row.mask_width), counts=row.mask_counts)
    return Region(
        id=region_name(row.number),
        dialogue_id=row.dialogue_id,
        turn=row.turn_index,
        image=row.image_hash,
        box=(row.x1, row.y1, row.x2, row.y2),
        point=(row.point_x, row.point_y) if row.point_x is not None else None,
        mask=mask,
        label=row.label,
        score=row.score,
    )


def turn_from_row(
    row: AnyRow, regions: Sequence[Region], citations: Sequence[AnyRow], versions: Sequence[ImageVersion] = ()
) -> Turn:
    """A Turn from a row of :data:`TURN_COLUMNS`, its regions, citation rows and tool-made image versions."""
    referenced = [region_name(c.region_number) for c in citations if c.kind == "question"]
    cited = [
        Citation(
            model_box=tuple(c.model_box),
            box=(c.x1, c.y1, c.x2, c.y2),
            region=region_name(c.region_number) if c.region_number is not None else None,
            verified=bool(c.verified),
        )
        for c in citations
        if c.kind == "think"
    ]
    return Turn(
        index=row.turn_index,
        dialogue_id=row.dialogue_id,
        key=row.key,
        question=row.question,
        rendered_question=row.rendered_question,
        image=row.image_hash,
        frame=row.frame,
        sections=Sections(scene=row.scene, focus=row.focus, think=row.think, answer=row.answer),
        raw_text=row.raw_text,
        referenced=referenced,
        citations=cited,
        status=TurnStatus(row.status),
        problems=[Problem.model_validate(p) for p in row.problems],
        usage=Usage.model_validate(row.usage),
        model=row.model,
        trace_id=row.trace_id,
        regions=list(regions),
        versions=list(versions),
        created_at=as_utc(row.created_at),
    )


def image_from_row(row: AnyRow) -> ImageInfo:
    """An ImageInfo from a row of :data:`IMAGE_COLUMNS`."""
    return ImageInfo(
        hash=row.hash,
        width=row.width,
        height=row.height,
        parent=row.parent_hash,
        created_at=as_utc(row.created_at),
    )


def dialogue_from_row(row: AnyRow, turns: Sequence[Turn]) -> Dialogue:
    """A Dialogue from a row of :data:`DIALOGUE_COLUMNS` and its turns in order."""
    return Dialogue(
        id=row.id,
        image=row.image_hash,
        created_at=as_utc(row.created_at),
        title=row.title,
        owner=row.owner,
        turns=list(turns),
    )
