"""Build the reward parity fixtures: generated completions and the official code's values on them.

The official reward files are NOT part of this repository.  Copy them into a scratch folder outside it, e.g.::

    mkdir -p /tmp/official_rewards && cd /tmp/official_rewards
    RR=train/verl/utils/reward_score SZ=verl/utils/reward_score
    git --git-dir=<RegionReasoner mirror> show HEAD:$RR/region_reasoner.py > region_reasoner.py
    git --git-dir=<Seg-Zero mirror> show HEAD:$SZ/vision_reasoner.py > vision_reasoner.py
    git --git-dir=<Seg-Zero mirror> show HEAD:$SZ/seg.py > seg.py
    git --git-dir=<Seg-Zero mirror> show HEAD:$SZ/seg_restrict.py > seg_restrict.py

and run (numpy and scipy are the only dependencies)::

    .venv/bin/python tests/data/rewards/make_fixture.py /tmp/official_rewards

This script only imports the official modules from that folder and records inputs and outputs.  The completion
generator (:func:`region_cases`, :func:`seg_zero_cases`) is shared with ``benchmarks/rewards.py``.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import random
import sys
import types
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

OBJECTS = ["dog", "cat", "man", "woman", "umbrella", "car", "player", "chair", "bus", "kid", "horse", "cup", "zebra"]
ADJ = ["red", "white", "standing", "lying", "small", "large", "blue", "left", "striped", "old"]
RELATIONS = ["above", "below", "to the left of", "to the right of", "inside", "overlapping with", "touching", "near"]
SCENE_WORDS = [
    "the image shows",
    "a photo of",
    "this picture contains",
    "visible here are",
    "a street with",
    "grass and",
]
THINK_CUES = [
    "compare the candidates",
    "the target is above the reference",
    "locate the region near the corner",
    "based on the reference bbox",
    "choose the closest match",
    "according to the guidance",
    "identify the position",
    "next to the",
    "select the best one",
    "",
]
FILLER = ["there is a", "we see some", "in the background", "on the ground", "with a", "and then", "it has"]


def _box(rng: random.Random, size: int = 840) -> list[int]:
    x1, y1 = rng.randrange(0, size - 20), rng.randrange(0, size - 20)
    return [x1, y1, rng.randrange(x1 + 1, min(size, x1 + 400)), rng.randrange(y1 + 1, min(size, y1 + 400))]


def _inside(rng: random.Random, b: list[int]) -> list[int]:
    return [rng.randint(b[0], b[2]), rng.randint(b[1], b[3])]


def _words(rng: random.Random, n: int) -> str:
    pool = OBJECTS + ADJ + FILLER + ["the", "a", "of", "is", "bbox", "area", "region", "dog", "dog"]
    return " ".join(rng.choice(pool) for _ in range(n))


def _bbox_text(rng: random.Random, b: list[int]) -> str:
    sep = rng.choice([", ", ",", " , "])
    inner = sep.join(str(v) for v in b)
    return rng.choice(
        ["bbox=[{}]", "bbox = [{}]", "bbox=[ {} ]", "BBOX=[{}]", "bbox [{}]", "[{}]", "bbox= [{}]"]
    ).format(inner)


def _problem(rng: random.Random, ref: list[int] | None) -> str | None:
    obj = f"{rng.choice(ADJ)} {rng.choice(OBJECTS)}"
    kind = rng.random()
    if ref is None:
        if kind < 0.05:
            return None
        if kind < 0.1:
            return ""
        if kind < 0.5:
            return "'" + "' and '".join(rng.choice(OBJECTS) for _ in range(rng.randint(1, 3))) + "'"
        return f"find the {obj}."
    rel = rng.choice(RELATIONS)
    text = _bbox_text(rng, ref) if rng.random() < 0.3 else f"bbox=[{', '.join(map(str, ref))}]"
    if kind < 0.1:  # a second reference
        text += f" and bbox=[{', '.join(map(str, _box(rng)))}]"
    if kind > 0.95:
        text = text.replace("[", "[-", 1)  # a negative coordinate: not a reference for the official regex
    return rng.choice(["Also find the {o}, {r} {t}.", "find the {o} {r} {t}", "{o} {r} {t}"]).format(
        o=obj, r=rel, t=text
    )


def _jitter(rng: random.Random, v: list[Any], amount: int) -> list[Any]:
    return [x + rng.randint(-amount, amount) for x in v]


def _weird_value(rng: random.Random) -> Any:
    return rng.choice(
        [True, False, None, "12", 3.5, -4, 0, 2**40, 2**63, 10**30, float("nan"), float("inf"), [1], {"a": 1}, 1e300]
    )


def _answer_objects(rng: random.Random, gt: list[dict[str, Any]]) -> Any:
    """Predicted answer objects (a JSON-able value) derived from the ground truth, often broken on purpose."""
    kind = rng.random()
    objs = [dict(o) for o in gt]
    if kind < 0.25:  # exact or near
        amount = rng.choice([0, 0, 2, 5, 9, 12, 40])
        objs = [
            {"bbox_2d": _jitter(rng, o["bbox_2d"], amount), "point_2d": _jitter(rng, o["point_2d"], amount)}
            for o in objs
        ]
    elif kind < 0.35:  # shuffled, extra or missing objects
        objs = [{"bbox_2d": _jitter(rng, o["bbox_2d"], 3), "point_2d": o["point_2d"]} for o in objs]
        rng.shuffle(objs)
        if rng.random() < 0.5:
            b = _box(rng)
            objs.append({"bbox_2d": b, "point_2d": _inside(rng, b)})
        elif objs:
            objs.pop()
    elif kind < 0.42:  # points outside their own box, or the box of another object
        for o in objs:
            o["point_2d"] = [o["bbox_2d"][2] + rng.randint(1, 20), o["bbox_2d"][1]]
    elif kind < 0.48:  # inverted, degenerate or zero-area boxes
        for o in objs:
            b = o["bbox_2d"]
            o["bbox_2d"] = rng.choice(
                [[b[2], b[1], b[0], b[3]], [b[0], b[1], b[0], b[1]], [b[0], b[1], b[0] - 1, b[3]]]
            )
    elif kind < 0.54:  # floats
        objs = [
            {
                "bbox_2d": [x + rng.choice([0.5, 0.25, -0.3, 0.0]) for x in o["bbox_2d"]],
                "point_2d": [float(v) for v in o["point_2d"]],
            }
            for o in objs
        ]
    elif kind < 0.62:  # a weird value somewhere
        for o in objs:
            key = rng.choice(["bbox_2d", "point_2d"])
            vals = list(o[key])
            vals[rng.randrange(len(vals))] = _weird_value(rng)
            o[key] = vals
        if rng.random() < 0.2:
            for o in objs:
                o["bbox_2d"] = [rng.choice([True, False]) for _ in range(4)]
    elif kind < 0.68:  # wrong arity or missing keys
        for o in objs:
            choice = rng.randrange(5)
            if choice == 0:
                o["bbox_2d"] = o["bbox_2d"][:3]
            elif choice == 1:
                o["point_2d"] = o["point_2d"] + [1]
            elif choice == 2:
                del o["point_2d"]
            elif choice == 3:
                o["bbox_2d"] = [[v] for v in o["bbox_2d"]]
            else:
                o["bbox_2d"] = 5
    elif kind < 0.72:  # not a list of objects
        return rng.choice(
            [
                objs[0] if objs else {},
                [],
                "bbox_2d",
                7,
                None,
                ["bbox_2d", "x"],
                [[1, 2, 3, 4]],
                {"bbox_2d": [1, 2, 3, 4], "point_2d": [1, 2]},
            ]
        )
    elif kind < 0.76:  # many objects (the 120 cap)
        n = rng.choice([119, 120, 121, 130, 150])
        many = []
        for _ in range(n):
            b = _box(rng)
            many.append({"bbox_2d": b, "point_2d": _inside(rng, b)})
        objs = objs + many if rng.random() < 0.5 else many + objs
    elif kind < 0.8:  # a label, extra keys
        for o in objs:
            o["label"] = rng.choice(OBJECTS)
    else:  # random boxes
        objs = []
        for _ in range(rng.randint(1, 4)):
            b = _box(rng)
            objs.append({"bbox_2d": b, "point_2d": _inside(rng, b)})
    return objs


def _answer_text(rng: random.Random, gt: list[dict[str, Any]]) -> str:
    kind = rng.random()
    if kind < 0.04:
        return rng.choice(
            ["", "no", "[", "[{]", "{'bbox_2d': [1, 2, 3, 4]}", "[1, 2", "```json\n[]\n```", "[] trailing"]
        )
    value = _answer_objects(rng, gt)
    text = json.dumps(value, separators=rng.choice([(", ", ": "), (",", ":")]))
    if kind > 0.97:
        text = "```json\n" + text + "\n```"
    return text


def _gt(rng: random.Random) -> list[dict[str, Any]]:
    n = rng.choices([1, 2, 3, 5, 0, 125], weights=[60, 20, 10, 5, 1, 1])[0]
    out = []
    for _ in range(n):
        b = _box(rng)
        out.append({"bbox_2d": b, "point_2d": _inside(rng, b)})
    return out


def _section(rng: random.Random, tag: str, body: str) -> str:
    pad = rng.choice(["", " ", "\n", "  \n "])
    if rng.random() < 0.03:
        return f"<{tag}>{pad}{body}"  # unclosed
    return f"<{tag}>{pad}{body}{pad}</{tag}>"


def _completion(rng: random.Random, problem: str | None, ref: list[int] | None, gt: list[dict[str, Any]]) -> str:
    scene = rng.choice(
        [
            f"{rng.choice(SCENE_WORDS)} {_words(rng, rng.randint(3, 20))}.",
            _words(rng, rng.randint(1, 3)),
            "short",
            "",
            f"{_words(rng, rng.randint(5, 15))}.",
        ]
    )
    focus_kind = rng.random()
    if focus_kind < 0.15 and problem:
        focus = problem  # the anti-copy rule
    elif focus_kind < 0.25:
        focus = _words(rng, rng.randint(1, 4))
    elif focus_kind < 0.3:
        focus = ""
    else:
        focus = f"inside the box a {rng.choice(ADJ)} {rng.choice(OBJECTS)} {_words(rng, rng.randint(2, 10))}"
    cite = ""
    cite_kind = rng.random()
    if ref is not None and cite_kind < 0.45:
        cite = _bbox_text(rng, ref)
    elif ref is not None and cite_kind < 0.55:
        cite = _bbox_text(rng, _jitter(rng, ref, 1))  # off by one: hallucinated
    elif cite_kind < 0.7:
        cite = f"{_bbox_text(rng, ref or _box(rng))} and bbox=[{', '.join(map(str, _box(rng)))}]"
    elif cite_kind < 0.78:
        cite = rng.choice(["the bounding box", "the coordinates", "bbox=[1.5, 2, 3, 4]", "bbox=[]"])
    think = " ".join(
        x
        for x in [
            rng.choice(THINK_CUES),
            _words(rng, rng.randint(0, 12)),
            cite,
            rng.choice(THINK_CUES),
            scene[: rng.randint(0, len(scene))] if rng.random() < 0.5 else "",
            focus[: rng.randint(0, len(focus))] if rng.random() < 0.4 else "",
        ]
        if x
    )
    if rng.random() < 0.05:
        think = rng.choice(["ok", "", "hmm."])
    if rng.random() < 0.06:  # repeated sentences
        sentence = rng.choice(["The dog is here. ", "Look left. ", "Same. "])
        think += " " + sentence * rng.randint(2, 4)
    answer = _answer_text(rng, gt)
    parts = []
    if rng.random() > 0.08:
        parts.append(_section(rng, "scene", scene))
    if rng.random() < (0.85 if ref else 0.35):
        parts.append(_section(rng, "focus", focus))
    if rng.random() > 0.06:
        parts.append(_section(rng, "think", think))
    if rng.random() > 0.05:
        parts.append(_section(rng, "answer", answer))
    if rng.random() < 0.08:
        rng.shuffle(parts)
    if rng.random() < 0.05 and parts:
        parts.append(rng.choice(parts))  # a duplicated section
    joiner = rng.choice(["\n", "", " ", "\n\n"])
    text = joiner.join(parts)
    if rng.random() < 0.1:  # the VisionReasoner layout: <think> ... </think><answer> ... </answer> only
        text = f"<think>{think}</think>{rng.choice(['', ' ', chr(10)])}<answer>{answer}</answer>"
    if rng.random() < 0.05:
        text = rng.choice(["Sure! ", "\n", "x"]) + text + rng.choice(["", " done.", "\n"])
    return text


_GT1 = '[{"bbox_2d": [10, 10, 109, 109], "point_2d": [50, 50]}]'
_Q = "find the cup right of bbox=[10, 10, 109, 109]"


def _edge_cases() -> list[tuple[str | None, str, str]]:
    """Hand-written corner cases, scored first."""
    answer = '<answer>[{{"bbox_2d": {b}, "point_2d": {p}}}]</answer>'
    cases = [
        (_Q, "<think>bbox=[10, 10, 109, 109]</think>" + answer.format(b="[10, 10, 109, 109]", p="[50, 50]"), _GT1),
        (_Q, answer.format(b="[-0.0, 10, 109, 109]", p="[-0.0, 50]"), _GT1),
        (_Q, answer.format(b="[109, 10, 10, 109]", p="[50, 50]"), _GT1),
        (_Q, answer.format(b="[10, 10, 9, 9]", p="[10, 10]"), '[{"bbox_2d": [10, 10, 9, 9], "point_2d": [10, 10]}]'),
        (
            _Q,
            answer.format(b="[10, 10, 109, 109]", p="[50, 50]"),
            '[{"bbox_2d": [10.5, 10, 109, 109], "point_2d": [50, 50]}]',
        ),
        (_Q, answer.format(b="[true, true, true, true]", p="[true, true]"), _GT1),
        (_Q, answer.format(b="[1, true, 109, 109]", p="[true, 50]"), _GT1),
        (_Q, answer.format(b="[NaN, 10, 109, 109]", p="[50, 50]"), _GT1),
        (_Q, answer.format(b="[Infinity, 10, 109, 109]", p="[50, 50]"), _GT1),
        (_Q, answer.format(b="[10, 10, 109, 109]", p="[50, 50]").replace("109", "1" + "0" * 5000, 1), _GT1),
        (_Q, answer.format(b="[10, 10, 109, 109]", p="[9223372036854775807, 50]"), _GT1),
        (
            _Q,
            answer.format(b="[10, 10, 109, 109]", p="[50, 50]"),
            '[{"bbox_2d": [10, 10, 109, 109], "point_2d": [50]}]',
        ),
        (_Q, "<answer>" + "[" * 100000 + "</answer>", _GT1),
        (_Q, "<answer>\u00a0[]\u00a0</answer><think>\u00a0bbox=[10,10,109,109]\u00a0</think>", _GT1),
        ("find it near bbox=[\u0661\u0660, 10, 109, 109]", "<think>bbox=[10, 10, 109, 109]</think>", _GT1),
        ("find it near bbox=[10, 10, 109, 109]", "<think>BBOX = [10,10,109,109] and bbox[1, 2, 3, 4]</think>", _GT1),
        ("\u0130 find bbox=[10, 10, 109, 109]", "<focus>\u0130 find bbox=[10, 10, 109, 109]</focus>", _GT1),
        (None, "<think>bbox=[10, 10, 109, 109]</think><scene>a scene</scene><answer>[]</answer>", _GT1),
        ("", "<think>bbox=[10, 10, 109, 109]</think><scene>a scene</scene><answer>[]</answer>", _GT1),
        (_Q, "<scene></scene><focus></focus><think></think><answer></answer>", _GT1),
        (_Q, "<scene>x</scene><scene>The image shows it all</scene>", _GT1),
        (_Q, "a. b. a. b. a.", _GT1),
        (_Q, "a. b. a. c.", _GT1),
        (_Q, "", _GT1),
    ]
    return cases


def region_cases(n: int, seed: int = 0, *, edge: bool = True, group: int = 1) -> Iterator[tuple[str | None, str, str]]:
    """``n`` generated ``(problem, completion, solution)`` triples for the RegionReasoner/VisionReasoner rewards.

    ``edge``: start with the hand-written corner cases (they count towards ``n``).  ``group``: completions per
    question, as GRPO samples them (``rollout.n``), consecutive and sharing the problem and solution.
    """
    rng = random.Random(seed)
    edges = _edge_cases() if edge else []
    yield from edges[:n]
    n -= min(n, len(edges))
    while n > 0:
        ref = _box(rng) if rng.random() < 0.6 else None
        problem = _problem(rng, ref)
        gt = _gt(rng)
        solution = json.dumps(gt)
        if rng.random() < 0.01:
            solution = rng.choice(["[", '[{"bbox_2d": [1, 2, 3, 4]}]', "{}", "[]"])
        for _ in range(min(group, n)):
            yield problem, _completion(rng, problem, ref, gt), solution
        n -= group


def seg_zero_cases(n: int, seed: int = 1) -> Iterator[tuple[str, str]]:
    """``n`` generated ``(completion, solution)`` pairs for the original Seg-Zero rewards."""
    rng = random.Random(seed)
    for _ in range(n):
        b = _box(rng)
        p1, p2 = _inside(rng, b), _inside(rng, b)
        solution = f"<box>({b[0]},{b[1]}),({b[2]},{b[3]})</box><points>({p1[0]},{p1[1]}),({p2[0]},{p2[1]})</points>"
        if rng.random() < 0.03:
            solution = rng.choice(["", "<box>(1,2),(3,4)</box>", "<points>(1,2),(3,4)</points>"])
        amount = rng.choice([0, 3, 9, 15, 60, 200])
        obj: dict[str, Any] = {
            rng.choices(["bbox", "bbox_2d", "Bbox", "box"], weights=[80, 8, 6, 6])[0]: _jitter(rng, b, amount),
            rng.choices(["points_1", "point_1", "Points_a"], weights=[85, 8, 7])[0]: _jitter(rng, p1, amount),
            rng.choices(["points_2", "point_2", "points"], weights=[85, 8, 7])[0]: _jitter(rng, p2, amount),
        }
        kind = rng.random()
        if kind < 0.1:
            key = rng.choice(list(obj))
            vals = list(obj[key])
            vals[rng.randrange(len(vals))] = _weird_value(rng)
            obj[key] = vals
        elif kind < 0.15:
            key = rng.choice(list(obj))
            obj[key] = obj[key][:-1]
        elif kind < 0.2:
            obj["points_1"] = [b[2] + 5, b[3] + 5]
        elif kind < 0.25:
            obj = {k: (v if not isinstance(v, list) else [float(x) + 0.5 for x in v]) for k, v in obj.items()}
        elif kind < 0.28:
            first = next(iter(obj))
            obj[first] = [obj[first][2], obj[first][3], obj[first][0], obj[first][1]]
        elif kind < 0.3:
            obj["points_1"] = "12"
        body = json.dumps(obj) if rng.random() > 0.05 else rng.choice(["{bad}", "{}", "no json", "{'bbox': [1,2,3,4]}"])
        think = f"<think>{_words(rng, rng.randint(0, 10))}</think>"
        answer = f"<answer>{body}</answer>"
        layout = rng.random()
        if layout < 0.7:
            text = think + rng.choice(["", "\n", " "]) + answer
        elif layout < 0.8:
            text = "prefix " + think + answer
        elif layout < 0.9:
            text = answer + think
        else:
            text = think + " " + body
        yield text, solution


def _load(folder: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"official_{name}", folder / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _nested(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """A function defined inside ``fn`` (the official format reward nests its per-tag credits)."""
    code = next(c for c in fn.__code__.co_consts if isinstance(c, types.CodeType) and c.co_name == name)
    return types.FunctionType(code, fn.__globals__)


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    with gzip.GzipFile(path, "wb", mtime=0, compresslevel=9) as fh:
        for row in rows:
            fh.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8", "surrogatepass"))
    print(f"{path.name}: {len(rows)} cases, {path.stat().st_size / 1e3:.0f} kB")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("official", type=Path, help="folder holding the official reward files (outside the repo)")
    parser.add_argument("--cases", type=int, default=4000)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    rr, vr = _load(args.official, "region_reasoner"), _load(args.official, "vision_reasoner")
    fmt = rr.vision_reasoner_format_reward
    tag = {name: _nested(fmt, f"{name}_format_reward") for name in ("scene", "focus", "think", "answer")}
    seg_format, ref_reward = _nested(fmt, "segmentation_format"), _nested(fmt, "thinking_bbox_reward")
    vr_seg_format = _nested(vr.vision_reasoner_format_reward, "segmentation_format")
    rows = []
    for problem, completion, solution in region_cases(args.cases):
        full, tags = fmt(completion, problem)
        values = {
            "scene": tag["scene"](completion),
            "focus": tag["focus"](completion, problem),
            "think": tag["think"](completion),
            "answer": tag["answer"](completion),
            "tags": tags,
            "answer_format": seg_format(completion),
            "ref": ref_reward(completion, problem),
            "format": full,
            "accuracy": rr.vision_reasoner_accuracy_reward(completion, solution),
            "non_repeat": rr.vision_reasoner_non_repeat_reward(completion),
            "consistency": rr.vision_reasoner_consistency_reward(completion, problem) if problem else 0.0,
            "total": rr.region_reasoner_compute_score(completion, solution, problem),
        }
        vr_values = {
            "format": vr.vision_reasoner_format_reward(completion),
            "answer_format": vr_seg_format(completion),
            "accuracy": vr.vision_reasoner_accuracy_reward(completion, solution),
            "non_repeat": vr.vision_reasoner_non_repeat_reward(completion),
            "total": vr.vision_reasoner_compute_score(completion, solution),
        }
        rows.append({"problem": problem, "completion": completion, "solution": solution, "rr": values, "vr": vr_values})
    _write(args.out / "official_region_reasoner.jsonl.gz", rows)
    seg_rows = []
    for module_name, strict in (("seg_restrict", True), ("seg", False)):
        mod = _load(args.official, module_name)
        total = mod.seg_strict_compute_score if strict else mod.seg_compute_score
        for completion, solution in seg_zero_cases(args.cases // 4, seed=1 if strict else 2):
            values = {
                "think_format": mod.seg_thinking_format_reward(completion),
                "answer_format": mod.seg_segmentation_format_reward(completion),
                "iou": mod.seg_iou_reward(completion, solution),
                "box_l1": mod.seg_box_l1_reward(completion, solution),
                "points": mod.seg_point_l1_reward(completion, solution),
                "total": total(completion, solution),
            }
            seg_rows.append({"strict": strict, "completion": completion, "solution": solution, "values": values})
    _write(args.out / "official_seg_zero.jsonl.gz", seg_rows)


if __name__ == "__main__":
    sys.exit(main())
