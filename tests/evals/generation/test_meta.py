"""GenEval metadata: the official line format round-trips, official file names are found, bad lines are typed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regionreasoner.core.errors import InputError
from regionreasoner.evals.generation.meta import (
    TASKS,
    Clause,
    GenEvalPrompt,
    find_metadata,
    read_metadata,
    write_metadata,
)

# Lines as in GenEval's and NeoBabel's files (the Chinese one is neobabel.md's example).
OFFICIAL = [
    '{"tag": "counting", "include": [{"class": "orange", "count": 3}], "exclude": [{"class": "orange", "count": 4}], '
    '"prompt": "三个橘子的照片"}',
    '{"tag": "position", "include": [{"class": "teddy bear", "count": 1}, {"class": "dog", "count": 1, '
    '"position": ["right of", 0]}], "exclude": [], "prompt": "a photo of a dog right of a teddy bear"}',
    '{"tag": "color_attr", "include": [{"class": "car", "count": 1, "color": "red"}, {"class": "bench", "count": 1, '
    '"color": "blue"}], "exclude": [], "prompt": "a photo of a red car and a blue bench"}',
]


def test_official_lines_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "evaluation_metadata_persian.jsonl"
    path.write_text("\n".join(OFFICIAL), encoding="utf-8")  # no final newline, like the Persian file
    prompts = read_metadata(path)
    assert [p.tag for p in prompts] == ["counting", "position", "color_attr"]
    assert prompts[0].exclude == (Clause("orange", 4),)
    assert prompts[1].include[1].position == ("right of", 0)
    assert prompts[2].classes == ("car", "bench")
    out = write_metadata(tmp_path / "copy.jsonl", prompts)
    assert [json.loads(line) for line in out.read_text("utf-8").splitlines()] == [json.loads(x) for x in OFFICIAL]
    assert "三个橘子" in out.read_text("utf-8")  # non-ASCII kept as is


def test_find_metadata_takes_official_names(tmp_path: Path) -> None:
    (tmp_path / "evaluation_metadata.jsonl").write_text(OFFICIAL[1] + "\n", encoding="utf-8")
    (tmp_path / "evaluation_metadata_dutch.jsonl").write_text(OFFICIAL[1] + "\n", encoding="utf-8")
    (tmp_path / "fa.jsonl").write_text(OFFICIAL[1] + "\n", encoding="utf-8")
    assert find_metadata(tmp_path, "en").name == "evaluation_metadata.jsonl"
    assert find_metadata(tmp_path, "nl").name == "evaluation_metadata_dutch.jsonl"
    assert find_metadata(tmp_path, "fa").name == "fa.jsonl"
    with pytest.raises(InputError, match="evaluation_metadata_hindi"):
        find_metadata(tmp_path, "hi")


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ('{"tag": "nope", "include": [], "exclude": [], "prompt": "x"}', "not a GenEval task"),
        ('{"tag": "counting", "include": [{"class": "dog", "count": 0}], "prompt": "x"}', "count"),
        (
            '{"tag": "position", "include": [{"class": "a", "count": 1, "position": ["near", 0]}], "prompt": "x"}',
            "position",
        ),
        (
            '{"tag": "position", "include": [{"class": "a", "count": 1, "position": ["above", 0]}], "prompt": "x"}',
            "cites",
        ),
        ("not json", "not JSON"),
    ],
)
def test_bad_lines_raise_input_errors(tmp_path: Path, line: str, match: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=match):
        read_metadata(path)


def test_tasks_are_genevals_six() -> None:
    assert TASKS == ("single_object", "two_object", "counting", "colors", "position", "color_attr")
    with pytest.raises(InputError):
        GenEvalPrompt(tag="colour", include=(), exclude=(), prompt="x")
