"""RegionDial-Bench: the multi-round grounding benchmark of RegionReasoner (reference §5), loaded and written.

Layout (a JSON list, one item per dialogue)::

    {"image_id": 839, "image_path": "refcocoplus_test_multi_bbox_images/839.jpg",
     "conversational_turns": [
        {"question": "Find the person in white.", "bboxes": [[47, 107, 303, 466]]},
        {"question": "Find the guy near the <box>{context_bbox}</box>.", "context_from_turn": 0,
         "bboxes": [[304, 69, 597, 495]], "ann_ids": [7], "masks": [<mask>]}]}

``bboxes`` are xyxy GT boxes in original-image pixels; ``context_from_turn`` is the 0-based index of the turn whose
box fills the placeholder ``<box>{context_bbox}</box>``; ``masks`` (optional) are HxW 0/1 nested lists or COCO RLE
dicts.  The official script fills the placeholder with ``str([x1, y1, x2, y2])`` of the **first predicted box** of
the cited turn (ints, original pixels) and falls back to that turn's **GT box** when it produced no box
(:func:`resolve_context`, :func:`fill_context`).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from regionreasoner.core.errors import GeometryError, InputError
from regionreasoner.core.geometry import Box, as_box
from regionreasoner.core.masks import Rle, decode_rle, encode_rle, rle_from_any
from regionreasoner.core.relations import find_relations

__all__ = [
    "CONTEXT_PLACEHOLDER",
    "CONTEXT_PLACEHOLDER_2",
    "BenchDialogue",
    "BenchTurn",
    "BenchmarkFormatError",
    "RegionDialStats",
    "context_box_text",
    "dialogue_to_json",
    "fill_context",
    "load_regiondial",
    "parse_regiondial",
    "regiondial_stats",
    "resolve_context",
    "write_regiondial",
]

CONTEXT_PLACEHOLDER = "<box>{context_bbox}</box>"
"""The literal placeholder of a cited region in RegionDial-Bench questions."""

CONTEXT_PLACEHOLDER_2 = "<box>{context_bbox_2}</box>"
"""A second placeholder (one refcocog turn, with ``context_from_turn_2``); the official script never fills it."""

ValidBox = Annotated[Box, AfterValidator(as_box)]


class BenchmarkFormatError(InputError):
    """A benchmark file is malformed; the message names the dialogue (image_id), the turn and the fix."""


class BenchTurn(BaseModel):
    """One turn of a benchmark dialogue. Boxes are xyxy in original-image pixels."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    question: str = Field(description="question text, with CONTEXT_PLACEHOLDER where a region is cited")
    gt_boxes: list[ValidBox] = Field(min_length=1, description="GT boxes (the official files hold exactly one)")
    context_from_turn: int | None = Field(default=None, ge=0, description="0-based index of the cited turn")
    context_from_turn_2: int | None = Field(default=None, ge=0, description="second cited turn (rare, unfilled)")
    masks: Rle | None = Field(default=None, description="union of the turn's GT masks, image size")
    ann_ids: list[int | str] = Field(default_factory=list, description="source annotation ids")

    @property
    def gt_box(self) -> Box:
        """The GT box scored against (the first one, as the official script does)."""
        return self.gt_boxes[0]


class BenchDialogue(BaseModel):
    """A benchmark item: one image and its turns in order."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    image_id: int | str
    image_path: str | None = Field(description="image file relative to the image root; None when the file omits it")
    turns: list[BenchTurn] = Field(min_length=1)

    @model_validator(mode="after")
    def _contexts_in_range(self) -> BenchDialogue:
        for t, turn in enumerate(self.turns):
            for k in (turn.context_from_turn, turn.context_from_turn_2):
                if k is not None and k >= len(self.turns):
                    raise ValueError(f"turn {t}: context turn {k} does not exist ({len(self.turns)} turns)")
        return self


def context_box_text(box: Box) -> str:
    """The official text of a cited box: ``str([x1, y1, x2, y2])`` of ints (half-up rounded), original pixels.

    >>> context_box_text(Box(47, 107, 303.4, 466.5))
    '[47, 107, 303, 467]'
    """
    return str(list(box.rounded()))


def fill_context(question: str, box_text: str) -> str:
    """Replace every ``<box>{context_bbox}</box>`` in ``question`` by ``box_text`` (as the official script does).

    >>> fill_context("Find the guy near the <box>{context_bbox}</box>.", "[47, 107, 303, 466]")
    'Find the guy near the [47, 107, 303, 466].'
    """
    return question.replace(CONTEXT_PLACEHOLDER, box_text)


def resolve_context(
    dialogue: BenchDialogue, turn_index: int, predictions: Mapping[int, Sequence[Box]]
) -> tuple[Box, Literal["pred", "gt"]] | None:
    """The box that fills turn ``turn_index``'s placeholder, and where it came from (official rule, §3.3).

    ``predictions`` maps earlier 0-based turn indices to their predicted boxes (original pixels).  The first
    predicted box of the cited turn is used when that turn has already run and produced one; otherwise the cited
    turn's GT box (fallback).  None when the turn cites nothing.
    """
    k = dialogue.turns[turn_index].context_from_turn
    if k is None:
        return None
    boxes = predictions.get(k) if k < turn_index else None
    if boxes:
        return boxes[0], "pred"
    return dialogue.turns[k].gt_box, "gt"


# ------------------------------------------------------------------------------------------------ loading


def _fail(where: str, message: str, fix: str) -> BenchmarkFormatError:
    return BenchmarkFormatError(f"{where}: {message}", hint=fix)


def _parse_box(value: Any, where: str) -> Box:
    if isinstance(value, bool) or not isinstance(value, list | tuple) or len(value) != 4:
        raise _fail(where, f"a box needs 4 numbers [x1, y1, x2, y2], got {value!r}", "write xyxy pixel boxes")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        raise _fail(where, f"box coordinates must be finite numbers, got {value!r}", "write xyxy pixel boxes")
    try:
        return as_box(value)
    except GeometryError as exc:
        raise _fail(where, str(exc), "boxes are xyxy: x1 <= x2 and y1 <= y2") from exc


def _parse_mask(value: Any, where: str) -> Rle:
    if isinstance(value, Mapping):
        try:
            return rle_from_any(value)
        except (GeometryError, TypeError, ValueError) as exc:
            raise _fail(where, f"not a COCO RLE dict: {exc}", "use {'size': [h, w], 'counts': ...}") from exc
    if isinstance(value, list) and value and all(isinstance(row, list) for row in value):
        width = len(value[0])
        if width == 0 or any(len(row) != width for row in value):
            raise _fail(where, "mask rows have different lengths", "store an HxW 0/1 nested list or an RLE dict")
        try:
            return encode_rle(np.asarray(value, dtype=np.uint8))
        except (GeometryError, TypeError, ValueError) as exc:
            raise _fail(where, f"mask is not an HxW 0/1 array: {exc}", "store 0/1 values in HxW rows") from exc
    raise _fail(where, f"a mask must be an HxW 0/1 nested list or an RLE dict, got {type(value).__name__}", "fix it")


def _union(masks: list[Rle]) -> Rle:
    if len(masks) == 1:
        return masks[0]
    out = decode_rle(masks[0])
    for m in masks[1:]:
        out |= decode_rle(m)
    return encode_rle(out)


def _parse_turn(raw: Any, where: str, n_turns: int, index: int, allow_forward: bool) -> BenchTurn:
    if not isinstance(raw, Mapping):
        raise _fail(where, f"a turn must be an object, got {type(raw).__name__}", "see docs/evaluation.md")
    for key in ("question", "bboxes"):
        if key not in raw:
            raise _fail(where, f"missing field {key!r}", f"add {key!r} to every turn")
    if not isinstance(raw["question"], str):
        raise _fail(where, "'question' must be a string", "write the question text")
    bboxes = raw["bboxes"]
    if not isinstance(bboxes, list) or not bboxes:
        raise _fail(where, f"'bboxes' must be a non-empty list of boxes, got {bboxes!r}", "add the GT box")
    boxes = [_parse_box(b, f"{where} bboxes[{i}]") for i, b in enumerate(bboxes)]
    contexts: dict[str, int | None] = {}
    for key in ("context_from_turn", "context_from_turn_2"):
        k = raw.get(key)
        if k is not None:
            if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < n_turns:
                raise _fail(where, f"{key}={k!r} is not a turn of this dialogue (0..{n_turns - 1})", "fix the index")
            if k >= index and not allow_forward:
                earlier = f"0..{index - 1}" if index else "none: the first turn cannot cite a turn"
                raise _fail(
                    where,
                    f"{key}={k} does not point to an earlier turn ({earlier})",
                    "fix the index, or load with allow_forward_context=True (CLI --allow-forward-context) to keep it"
                    " as the official script does, which then fills the placeholder with that turn's GT box",
                )
        contexts[key] = k
    masks: Rle | None = None
    raw_masks = raw.get("masks")
    if raw_masks is not None:
        items = [raw_masks] if isinstance(raw_masks, Mapping) else raw_masks
        if not isinstance(items, list) or not items:
            raise _fail(where, "'masks' must be a non-empty list of masks", "store [mask] or drop the field")
        parsed = [_parse_mask(m, f"{where} masks[{i}]") for i, m in enumerate(items)]
        if len({m.size for m in parsed}) != 1:
            sizes = sorted({m.size for m in parsed})
            raise _fail(where, f"masks have different sizes {sizes}", "every mask must have the image size")
        masks = _union(parsed)
    ann_ids = raw.get("ann_ids", [])
    if not isinstance(ann_ids, list) or not all(isinstance(a, int | str) for a in ann_ids):
        raise _fail(where, f"'ann_ids' must be a list of ids, got {ann_ids!r}", "store a list of ints")
    return BenchTurn(
        question=raw["question"],
        gt_boxes=boxes,
        context_from_turn=contexts["context_from_turn"],
        context_from_turn_2=contexts["context_from_turn_2"],
        masks=masks,
        ann_ids=ann_ids,
    )


@dataclass(frozen=True)
class _Options:
    allow_forward: bool
    template: str | None
    require_path: bool


def _image_path(raw: Mapping[str, Any], image_id: int | str, where: str, options: _Options) -> str | None:
    path = raw.get("image_path")
    if isinstance(path, str):
        return path
    if path is not None:
        raise _fail(where, f"'image_path' must be a string, got {path!r}", "give the image file relative to the root")
    if options.template is not None:
        return options.template.format(image_id=image_id)
    if options.require_path:
        raise _fail(
            where,
            "missing field 'image_path'",
            "add it, or pass image_path_template='<folder>/{image_id}.jpg' (CLI --image-path-template) to derive it;"
            " require_image_path=False loads the file for statistics only",
        )
    return None


def _parse_item(raw: Any, index: int, options: _Options) -> BenchDialogue:
    if not isinstance(raw, Mapping):
        raise _fail(f"item {index}", f"a dialogue must be an object, got {type(raw).__name__}", "see the layout")
    image_id = raw.get("image_id")
    where = f"image_id {image_id!r} (item {index})"
    if image_id is None or isinstance(image_id, bool) or not isinstance(image_id, int | str):
        raise _fail(where, "missing or invalid field 'image_id'", "give every dialogue an int or str image_id")
    turns_raw = raw.get("conversational_turns")
    if not isinstance(turns_raw, list) or not turns_raw:
        raise _fail(where, "missing or empty 'conversational_turns'", "list the dialogue's turns")
    image_path = _image_path(raw, image_id, where, options)
    turns = [
        _parse_turn(t, f"{where} turn {i}", len(turns_raw), i, options.allow_forward) for i, t in enumerate(turns_raw)
    ]
    sizes = {t.masks.size for t in turns if t.masks is not None}
    if len(sizes) > 1:
        raise _fail(where, f"masks of different turns have different sizes {sorted(sizes)}", "one image, one size")
    expected = (raw.get("img_height"), raw.get("img_width"))
    if sizes and None not in expected and sizes != {expected}:
        raise _fail(where, f"mask size {sizes.pop()} differs from img_height x img_width {expected}", "fix the masks")
    return BenchDialogue(image_id=image_id, image_path=image_path, turns=turns)


def parse_regiondial(
    data: Any,
    *,
    allow_forward_context: bool = False,
    image_path_template: str | None = None,
    require_image_path: bool = True,
) -> list[BenchDialogue]:
    """Validate already-decoded RegionDial-Bench JSON (a list of items) into dialogues.

    Raises :class:`BenchmarkFormatError` naming the image_id and turn for missing fields, boxes that are not four
    finite xyxy numbers, masks of inconsistent sizes, and a ``context_from_turn`` that is not an earlier turn.

    Two quirks of the official question files are opt-in: ``refcocog.json`` has 4 turns citing themselves or a
    later turn (``allow_forward_context=True`` keeps them; the official script then fills their placeholder with the
    cited turn's GT box), and 1418 of its items have no ``image_path`` (``image_path_template``, e.g.
    ``"refcocog_test_multi_bbox_images/{image_id}.jpg"``, derives it; ``require_image_path=False`` leaves it None,
    enough for statistics).
    """
    if not isinstance(data, list):
        raise BenchmarkFormatError(
            f"a RegionDial-Bench file holds a JSON list of dialogues, got {type(data).__name__}",
            hint="see docs/evaluation.md for the layout",
        )
    options = _Options(allow_forward_context, image_path_template, require_image_path)
    return [_parse_item(item, i, options) for i, item in enumerate(data)]


def load_regiondial(
    path: str | Path,
    *,
    allow_forward_context: bool = False,
    image_path_template: str | None = None,
    require_image_path: bool = True,
) -> list[BenchDialogue]:
    """Load and validate a RegionDial-Bench JSON file (see :func:`parse_regiondial` for the checks and options)."""
    p = Path(path)
    if not p.is_file():
        raise BenchmarkFormatError(f"benchmark file {p} does not exist", hint="pass the path of the .json file")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BenchmarkFormatError(f"{p} is not valid JSON: {exc}", hint="check the file is complete") from exc
    return parse_regiondial(
        data,
        allow_forward_context=allow_forward_context,
        image_path_template=image_path_template,
        require_image_path=require_image_path,
    )


# ------------------------------------------------------------------------------------------------ writing


def _number(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)


def dialogue_to_json(dialogue: BenchDialogue) -> dict[str, Any]:
    """One dialogue in the RegionDial-Bench layout (masks as compressed RLE dicts)."""
    turns: list[dict[str, Any]] = []
    for turn in dialogue.turns:
        item: dict[str, Any] = {"question": turn.question}
        if turn.context_from_turn is not None:
            item["context_from_turn"] = turn.context_from_turn
        if turn.context_from_turn_2 is not None:
            item["context_from_turn_2"] = turn.context_from_turn_2
        item["bboxes"] = [[_number(v) for v in box] for box in turn.gt_boxes]
        if turn.ann_ids:
            item["ann_ids"] = list(turn.ann_ids)
        if turn.masks is not None:
            item["masks"] = [{"size": list(turn.masks.size), "counts": turn.masks.counts}]
        turns.append(item)
    out: dict[str, Any] = {"image_id": dialogue.image_id}
    if dialogue.image_path is not None:
        out["image_path"] = dialogue.image_path
    out["conversational_turns"] = turns
    return out


def write_regiondial(path: str | Path, dialogues: Sequence[BenchDialogue]) -> Path:
    """Write dialogues in the RegionDial-Bench layout, one dialogue per line; returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(dialogue_to_json(d), ensure_ascii=False) for d in dialogues]
    p.write_text("[\n" + ",\n".join(lines) + "\n]\n", encoding="utf-8")
    return p


# ------------------------------------------------------------------------------------------------ statistics


class RegionDialStats(TypedDict):
    """Counts of a benchmark file (``regionreasoner-eval stats``)."""

    images: int
    dialogues: int
    turns: int
    turns_citing: int
    turns_per_round: list[int]
    context_not_earlier: int
    second_context: int
    placeholder_without_context: int
    context_without_placeholder: int
    turns_with_masks: int
    missing_image_path: int
    relations: dict[str, int]


def regiondial_stats(dialogues: Sequence[BenchDialogue]) -> RegionDialStats:
    """Images (distinct image ids), dialogues, turns, turns citing an earlier turn, turns per round (R1 first).

    Also: dialogues without an image path, turns whose context is not an earlier turn, turns with a second
    context, placeholder/context mismatches, turns with masks, and relation words
    (``core.relations.find_relations``) in citing questions.
    """
    per_round: list[int] = []
    relations: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for dialogue in dialogues:
        for t, turn in enumerate(dialogue.turns):
            if t == len(per_round):
                per_round.append(0)
            per_round[t] += 1
            has_placeholder = CONTEXT_PLACEHOLDER in turn.question
            if turn.context_from_turn is not None:
                counts["citing"] += 1
                counts["not_earlier"] += turn.context_from_turn >= t
                counts["no_placeholder"] += not has_placeholder
                relations.update(r.value for r in find_relations(turn.question))
            elif has_placeholder:
                counts["no_context"] += 1
            counts["second"] += turn.context_from_turn_2 is not None
            counts["masks"] += turn.masks is not None
    return RegionDialStats(
        images=len({d.image_id for d in dialogues}),
        dialogues=len(dialogues),
        turns=sum(per_round),
        turns_citing=counts["citing"],
        turns_per_round=per_round,
        context_not_earlier=counts["not_earlier"],
        second_context=counts["second"],
        placeholder_without_context=counts["no_context"],
        context_without_placeholder=counts["no_placeholder"],
        turns_with_masks=counts["masks"],
        missing_image_path=sum(d.image_path is None for d in dialogues),
        relations=dict(sorted(relations.items(), key=lambda kv: (-kv[1], kv[0]))),
    )
