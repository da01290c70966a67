"""Loaders of VisionReasoner-style single-turn samples and of RegionReasoner's train JSON.

Both read a ``.json`` file (a list of samples, or ``{"samples": [...]}`` as ``regionreasoner_train.json`` is laid out)
or a ``.jsonl`` file (one sample a line).  A sample has the fields of the released data
(shared/reference/regionreasoner.md §1.5, §7):

* ``problem``: VisionReasoner: the quoted referring sentences joined by `` and ``, ``"'a dog lying down' and 'the
  standing dog'"``; RegionReasoner: one round, possibly citing ``bbox=[x1, y1, x2, y2]``;
* ``solution``: a JSON string (or list) of ``{"bbox_2d": [x1, y1, x2, y2], "point_2d": [x, y]}``, integer pixels of
  the stored image (840x840 in the released sets);
* ``image``: a path (relative to ``images_dir``, else to the JSON file's folder), or ``{"bytes": ..., "path": ...}``
  as a Hugging Face export writes it (bytes base64 in JSON);
* optional ``id``, ``img_width``, ``img_height`` (the image size before the offline 840 resize), and ``dialogue_id``,
  ``round`` (0-based), which the official JSON written by :class:`~regionreasoner.trainers.data.TrainingSet` adds.

A malformed sample is an :class:`~regionreasoner.core.errors.InputError` naming the file, the sample and the fix.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from regionreasoner.core.errors import InputError
from regionreasoner.core.geometry import Box, Point
from regionreasoner.trainers.data.records import ImageInput, Source, SourceObject, SourceSample

__all__ = ["load_regionreasoner", "load_samples", "load_visionreasoner", "split_problem"]


def split_problem(problem: str) -> list[str]:
    """The referring phrases of a VisionReasoner problem, in order.

    The problem is ``"'" + "' and '".join(texts) + "'"``; a problem without the outer quotes is one phrase.

    >>> split_problem("'a dog lying down' and 'the standing dog'")
    ['a dog lying down', 'the standing dog']
    >>> split_problem("the man's hat")
    ["the man's hat"]
    """
    text = problem.strip()
    if len(text) >= 2 and text.startswith("'") and text.endswith("'"):
        return [p.strip() for p in text[1:-1].split("' and '")]
    return [text]


def _read_rows(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}", hint="pass --input a readable file") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text", hint="save the samples as UTF-8 JSON") from exc
    try:
        if path.suffix == ".jsonl":
            rows: Any = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            rows = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON: {exc.msg} at line {exc.lineno}", hint="fix the file") from exc
    if isinstance(rows, dict) and isinstance(rows.get("samples"), list):
        rows = rows["samples"]
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InputError(
            f"{path} holds no list of samples",
            hint='write a JSON list of {"problem", "solution", "image"} objects, or {"samples": [...]}',
        )
    return rows


def _image(value: Any, where: str, images_dir: Path) -> tuple[ImageInput, tuple[int, int]]:
    image: ImageInput
    try:
        if isinstance(value, str):
            image = (images_dir / value).expanduser()
            if not image.is_file():
                raise InputError(f"{where}: image {value} not found in {images_dir}", hint="pass --images the folder")
            with Image.open(image) as opened:
                return image, opened.size
        if isinstance(value, dict) and isinstance(value.get("bytes"), str):
            opened = Image.open(io.BytesIO(base64.b64decode(value["bytes"])))
            opened.load()
            return opened.convert("RGB"), opened.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"{where}: the image cannot be read ({exc})", hint="pass a PNG or JPEG file") from exc
    raise InputError(
        f"{where}: 'image' is {type(value).__name__}", hint="give a path or {'bytes': base64, 'path': ...}"
    )


def _solution(value: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: 'solution' is not JSON ({exc.msg})", hint="write the answer JSON list") from exc
    if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
        raise InputError(f"{where}: 'solution' is not a non-empty list of objects", hint='[{"bbox_2d": [...]}, ...]')
    return value


def _objects(items: list[dict[str, Any]], phrases: list[str] | None, where: str) -> tuple[SourceObject, ...]:
    out = []
    for i, item in enumerate(items):
        box, point = item.get("bbox_2d"), item.get("point_2d")
        try:
            b = Box(*(float(v) for v in box)) if isinstance(box, list) and len(box) == 4 else None
            p = Point(*(float(v) for v in point)) if isinstance(point, list) and len(point) == 2 else None
        except (TypeError, ValueError):
            b = None
        if b is None or not b.is_valid():
            raise InputError(
                f"{where}: object {i} has no valid bbox_2d ({box!r})", hint="write [x1, y1, x2, y2], x2>x1"
            )
        out.append(SourceObject(box=b, point=p, phrase=phrases[i] if phrases else None))
    return tuple(out)


def _size(row: dict[str, Any]) -> tuple[int, int] | None:
    w, h = row.get("img_width"), row.get("img_height")
    return (int(w), int(h)) if isinstance(w, int) and isinstance(h, int) else None


def load_samples(path: str | Path, source: Source, *, images_dir: str | Path | None = None) -> Iterator[SourceSample]:
    """Read ``path`` as samples of ``source`` (``visionreasoner`` or ``regionreasoner``), one by one.

    For ``visionreasoner`` the problem's quoted phrases are attached to the objects when their numbers match.
    Images are opened for their size only (pixels are read when a record is written).
    """
    file = Path(path).expanduser()
    folder = Path(images_dir).expanduser() if images_dir is not None else file.parent
    for index, row in enumerate(_read_rows(file)):
        sample_id = str(row.get("id", f"{file.stem}_{index}"))
        where = f"{file} sample {index} ({sample_id})"
        problem = row.get("problem")
        if not isinstance(problem, str) or not problem.strip():
            raise InputError(f"{where}: no 'problem' text", hint="give each sample a problem string")
        if "image" not in row:
            raise InputError(f"{where}: no 'image'", hint="give each sample an image path")
        items = _solution(row.get("solution"), where)
        phrases = split_problem(problem) if source == "visionreasoner" else None
        if phrases is not None and len(phrases) != len(items):
            phrases = None
        image, size = _image(row["image"], where, folder)
        yield SourceSample(
            id=sample_id,
            source=source,
            image=image,
            image_size=size,
            problem=problem,
            objects=_objects(items, phrases, where),
            original_size=_size(row),
            dialogue_id=str(row["dialogue_id"]) if row.get("dialogue_id") is not None else None,
            round=int(row["round"]) if isinstance(row.get("round"), int) else index,
        )


def load_visionreasoner(path: str | Path, *, images_dir: str | Path | None = None) -> list[SourceSample]:
    """VisionReasoner-style single-turn samples (multi-object problems ``'a' and 'b'``)."""
    return list(load_samples(path, "visionreasoner", images_dir=images_dir))


def load_regionreasoner(path: str | Path, *, images_dir: str | Path | None = None) -> list[SourceSample]:
    """RegionReasoner's train JSON: each sample one round, later rounds citing ``bbox=[...]`` in the question."""
    return list(load_samples(path, "regionreasoner", images_dir=images_dir))
