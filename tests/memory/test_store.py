"""RegionMemory on both backends: every field round-trips, regions are named R1.., reads and images work."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from regionreasoner.core.errors import DialogueNotFoundError, ImageNotFoundError, InputError, NotFoundError
from regionreasoner.core.images import load_image
from regionreasoner.core.masks import decode_rle, encode_rle
from regionreasoner.core.types import (
    Citation,
    Problem,
    ProblemKind,
    RegionDraft,
    Sections,
    Severity,
    TurnDraft,
    TurnStatus,
    Usage,
)
from regionreasoner.memory import RegionMemory
from regionreasoner.memory.convert import COMMON_TURN_FIELDS

W, H = 64, 48


def _full_drafts(image: str) -> tuple[TurnDraft, TurnDraft, np.ndarray]:
    mask = np.zeros((H, W), dtype=bool)
    mask[2:12, 1:10] = True
    first = TurnDraft(
        question="find the dog lying down",
        rendered_question="find the dog lying down",
        image=image,
        frame="fixed:840x840",
        sections=Sections(scene="a park with two dogs", think="the left dog lies down", answer='[{"bbox_2d": [1]}]'),
        raw_text="<scene>a park</scene><think>...</think><answer>[...]</answer>",
        regions=[
            RegionDraft(box=(1.0, 2.0, 10.0, 12.0), point=(5.5, 6.25), mask=encode_rle(mask), label="dog", score=0.875),
            RegionDraft(box=(0.0, 0.0, float(W), float(H))),
        ],
        problems=[
            Problem(kind=ProblemKind.TRUNCATED, severity=Severity.WARNING, message="think was cut", section="think"),
            Problem(kind=ProblemKind.POINT_OUTSIDE_BOX, severity=Severity.WARNING, message="p", index=1),
        ],
        usage=Usage(prompt_tokens=1234, cached_tokens=1000, generated_tokens=56, model_calls=4, latency_ms=123.456),
        model="tiny-qwen2.5-vl",
        trace_id="0af7651916cd43dd8448eb211c80319c",
        key="turn-0",
    )
    second = TurnDraft(
        question="the standing dog next to R1, not R2",
        rendered_question="the standing dog next to bbox=[13, 35, 131, 210], not bbox=[0, 0, 840, 840]",
        image=image,
        frame="fixed:840x840",
        sections=Sections(scene="s", focus="R1 holds a lying dog", think="bbox=[13, 35, 131, 210] ...", answer="[]"),
        raw_text="raw",
        referenced=["R1", "R2"],
        citations=[
            Citation(model_box=(13.0, 35.0, 131.0, 210.0), box=(1.0, 2.0, 10.0, 12.0), region="R1", verified=True),
            Citation(model_box=(0.0, 0.0, 5.0, 5.0), box=(0.0, 0.0, 0.38, 0.29), region=None, verified=False),
        ],
        regions=[RegionDraft(box=(20.0, 5.5, 30.25, 40.0), label=None, score=None)],
        trace_id=None,
        key="turn-1",
    )
    return first, second, mask


def test_every_field_round_trips(memory: RegionMemory, make_picture: Callable[..., np.ndarray]) -> None:
    image = memory.put_image(make_picture(W, H)).hash
    dlg = memory.create_dialogue(image, id="park", title="dogs")
    first, second, mask = _full_drafts(image)

    returned = [memory.append_turn(dlg.id, first), memory.append_turn(dlg.id, second)]
    stored = memory.turns(dlg.id)

    assert stored == returned
    for draft, turn in zip((first, second), stored, strict=True):
        for name in COMMON_TURN_FIELDS:
            assert getattr(turn, name) == getattr(draft, name), name
        assert turn.dialogue_id == "park"
        assert len(turn.regions) == len(draft.regions)
        for region, region_draft in zip(turn.regions, draft.regions, strict=True):
            assert region.model_dump(include=set(RegionDraft.model_fields)) == region_draft.model_dump()
            assert region.image == image
            assert region.turn == turn.index
    assert [t.index for t in stored] == [0, 1]
    assert [r.id for r in stored[0].regions] == ["R1", "R2"]
    assert [r.id for r in stored[1].regions] == ["R3"]
    assert stored[1].referenced == ["R1", "R2"]
    r1 = memory.get_region("park", "R1")
    assert r1.mask is not None
    assert np.array_equal(decode_rle(r1.mask), mask)
    assert r1.point == (5.5, 6.25)
    assert stored[0].created_at.tzinfo is not None
    assert memory.dialogue("park").turns == stored
    assert memory.turn("park", 1) == stored[1]


def test_failed_turn_is_stored_without_regions(
    memory: RegionMemory, make_picture: Callable[..., np.ndarray], make_draft: Callable[..., TurnDraft]
) -> None:
    image = memory.put_image(make_picture()).hash
    dlg = memory.create_dialogue(image)
    failed = make_draft(
        image,
        boxes=[],
        status=TurnStatus.FAILED,
        sections=Sections(scene="x"),
        problems=[Problem(kind=ProblemKind.MISSING_TAG, severity=Severity.ERROR, message="no <answer>")],
    )
    turn = memory.append_turn(dlg.id, failed)
    after = memory.append_turn(dlg.id, make_draft(image))
    assert turn.status is TurnStatus.FAILED and turn.regions == []
    assert memory.turn(dlg.id, 0) == turn
    assert (after.index, [r.id for r in after.regions]) == (1, ["R1"])


def test_region_ids_are_allocated_in_answer_order_across_turns(
    memory: RegionMemory, make_picture: Callable[..., np.ndarray], make_draft: Callable[..., TurnDraft]
) -> None:
    image = memory.put_image(make_picture()).hash
    dlg = memory.create_dialogue(image)
    shapes = [1, 3, 0, 2]
    turns = [
        memory.append_turn(dlg.id, make_draft(image, boxes=[(float(i), 0.0, float(i) + 1, 1.0) for i in range(n)]))
        for n in shapes
    ]
    assert [t.index for t in turns] == [0, 1, 2, 3]
    assert [[r.id for r in t.regions] for t in turns] == [["R1"], ["R2", "R3", "R4"], [], ["R5", "R6"]]
    assert [r.id for r in memory.regions(dlg.id)] == ["R1", "R2", "R3", "R4", "R5", "R6"]
    assert memory.get_region(dlg.id, "R4").box == (2.0, 0.0, 3.0, 1.0)
    assert memory.get_region(dlg.id, "R4").turn == 1
    other = memory.create_dialogue(image)
    assert [r.id for r in memory.append_turn(other.id, make_draft(image)).regions] == ["R1"]


def test_append_turns_stores_a_batch_in_order(
    memory: RegionMemory, make_picture: Callable[..., np.ndarray], make_draft: Callable[..., TurnDraft]
) -> None:
    image = memory.put_image(make_picture()).hash
    dlg = memory.create_dialogue(image)
    batch = [
        make_draft(image, boxes=[(0.0, 0.0, 5.0, 5.0), (1.0, 1.0, 2.0, 2.0)]),
        make_draft(image, referenced=["R2"], question="next to R2"),
        make_draft(image, key="k"),
        make_draft(image, key="k"),  # repeats the previous draft of the same batch
    ]
    turns = memory.append_turns(dlg.id, batch)
    assert [t.index for t in turns] == [0, 1, 2, 2]
    assert turns[3] == turns[2]
    assert [r.id for t in turns[:3] for r in t.regions] == ["R1", "R2", "R3", "R4"]
    assert memory.turns(dlg.id) == turns[:3]
    assert memory.append_turns(dlg.id, []) == []


def test_regions_for_image_spans_dialogues(
    memory: RegionMemory, make_picture: Callable[..., np.ndarray], make_draft: Callable[..., TurnDraft]
) -> None:
    image = memory.put_image(make_picture(seed=1)).hash
    other = memory.put_image(make_picture(seed=2)).hash
    a = memory.create_dialogue(image, id="a")
    b = memory.create_dialogue(image, id="b")
    memory.append_turn("a", make_draft(image, boxes=[(0.0, 0.0, 1.0, 1.0)]))
    memory.append_turn("b", make_draft(image, boxes=[(2.0, 2.0, 3.0, 3.0), (4.0, 4.0, 5.0, 5.0)]))
    memory.append_turn("b", make_draft(other, boxes=[(6.0, 6.0, 7.0, 7.0)]))

    found = memory.regions_for_image(image)
    assert [(r.dialogue_id, r.id) for r in found] == [("a", "R1"), ("b", "R1"), ("b", "R2")]
    assert [(r.dialogue_id, r.id, r.image) for r in memory.regions_for_image(other)] == [("b", "R3", other)]
    assert {a.id, b.id} == {"a", "b"}
    unused = memory.put_image(make_picture(seed=3)).hash
    assert memory.regions_for_image(unused) == []


def test_edited_image_version_records_its_parent(
    memory: RegionMemory, make_picture: Callable[..., np.ndarray], make_draft: Callable[..., TurnDraft]
) -> None:
    original = memory.put_image(make_picture(seed=1))
    edited_pixels = make_picture(seed=1).copy()
    edited_pixels[0:10, 0:10] = (255, 0, 0)
    edited = memory.put_image(edited_pixels, parent=original.hash)
    assert edited.parent == original.hash and original.parent is None
    assert memory.image_info(edited.hash) == edited
    assert (edited.width, edited.height) == (W, H)
    # The same pixels again: idempotent, the stored info (and its first parent) is returned.
    assert memory.put_image(edited_pixels) == edited

    dlg = memory.create_dialogue(original.hash)
    memory.append_turn(dlg.id, make_draft(original.hash))
    turn = memory.append_turn(dlg.id, make_draft(edited.hash, question="replace R1 with an umbrella"))
    assert turn.image == edited.hash and turn.regions[0].image == edited.hash
    assert memory.dialogue(dlg.id).image == original.hash
    loaded = memory.load_image(edited.hash)
    assert loaded.hash == edited.hash
    assert np.array_equal(np.asarray(loaded.image), edited_pixels)


def test_create_dialogue_from_a_file_a_hash_or_pixels(
    memory: RegionMemory, make_picture: Callable[..., np.ndarray], tmp_path: Path
) -> None:
    path = tmp_path / "photo.png"
    load_image(make_picture(seed=5)).image.save(path)
    from_path = memory.create_dialogue(path)
    from_str_path = memory.create_dialogue(str(path), title="again")
    from_hash = memory.create_dialogue(from_path.image, id="by-hash:1")
    from_pixels = memory.create_dialogue(make_picture(seed=5))
    assert from_path.image == from_str_path.image == from_hash.image == from_pixels.image
    assert len(from_path.id) == 32 and from_path.id != from_str_path.id
    assert from_str_path.title == "again" and from_hash.id == "by-hash:1"
    assert memory.images.path(from_path.image).is_file()
    # Same id, same image: the stored dialogue comes back; same id, another image: InputError.
    assert memory.create_dialogue(from_path.image, id="by-hash:1") == memory.dialogue("by-hash:1")
    with pytest.raises(InputError, match="already exists"):
        memory.create_dialogue(make_picture(seed=6), id="by-hash:1")


def test_list_and_delete_dialogues(
    memory: RegionMemory,
    make_picture: Callable[..., np.ndarray],
    make_draft: Callable[..., TurnDraft],
    row_counts: Callable[[RegionMemory], dict[str, int]],
) -> None:
    image = memory.put_image(make_picture()).hash
    ids = [memory.create_dialogue(image, id=f"d{i}").id for i in range(3)]
    memory.append_turn("d1", make_draft(image))
    memory.append_turn("d1", make_draft(image, referenced=["R1"], citations=[_citation("R1")]))
    listed = memory.list_dialogues()
    assert [d.id for d in listed] == ids[::-1]
    assert [len(d.turns) for d in listed] == [0, 2, 0]
    assert [d.id for d in memory.list_dialogues(limit=1, offset=1)] == ["d1"]

    memory.delete_dialogue("d1")
    counts = row_counts(memory)
    assert (counts["dialogues"], counts["turns"], counts["regions"], counts["citations"]) == (2, 0, 0, 0)
    assert counts["images"] == 1
    with pytest.raises(DialogueNotFoundError):
        memory.dialogue("d1")
    with pytest.raises(DialogueNotFoundError):
        memory.delete_dialogue("d1")


def test_reads_of_missing_things_raise_typed_errors(
    memory: RegionMemory, make_picture: Callable[..., np.ndarray], make_draft: Callable[..., TurnDraft]
) -> None:
    image = memory.put_image(make_picture()).hash
    memory.create_dialogue(image, id="d")
    memory.append_turn("d", make_draft(image))
    with pytest.raises(DialogueNotFoundError, match="no dialogue 'nope'"):
        memory.turns("nope")
    with pytest.raises(DialogueNotFoundError):
        memory.regions("nope")
    with pytest.raises(DialogueNotFoundError):
        memory.turn("nope", 0)
    with pytest.raises(NotFoundError, match=r"has no turn 3 \(it has turns 0..0\)"):
        memory.turn("d", 3)
    with pytest.raises(ImageNotFoundError):
        memory.image_info("0" * 64)
    with pytest.raises(ImageNotFoundError):
        memory.load_image("0" * 64)
    with pytest.raises(ImageNotFoundError):
        memory.regions_for_image("0" * 64)
    with pytest.raises(InputError, match="64 lowercase hex"):
        memory.regions_for_image("not-a-hash")
    with pytest.raises(InputError, match="limit"):
        memory.list_dialogues(limit=0)
    assert memory.regions("d")[0].id == "R1"
    memory.create_dialogue(image, id="empty")
    assert memory.turns("empty") == [] and memory.regions("empty") == []


def _citation(region: str) -> Citation:
    return Citation(model_box=(1.0, 2.0, 3.0, 4.0), box=(1.0, 2.0, 10.0, 12.0), region=region, verified=True)


def test_memory_maps_every_field_of_the_core_types() -> None:
    """A field added to a core type must get a column (models.py, convert.py) before this list is updated."""
    from regionreasoner.core.types import Citation as C
    from regionreasoner.core.types import Dialogue, ImageVersion, Region, Turn, VersionDraft

    mapped = {
        Dialogue: {"created_at", "id", "image", "owner", "title", "turns"},
        TurnDraft: {"citations", "frame", "image", "index", "key", "model", "problems", "question", "raw_text"}
        | {"referenced", "regions", "rendered_question", "sections", "status", "trace_id", "usage", "versions"},
        Turn: {"citations", "created_at", "dialogue_id", "frame", "image", "index", "key", "model", "problems"}
        | {"question", "raw_text", "referenced", "regions", "rendered_question", "sections", "status", "trace_id"}
        | {"usage", "versions"},
        VersionDraft: {"image", "parent", "prompt", "region", "tool"},
        ImageVersion: {"created_at", "dialogue_id", "image", "number", "parent", "prompt", "region", "tool", "turn"},
        RegionDraft: {"box", "label", "mask", "point", "score"},
        Region: {"box", "dialogue_id", "id", "image", "label", "mask", "point", "score", "turn"},
        C: {"box", "model_box", "region", "verified"},
        Sections: {"answer", "focus", "scene", "think"},
    }
    for model, fields in mapped.items():
        assert set(model.model_fields) == fields, model.__name__


def test_turn_by_key_is_one_lookup(memory: RegionMemory, make_picture: Callable[..., np.ndarray]) -> None:
    image = memory.put_image(make_picture()).hash
    dialogue = memory.create_dialogue(image).id
    first = memory.append_turn(
        dialogue, TurnDraft(question="q", rendered_question="q", image=image, frame="pixels", key="k")
    )
    assert memory.turn_by_key(dialogue, "k") == first
    assert memory.turn_by_key(dialogue, "other") is None and memory.turn_by_key("no-such-dialogue", "k") is None
