"""Single-turn referring segmentation (RefCOCO, RefCOCO+, RefCOCOg) in the VisionReasoner dataset layout.

The VisionReasoner evaluation (reference §6.1) reads Hugging Face datasets whose records have the fields
``image, text, image_id, ann_id, mask, img_height, img_width, bbox (optional)``.  Those datasets cannot be
downloaded here, so this module reads an **export** of such records: a JSON list or JSON lines (``.jsonl``), one
object per referring expression::

    {"image": "images/COCO_train2014_000000000839.jpg",   # path, relative to the export file's folder or absolute
     "text": "the person in white",                       # the referring expression
     "image_id": 839, "ann_id": 12345,                    # ints or strings
     "mask": [[0, 1, ...], ...] or {"size": [h, w], "counts": "..."},   # GT mask, HxW 0/1 or COCO RLE
     "img_height": 480, "img_width": 640,                 # pixels; must equal the mask size
     "bbox": [x1, y1, x2, y2]}                            # optional GT box, original pixels, xyxy

Each record becomes a one-turn :class:`~regionreasoner.evals.regiondial.BenchDialogue`, so the RegionDial-Bench
runner and metrics score it unchanged.  Without ``bbox`` the GT box is the mask's tight box (as the later
VisionReasoner script derives it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from regionreasoner.core.errors import GeometryError
from regionreasoner.core.geometry import Box, as_box
from regionreasoner.core.masks import Rle, decode_rle, mask_to_box, rle_from_any
from regionreasoner.evals.regiondial import BenchDialogue, BenchmarkFormatError, BenchTurn

__all__ = ["RefcocoRecord", "load_refcoco", "load_refcoco_records", "refcoco_dialogues", "write_refcoco_records"]


def _to_rle(value: Any) -> Rle:
    try:
        return rle_from_any(value)
    except GeometryError as exc:
        raise ValueError(str(exc)) from exc


class RefcocoRecord(BaseModel):
    """One referring expression with its GT mask (and optionally box), in original-image pixels."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    image: str = Field(description="image path, relative to the export file's folder (or absolute)")
    text: str = Field(description="the referring expression")
    image_id: int | str
    ann_id: int | str
    mask: Annotated[Rle, BeforeValidator(_to_rle)] = Field(description="GT mask, HxW")
    img_height: int = Field(gt=0)
    img_width: int = Field(gt=0)
    bbox: Annotated[Box, AfterValidator(as_box)] | None = Field(default=None, description="GT box, xyxy")

    @model_validator(mode="after")
    def _mask_fits(self) -> RefcocoRecord:
        if tuple(self.mask.size) != (self.img_height, self.img_width):
            raise ValueError(
                f"mask size {tuple(self.mask.size)} differs from img_height x img_width "
                f"({self.img_height}, {self.img_width}); store the mask at the original image size"
            )
        return self

    def gt_box(self) -> Box:
        """``bbox`` when given, else the tight box of the mask; raises for an empty mask without ``bbox``."""
        if self.bbox is not None:
            return self.bbox
        box = mask_to_box(decode_rle(self.mask))
        if box is None:
            raise BenchmarkFormatError(
                f"record ann_id={self.ann_id!r}: the mask is empty and no bbox is given",
                hint="every referring record needs a target: add its bbox or fix the mask",
            )
        return box


def _records_raw(path: Path) -> Iterable[tuple[str, Any]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl" or not text.lstrip().startswith("["):
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    yield f"{path}:{number}", json.loads(line)
                except json.JSONDecodeError as exc:
                    raise BenchmarkFormatError(f"{path}:{number}: not JSON: {exc}", hint="one record per line") from exc
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BenchmarkFormatError(f"{path} is not valid JSON: {exc}", hint="check the file is complete") from exc
    for index, item in enumerate(data):
        yield f"{path} record {index}", item


def load_refcoco_records(path: str | Path) -> list[RefcocoRecord]:
    """Read a JSON / JSON-lines export of VisionReasoner RefCOCO records (layout in the module docstring).

    Relative ``image`` paths are resolved against the file's folder.  Raises :class:`BenchmarkFormatError` naming
    the record for missing fields, masks that do not match ``img_height x img_width`` and invalid boxes.
    """
    p = Path(path)
    if not p.is_file():
        raise BenchmarkFormatError(f"records file {p} does not exist", hint="pass the .json or .jsonl export")
    records: list[RefcocoRecord] = []
    for where, raw in _records_raw(p):
        try:
            record = RefcocoRecord.model_validate(raw)
        except ValidationError as exc:
            errors = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors()[:3])
            raise BenchmarkFormatError(
                f"{where}: {errors}", hint="see the record layout in regionreasoner.evals.refcoco"
            ) from exc
        if not Path(record.image).is_absolute():
            record = record.model_copy(update={"image": str(p.parent / record.image)})
        records.append(record)
    return records


def refcoco_dialogues(records: Sequence[RefcocoRecord]) -> list[BenchDialogue]:
    """Each record as a one-turn :class:`BenchDialogue` (question = text, GT box, mask and ann_id)."""
    return [
        BenchDialogue(
            image_id=r.image_id,
            image_path=r.image,
            turns=[BenchTurn(question=r.text, gt_boxes=[r.gt_box()], masks=r.mask, ann_ids=[r.ann_id])],
        )
        for r in records
    ]


def load_refcoco(path: str | Path) -> list[BenchDialogue]:
    """:func:`load_refcoco_records` then :func:`refcoco_dialogues`."""
    return refcoco_dialogues(load_refcoco_records(path))


def write_refcoco_records(path: str | Path, records: Sequence[RefcocoRecord]) -> Path:
    """Write records as JSON lines (masks as compressed RLE dicts); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as fh:
        for r in records:
            item = r.model_dump(mode="json", exclude_none=True)
            item["mask"] = {"size": list(r.mask.size), "counts": r.mask.counts}
            fh.write(json.dumps(item) + "\n")
    return p
