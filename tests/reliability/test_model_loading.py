"""Issue 9, defect 9: a broken checkpoint raises ``ModelLoadError`` naming the file and the fix.

Each test copies the session's tiny checkpoint (policies/tiny.py) and breaks one file of it: a truncated or garbage
safetensors file, a pickled ``.bin`` (refused, never executed), a broken config, tokenizer or image-processor file.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from regionreasoner.core.errors import ConfigError, ModelLoadError
from regionreasoner.policies.transformers_policy import TransformersPolicy


@pytest.fixture
def checkpoint(tiny_qwen25: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny checkpoint that a test may break."""
    return Path(shutil.copytree(tiny_qwen25, tmp_path / "ckpt"))


def _load_error(path: str | Path, *needles: str) -> ModelLoadError:
    with pytest.raises(ModelLoadError) as info:
        TransformersPolicy(path, device="cpu")
    message = str(info.value)
    assert "\n" not in message, f"the message spans lines:\n{message}"
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return info.value


def _state_dict(folder: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    weights = folder / "model.safetensors"
    state = dict(load_file(weights))
    weights.unlink()
    return state


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: _truncate(p / "model.safetensors"), id="truncated"),
        pytest.param(lambda p: _truncate(p / "model.safetensors", keep=0.0001), id="truncated-header"),
        pytest.param(lambda p: (p / "model.safetensors").write_bytes(b"\0" * 64), id="garbage"),
        pytest.param(lambda p: (p / "model.safetensors").write_bytes(b""), id="empty"),
    ],
)
def test_a_broken_safetensors_file_is_named(checkpoint: Path, damage: Callable[[Path], None]) -> None:
    damage(checkpoint)
    error = _load_error(checkpoint, str(checkpoint / "model.safetensors"))
    assert error.hint and "copy" in error.hint


def test_a_sharded_checkpoint_missing_a_shard_is_named(checkpoint: Path) -> None:
    from safetensors.torch import save_file

    state = _state_dict(checkpoint)
    names = sorted(state)
    half = len(names) // 2
    shards = {"model-00001-of-00002.safetensors": names[:half], "model-00002-of-00002.safetensors": names[half:]}
    for shard, keys in shards.items():
        save_file({k: state[k] for k in keys}, checkpoint / shard, metadata={"format": "pt"})  # type: ignore[misc]
    weight_map = {k: shard for shard, keys in shards.items() for k in keys}
    (checkpoint / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    TransformersPolicy(checkpoint, device="cpu").close()  # the sharded checkpoint itself loads
    (checkpoint / "model-00002-of-00002.safetensors").unlink()
    _load_error(checkpoint, "model-00002-of-00002.safetensors")
    (checkpoint / "model.safetensors.index.json").write_text("{")
    _load_error(checkpoint, str(checkpoint / "model.safetensors.index.json"))


def test_a_pickled_bin_is_refused_and_never_run(checkpoint: Path, tmp_path: Path) -> None:
    import torch

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    state = _state_dict(checkpoint)
    torch.save({**state, "payload": Payload()}, checkpoint / "pytorch_model.bin")
    error = _load_error(checkpoint, str(checkpoint / "pytorch_model.bin"))
    assert error.hint and "safetensors" in error.hint
    assert not marker.exists(), "the pickle payload ran"


def test_a_plain_bin_loads_and_a_truncated_one_is_named(checkpoint: Path) -> None:
    import torch

    torch.save(_state_dict(checkpoint), checkpoint / "pytorch_model.bin")
    TransformersPolicy(checkpoint, device="cpu").close()  # a weights-only .bin is fine
    _truncate(checkpoint / "pytorch_model.bin")
    _load_error(checkpoint, str(checkpoint / "pytorch_model.bin"))


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("config.json", "{broken"),
        ("config.json", "[1, 2]"),
        ("config.json", '{"hidden_size": 8}'),
        ("config.json", b"\xff\xfe{}"),
        ("tokenizer.json", "{broken"),
        ("tokenizer_config.json", "{broken"),
        ("preprocessor_config.json", "{broken"),
        ("generation_config.json", "{broken"),
    ],
)
def test_a_broken_json_file_is_named(checkpoint: Path, name: str, content: str | bytes) -> None:
    path = checkpoint / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    _load_error(checkpoint, str(path))


def test_a_config_with_an_unknown_model_type_is_one_line(checkpoint: Path) -> None:
    config = json.loads((checkpoint / "config.json").read_text())
    config["model_type"] = "not-a-model"
    (checkpoint / "config.json").write_text(json.dumps(config))
    _load_error(checkpoint, "not-a-model", str(checkpoint / "config.json"))


@pytest.mark.parametrize("name", ["config.json", "preprocessor_config.json"])
def test_a_missing_file_is_named(checkpoint: Path, name: str) -> None:
    (checkpoint / name).unlink()
    _load_error(checkpoint, name)


def test_weights_that_do_not_fit_the_config_are_named(checkpoint: Path) -> None:
    import torch
    from safetensors.torch import save_file

    state = _state_dict(checkpoint)
    state["lm_head.weight"] = torch.zeros(3, 3)
    save_file(state, checkpoint / "model.safetensors", metadata={"format": "pt"})  # type: ignore[arg-type]
    _load_error(checkpoint, str(checkpoint))


def test_missing_folders_and_files_are_named_as_such(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-checkpoint"
    error = _load_error(missing, str(missing), "no checkpoint folder")
    assert "Repo id" not in str(error)
    a_file = tmp_path / "weights.safetensors"
    a_file.write_bytes(b"\0" * 16)
    _load_error(a_file, str(a_file), "folder")


def test_a_bad_device_is_a_config_error(tiny_qwen25: Path) -> None:
    with pytest.raises(ConfigError, match="device"):
        TransformersPolicy(tiny_qwen25, device="gpu0")
