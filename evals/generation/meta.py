"""GenEval prompt metadata: one JSON object per line, ``{"tag", "include", "exclude", "prompt"}``.

The format of GenEval's ``evaluation_metadata.jsonl`` and of NeoBabel's m-GenEval files (neobabel.md §5.1): ``tag``
is one of :data:`TASKS`; ``include`` and ``exclude`` are lists of :class:`Clause` (``class``, ``count``, optional
``color`` and ``position: [relation, group_index]``), always in English COCO (or world) terms; only ``prompt`` is
translated.  :func:`read_metadata` reads the official files as they are (the Persian one lacks a final newline).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from regionreasoner.core.errors import InputError

__all__ = [
    "GENEVAL_COLORS",
    "LANGUAGE_NAMES",
    "OFFICIAL_FILES",
    "POSITIONS",
    "TASKS",
    "Clause",
    "GenEvalPrompt",
    "find_metadata",
    "read_metadata",
    "write_metadata",
]

TASKS: tuple[str, ...] = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
"""GenEval's six tasks (the ``tag`` of a prompt), in the order of its summary table."""

GENEVAL_COLORS: tuple[str, ...] = (
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "brown",
    "black",
    "white",
)
"""The colours GenEval's zero-shot classifier chooses from (``COLORS`` of ``evaluate_images.py``)."""

POSITIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
"""The relations of a ``position`` clause: "A <rel> B" with A the clause's class, B the cited group."""

LANGUAGE_NAMES: dict[str, str] = {
    "en": "english",
    "zh": "chinese",
    "nl": "dutch",
    "fr": "french",
    "hi": "hindi",
    "fa": "persian",
}
"""Language code -> the name NeoBabel's files and folders use."""

OFFICIAL_FILES: dict[str, tuple[str, ...]] = {
    "en": ("evaluation_metadata.jsonl", "evaluation_metadata_english.jsonl"),
    **{code: (f"evaluation_metadata_{name}.jsonl",) for code, name in LANGUAGE_NAMES.items() if code != "en"},
}
"""File names of NeoBabel's ``benchmarking/geneval/prompts/`` per language (English under two names)."""


@dataclass(frozen=True)
class Clause:
    """One ``include``/``exclude`` requirement: at least ``count`` objects of ``cls`` (with a colour, a position).

    In ``exclude``, the clause fires when ``count`` or more objects of ``cls`` are detected.
    """

    cls: str
    """The class name (JSON key ``class``): a COCO class, or a world kind."""
    count: int
    """How many objects (>= 1)."""
    color: str | None = None
    """Required colour of each of the ``count`` objects, one of :data:`GENEVAL_COLORS` (world colours included)."""
    position: tuple[str, int] | None = None
    """``(relation, group)``: every matched object is ``relation`` (:data:`POSITIONS`) every object of the
    ``group``-th include clause."""

    def to_json(self) -> dict[str, object]:
        """The JSON object of GenEval's files (``class``, ``count``, then ``color``/``position`` when set)."""
        out: dict[str, object] = {"class": self.cls, "count": self.count}
        if self.color is not None:
            out["color"] = self.color
        if self.position is not None:
            out["position"] = [self.position[0], self.position[1]]
        return out

    @classmethod
    def from_json(cls, data: object, where: str = "a clause") -> Clause:
        """Read one clause; raises :class:`InputError` naming ``where`` and the bad key."""
        if not isinstance(data, Mapping):
            raise InputError(f"{where} is not a JSON object", hint='write e.g. {"class": "dog", "count": 1}')
        name, count = data.get("class"), data.get("count")
        if not isinstance(name, str) or not name:
            raise InputError(f"{where}: 'class' must be a non-empty string, got {name!r}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InputError(f"{where}: 'count' must be an integer >= 1, got {count!r}")
        color = data.get("color")
        if color is not None and not isinstance(color, str):
            raise InputError(f"{where}: 'color' must be a string, got {color!r}")
        position = data.get("position")
        pos: tuple[str, int] | None = None
        if position is not None:
            ok = isinstance(position, Sequence) and not isinstance(position, str) and len(position) == 2
            if not ok or position[0] not in POSITIONS or isinstance(position[1], bool):
                raise InputError(f"{where}: 'position' must be [relation, group], got {position!r}")
            if not isinstance(position[1], int) or position[1] < 0:
                raise InputError(f"{where}: the position group must be an integer >= 0, got {position[1]!r}")
            pos = (str(position[0]), int(position[1]))
        return cls(cls=name, count=count, color=color, position=pos)


@dataclass(frozen=True)
class GenEvalPrompt:
    """One line of a metadata file: the task, what must (``include``) and must not (``exclude``) be seen, the text."""

    tag: str
    """One of :data:`TASKS`."""
    include: tuple[Clause, ...]
    exclude: tuple[Clause, ...]
    prompt: str
    """The text given to the generator (the only translated field)."""

    def __post_init__(self) -> None:
        if self.tag not in TASKS:
            raise InputError(f"tag={self.tag!r} is not a GenEval task", hint=f"use one of {', '.join(TASKS)}")
        for i, clause in enumerate(self.include):
            if clause.position is not None and clause.position[1] >= i:
                raise InputError(
                    f"include[{i}] cites group {clause.position[1]}", hint="a position cites an earlier clause"
                )

    def to_json(self) -> dict[str, object]:
        """The JSON object of GenEval's files, keys in their order."""
        return {
            "tag": self.tag,
            "include": [c.to_json() for c in self.include],
            "exclude": [c.to_json() for c in self.exclude],
            "prompt": self.prompt,
        }

    @classmethod
    def from_json(cls, data: object, where: str = "a prompt") -> GenEvalPrompt:
        """Read one metadata object; raises :class:`InputError` naming ``where``."""
        if not isinstance(data, Mapping):
            raise InputError(f"{where} is not a JSON object", hint="one GenEval metadata object per line")
        tag, prompt = data.get("tag"), data.get("prompt")
        if not isinstance(tag, str) or not isinstance(prompt, str) or not prompt.strip():
            raise InputError(f"{where}: needs a string 'tag' and a non-empty string 'prompt'")
        clauses: dict[str, tuple[Clause, ...]] = {}
        for key in ("include", "exclude"):
            items = data.get(key, [])
            if not isinstance(items, list):
                raise InputError(f"{where}: {key!r} must be a list of clauses")
            clauses[key] = tuple(Clause.from_json(c, f"{where}, {key}[{i}]") for i, c in enumerate(items))
        return cls(tag=tag, include=clauses["include"], exclude=clauses["exclude"], prompt=prompt)

    @property
    def classes(self) -> tuple[str, ...]:
        """Every class a clause names, in order, without repeats."""
        return tuple(dict.fromkeys(c.cls for c in (*self.include, *self.exclude)))


def read_metadata(path: str | Path) -> list[GenEvalPrompt]:
    """The prompts of a GenEval metadata file (JSON lines, UTF-8; blank lines skipped).

    Raises :class:`InputError` for a missing file or a bad line (its number in the message).
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no metadata file at {p}", hint="pass a GenEval evaluation_metadata*.jsonl file")
    prompts = []
    for number, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{p}:{number} is not JSON: {exc.msg}") from exc
        prompts.append(GenEvalPrompt.from_json(data, f"{p.name}:{number}"))
    if not prompts:
        raise InputError(f"{p} holds no prompts", hint="pass a GenEval evaluation_metadata*.jsonl file")
    return prompts


def write_metadata(path: str | Path, prompts: Iterable[GenEvalPrompt]) -> Path:
    """Write ``prompts`` as GenEval metadata (one object per line, UTF-8, non-ASCII kept); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("".join(json.dumps(q.to_json(), ensure_ascii=False) + "\n" for q in prompts), encoding="utf-8")
    return p


def find_metadata(folder: str | Path, language: str) -> Path:
    """The metadata file of ``language`` in ``folder``: ``<language>.jsonl`` or an official name.

    The official names are those of :data:`OFFICIAL_FILES`.

    Raises :class:`InputError` listing the names tried.
    """
    if language not in LANGUAGE_NAMES:
        raise InputError(f"language={language!r}", hint=f"use one of {', '.join(LANGUAGE_NAMES)}")
    names = (f"{language}.jsonl", *OFFICIAL_FILES[language])
    for name in names:
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    raise InputError(f"no {language} metadata in {folder}", hint=f"add one of: {', '.join(names)}")
