"""m-DPG: the CSV format, 2x2 grids, ELLA's dependency rule and the score means, with a scripted VQA."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import pytest
from PIL import Image

from regionreasoner.core.errors import InputError
from regionreasoner.evals.generation.dpg import (
    DPG_COLUMNS,
    DPGItem,
    DPGQuestion,
    generate_dpg,
    make_grid,
    question_scores,
    read_dpg_csv,
    read_translations,
    score_dpg,
    score_tile,
    split_grid,
    write_dpg_csv,
)
from regionreasoner.evals.generation.world_dpg import ExactWorldVQA, world_dpg_items
from regionreasoner.evals.generation.world_prompts import world_geneval_prompts
from regionreasoner.evals.generation.world_render import layout_for, render_objects

TEXT = "A black cat on a red mat."
ROWS = [  # DPG-Bench rows: proposition_id, dependency, category_broad, category_detailed, tuple, question
    (1, "0", "entity", "whole", "entity - whole (cat)", "Is there a cat?"),
    (2, "0", "entity", "whole", "entity - whole (mat)", "Is there a mat?"),
    (3, "1", "attribute", "color", "attribute - color (cat, black)", "Is the cat black?"),
    (4, "1,2", "relation", "spatial", "relation - spatial (cat, mat, on)", "Is the cat on the mat?"),
    (5, "3", "attribute", "texture", "attribute - texture (cat, fluffy)", "Is the black cat fluffy?"),
]


class ScriptedVQA:
    """Answers from a table by question, per call count (one table per tile)."""

    def __init__(self, tiles: list[Mapping[str, str]]) -> None:
        self.tiles = tiles
        self.calls = 0

    def answer(self, image: Image.Image, question: str) -> str:
        tile = self.tiles[self.calls // 5 % len(self.tiles)]
        self.calls += 1
        return tile.get(question, "yes")


@pytest.fixture
def item(tmp_path: Path) -> DPGItem:
    path = tmp_path / "dpg_bench.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(DPG_COLUMNS)
        writer.writerows(("partiprompts1", TEXT, "cat, mat", *row) for row in ROWS)
    (only,) = read_dpg_csv(path)
    return only


def test_csv_reads_and_round_trips(item: DPGItem, tmp_path: Path) -> None:
    assert item.item_id == "partiprompts1" and item.text == TEXT
    assert [q.dependency for q in item.questions] == [(), (), (1,), (1, 2), (3,)]
    assert item.questions[3].category_broad == "relation"
    again = read_dpg_csv(write_dpg_csv(tmp_path / "copy.csv", [item]))
    assert again == [item]
    header = (tmp_path / "copy.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",") == list(DPG_COLUMNS)


def test_dependency_rule_zeroes_children_in_order(item: DPGItem) -> None:
    image = Image.new("RGB", (8, 8))
    all_yes = ScriptedVQA([{}])
    assert score_tile(image, item.questions, all_yes) == 1.0
    # The cat is missing: its colour (3), the relation (4) and, through 3, the texture (5) are zeroed.
    no_cat = ScriptedVQA([{"Is there a cat?": "no"}])
    assert question_scores(image, item.questions, no_cat) == {1: 0.0, 2: 1.0, 3: 0.0, 4: 0.0, 5: 0.0}
    # A "no" to a leaf zeroes only itself; anything but exactly "yes" is a no.
    not_black = ScriptedVQA([{"Is the cat black?": "No"}])
    assert question_scores(image, item.questions, not_black) == {1: 1.0, 2: 1.0, 3: 0.0, 4: 1.0, 5: 0.0}
    no_mat = ScriptedVQA([{"Is there a mat?": "no"}])
    assert score_tile(image, item.questions, no_mat) == pytest.approx(3 / 5)


def test_grid_layout_and_prompt_score(item: DPGItem, tmp_path: Path) -> None:
    tiles = [Image.new("RGB", (16, 12), c) for c in ("red", "green", "blue", "white")]
    grid = make_grid(tiles)
    assert grid.size == (32, 24)
    assert [t.getpixel((3, 3)) for t in split_grid(grid)] == [t.getpixel((0, 0)) for t in tiles]
    with pytest.raises(InputError):
        make_grid(tiles[:3])

    class Grids:
        def generate(self, prompts: list[str], *, seed: int | None = None) -> list[Image.Image]:
            assert prompts == [TEXT] * 4 and seed == 7
            return tiles

    out = tmp_path / "en"
    assert generate_dpg(Grids(), {item.item_id: item.text}, out, seed=7, progress=False).generated == 1
    assert generate_dpg(Grids(), {item.item_id: item.text}, out, seed=7, progress=False).skipped == 1
    # Tile scores 1, 3/5, 0 (no cat, no mat), 1: the prompt scores their mean.
    vqa = ScriptedVQA([{}, {"Is there a mat?": "no"}, {"Is there a cat?": "no", "Is there a mat?": "no"}, {}])
    (result,) = score_dpg(out, [item], vqa, progress=False)
    assert result.tiles == (1.0, 0.6, 0.0, 1.0)
    assert result.score == pytest.approx(0.65)
    assert result.categories["entity"] == pytest.approx(5 / 8)
    again = score_dpg(out, [item], ScriptedVQA([{"Is there a cat?": "no"}]), progress=False)
    assert again == [result]  # resumed from results.jsonl, not asked again


def test_translations_in_both_layouts(tmp_path: Path) -> None:
    (tmp_path / "dutch-prompts").mkdir()
    (tmp_path / "dutch-prompts" / "partiprompts1.txt").write_text("Een zwarte kat op een rode mat.\n", "utf-8")
    (tmp_path / "fr").mkdir()
    (tmp_path / "fr" / "partiprompts1.txt").write_text("Un chat noir sur un tapis rouge.", "utf-8")
    assert read_translations(tmp_path, "nl") == {"partiprompts1": "Een zwarte kat op een rode mat."}
    assert read_translations(tmp_path, "fr") == {"partiprompts1": "Un chat noir sur un tapis rouge."}
    with pytest.raises(InputError):
        read_translations(tmp_path, "hi")


def test_world_items_and_the_exact_vqa() -> None:
    prompts = world_geneval_prompts("en", n_per_task=4, seed=2)
    items = world_dpg_items(prompts)
    vqa = ExactWorldVQA()
    by_tag = {p.tag: (p, i) for p, i in zip(prompts, items, strict=True)}
    _, item = by_tag["position"]
    assert [q.category_broad for q in item.questions] == ["entity", "entity", "relation"]
    assert item.questions[2].dependency == (1, 2)
    for index, (p, it) in enumerate(zip(prompts, items, strict=True)):
        image = render_objects(layout_for(p, size=(96, 96), seed=index), (96, 96))
        assert score_tile(image, it.questions, vqa) == 1.0, it.questions
        assert score_tile(render_objects([], (96, 96)), it.questions, vqa) == 0.0
    with pytest.raises(InputError, match="cannot answer"):
        vqa.answer(Image.new("RGB", (8, 8)), "What colour is the sky?")


def test_question_lists_need_questions() -> None:
    with pytest.raises(InputError):
        score_tile(Image.new("RGB", (4, 4)), [], ScriptedVQA([{}]))
    assert DPGQuestion(1, (), "entity", "whole", "entity - whole (cat)", "Is there a cat?").dependency == ()
