"""`regionreasoner generate` and `regionreasoner inpaint` in-process: JSON lines, versions, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from regionreasoner.agent.cli import main
from regionreasoner.core.types import RegionDraft, TurnDraft
from regionreasoner.memory import RegionMemory


@pytest.fixture
def tiny_generator(tmp_path: Path) -> Path:
    from regionreasoner.tools.generate import build_tiny_generator

    return Path(build_tiny_generator(tmp_path / "gen", seed=0))


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_generate_writes_a_picture(tiny_generator: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out" / "x.png"
    args = ["generate", "een rode paraplu op het strand", "--out", str(out), "--generator", str(tiny_generator)]
    assert main([*args, "--seed", "3", "--steps", "2", "--guidance", "1.5"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["out"] == str(out) and printed["seed"] == 3
    assert Image.open(out).size == (printed["width"], printed["height"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", " ", "--out", "x.png"], "the prompt is empty"),
        (["generate", "a cat", "--out", "x.txt"], "not an image format"),
        (["generate", "a cat", "--out", "x.png", "--guidance", "-1"], "--guidance"),
        (["generate", "a cat", "--out", "x.png", "--generator", "/no/such/folder"], "no generator folder"),
    ],
)
def test_generate_mistakes_are_one_line(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert message in _one_error_line(capsys)


def test_generate_without_a_generator_uses_the_shipped_one_and_says_when_it_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from regionreasoner.tools.generate import shipped

    monkeypatch.delenv("REGIONREASONER_GENERATOR", raising=False)
    monkeypatch.setattr(shipped, "WEIGHTS", tmp_path / "no-weights")
    assert main(["generate", "a cat", "--out", str(tmp_path / "x.png")]) == 2
    line = _one_error_line(capsys)
    assert "shipped generator is missing" in line and "make generator" in line


def test_inpaint_records_a_new_version_of_the_dialogue(
    tiny_generator: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    photo = tmp_path / "photo.png"
    Image.fromarray(pixels).save(photo)
    url = f"sqlite:///{tmp_path}/m.db"
    with RegionMemory(url) as memory:
        start = memory.create_dialogue(photo, id="d").image
        draft = TurnDraft(
            question="find it",
            rendered_question="find it",
            image=start,
            frame="fixed:840x840",
            regions=[RegionDraft(box=(8.0, 8.0, 40.0, 40.0))],
        )
        memory.append_turn("d", draft)
    out = tmp_path / "edited.png"
    args = ["inpaint", str(photo), "--region", "R1", "--dialogue", "d", "一把红色的 umbrella", "--db", url]
    assert main([*args, "--out", str(out), "--generator", str(tiny_generator), "--seed", "1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["version"], printed["region"], printed["mask"], printed["parent"]) == (1, "R1", "box", start)
    edited = np.asarray(Image.open(out).convert("RGB"))
    box = np.zeros((48, 64), dtype=bool)
    box[8:40, 8:40] = True
    assert np.array_equal(edited[~box], pixels[~box])
    with RegionMemory(url) as memory:
        _, v1 = memory.versions("d")
        assert (v1.image, v1.parent, v1.turn, v1.tool, v1.prompt) == (
            printed["image"],
            start,
            None,
            "inpaint",
            "一把红色的 umbrella",
        )
        assert memory.latest_image("d") == v1.image and memory.image_info(v1.image).parent == start

    # Mistakes, each one line and exit status 2, before the generator loads.
    other = tmp_path / "other.png"
    Image.new("RGB", (64, 48), (1, 2, 3)).save(other)
    for bad, message in [
        (["--region", "R7", "--dialogue", "d"], "has no region R7"),
        (["--region", "R1", "--dialogue", "nope"], "no dialogue 'nope'"),
    ]:
        assert main(["inpaint", str(photo), "a cat", "--db", url, *bad, "--out", str(out)]) == 2
        assert message in _one_error_line(capsys)
    assert main(["inpaint", str(other), "a cat", "--db", url, "--region", "R1", "--dialogue", "d"]) == 2
    assert "none of the 2 image versions" in _one_error_line(capsys)


def test_chat_with_a_generator_inpaints_and_shows_the_new_version(
    tiny_generator: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "photo.png"
    Image.new("RGB", (420, 420), (10, 200, 10)).save(image)
    call = '{"name": "inpaint", "arguments": {"prompt": "een rode paraplu", "region": "R1"}}'
    response = "image version 1 (420x420 px): R1 repainted (box, 2025 px); later turns run on it"
    answer = '<answer>[{"bbox_2d": [10,10,100,100], "point_2d": [50,50]}]</answer>'
    turns = [
        f"<scene> green </scene>\n<think> a square </think>\n{answer}",
        "<scene> green </scene>\n<focus> a square </focus>\n<think> R1 is bbox=[10, 10, 100, 100] "
        f"<tool_call>{call}</tool_call>\n<tool_response>{response}</tool_response>\n done </think>\n{answer}",
        f"<scene> green </scene>\n<think> an umbrella </think>\n{answer}",
    ]
    script = tmp_path / "chat.json"
    questions = ["find the square", "vervang R1 door een rode paraplu", "find the umbrella"]
    script.write_text(json.dumps({"questions": questions, "turns": turns}))
    out, url = tmp_path / "annotated.png", f"sqlite:///{tmp_path}/m.db"
    args = ["chat", str(image), "--script", str(script), "--memory", url, "--out", str(out)]
    assert main([*args, "--generator", str(tiny_generator)]) == 0
    printed = capsys.readouterr().out
    assert "image version 1: inpaint R1 'een rode paraplu'; the next turn runs on it" in printed
    assert printed.count("status: ok") == 3
    with RegionMemory(url) as memory:
        [dialogue] = memory.list_dialogues()
        v0, v1 = memory.versions(dialogue.id)
        assert v1.parent == v0.image and dialogue.turns[2].image == v1.image
        edited = np.asarray(memory.load_image(v1.image).image)
    assert (edited[5:50, 5:50] != (10, 200, 10)).any() and (edited[60:, 60:] == (10, 200, 10)).all()
