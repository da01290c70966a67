import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.geometry import Box
from regionreasoner.core.masks import decode_rle, mask_to_box
from regionreasoner.core.relations import Relation, find_relations, holds
from regionreasoner.evals.metrics import RoundMetrics, score_turn
from regionreasoner.evals.regiondial import CONTEXT_PLACEHOLDER, load_regiondial
from regionreasoner.evals.results import TurnResult
from regionreasoner.evals.synthetic import RELATIONS, generate_benchmark, make_dialogue
from regionreasoner.evals.synthetic_world import (
    BACKGROUND,
    COLOURS,
    KINDS,
    MIN_VISIBLE_SHARE,
    SIZES,
    TEXTURES,
    Scene,
    SceneObject,
    make_scene,
)

WORDS = {"kind": set(KINDS), "colour": set(COLOURS), "texture": set(TEXTURES), "size": set(SIZES)}


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_different_seed_different(tmp_path: Path) -> None:
    a = generate_benchmark(tmp_path / "a", 4, 11).parent
    b = generate_benchmark(tmp_path / "b", 4, 11).parent
    c = generate_benchmark(tmp_path / "c", 4, 12).parent
    assert _digest(a) == _digest(b)
    assert sorted(_digest(a)) == [
        "images/1.png",
        "images/2.png",
        "images/3.png",
        "images/4.png",
        "scenes.json",
        "synthetic.json",
    ]
    digest_c = _digest(c)
    assert digest_c["synthetic.json"] != _digest(a)["synthetic.json"]
    assert all(digest_c[f"images/{i}.png"] != _digest(a)[f"images/{i}.png"] for i in range(1, 5))


def test_scene_is_deterministic_in_memory() -> None:
    s1, s2 = make_scene(5), make_scene(5)
    assert np.array_equal(np.asarray(s1.image), np.asarray(s2.image))
    assert [(o.kind, o.colour, o.box) for o in s1.objects] == [(o.kind, o.colour, o.box) for o in s2.objects]
    assert [o.box for o in make_scene(6).objects] != [o.box for o in s1.objects]


@pytest.mark.parametrize("seed", range(25))
def test_scene_ground_truth_is_exact(seed: int) -> None:
    scene = make_scene(seed, size=(200, 150))
    pixels = np.asarray(scene.image)
    union = np.zeros(pixels.shape[:2], dtype=bool)
    for obj in scene.objects:
        assert obj.mask.shape == (150, 200)
        assert obj.box == mask_to_box(obj.mask)
        assert obj.area == int(obj.mask.sum()) >= MIN_VISIBLE_SHARE * obj.drawn_area
        assert not (union & obj.mask).any(), "visible masks of different objects must be disjoint"
        union |= obj.mask
        # visible pixels show the object's own colour, its darker shade (stripes, checks) or white dots
        base = np.array(COLOURS[obj.colour])
        allowed = {tuple(base), tuple((base * 0.5).astype(np.uint8)), (255, 255, 255)}
        assert {tuple(int(v) for v in p) for p in pixels[obj.mask]} <= allowed
    # every pixel outside the objects is background, every pixel inside is not
    assert np.array_equal((pixels != np.array(BACKGROUND)).any(axis=-1), union)


def test_scenes_cover_the_vocabulary_and_overlap() -> None:
    objects = [o for seed in range(40) for o in make_scene(seed).objects]
    assert {o.kind for o in objects} == set(KINDS) and len(KINDS) >= 5
    assert {o.colour for o in objects} == set(COLOURS) and len(COLOURS) >= 6
    assert {o.texture for o in objects} == {"solid", "striped", "dotted", "checkered"}
    assert {o.size for o in objects} == set(SIZES)
    assert sum(o.area < o.drawn_area for o in objects) >= 10, "some shapes must be partly covered by later ones"


def test_size_words_are_area_terciles() -> None:
    for seed in range(10):
        scene = make_scene(seed)
        ranked = sorted(scene.objects, key=lambda o: (o.area, o.id))
        for rank, obj in enumerate(ranked):
            assert obj.size == SIZES[min(2, 3 * rank // len(ranked))]


def _words(expression: str) -> dict[str, str]:
    found = {}
    for word in expression.split():
        for attribute, vocabulary in WORDS.items():
            if word in vocabulary:
                found[attribute] = word
    return found


def _referents(scene: Scene, question: str) -> list[SceneObject]:
    """Objects a reader would pick for a plain question, parsed from its words alone."""
    words = _words(question.rstrip(".?"))
    assert "kind" in words, question
    hits = [o for o in scene.objects if all(getattr(o, a) == w for a, w in words.items())]
    position = re.search(r"\b(leftmost|rightmost|topmost|lowest)\b", question)
    if position and hits:
        key = {
            "leftmost": lambda o: o.box.center.x,
            "rightmost": lambda o: -o.box.center.x,
            "topmost": lambda o: o.box.center.y,
            "lowest": lambda o: -o.box.center.y,
        }[position.group(1)]
        best = min(hits, key=key)
        hits = [best] if all(key(best) < key(o) for o in hits if o is not best) else hits
    return hits


def test_dialogues_are_unambiguous_and_relations_hold() -> None:
    relation_turns = 0
    used_relations: set[Relation] = set()
    for seed in range(40):
        scene = make_scene(seed)
        dialogue = make_dialogue(scene, seed=seed, n_turns=5)
        assert dialogue.turns and dialogue.turns[0].context_from_turn is None
        targets = [t.target for t in dialogue.turns]
        assert len(set(targets)) == len(targets)
        for index, turn in enumerate(dialogue.turns):
            target = scene.object(turn.target)
            if turn.context_from_turn is None:
                assert CONTEXT_PLACEHOLDER not in turn.question and find_relations(turn.question) == []
                assert _referents(scene, turn.question) == [target], turn.question
                continue
            relation_turns += 1
            assert 0 <= turn.context_from_turn < index and turn.question.count(CONTEXT_PLACEHOLDER) == 1
            cited = scene.object(dialogue.turns[turn.context_from_turn].target).box
            stated = find_relations(turn.question)
            assert stated == [turn.relation] and turn.relation in RELATIONS, turn.question
            assert holds(turn.relation, target.box, cited), turn.question
            used_relations.add(turn.relation)
            words = _words(turn.question.split("<box>")[0])
            matching = [
                o
                for o in scene.objects
                if all(getattr(o, a) == w for a, w in words.items()) and holds(turn.relation, o.box, cited)
            ]
            assert matching == [target], turn.question
    assert relation_turns >= 40
    assert len(used_relations) >= 6


def test_benchmark_file_matches_the_scenes(synthetic_bench: Path) -> None:
    dialogues = load_regiondial(synthetic_bench)
    assert len(dialogues) == 12 and all(2 <= len(d.turns) <= 6 for d in dialogues)
    for dialogue in dialogues:
        assert dialogue.image_path is not None and (synthetic_bench.parent / dialogue.image_path).is_file()
        for turn in dialogue.turns:
            assert turn.masks is not None and turn.masks.size == (240, 320)
            assert mask_to_box(decode_rle(turn.masks)) == turn.gt_box
            if turn.context_from_turn is not None:
                (relation,) = find_relations(turn.question)
                assert holds(relation, turn.gt_box, dialogue.turns[turn.context_from_turn].gt_box)


def _score_file(path: Path, predict: str) -> RoundMetrics:
    metrics = RoundMetrics()
    for index, dialogue in enumerate(load_regiondial(path)):
        for t, turn in enumerate(dialogue.turns):
            assert turn.masks is not None
            height, width = turn.masks.size
            if predict == "perfect":
                boxes = [turn.gt_box]
                s = score_turn(turn.gt_box, turn.masks, boxes, decode_rle(turn.masks), (width, height))
            else:  # a fixed wrong box in the empty corner, box-only evaluation
                boxes = [Box(0, 0, 1, 1)]
                s = score_turn(turn.gt_box, turn.masks, boxes, None, (width, height))
            metrics.add_result(
                TurnResult(
                    image_id=dialogue.image_id,
                    dialogue_index=index,
                    turn=t,
                    round=t + 1,
                    question=turn.question,
                    rendered_question=turn.question,
                    gt_box=turn.gt_box,
                    pred_boxes=boxes,
                    status="ok",
                    box_iou=s.box_iou,
                    hit=s.hit,
                    intersection=s.intersection,
                    union=s.union,
                )
            )
    return metrics


def test_perfect_predictions_score_100_and_a_fixed_wrong_box_0(synthetic_bench: Path) -> None:
    perfect = _score_file(synthetic_bench, "perfect").summary()
    assert len(perfect.rounds) >= 4
    for row in [*perfect.rounds, perfect.avg]:
        assert (row.acc50, row.giou, row.ciou) == (1.0, 1.0, 1.0), row.label
    wrong = _score_file(synthetic_bench, "wrong").summary()
    for row in [*wrong.rounds, wrong.avg]:
        assert (row.acc50, row.giou, row.ciou) == (0.0, 0.0, 0.0), row.label
    total = sum(len(d.turns) for d in load_regiondial(synthetic_bench))
    assert wrong.avg.count == perfect.avg.count == total


def test_bad_arguments_raise_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 64x64"):
        make_scene(0, size=(32, 32))
    with pytest.raises(ConfigError, match="n_objects"):
        make_scene(0, n_objects=(5, 2))
    with pytest.raises(ConfigError, match="rounds"):
        generate_benchmark(tmp_path, 1, 0, rounds=(3, 2))
    with pytest.raises(ConfigError, match="seed"):
        generate_benchmark(tmp_path, 1, -1)
    with pytest.raises(ConfigError, match="n_turns"):
        make_dialogue(make_scene(0), seed=0, n_turns=0)
