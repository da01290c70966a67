"""Bad input gets a typed error whose message names the fix, and nothing is stored (row counts unchanged)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from regionreasoner.core.errors import (
    DialogueNotFoundError,
    GeometryError,
    ImageDecodeError,
    ImageNotFoundError,
    InputError,
    RegionNotFoundError,
    RegionReasonerError,
)
from regionreasoner.core.masks import encode_rle
from regionreasoner.core.types import Citation, RegionDraft, TurnDraft
from regionreasoner.memory import RegionMemory

W, H = 64, 48

Counts = Callable[[RegionMemory], dict[str, int]]


@pytest.fixture
def setup(
    memory: RegionMemory, make_picture: Callable[..., np.ndarray], make_draft: Callable[..., TurnDraft]
) -> tuple[RegionMemory, str]:
    """A dialogue 'd' with one turn (R1, R2) on a 64x48 image, and a dialogue 'other' with R1..R3."""
    image = memory.put_image(make_picture(W, H)).hash
    memory.create_dialogue(image, id="d")
    memory.append_turn("d", make_draft(image, boxes=[(0.0, 0.0, 10.0, 10.0), (5.0, 5.0, 20.0, 20.0)]))
    memory.create_dialogue(image, id="other")
    memory.append_turn("other", make_draft(image, boxes=[(0.0, 0.0, 1.0, 1.0)] * 3))
    return memory, image


def _rejects(
    memory: RegionMemory, counts: Counts, error: type[RegionReasonerError], match: str, call: Callable[[], Any]
) -> RegionReasonerError:
    before = counts(memory)
    with pytest.raises(error, match=match) as info:
        call()
    assert counts(memory) == before, "a rejected call stored something"
    assert info.value.hint, "the error must name the fix"
    return info.value


def _region(**fields: Any) -> RegionDraft:
    return RegionDraft.model_validate({"box": (1.0, 1.0, 5.0, 5.0), **fields})


def test_unknown_dialogue(setup: tuple[RegionMemory, str], row_counts: Counts, make_draft: Callable[..., TurnDraft]):
    memory, image = setup
    _rejects(
        memory,
        row_counts,
        DialogueNotFoundError,
        "no dialogue 'nope'",
        lambda: memory.append_turn("nope", make_draft(image)),
    )


def test_unknown_image(setup: tuple[RegionMemory, str], row_counts: Counts, make_draft: Callable[..., TurnDraft]):
    memory, _ = setup
    draft = make_draft("ab" * 32)
    _rejects(memory, row_counts, ImageNotFoundError, "is not stored", lambda: memory.append_turn("d", draft))


@pytest.mark.parametrize(
    ("region", "match"),
    [
        (_region(box=(0.0, 0.0, W + 0.5, 10.0)), "box .* lies outside the 64x48 image"),
        (_region(box=(-0.01, 0.0, 5.0, 5.0)), "lies outside"),
        (_region(box=(0.0, 0.0, 5.0, H + 1e-3)), "lies outside"),
        (_region(point=(3.0, H + 2.0)), r"point \[3.0, 50.0\] lies outside"),
        (_region(point=(-1.0, 3.0)), "point .* lies outside"),
        (_region(mask=encode_rle(np.zeros((H, W + 1), dtype=bool))), r"mask RLE size \[48, 65\] differs .* \[48, 64\]"),
        (_region(mask=encode_rle(np.zeros((W, H), dtype=bool))), "mask RLE size"),
    ],
    ids=["box-right", "box-left", "box-bottom", "point-below", "point-left", "mask-wider", "mask-transposed"],
)
def test_geometry_outside_the_image(
    setup: tuple[RegionMemory, str],
    row_counts: Counts,
    make_draft: Callable[..., TurnDraft],
    region: RegionDraft,
    match: str,
):
    memory, image = setup
    draft = make_draft(image, boxes=[(0.0, 0.0, 1.0, 1.0)]).model_copy(update={"regions": [_region(), region]})
    error = _rejects(memory, row_counts, GeometryError, match, lambda: memory.append_turn("d", draft))
    assert "would be R4" in str(error)


def test_geometry_tolerance_accepts_round_off(setup: tuple[RegionMemory, str], make_draft: Callable[..., TurnDraft]):
    memory, image = setup
    draft = make_draft(image, boxes=[(-1e-7, 0.0, W + 1e-7, H + 1e-7)])
    assert memory.append_turn("d", draft).regions[0].id == "R3"


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"referenced": ["R1", "R7"]}, r"has no region R7 \(it has R1, R2\)"),
        ({"referenced": ["R3"]}, r"has no region R3"),  # R3 exists, but in another dialogue
        (
            {"citations": [Citation(model_box=(1, 1, 2, 2), box=(1, 1, 2, 2), region="R9", verified=False)]},
            "has no region R9",
        ),
    ],
    ids=["referenced", "other-dialogue", "citation"],
)
def test_unknown_region_references(
    setup: tuple[RegionMemory, str],
    row_counts: Counts,
    make_draft: Callable[..., TurnDraft],
    fields: dict[str, Any],
    match: str,
):
    memory, image = setup
    draft = make_draft(image, **fields)
    _rejects(memory, row_counts, RegionNotFoundError, match, lambda: memory.append_turn("d", draft))


def test_reference_in_a_dialogue_without_regions(
    setup: tuple[RegionMemory, str], row_counts: Counts, make_draft: Callable[..., TurnDraft]
):
    memory, image = setup
    memory.create_dialogue(image, id="fresh")
    draft = make_draft(image, referenced=["R1"])
    _rejects(memory, row_counts, RegionNotFoundError, "no regions yet", lambda: memory.append_turn("fresh", draft))


def test_index_gap(setup: tuple[RegionMemory, str], row_counts: Counts, make_draft: Callable[..., TurnDraft]):
    memory, image = setup
    draft = make_draft(image, index=5)
    error = _rejects(memory, row_counts, InputError, "would leave a gap", lambda: memory.append_turn("d", draft))
    assert "the next turn is 1" in str(error)


def test_not_a_draft(setup: tuple[RegionMemory, str], row_counts: Counts):
    memory, _ = setup
    bad: Any = {"question": "q"}
    _rejects(memory, row_counts, InputError, "not a TurnDraft", lambda: memory.append_turn("d", bad))


def test_a_bad_draft_in_a_batch_stores_none_of_it(
    setup: tuple[RegionMemory, str], row_counts: Counts, make_draft: Callable[..., TurnDraft]
):
    memory, image = setup
    batch = [make_draft(image), make_draft(image, referenced=["R3"]), make_draft(image, referenced=["R99"])]
    _rejects(memory, row_counts, RegionNotFoundError, "R99", lambda: memory.append_turns("d", batch))
    assert [t.index for t in memory.turns("d")] == [0]


@pytest.mark.parametrize("bad_id", ["", "has space", "x" * 129, "é", "a/b", "semi;colon"])
def test_bad_dialogue_ids(setup: tuple[RegionMemory, str], row_counts: Counts, bad_id: str):
    memory, image = setup
    _rejects(memory, row_counts, InputError, "is not allowed", lambda: memory.create_dialogue(image, id=bad_id))


def test_bad_images(setup: tuple[RegionMemory, str], row_counts: Counts, make_picture: Callable[..., np.ndarray]):
    memory, image = setup
    _rejects(memory, row_counts, ImageDecodeError, "not a recognised image", lambda: memory.create_dialogue(b"junk"))
    _rejects(memory, row_counts, ImageNotFoundError, "no stored image", lambda: memory.create_dialogue("cd" * 32))
    fresh = make_picture(seed=99)
    _rejects(memory, row_counts, ImageNotFoundError, "parent", lambda: memory.put_image(fresh, parent="ef" * 32))
    _rejects(memory, row_counts, InputError, "64 lowercase hex", lambda: memory.put_image(fresh, parent="nope"))
    _rejects(
        memory, row_counts, InputError, "its own parent", lambda: memory.put_image(make_picture(W, H), parent=image)
    )


@pytest.mark.parametrize("name", ["R0", "r1", "X", "R01", "", "R-1", " R1", "R1.5"])
def test_get_region_malformed_names(setup: tuple[RegionMemory, str], name: str):
    memory, _ = setup
    with pytest.raises(RegionNotFoundError, match=r"is not a region name \(it has R1, R2\)") as info:
        memory.get_region("d", name)
    assert "R followed by a positive integer" in str(info.value)


def test_get_region_suggests_the_spelling(setup: tuple[RegionMemory, str]):
    memory, _ = setup
    with pytest.raises(RegionNotFoundError, match="write 'R2'"):
        memory.get_region("d", "r2")


def test_get_region_unknown_names(setup: tuple[RegionMemory, str], make_draft: Callable[..., TurnDraft]):
    memory, image = setup
    with pytest.raises(RegionNotFoundError, match=r"has no region R3 \(it has R1, R2\)"):
        memory.get_region("d", "R3")
    with pytest.raises(DialogueNotFoundError):
        memory.get_region("nope", "R1")
    memory.create_dialogue(image, id="empty")
    with pytest.raises(RegionNotFoundError, match="it has no regions yet"):
        memory.get_region("empty", "R1")
    memory.append_turn("empty", make_draft(image, boxes=[(0.0, 0.0, 1.0, 1.0)] * 12))
    with pytest.raises(RegionNotFoundError, match=r"it has R1 \.\.\. R12"):
        memory.get_region("empty", "R13")
