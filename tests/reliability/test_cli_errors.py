"""Issue 9, defect 8: every CLI error is one line naming the fix with exit status 2, never a traceback.

In-process ``main([...])`` calls (the console scripts are these functions); one subprocess run per script checks that
the installed command behaves the same.  A scripted chat records a failed turn and goes on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from PIL import Image

from regionreasoner.agent.cli import main as rr_main
from regionreasoner.evals.cli import main as eval_main

Main = Callable[[Sequence[str] | None], int]

TURN = (
    "<scene> green </scene>\n<think> a square </think>\n"
    '<answer>[{"bbox_2d": [10,10,100,100], "point_2d": [50,50]}]</answer>'
)


def _one_line_error(main: Main, argv: Sequence[str], capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    """Run ``main(argv)``: exit status 2, one line on stderr containing every needle, no traceback."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse exits itself
        code = exc.code  # type: ignore[assignment]
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, f"exit status {code}, stderr:\n{err}"
    assert "Traceback" not in err, err
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here may build or load a model or write outside ``tmp_path`` (default outputs go to the cwd)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REGIONREASONER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REGIONREASONER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("REGIONREASONER_MODEL", str(tmp_path / "no-model-configured"))


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "photo.png"
    Image.new("RGB", (420, 420), (10, 200, 10)).save(path)
    return path


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "chat.json"
    path.write_text(json.dumps({"questions": ["find the square"], "turns": [TURN]}))
    return path


def _chat(image: Path, tmp_path: Path, *extra: str) -> list[str]:
    return ["chat", str(image), "--memory", f"sqlite:///{tmp_path}/m.db", *extra]


# ------------------------------------------------------------------------------------------- regionreasoner chat


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("missing.json", None, "does not exist"),
        ("broken.json", b'{"questions": [', "not valid JSON"),
        ("latin1.txt", "caf\xe9 R1\n".encode("latin-1"), "UTF-8"),
        ("folder.json", "dir", "folder"),
        ("shape.json", b'{"questions": "find it"}', "questions"),
        ("turns.json", b'{"questions": ["a"], "turns": "not a list"}', "turns"),
        ("objects.json", b'{"questions": [{"q": 1}]}', "questions"),
        ("empty.txt", b"\n\n", "no question"),
    ],
)
def test_chat_script_errors_are_one_line(
    image: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: bytes | str | None,
    needle: str,
) -> None:
    path = tmp_path / name
    if content == "dir":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    _one_line_error(rr_main, _chat(image, tmp_path, "--script", str(path)), capsys, name, needle, "--script")


@pytest.mark.parametrize("kind", ["folder", "under-a-file", "no-image-suffix"])
def test_chat_out_errors_are_one_line_and_come_first(
    image: Path, script: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    out = {
        "folder": tmp_path,
        "under-a-file": image / "x.png",
        "no-image-suffix": tmp_path / "annotated.regions",
    }[kind]
    _one_line_error(rr_main, _chat(image, tmp_path, "--script", str(script), "--out", str(out)), capsys, "--out")
    assert not (tmp_path / "m.db").exists(), "--out must be checked before anything runs"


def test_chat_bad_memory_url_image_and_model(
    image: Path, script: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _one_line_error(rr_main, ["chat", str(image), "--script", str(script), "--memory", "notaurl"], capsys, "sqlite:///")
    under_a_file = f"sqlite:///{image}/m.db"
    _one_line_error(
        rr_main, ["chat", str(image), "--script", str(script), "--memory", under_a_file], capsys, "--memory"
    )
    missing = tmp_path / "nope.png"
    _one_line_error(rr_main, _chat(missing, tmp_path, "--script", str(script)), capsys, str(missing))
    questions = tmp_path / "q.txt"
    questions.write_text("find it\n")
    no_model = tmp_path / "no-such-checkpoint"
    line = _one_line_error(
        rr_main, _chat(image, tmp_path, "--script", str(questions), "--model", str(no_model)), capsys, str(no_model)
    )
    assert "Repo id" not in line  # a missing folder is named as such, not as a malformed hub id


def test_demo_out_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep me")
    _one_line_error(rr_main, ["demo", "--out", str(a_file)], capsys, str(a_file), "--out")
    assert a_file.read_text() == "keep me"
    # A folder the demo did not write is not deleted ("recreated" applies to its own output only).
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    _one_line_error(rr_main, ["demo", "--out", str(precious)], capsys, str(precious), "--out")
    assert (precious / "thesis.tex").read_text() == "years of work"
    _one_line_error(rr_main, ["demo", "--device", "gpu0"], capsys, "--device")


def test_db_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(rr_main, ["db", "current", "--url", "notaurl"], capsys, "sqlite:///")
    a_file = tmp_path / "file.txt"
    a_file.write_text("not a folder")
    _one_line_error(rr_main, ["db", "upgrade", "--url", f"sqlite:///{a_file}/m.db"], capsys, str(a_file))


def test_argparse_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(rr_main, ["frobnicate"], capsys, "--help")
    _one_line_error(rr_main, ["chat"], capsys, "image")
    _one_line_error(eval_main, ["synthetic", "--out", "x", "--images", "abc"], capsys, "--images", "--help")


def test_verbose_adds_the_traceback_of_a_typed_error(image: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rr_main(["-v", "chat", str(image), "--memory", "notaurl"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "ConfigError" in err and err.strip().splitlines()[-1].startswith("regionreasoner:")


# ----------------------------------------------------------------------------- a scripted chat goes on after errors


def test_scripted_chat_goes_on_after_a_typed_error(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "chat.json"
    questions = ["find the square", "near R9", "near R1"]
    turn2 = TURN.replace("<think> a square", "<focus> a square </focus>\n<think> next to bbox=[10, 10, 100, 100]")
    path.write_text(json.dumps({"questions": questions, "turns": [TURN, turn2]}))
    assert rr_main(_chat(image, tmp_path, "--script", str(path), "--out", str(tmp_path / "a.png"))) == 0
    out = capsys.readouterr().out
    assert "R9" in out and "error:" in out
    assert out.count("status: ok") == 2  # the question after the failed one still ran


def test_scripted_chat_goes_on_after_a_bug_and_shows_it(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from regionreasoner.agent import cli_chat

    real = cli_chat.print_turn

    def flaky(dialogue: object, question: str, out: object = None) -> object:
        if question == "boom":
            raise ZeroDivisionError("a bug in the program")
        return real(dialogue, question)  # type: ignore[arg-type]

    monkeypatch.setattr(cli_chat, "print_turn", flaky)
    path = tmp_path / "chat.json"
    path.write_text(json.dumps({"questions": ["find the square", "boom", "find it again"], "turns": [TURN, TURN]}))
    code = rr_main(_chat(image, tmp_path, "--script", str(path), "--out", str(tmp_path / "a.png")))
    captured = capsys.readouterr()
    assert captured.out.count("status: ok") == 2, captured.out  # the turn after the bug still ran
    # A bug is not hidden: its traceback is shown and the command exits 1 (not 0, not a user error's 2).
    assert "Traceback" in captured.err and "ZeroDivisionError" in captured.err
    assert code == 1


def test_scripted_chat_with_a_broken_policy_goes_on_and_fails(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "chat.json"
    path.write_text(json.dumps({"questions": ["find the square", "and again", "once more"], "turns": [TURN]}))
    code = rr_main(_chat(image, tmp_path, "--script", str(path), "--out", str(tmp_path / "a.png")))
    captured = capsys.readouterr()
    assert captured.out.count("status: ok") == 1 and captured.out.count("error:") == 2, captured.out
    assert code == 2 and "Traceback" not in captured.err
    assert len(captured.err.strip().splitlines()) == 1 and "2 of 3" in captured.err


# ------------------------------------------------------------------------------------------ regionreasoner-eval


@pytest.fixture
def bench(tmp_path: Path) -> Path:
    from regionreasoner.evals.synthetic import generate_benchmark

    return Path(generate_benchmark(tmp_path / "bench", 1, 0, size=(96, 96), rounds=(1, 1)))


@pytest.mark.parametrize("command", ["stats", "report", "regiondial", "refcoco"])
@pytest.mark.parametrize("kind", ["missing", "folder", "latin1"])
def test_eval_input_file_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, kind: str) -> None:
    path = tmp_path / f"input-{kind}.json"
    if kind == "folder":
        path.mkdir()
    elif kind == "latin1":
        path.write_bytes('[{"question": "caf\xe9"}]'.encode("latin-1"))
    argv = {
        "stats": ["stats", str(path)],
        "report": ["report", str(path), "--out", str(tmp_path / "r")],
        "regiondial": ["regiondial", "--data", str(path), "--out", str(tmp_path / "r")],
        "refcoco": ["refcoco", "--data", str(path), "--out", str(tmp_path / "r")],
    }[command]
    _one_line_error(eval_main, argv, capsys, path.name)


def test_eval_out_is_a_file(tmp_path: Path, bench: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep me")
    _one_line_error(eval_main, ["synthetic", "--out", str(a_file), "--images", "1"], capsys, str(a_file))
    _one_line_error(eval_main, ["regiondial", "--data", str(bench), "--out", str(a_file)], capsys, str(a_file))
    _one_line_error(eval_main, ["synthetic", "--out", str(a_file / "sub"), "--images", "1"], capsys, "--out")
    assert a_file.read_text() == "keep me"


@pytest.mark.parametrize(
    "extra",
    [
        ["--workers", "0"],
        ["--limit", "0"],
        ["--limit", "-1"],
        ["--max-new-tokens", "0"],
        ["--max-objects", "-3"],
        ["--section-chars", "0"],
        ["--workers", "1.5"],
    ],
)
def test_eval_bad_numbers(tmp_path: Path, bench: Path, capsys: pytest.CaptureFixture[str], extra: list[str]) -> None:
    argv = ["regiondial", "--data", str(bench), "--out", str(tmp_path / "r"), *extra]
    _one_line_error(eval_main, argv, capsys, extra[0])
    assert not (tmp_path / "r").exists(), "numbers are checked before anything runs"


def test_eval_images_folder_and_model(tmp_path: Path, bench: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["regiondial", "--data", str(bench), "--out", str(tmp_path / "r")]
    _one_line_error(eval_main, [*base, "--images", str(tmp_path / "no-images")], capsys, "--images")
    no_model = tmp_path / "no-such-checkpoint"
    _one_line_error(eval_main, [*base, "--model", str(no_model)], capsys, str(no_model))


# ---------------------------------------------------------------------------------------- the installed commands


@pytest.mark.parametrize("name", ["regionreasoner", "regionreasoner-eval"])
def test_installed_scripts_print_one_line(name: str, tmp_path: Path) -> None:
    script = Path(sys.executable).parent / name
    missing = tmp_path / "missing.json"
    argv = {
        "regionreasoner": ["chat", str(tmp_path / "x.png"), "--script", str(missing)],
        "regionreasoner-eval": ["stats", str(missing)],
    }[name]
    run = subprocess.run([str(script), *argv], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert str(missing) in run.stderr or str(tmp_path / "x.png") in run.stderr
