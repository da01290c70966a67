import json
from pathlib import Path

import numpy as np
import pytest

from regionreasoner.core.masks import decode_rle, encode_rle
from regionreasoner.evals.metrics import score_turn
from regionreasoner.evals.refcoco import (
    RefcocoRecord,
    load_refcoco,
    load_refcoco_records,
    refcoco_dialogues,
    write_refcoco_records,
)
from regionreasoner.evals.regiondial import BenchmarkFormatError
from regionreasoner.evals.synthetic import referring_expression
from regionreasoner.evals.synthetic_world import make_scene


def _records(folder: Path, n_scenes: int = 3) -> list[RefcocoRecord]:
    """Single-turn referring records from synthetic scenes; every second record leaves the box out."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    records: list[RefcocoRecord] = []
    for seed in range(n_scenes):
        scene = make_scene(seed)
        scene.image.save(folder / "images" / f"{seed}.png")
        width, height = scene.size
        for obj in scene.objects:
            text = referring_expression(scene, obj)
            if text is None:
                continue
            records.append(
                RefcocoRecord(
                    image=f"images/{seed}.png",
                    text=f"the {text}",
                    image_id=seed,
                    ann_id=seed * 100 + obj.id,
                    mask=encode_rle(obj.mask),
                    img_height=height,
                    img_width=width,
                    bbox=obj.box if len(records) % 2 == 0 else None,
                )
            )
    return records


@pytest.mark.parametrize("layout", ["jsonl", "json"])
def test_records_become_one_turn_dialogues(tmp_path: Path, layout: str) -> None:
    records = _records(tmp_path)
    path = write_refcoco_records(tmp_path / "refs.jsonl", records)
    if layout == "json":  # the same records as one JSON list, masks as nested 0/1 lists
        items = []
        for line in path.read_text().splitlines():
            item = json.loads(line)
            item["mask"] = decode_rle(RefcocoRecord.model_validate(item).mask).astype(int).tolist()
            items.append(item)
        path = tmp_path / "refs.json"
        path.write_text(json.dumps(items))
    dialogues = load_refcoco(path)
    assert len(dialogues) == len(records) > 10
    scenes = {seed: make_scene(seed) for seed in range(3)}
    for dialogue, record in zip(dialogues, records, strict=True):
        (turn,) = dialogue.turns
        obj = scenes[int(record.image_id)].object(int(record.ann_id) % 100)
        assert turn.question == record.text and turn.context_from_turn is None
        assert turn.gt_box == obj.box  # from bbox, or derived from the mask when bbox is absent
        assert turn.masks is not None and np.array_equal(decode_rle(turn.masks), obj.mask)
        assert dialogue.image_path is not None and Path(dialogue.image_path).is_file()
        assert turn.ann_ids == [record.ann_id]
        width, height = scenes[int(record.image_id)].size
        assert score_turn(turn.gt_box, turn.masks, [obj.box], obj.mask, (width, height)).hit


def test_record_errors_name_the_record_and_fix(tmp_path: Path) -> None:
    good = json.loads(write_refcoco_records(tmp_path / "one.jsonl", _records(tmp_path, 1)[:1]).read_text())
    cases = [
        ({k: v for k, v in good.items() if k != "text"}, "record 0: text: Field required"),
        ({**good, "img_height": good["img_height"] + 1}, "mask size .* differs from img_height x img_width"),
        ({**good, "bbox": [5, 5, 1, 1]}, "bbox: .*inverted box"),
        ({**good, "mask": {"counts": "x"}}, "mask: .*'size' and 'counts'"),
    ]
    for item, pattern in cases:
        path = tmp_path / "bad.json"
        path.write_text(json.dumps([item]))
        with pytest.raises(BenchmarkFormatError, match=pattern):
            load_refcoco_records(path)
    empty = {**good, "mask": encode_rle(np.zeros((good["img_height"], good["img_width"]), bool)).model_dump()}
    empty.pop("bbox", None)
    path = tmp_path / "empty.jsonl"
    path.write_text(json.dumps(empty) + "\n")
    with pytest.raises(BenchmarkFormatError, match="mask is empty and no bbox"):
        refcoco_dialogues(load_refcoco_records(path))
    path.write_text("{not json\n")
    with pytest.raises(BenchmarkFormatError, match=r"empty.jsonl:1: not JSON"):
        load_refcoco_records(path)
    with pytest.raises(BenchmarkFormatError, match="does not exist"):
        load_refcoco_records(tmp_path / "absent.jsonl")
