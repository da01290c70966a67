"""Idempotent appends, conflicts, 16 concurrent writers on one dialogue, and the retry on id collisions."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Connection

from regionreasoner.core.errors import StorageError, TurnConflictError
from regionreasoner.core.types import Turn, TurnDraft
from regionreasoner.memory import RegionMemory
from regionreasoner.memory import append as append_module
from regionreasoner.memory.store import MAX_ATTEMPTS

Counts = Callable[[RegionMemory], dict[str, int]]
THREADS = 16


@pytest.fixture
def image(memory: RegionMemory, make_picture: Callable[..., np.ndarray]) -> str:
    return memory.put_image(make_picture()).hash


def test_same_key_twice_returns_the_stored_turn(
    memory: RegionMemory, image: str, make_draft: Callable[..., TurnDraft], row_counts: Counts
) -> None:
    dlg = memory.create_dialogue(image)
    draft = make_draft(image, key="turn-a", boxes=[(0.0, 0.0, 4.0, 4.0), (1.0, 1.0, 2.0, 2.0)])
    first = memory.append_turn(dlg.id, draft)
    before = row_counts(memory)
    again = memory.append_turn(dlg.id, draft)
    assert again == first  # created_at included: nothing was written again
    assert row_counts(memory) == before
    assert memory.append_turn(dlg.id, draft.model_copy(update={"index": 0})) == first


def test_same_explicit_index_twice_returns_the_stored_turn(
    memory: RegionMemory, image: str, make_draft: Callable[..., TurnDraft], row_counts: Counts
) -> None:
    dlg = memory.create_dialogue(image)
    memory.append_turn(dlg.id, make_draft(image))
    draft = make_draft(image, index=1, question="second")
    first = memory.append_turn(dlg.id, draft)
    before = row_counts(memory)
    assert memory.append_turn(dlg.id, draft) == first
    assert row_counts(memory) == before
    assert first.index == 1 and [r.id for r in first.regions] == ["R2"]


@pytest.mark.parametrize(
    ("stored", "again", "match"),
    [
        ({"key": "k"}, {"key": "k", "question": "changed"}, "with key 'k': different content"),
        ({"index": 0}, {"index": 0, "question": "changed"}, "with index 0: different content"),
        ({"key": "k"}, {"index": 0}, "with index 0: stored under key 'k', not None"),
        ({"key": "k"}, {"key": "k", "index": 1}, "with key 'k': stored as turn 0, not 1"),
        ({"key": "k"}, {"key": "other", "index": 0}, "already has turn 0 under key 'k'"),
    ],
    ids=["key-content", "index-content", "index-key", "key-index", "index-taken"],
)
def test_conflicting_repeats_raise_and_store_nothing(
    memory: RegionMemory,
    image: str,
    make_draft: Callable[..., TurnDraft],
    row_counts: Counts,
    stored: dict[str, object],
    again: dict[str, object],
    match: str,
) -> None:
    dlg = memory.create_dialogue(image)
    memory.append_turn(dlg.id, make_draft(image, **stored))
    before = row_counts(memory)
    with pytest.raises(TurnConflictError, match=match) as info:
        memory.append_turn(dlg.id, make_draft(image, **again))
    assert info.value.hint
    assert row_counts(memory) == before


def _check_dense(memory: RegionMemory, dialogue_id: str, results: list[Turn], sizes: list[int]) -> None:
    turns = memory.turns(dialogue_id)
    assert sorted(t.index for t in turns) == list(range(len(sizes)))
    numbers = [int(r.id[1:]) for t in turns for r in t.regions]
    assert sorted(numbers) == list(range(1, sum(sizes) + 1)), "lost or duplicate region ids"
    assert numbers == sorted(numbers), "region ids must grow with the turn index"
    assert sorted(results, key=lambda t: t.index) == turns
    by_question = {t.question: len(t.regions) for t in turns}
    assert by_question == {f"thread {i}": n for i, n in enumerate(sizes)}


def _drafts(image: str, make_draft: Callable[..., TurnDraft]) -> tuple[list[TurnDraft], list[int]]:
    sizes = [1 + i % 3 for i in range(THREADS)]
    boxes = [[(float(j), 0.0, float(j) + 1.0, 1.0) for j in range(n)] for n in sizes]
    return [make_draft(image, boxes=b, question=f"thread {i}") for i, b in enumerate(boxes)], sizes


def test_sixteen_threads_share_one_memory(
    memory: RegionMemory, image: str, make_draft: Callable[..., TurnDraft]
) -> None:
    dlg = memory.create_dialogue(image)
    drafts, sizes = _drafts(image, make_draft)
    barrier = threading.Barrier(THREADS)

    def work(draft: TurnDraft) -> Turn:
        barrier.wait()
        return memory.append_turn(dlg.id, draft)

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(work, drafts))
    _check_dense(memory, dlg.id, results, sizes)


def test_sixteen_threads_with_their_own_connections(
    memory_url: str, memory: RegionMemory, image: str, make_draft: Callable[..., TurnDraft], tmp_path: Path
) -> None:
    """Like 16 processes: each thread opens its own RegionMemory (own engine and pool) on the same database."""
    dlg = memory.create_dialogue(image)
    drafts, sizes = _drafts(image, make_draft)
    barrier = threading.Barrier(THREADS)

    def work(draft: TurnDraft) -> Turn:
        with RegionMemory(memory_url, image_dir=tmp_path / "images") as mine:
            barrier.wait()
            return mine.append_turn(dlg.id, draft)

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(work, drafts))
    _check_dense(memory, dlg.id, results, sizes)


def test_sixteen_threads_repeat_one_key(memory: RegionMemory, image: str, make_draft: Callable[..., TurnDraft]) -> None:
    dlg = memory.create_dialogue(image)
    draft = make_draft(image, key="only-once", boxes=[(0.0, 0.0, 1.0, 1.0), (0.0, 0.0, 2.0, 2.0)])
    barrier = threading.Barrier(THREADS)

    def work(_: int) -> Turn:
        barrier.wait()
        return memory.append_turn(dlg.id, draft)

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(work, range(THREADS)))
    assert len(memory.turns(dlg.id)) == 1
    assert all(r == results[0] for r in results)
    assert [r.id for r in memory.regions(dlg.id)] == ["R1", "R2"]


def test_sixteen_threads_on_in_memory_sqlite(
    make_picture: Callable[..., np.ndarray], make_draft: Callable[..., TurnDraft], tmp_path: Path
) -> None:
    with RegionMemory("sqlite://", image_dir=tmp_path / "images") as memory:
        image = memory.put_image(make_picture()).hash
        dlg = memory.create_dialogue(image)
        drafts, sizes = _drafts(image, make_draft)
        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(lambda d: memory.append_turn(dlg.id, d), drafts))
        _check_dense(memory, dlg.id, results, sizes)


@pytest.mark.parametrize("stale", ["index", "number"])
def test_a_collision_is_retried(
    memory: RegionMemory,
    image: str,
    make_draft: Callable[..., TurnDraft],
    monkeypatch: pytest.MonkeyPatch,
    stale: str,
) -> None:
    """Force the allocator to hand out an id that is taken: the unique constraint fires, the retry succeeds."""
    dlg = memory.create_dialogue(image)
    memory.append_turn(dlg.id, make_draft(image, boxes=[(0.0, 0.0, 1.0, 1.0)] * 2))
    real = append_module.allocate
    calls: list[tuple[int, int]] = []

    def flaky(conn: Connection, dialogue_id: str) -> tuple[int, int]:
        index, number = real(conn, dialogue_id)
        if not calls:
            index, number = (0, number) if stale == "index" else (index, 2)
        calls.append((index, number))
        return index, number

    monkeypatch.setattr(append_module, "allocate", flaky)
    turn = memory.append_turn(dlg.id, make_draft(image, boxes=[(0.0, 0.0, 3.0, 3.0)] * 2))
    assert len(calls) == 2, "the first attempt must have collided and been retried"
    assert (turn.index, [r.id for r in turn.regions]) == (1, ["R3", "R4"])
    assert [r.id for r in memory.regions(dlg.id)] == ["R1", "R2", "R3", "R4"]
    assert [t.index for t in memory.turns(dlg.id)] == [0, 1]


def test_endless_collisions_give_up_with_a_storage_error(
    memory: RegionMemory,
    image: str,
    make_draft: Callable[..., TurnDraft],
    monkeypatch: pytest.MonkeyPatch,
    row_counts: Counts,
) -> None:
    dlg = memory.create_dialogue(image)
    memory.append_turn(dlg.id, make_draft(image))
    calls: list[int] = []

    def stale(conn: Connection, dialogue_id: str) -> tuple[int, int]:
        calls.append(1)
        return 0, 1

    monkeypatch.setattr(append_module, "allocate", stale)
    before = row_counts(memory)
    with pytest.raises(StorageError, match=f"gave up after {MAX_ATTEMPTS} attempts"):
        memory.append_turn(dlg.id, make_draft(image))
    assert len(calls) == MAX_ATTEMPTS
    assert row_counts(memory) == before
