"""Checks of a local checkpoint folder before transformers reads it, so a broken file is named with its fix.

transformers reports a truncated safetensors file as ``SafetensorError: incomplete metadata`` and a broken
``tokenizer.json`` as a bare ``JSONDecodeError``, without saying which file.  :func:`check_checkpoint_folder` reads
only headers and small JSON files (no tensor data) and raises :class:`~regionreasoner.core.errors.ModelLoadError`
naming the file.  It checks the files that loading will use: ``config.json``, the other JSON files present, and the
weights that transformers picks (safetensors first, else ``pytorch_model.bin``, sharded or not).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from regionreasoner.core.errors import ModelLoadError

__all__ = ["COPY_AGAIN", "PICKLE_HINT", "check_checkpoint_folder", "local_checkpoint", "read_config", "weight_files"]

COPY_AGAIN = "the file is damaged or incomplete: copy it again from the checkpoint's source (or download it again)"
PICKLE_HINT = (
    "only safetensors and weights-only .bin files are loaded: use the checkpoint's *.safetensors files, or "
    "convert it to safetensors where you trust its source"
)

_JSON_FILES = (
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "preprocessor_config.json",
    "processor_config.json",
    "video_preprocessor_config.json",
    "chat_template.json",
)
"""JSON files transformers may read besides config.json and the weight indexes; checked when present."""


def local_checkpoint(model: str | Path) -> Path | None:
    """The folder ``model`` names on disk; None for a hub id.

    A path that names a file, or that looks like a path (absolute, ``./``, ``~``, more than one ``/``) but does not
    exist, raises ModelLoadError: transformers would otherwise report it as a malformed hub id.
    """
    text = str(model)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelLoadError(
            f"{path} is a file, not a checkpoint folder", hint="pass the folder holding config.json and the weights"
        )
    if text.startswith(("/", ".", "~")) or text.count("/") > 1 or (os.sep != "/" and os.sep in text):
        raise ModelLoadError(
            f"no checkpoint folder at {path}",
            hint="check the path, or pass a hub id such as Qwen/Qwen2.5-VL-7B-Instruct",
        )
    return None


def _json_object(path: Path, *, hint: str = COPY_AGAIN) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ModelLoadError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})", hint=hint) from exc
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{path} is not valid JSON ({exc})", hint=hint) from exc
    except OSError as exc:
        raise ModelLoadError(f"cannot read {path}: {exc.strerror or exc}", hint=hint) from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} holds a JSON {type(data).__name__}, not an object", hint=hint)
    return data


def read_config(folder: Path) -> dict[str, Any]:
    """``folder/config.json`` as a JSON object; a :class:`ModelLoadError` naming the fix when it cannot be read."""
    return _json_object(folder / "config.json")


def _shards(index: Path) -> list[Path]:
    weight_map = _json_object(index).get("weight_map")
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise ModelLoadError(f"{index} has no 'weight_map' of tensor names to files", hint=COPY_AGAIN)
    shards = [index.parent / name for name in sorted(set(weight_map.values()))]
    for shard in shards:
        if not shard.is_file():
            raise ModelLoadError(
                f"{shard} is missing (listed in {index.name})", hint="copy every shard of the checkpoint"
            )
    return shards


def weight_files(folder: Path) -> list[Path]:
    """The weight files transformers loads from ``folder`` (empty when there are none: it reports that itself)."""
    for index, single in [
        ("model.safetensors.index.json", "model.safetensors"),
        ("pytorch_model.bin.index.json", "pytorch_model.bin"),
    ]:
        if (folder / index).is_file():
            return _shards(folder / index)
        if (folder / single).is_file():
            return [folder / single]
    return []


def _check_safetensors(path: Path) -> None:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt"):  # parses the header, checks the file covers every tensor
            pass
    except (SafetensorError, OSError) as exc:
        raise ModelLoadError(f"{path} is not a complete safetensors file ({exc})", hint=COPY_AGAIN) from exc


def _check_bin(path: Path) -> None:
    """A zip-format torch file must have its central directory (a truncated one does not); legacy ones pass."""
    import zipfile

    with path.open("rb") as f:
        magic = f.read(4)
    if magic.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as archive:
                archive.namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise ModelLoadError(f"{path} is not a complete PyTorch file ({exc})", hint=COPY_AGAIN) from exc
    elif not magic.startswith(b"\x80"):  # neither a zip nor a legacy pickle
        raise ModelLoadError(f"{path} is not a PyTorch weights file", hint=COPY_AGAIN)


def check_checkpoint_folder(folder: Path) -> list[Path]:
    """Check ``folder``'s config, JSON files and weight headers; returns the weight files (see the module doc)."""
    config = folder / "config.json"
    if not config.is_file():
        raise ModelLoadError(
            f"{config} is missing",
            hint="a checkpoint folder holds config.json, the weights (*.safetensors) and the tokenizer files: "
            "copy the complete folder",
        )
    model_type = read_config(folder).get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise ModelLoadError(
            f"{config} names no model_type", hint="use the checkpoint's own config.json (it names its architecture)"
        )
    for name in _JSON_FILES:
        if (folder / name).is_file():
            _json_object(folder / name)
    weights = weight_files(folder)
    for path in weights:
        if path.suffix == ".safetensors":
            _check_safetensors(path)
        else:
            _check_bin(path)
    return weights
