"""Dialogue ownership on both backends: stored and read back, listed per owner, ids taken, revision 0003."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, func, insert, select

from regionreasoner.core.errors import DialogueNotFoundError, InputError
from regionreasoner.core.types import TurnDraft
from regionreasoner.memory import RegionMemory, current, upgrade
from regionreasoner.memory.migrate import HEAD_REVISION, alembic_config
from regionreasoner.memory.models import DialogueRow, ImageRow, ImageVersionRow, TurnRow

Counts = Callable[[RegionMemory], dict[str, int]]


def test_the_owner_is_stored_and_read_back(
    memory: RegionMemory, make_picture: Callable[..., np.ndarray], make_draft: Callable[..., TurnDraft]
) -> None:
    image = memory.put_image(make_picture()).hash
    owned = memory.create_dialogue(image, id="a1", owner="alice")
    free = memory.create_dialogue(image, id="free")
    assert owned.owner == "alice" and free.owner is None
    memory.append_turn("a1", make_draft(image))
    assert memory.dialogue("a1").owner == "alice" and memory.dialogue("free").owner is None
    assert memory.dialogue_owner("a1") == "alice" and memory.dialogue_owner("free") is None
    assert {d.id: d.owner for d in memory.list_dialogues()} == {"a1": "alice", "free": None}
    # The same id, image and owner again: the stored dialogue, with its turn.
    again = memory.create_dialogue(image, id="a1", owner="alice")
    assert again == memory.dialogue("a1") and len(again.turns) == 1
    assert memory.create_dialogue(image, id="free") == memory.dialogue("free")
    with pytest.raises(DialogueNotFoundError, match="no dialogue 'nope'"):
        memory.dialogue_owner("nope")
    longest = "p" * 128
    assert memory.create_dialogue(image, owner=longest).owner == longest


def test_list_dialogues_filters_by_owner(memory: RegionMemory, make_picture: Callable[..., np.ndarray]) -> None:
    image = memory.put_image(make_picture()).hash
    for id, owner in [("a1", "alice"), ("b1", "bob"), ("n1", None), ("a2", "alice"), ("a3", "alice")]:
        memory.create_dialogue(image, id=id, owner=owner)
    assert [d.id for d in memory.list_dialogues(owner="alice")] == ["a3", "a2", "a1"]
    assert [d.id for d in memory.list_dialogues(owner="alice", limit=1, offset=1)] == ["a2"]
    assert [d.id for d in memory.list_dialogues(owner="bob")] == ["b1"]
    assert memory.list_dialogues(owner="carol") == []
    every = ["a3", "a2", "n1", "b1", "a1"]
    assert [d.id for d in memory.list_dialogues()] == [d.id for d in memory.list_dialogues(owner=None)] == every


@pytest.mark.parametrize("bad", ["", "x" * 129, 7])
def test_bad_owners_are_refused(
    memory: RegionMemory, make_picture: Callable[..., np.ndarray], row_counts: Counts, bad: object
) -> None:
    image = memory.put_image(make_picture()).hash
    before = row_counts(memory)
    with pytest.raises(InputError, match="owner") as info:
        memory.create_dialogue(image, id="d", owner=bad)  # type: ignore[arg-type]
    assert "principal name of 1 to 128 characters" in str(info.value)
    with pytest.raises(InputError, match="owner"):
        memory.list_dialogues(owner=bad)  # type: ignore[arg-type]
    assert row_counts(memory) == before


@pytest.mark.parametrize(("first", "second"), [("alice", "bob"), ("alice", None), (None, "bob")])
def test_another_owners_id_is_taken_and_nothing_is_stored(
    memory: RegionMemory,
    make_picture: Callable[..., np.ndarray],
    make_draft: Callable[..., TurnDraft],
    row_counts: Counts,
    first: str | None,
    second: str | None,
) -> None:
    image = memory.put_image(make_picture()).hash
    memory.create_dialogue(image, id="shared", owner=first)
    memory.append_turn("shared", make_draft(image))
    before = row_counts(memory)
    for source in (image, make_picture(seed=7)):  # the same image, and one that is not stored yet
        with pytest.raises(InputError, match=r"dialogue id 'shared' is taken") as info:
            memory.create_dialogue(source, id="shared", owner=second)
        message = str(info.value)
        assert "pick another id or omit id" in message
        assert "exists" not in message and image[:12] not in message and str(first) not in message
        assert row_counts(memory) == before  # no row, no image file
    assert memory.dialogue_owner("shared") == first and len(memory.turns("shared")) == 1
    # Its owner's call with another image is the existing rule, which may name the image.
    with pytest.raises(InputError, match="already exists"):
        memory.create_dialogue(make_picture(seed=8), id="shared", owner=first)


def test_concurrent_creates_of_one_id_give_it_to_one_owner(
    memory: RegionMemory, make_picture: Callable[..., np.ndarray], row_counts: Counts
) -> None:
    image = memory.put_image(make_picture()).hash
    owners = [f"user-{i}" for i in range(6)]
    won: list[str] = []
    taken: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(owners))

    def work(owner: str) -> None:
        barrier.wait()
        try:
            won.append(str(memory.create_dialogue(image, id="race", owner=owner).owner))
        except InputError as exc:
            taken.append(str(exc))
        except BaseException as exc:  # collected and asserted on below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(owner,)) for owner in owners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(won) == 1 and memory.dialogue_owner("race") == won[0]
    assert len(taken) == len(owners) - 1 and all("is taken" in m for m in taken)
    counts = row_counts(memory)
    assert (counts["dialogues"], counts["image_versions"]) == (1, 1)


def _database_at_0002(url: str) -> None:
    """A database at revision 0002 (no dialogues.owner) with two dialogues, one with a turn."""
    assert upgrade(url, "0002") == "0002"
    a = "a" * 64
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(insert(ImageRow), [{"hash": a, "width": 8, "height": 8, "created_at": t0}])
            conn.execute(
                insert(DialogueRow),
                [
                    {"id": "old", "image_hash": a, "title": "kept", "created_at": t0},
                    {"id": "older", "image_hash": a, "title": None, "created_at": t0},
                ],
            )
            conn.execute(
                insert(ImageVersionRow),
                [{"dialogue_id": d, "number": 0, "image_hash": a, "created_at": t0} for d in ("old", "older")],
            )
            turn = {"frame": "fixed:840x840", "raw_text": "", "status": "ok", "problems": [], "usage": {}}
            conn.execute(
                insert(TurnRow),
                [
                    {"dialogue_id": "old", "turn_index": 0, "image_hash": a, "question": "q", "rendered_question": "q"}
                    | turn
                    | {"content_hash": "", "created_at": t0}
                ],
            )
    finally:
        engine.dispose()


def test_upgrading_from_0002_keeps_the_dialogues_without_an_owner(
    memory_url: str, tmp_path: Path, make_picture: Callable[..., np.ndarray]
) -> None:
    _database_at_0002(memory_url)
    assert HEAD_REVISION == "0003"
    assert upgrade(memory_url) == HEAD_REVISION
    with RegionMemory(memory_url, image_dir=tmp_path / "images", migrate=False) as memory:
        old = memory.dialogue("old")
        assert (old.owner, old.title, len(old.turns), old.image) == (None, "kept", 1, "a" * 64)
        assert memory.dialogue_owner("older") is None
        assert {d.id for d in memory.list_dialogues()} == {"old", "older"}
        assert memory.list_dialogues(owner="alice") == []
        # An old dialogue stays its in-process caller's; an owner cannot take its id.
        assert memory.create_dialogue("a" * 64, id="old") == old
        with pytest.raises(InputError, match="is taken"):
            memory.create_dialogue("a" * 64, id="old", owner="alice")
        image = memory.put_image(make_picture()).hash
        assert memory.create_dialogue(image, id="new", owner="alice").owner == "alice"


def test_downgrading_0003_keeps_the_dialogues_and_their_turns(memory_url: str) -> None:
    from alembic import command

    _database_at_0002(memory_url)
    upgrade(memory_url)
    engine = create_engine(memory_url)
    try:
        with engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            command.downgrade(config, "0002")
        with engine.connect() as conn:
            assert conn.execute(select(DialogueRow.id).order_by(DialogueRow.id)).scalars().all() == ["old", "older"]
            assert conn.execute(select(func.count()).select_from(TurnRow)).scalar_one() == 1
            assert conn.execute(select(func.count()).select_from(ImageVersionRow)).scalar_one() == 2
    finally:
        engine.dispose()
    assert current(memory_url) == "0002"
    assert upgrade(memory_url) == HEAD_REVISION
