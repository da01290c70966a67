"""Cut the vendored RegionDial-Bench excerpt out of the official question files (see README.md here).

    .venv/bin/python tests/data/regiondial/cut_excerpt.py ../shared/data/regiondial tests/data/regiondial

Each kept dialogue is copied as the exact text it has in the official file (whitespace, key order and all), in
the file's order; the files' opening and closing text is kept too, so the excerpt reads like the original.
``example.json`` (one dialogue) is copied whole.  tests/evals/test_regiondial.py checks, where the official files
are present, that running this again reproduces the committed excerpt byte for byte.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

# The first twelve dialogues of each file, then the ones that show a quirk of the official files, with the quirk.
REFCOCOG_FIRST = (656, 735, 797, 977, 1822, 2342, 2448, 5215, 5377, 5632, 6026, 6338)
REFCOCOG_QUIRKS = {
    35817: "context_from_turn without the placeholder in the question",
    59034: "the first dialogues without image_path (1418 of 1580 have none)",
    59079: "no image_path",
    59382: "no image_path",
    72454: "no image_path; context_from_turn without the placeholder",
    80826: "the placeholder without context_from_turn",
    151699: "turn 1 cites itself (context_from_turn=1)",
    188911: "context_from_turn_2 and the <box>{context_bbox_2}</box> placeholder",
    280257: "turn 2 cites itself",
    323722: "turn 4 cites itself",
    448531: "turn 1 cites a later turn (2)",
    469427: "the longest dialogue (9 turns)",
}
REFCOCOPLUS_FIRST = (839, 2083, 3293, 4714, 4993, 5152, 5215, 5962, 6964, 7946, 8630, 8657)
REFCOCOPLUS_QUIRKS = {
    27299: "12 turns, the longest",
    28953: "two turns with context_from_turn but no placeholder",
    39195: "10 turns",
    131816: "the placeholder without context_from_turn; refcocoplus_r2 gives it a different context",
    132889: "refcocoplus_r2 changes context_from_turn",
    295257: "refcocoplus_r1 and _r2 change context_from_turn",
}
REFCOCOG = (*REFCOCOG_FIRST, *REFCOCOG_QUIRKS)
REFCOCOPLUS = (*REFCOCOPLUS_FIRST, *REFCOCOPLUS_QUIRKS)
FILES: dict[str, tuple[int, ...]] = {
    "refcocog.json": REFCOCOG,
    "refcocog_r1.json": REFCOCOG,
    "refcocoplus.json": REFCOCOPLUS,
    "refcocoplus_r1.json": REFCOCOPLUS,
    "refcocoplus_r2.json": REFCOCOPLUS,
}
COPIED = ("example.json",)


def _items(text: str) -> list[tuple[int, int, int]]:
    """(start of the item's leading whitespace, start of the item, end of the item) for each top-level item."""
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    spans: list[tuple[int, int, int]] = []
    while True:
        lead = pos
        while text[pos].isspace():
            pos += 1
        if text[pos] == "]":
            return spans
        _, end = decoder.raw_decode(text, pos)
        spans.append((lead, pos, end))
        pos = end
        while text[pos].isspace():
            pos += 1
        if text[pos] == ",":
            pos += 1


def cut(text: str, image_ids: Sequence[int]) -> str:
    """The items of ``text`` (a RegionDial-Bench file) whose image_id is listed, as their original text."""
    spans = _items(text)
    keep = set(image_ids)
    chosen = [(lead, end) for lead, start, end in spans if json.loads(text[start:end])["image_id"] in keep]
    found = {json.loads(text[lead:end])["image_id"] for lead, end in chosen}
    if found != keep:
        raise SystemExit(f"image ids not in the file: {sorted(keep - found)}")
    head = text[: spans[0][0]]
    tail = text[spans[-1][2] :]
    return head + ",".join(text[lead:end] for lead, end in chosen) + tail


def main(argv: Sequence[str]) -> int:
    """``cut_excerpt.py OFFICIAL_DIR OUT_DIR``: write the excerpt files into OUT_DIR."""
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    official, out = Path(argv[0]), Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name, ids in FILES.items():
        text = (official / name).read_text(encoding="utf-8")
        excerpt = cut(text, ids)
        assert [d["image_id"] for d in json.loads(excerpt)] == [
            d["image_id"] for d in json.loads(text) if d["image_id"] in set(ids)
        ]
        (out / name).write_text(excerpt, encoding="utf-8")
    for name in COPIED:
        shutil.copyfile(official / name, out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
