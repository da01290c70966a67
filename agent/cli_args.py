"""What every console script shares: one-line errors, checked argument types, and the top-level error handler.

The contract (docs/decisions.md, "CLI errors"): a user's mistake (a bad path, URL, number, file content) ends the
command with **one line on stderr naming the fix and exit status 2**; an unexpected exception is a bug and keeps
its traceback (exit status 1).  Mistakes are caught where they can be told apart from bugs: paths and numbers by
the argument types below (before anything slow runs), file contents and settings by the code that reads them,
which raises a :class:`~regionreasoner.core.errors.RegionReasonerError`.  :func:`run_command` turns those, and
only those, into the one line.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from regionreasoner.core.errors import InputError, RegionReasonerError

__all__ = [
    "OneLineParser",
    "add_tool_arguments",
    "check_memory_url",
    "device_name",
    "existing_file",
    "existing_folder",
    "make_folder",
    "non_negative_int",
    "one_line",
    "output_folder",
    "positive_int",
    "run_command",
    "utf8_input",
]


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(text.split())


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (with where to read the usage) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``message`` as one line and exit with status 2 (argparse calls this for usage errors)."""
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see `{self.prog} --help`)\n")


def run_command(prog: str, func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a subcommand: a :class:`RegionReasonerError` becomes one line on stderr and exit status 2.

    With ``-v`` the error's traceback (and the exception it was raised from) is printed as well.  Any other
    exception propagates with its traceback: it is a bug, not a mistake of the user.
    """
    try:
        return int(func(args))
    except RegionReasonerError as exc:
        if getattr(args, "verbose", False):
            traceback.print_exc()
        print(f"{prog}: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


# ------------------------------------------------------------------------------------------------ argument types
# argparse reports an ArgumentTypeError as "argument --name: <message>", so the messages say what to pass.


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: use a whole number >= 1")
    return value


def number_above(minimum: float, what: str = "a number") -> Callable[[str], float]:
    """An argparse type: a number strictly above ``minimum``; ``what`` names it in the messages."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not value > minimum:
            raise argparse.ArgumentTypeError(f"{text!r}: use {what} > {minimum:g}")
        return value

    return parse


def non_negative_int(text: str) -> int:
    """A whole number >= 0."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: use a whole number >= 0")
    return value


def existing_file(text: str) -> str:
    """A path naming an existing file (not a folder); returned unchanged."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder: pass a file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} does not exist: check the path")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text} is not readable: check its permissions")
    return text


def existing_folder(text: str) -> str:
    """A path naming an existing folder; returned unchanged."""
    path = Path(text).expanduser()
    if not path.is_dir():
        what = "a file" if path.exists() else "missing"
        raise argparse.ArgumentTypeError(f"{text} is {what}: pass an existing folder")
    return text


def output_folder(text: str) -> str:
    """A folder to write into: it may be missing (it is created later), but nothing on the way may be a file."""
    path = Path(text).expanduser()
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                where = "is a file" if part == path else f"lies under the file {part}"
                raise argparse.ArgumentTypeError(f"{text} {where}: pass a folder (created if missing)")
            break
    return text


_DEVICE = re.compile(r"(cpu|mps|(cuda|xpu)(:\d+)?)")


def device_name(text: str) -> str:
    """A torch device name: ``cpu``, ``cuda``, ``cuda:N``, ``xpu[:N]`` or ``mps``."""
    if not _DEVICE.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device: use cpu, cuda or cuda:N")
    return text


# ------------------------------------------------------------------------------------------------ at run time


def make_folder(path: str | Path, option: str) -> Path:
    """Create the output folder ``path`` (given as ``option``); a failure is an :class:`InputError` naming it."""
    folder = Path(path).expanduser()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the folder {folder}: {exc.strerror or exc}", hint=f"pass {option} a folder you can write"
        ) from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"cannot write into {folder}", hint=f"pass {option} a folder you can write")
    return folder


def check_memory_url(url: str | None, option: str) -> None:
    """Check a memory URL before anything opens it: a supported URL, and for a SQLite file a usable path.

    Raises ConfigError (not a URL, unsupported scheme) or InputError (the file is a folder, or lies under a file).
    """
    from regionreasoner.memory.engine import normalize_url, sqlite_path_problem

    if (problem := sqlite_path_problem(normalize_url(url))) is not None:
        raise InputError(
            f"{option} {url}: {problem}",
            hint=f"pass {option} sqlite:///path/to/memory.db with a path to a file in a folder",
        )


@contextmanager
def utf8_input(path: str | Path, what: str) -> Iterator[None]:
    """Reading ``path`` (``what``, e.g. "the --data file") inside this block: non-UTF-8 bytes are an InputError.

    For the loaders that read a user's file as UTF-8 text; the only text they decode is that file's.
    """
    try:
        yield
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})", hint=f"save {what} as UTF-8 text"
        ) from exc


def add_tool_arguments(parser: argparse.ArgumentParser) -> None:
    """``--segmenter``, ``--detector``, ``--zoom``, ``--generator``: the tools of an agent (loaded on first use)."""
    parser.add_argument(
        "--segmenter", default=None, help="SAM2 checkpoint (folder or hub id): every region gets a mask"
    )
    parser.add_argument(
        "--detector", default=None, help="Grounding DINO checkpoint (folder or hub id): <think> may call detect"
    )
    parser.add_argument("--zoom", action="store_true", help="<think> may call zoom (a crop joins the conversation)")
    parser.add_argument(
        "--generator",
        type=existing_folder,
        default=None,
        help="NeoBabel generator folder: <think> may call generate and inpaint (new image versions)",
    )
