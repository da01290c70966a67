"""Image versions of a dialogue on both backends: numbering, links, latest image, errors, upgrading revision 0001."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, insert

from regionreasoner.core.errors import DialogueNotFoundError, ImageNotFoundError, InputError, RegionNotFoundError
from regionreasoner.core.types import TurnDraft, VersionDraft
from regionreasoner.memory import RegionMemory, upgrade
from regionreasoner.memory.migrate import HEAD_REVISION
from regionreasoner.memory.models import DialogueRow, ImageRow, TurnRow


def _edited(make_picture: Callable[..., np.ndarray], seed: int) -> np.ndarray:
    pixels = make_picture(seed=1).copy()
    pixels[0:8, 0:8] = (255, 0, seed)
    return pixels


def test_a_turn_records_the_versions_its_tools_made(
    memory: RegionMemory, make_picture: Callable[..., np.ndarray], make_draft: Callable[..., TurnDraft]
) -> None:
    start = memory.put_image(make_picture(seed=1)).hash
    dlg = memory.create_dialogue(start, id="d")
    [v0] = memory.versions("d")
    assert (v0.number, v0.image, v0.parent, v0.turn, v0.tool) == (0, start, None, None, None)
    assert v0.created_at == dlg.created_at and memory.latest_image("d") == start

    first = memory.append_turn("d", make_draft(start))
    painted = memory.put_image(_edited(make_picture, 1), parent=start).hash
    generated = memory.put_image(make_picture(seed=9)).hash
    made = [
        VersionDraft(image=painted, parent=start, tool="inpaint", prompt="een rode paraplu", region="R1"),
        VersionDraft(image=generated, tool="generate", prompt="一把红色的雨伞"),
    ]
    second = memory.append_turn("d", make_draft(start, versions=made, key="k1"))
    assert [v.number for v in second.versions] == [1, 2] and [v.turn for v in second.versions] == [1, 1]
    for version, draft in zip(second.versions, made, strict=True):
        assert version.model_dump(include=set(VersionDraft.model_fields)) == draft.model_dump()
    assert memory.turns("d")[1] == second and first.versions == []
    assert memory.versions("d") == [v0, *second.versions]
    assert memory.latest_image("d") == generated
    # The regions of the old version keep its image; an edited image records its parent in `images` too.
    assert memory.get_region("d", "R1").image == start
    assert memory.image_info(painted).parent == start and memory.image_info(generated).parent is None
    # The same key again returns the stored turn: no second copy of its versions.
    assert memory.append_turn("d", make_draft(start, versions=made, key="k1")) == second
    assert len(memory.versions("d")) == 3

    third = memory.append_turn("d", make_draft(generated))
    assert third.image == generated and third.versions == [] and len(memory.versions("d")) == 3


def test_an_image_sent_with_a_turn_is_a_version_of_its_own(
    memory: RegionMemory, make_picture: Callable[..., np.ndarray], make_draft: Callable[..., TurnDraft]
) -> None:
    start = memory.put_image(make_picture(seed=1)).hash
    other = memory.put_image(make_picture(seed=2)).hash
    painted = memory.put_image(_edited(make_picture, 3), parent=other).hash
    memory.create_dialogue(start, id="d")
    turn = memory.append_turn(
        "d", make_draft(other, versions=[VersionDraft(image=painted, parent=other, tool="inpaint", prompt="x")])
    )
    versions = memory.versions("d")
    assert [(v.number, v.image, v.tool, v.turn) for v in versions] == [
        (0, start, None, None),
        (1, other, None, 0),
        (2, painted, "inpaint", 0),
    ]
    assert [v.number for v in turn.versions] == [2]  # a turn lists the versions its tools made
    assert memory.latest_image("d") == painted


def test_versions_outside_a_turn_and_errors(
    memory: RegionMemory,
    make_picture: Callable[..., np.ndarray],
    make_draft: Callable[..., TurnDraft],
    row_counts: Callable[[RegionMemory], dict[str, int]],
) -> None:
    start = memory.put_image(make_picture(seed=1)).hash
    memory.create_dialogue(start, id="d")
    memory.append_turn("d", make_draft(start))
    painted = memory.put_image(_edited(make_picture, 4), parent=start).hash
    added = memory.add_version("d", VersionDraft(image=painted, parent=start, tool="inpaint", region="R1"))
    assert (added.number, added.turn, added.region, added.parent) == (1, None, "R1", start)
    assert memory.latest_image("d") == painted and memory.versions("d")[-1] == added

    missing = "0" * 64
    with pytest.raises(ImageNotFoundError):
        memory.add_version("d", VersionDraft(image=missing, tool="generate"))
    with pytest.raises(ImageNotFoundError):
        memory.add_version("d", VersionDraft(image=painted, parent=missing, tool="inpaint"))
    with pytest.raises(RegionNotFoundError, match="has no region R7"):
        memory.add_version("d", VersionDraft(image=painted, tool="inpaint", region="R7"))
    with pytest.raises(DialogueNotFoundError):
        memory.add_version("nope", VersionDraft(image=painted, tool="generate"))
    with pytest.raises(DialogueNotFoundError):
        memory.versions("nope")
    with pytest.raises(InputError, match="VersionDraft"):
        memory.add_version("d", {"image": painted})  # type: ignore[arg-type]
    # A turn's versions are checked before anything of the turn is stored.
    with pytest.raises(ImageNotFoundError):
        memory.append_turn("d", make_draft(painted, versions=[VersionDraft(image=missing, tool="generate")]))
    with pytest.raises(RegionNotFoundError):
        memory.append_turn("d", make_draft(painted, versions=[VersionDraft(image=start, tool="inpaint", region="R9")]))
    assert len(memory.turns("d")) == 1 and len(memory.versions("d")) == 2

    memory.delete_dialogue("d")
    assert row_counts(memory)["image_versions"] == 0


def test_an_old_database_upgrades_with_its_versions_filled_in(memory_url: str, tmp_path: Path) -> None:
    """A database at revision 0001 (no image_versions) with two dialogues, one of whose turns sent another image."""
    assert upgrade(memory_url, "0001") == "0001"
    a, b = "a" * 64, "b" * 64
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    turn = {"frame": "fixed:840x840", "raw_text": "", "status": "ok", "problems": [], "usage": {}, "content_hash": ""}
    engine = create_engine(memory_url)
    try:
        with engine.begin() as conn:
            conn.execute(insert(ImageRow), [{"hash": h, "width": 8, "height": 8, "created_at": t0} for h in (a, b)])
            conn.execute(
                insert(DialogueRow),
                [{"id": "one", "image_hash": a, "created_at": t0}, {"id": "two", "image_hash": a, "created_at": t0}],
            )
            rows = [("one", 0, a), ("one", 1, b), ("one", 2, b), ("one", 3, a), ("two", 0, a)]
            conn.execute(
                insert(TurnRow),
                [
                    {"dialogue_id": d, "turn_index": i, "image_hash": h, "question": "q", "rendered_question": "q"}
                    | turn
                    | {"created_at": t0}
                    for d, i, h in rows
                ],
            )
    finally:
        engine.dispose()
    assert upgrade(memory_url) == HEAD_REVISION
    with RegionMemory(memory_url, image_dir=tmp_path / "images", migrate=False) as memory:
        one = memory.versions("one")
        assert [(v.number, v.image, v.turn, v.tool) for v in one] == [
            (0, a, None, None),
            (1, b, 1, None),
            (2, a, 3, None),
        ]
        assert [(v.number, v.image) for v in memory.versions("two")] == [(0, a)]
        assert memory.latest_image("one") == a and memory.latest_image("two") == a
        assert all(v.created_at == t0 for v in one)
