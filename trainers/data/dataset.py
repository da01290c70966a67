"""A built training set: the official JSON, a ``datasets.Dataset`` that TRL reads, and both written to a folder.

Columns of :meth:`TrainingSet.to_dataset` (one row per round):

=====================  ==========================================================================================
``prompt``             conversational messages, ``{"role", "content": [{"type": "image"}?, {"type": "text", ...}]}``
                       (one image placeholder, in the first user message)
``image``              ``datasets.Image``: the image in the policy's size (840x840 for ``fixed:840x840``)
``problem``            the round's question, with the reference as ``bbox=[...]`` (what the rewards read)
``solution``           the official answer JSON string, policy frame
``completion``         the ground-truth assistant message (only when every round has a trace: synthetic data)
``id``, ``dialogue_id``, ``round`` (0-based), ``mode``, ``source``, ``frame``
``reference``          the cited box (policy frame) or None; ``relation`` its word (``left_of``) or None;
                       ``context_from_round`` the cited round (0-based) or None
``img_width``, ``img_height``  the image size the annotations were first made on
=====================  ==========================================================================================

GRPOTrainer (TRL 1.x) takes ``image`` as one image per prompt and fills the ``{"type": "image"}`` placeholder with it
(``prepare_multimodal_messages``); SFTTrainer's prompt-completion path does the same.  ``datasets`` is imported only
when a dataset is built (it is in the ``train`` extra).
"""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from regionreasoner.core.errors import ConfigError, InputError
from regionreasoner.trainers.data.records import ImageInput, Message, TrainRecord

__all__ = [
    "DATASET_DIR",
    "OFFICIAL_JSON",
    "SavedSet",
    "TrainingSet",
    "dataset_features",
    "load_saved_dataset",
    "policy_image",
]

OFFICIAL_JSON = "train.json"
"""File name of the official JSON under the output folder."""
DATASET_DIR = "dataset"
"""Folder name of the saved ``datasets.Dataset`` under the output folder."""


def policy_image(image: ImageInput, size: tuple[int, int]) -> Image.Image:
    """The image as the policy sees it: RGB, resized (bilinear, as the policy resizes at inference) to ``size``."""
    if isinstance(image, Path):
        try:
            with Image.open(image) as opened:
                rgb = opened.convert("RGB")
        except OSError as exc:
            raise InputError(f"cannot read the image {image}: {exc}", hint="check the --images folder") from exc
    else:
        rgb = image.convert("RGB")
    return rgb if rgb.size == size else rgb.resize(size, Image.Resampling.BILINEAR)


def _encoded(image: ImageInput, size: tuple[int, int]) -> tuple[bytes, str]:
    """Bytes and suffix of the policy image: a file already of that size is kept as is, else PNG."""
    if isinstance(image, Path):
        with Image.open(image) as opened:
            if opened.size == size and opened.mode == "RGB" and opened.format in ("PNG", "JPEG"):
                return image.read_bytes(), ".png" if opened.format == "PNG" else ".jpg"
    buffer = io.BytesIO()
    policy_image(image, size).save(buffer, format="PNG")
    return buffer.getvalue(), ".png"


def _messages(messages: Sequence[Message] | None) -> list[dict[str, object]] | None:
    return None if messages is None else [m.to_dict() for m in messages]


def dataset_features(with_completion: bool) -> Any:
    """The ``datasets.Features`` of :meth:`TrainingSet.to_dataset` (imports ``datasets``)."""
    from datasets import Features, List, Value
    from datasets import Image as ImageFeature

    message = {"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})}
    columns: dict[str, Any] = {
        "id": Value("string"),
        "dialogue_id": Value("string"),
        "round": Value("int32"),
        "mode": Value("string"),
        "source": Value("string"),
        "frame": Value("string"),
        "prompt": List(message),
        "image": ImageFeature(),
        "problem": Value("string"),
        "solution": Value("string"),
        "reference": List(Value("int32")),
        "relation": Value("string"),
        "context_from_round": Value("int32"),
        "img_width": Value("int32"),
        "img_height": Value("int32"),
    }
    if with_completion:
        columns["completion"] = List(message)
    return Features(columns)


@dataclass(frozen=True)
class SavedSet:
    """What :meth:`TrainingSet.save` wrote."""

    official_json: Path
    dataset: Path | None
    images: Path
    records: int
    dialogues: int


@dataclass(frozen=True, eq=False)
class TrainingSet:
    """Records of one build (one feeding mode), in order; rounds of a dialogue are consecutive."""

    records: tuple[TrainRecord, ...]

    def __post_init__(self) -> None:
        if not self.records:
            raise ConfigError("a TrainingSet needs at least one record: the source gave no sample")
        modes = {r.mode for r in self.records}
        if len(modes) > 1:
            raise ConfigError(f"records of several feeding modes {sorted(modes)}: build one set per mode")

    @property
    def has_completions(self) -> bool:
        """True when every record has a ground-truth completion (SFT can use the set)."""
        return all(r.completion is not None for r in self.records)

    def image_names(self) -> dict[str, str]:
        """Dialogue id -> file stem under ``images/`` (ids made file-safe and unique)."""
        names: dict[str, str] = {}
        taken: set[str] = set()
        for r in self.records:
            if r.dialogue_id in names:
                continue
            stem = re.sub(r"[^A-Za-z0-9._-]", "_", r.dialogue_id) or "image"
            unique, n = stem, 1
            while unique in taken:
                n += 1
                unique = f"{stem}_{n}"
            taken.add(unique)
            names[r.dialogue_id] = unique
        return names

    def to_official_json(self, image_paths: dict[str, str] | None = None) -> dict[str, list[dict[str, object]]]:
        """``{"samples": [...]}`` as ``regionreasoner_train.json`` is laid out: one independent sample per round.

        Fields: ``id``, ``problem``, ``solution`` (JSON string, policy frame), ``image`` (path relative to the output
        folder: ``image_paths`` by dialogue id, default ``images/<name>.png``), ``img_height``, ``img_width``, plus
        ``dialogue_id``, ``round`` and ``context_from_round`` (0-based) so that dialogues can be rebuilt.
        """
        names = self.image_names()
        samples: list[dict[str, object]] = []
        for r in self.records:
            width, height = r.original_size or r.image_size
            path = (image_paths or {}).get(r.dialogue_id, f"images/{names[r.dialogue_id]}.png")
            samples.append(
                {
                    "id": r.id,
                    "problem": r.problem,
                    "solution": r.solution,
                    "image": path,
                    "img_height": height,
                    "img_width": width,
                    "dialogue_id": r.dialogue_id,
                    "round": r.round,
                    "context_from_round": r.context_from_round,
                }
            )
        return {"samples": samples}

    def _rows(self, images: dict[str, str], with_completion: bool) -> Iterator[dict[str, object]]:
        last: tuple[str, bytes] | None = None
        for r in self.records:
            if last is not None and last[0] == r.dialogue_id:
                data = last[1]
            elif r.dialogue_id in images:
                data = Path(images[r.dialogue_id]).read_bytes()
            else:
                data = _encoded(r.image, r.image_size)[0]
            last = (r.dialogue_id, data)
            width, height = r.original_size or r.image_size
            row: dict[str, object] = {
                "id": r.id,
                "dialogue_id": r.dialogue_id,
                "round": r.round,
                "mode": r.mode,
                "source": r.source,
                "frame": r.frame,
                "prompt": _messages(r.prompt),
                "image": {"bytes": data, "path": None},
                "problem": r.problem,
                "solution": r.solution,
                "reference": None if r.reference is None else list(r.reference),
                "relation": None if r.relation is None else r.relation.value,
                "context_from_round": r.context_from_round,
                "img_width": width,
                "img_height": height,
            }
            if with_completion:
                row["completion"] = _messages(r.completion)
            yield row

    def to_dataset(self, *, cache_dir: str | Path | None = None, image_files: dict[str, str] | None = None) -> Any:
        """The records as a ``datasets.Dataset`` with the columns of this module's docstring.

        ``image_files`` maps dialogue ids to image files already written in the policy's size (their bytes are
        embedded as they are); other images are encoded from the records.

        Rows are generated to Arrow files under ``cache_dir`` (the datasets cache by default), so a large set is never
        held in memory at once.  Raises :class:`ConfigError` when ``datasets`` is not installed.
        """
        try:
            from datasets import Dataset
        except ImportError as exc:
            raise ConfigError(
                "building a datasets.Dataset needs the datasets package",
                hint="pip install 'regionreasoner[train]'",
            ) from exc
        with_completion = self.has_completions
        images = image_files or {}
        return Dataset.from_generator(
            self._rows,
            features=dataset_features(with_completion),
            cache_dir=None if cache_dir is None else str(cache_dir),
            gen_kwargs={"images": images, "with_completion": with_completion},
            fingerprint=uuid.uuid4().hex,
        )

    def save(
        self, out: str | Path, *, dataset: bool = True, progress: Callable[[int], object] | None = None
    ) -> SavedSet:
        """Write ``images/``, :data:`OFFICIAL_JSON` and (``dataset``) the saved Dataset under :data:`DATASET_DIR`.

        ``progress(n)`` is called after each dialogue's image is written (``n`` = its number of records).
        """
        folder = Path(out)
        image_dir = folder / "images"
        image_dir.mkdir(parents=True, exist_ok=True)
        names = self.image_names()
        paths: dict[str, str] = {}
        files: dict[str, str] = {}
        counts: dict[str, int] = {}
        for r in self.records:
            counts[r.dialogue_id] = counts.get(r.dialogue_id, 0) + 1
        for r in self.records:
            if r.dialogue_id in paths:
                continue
            encoded, suffix = _encoded(r.image, r.image_size)
            name = f"images/{names[r.dialogue_id]}{suffix}"
            (folder / name).write_bytes(encoded)
            paths[r.dialogue_id] = name
            files[r.dialogue_id] = str(folder / name)
            if progress is not None:
                progress(counts[r.dialogue_id])
        official = folder / OFFICIAL_JSON
        official.write_text(json.dumps(self.to_official_json(paths), indent=1) + "\n", encoding="utf-8")
        saved: Path | None = None
        if dataset:
            cache = folder / ".cache"
            built = self.to_dataset(cache_dir=cache, image_files=files)
            saved = folder / DATASET_DIR
            built.save_to_disk(str(saved))
            del built
            _remove_tree(cache)
        return SavedSet(
            official_json=official, dataset=saved, images=image_dir, records=len(self.records), dialogues=len(paths)
        )


def _remove_tree(path: Path) -> None:
    """Remove the generator cache under the output folder (it is not part of the output)."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def load_saved_dataset(path: str | Path) -> Any:
    """The ``datasets.Dataset`` that :meth:`TrainingSet.save` wrote: ``path`` is the ``--out`` folder or its dataset/.

    Raises :class:`InputError` when neither holds a saved dataset.
    """
    folder = Path(path).expanduser()
    for candidate in (folder / DATASET_DIR, folder):
        if (candidate / "dataset_info.json").is_file():
            from datasets import load_from_disk

            return load_from_disk(str(candidate))
    raise InputError(
        f"{folder} holds no saved dataset",
        hint="write one with `regionreasoner-train data --from ... --out DIR` (without --no-dataset)",
    )
