"""How fast can the embedded model's architecture learn to read a world scene?  A diagnostic, not a recipe.

Trains an embedded base (``regionreasoner-train embedded-base``, optionally ``embedded-vision``) answer-only on
world scenes, with a plain torch loop (no TRL, no traces), on one of five tasks:

* ``colour``: "colour?" -> the shape's colour word (content: can the vision tokens carry colour to the answer?);
* ``where``: "where?" -> the shape's box as four ``norm:100`` coordinate tokens (position);
* ``list``: "list?" on a scene of 3 to 5 shapes -> every shape left to right as colour, kind and box (the
  ``<scene>`` section with boxes: can the model localise several shapes at once?);
* ``pick``: as ``find``, but the question is the target's English expression ("small cross"), as ``<think>``
  restates it before the answer (binding words to one shape, without reading six languages);
* ``find``: a world question (any language, one round) on a scene of 3 to 5 shapes -> the target's box (reading the
  question, binding its words to one shape, and position: the embedded model's task in miniature).

Two optional extra signals for the boxed tasks: ``--attend-weight`` adds a loss that makes one attention head of the
text model (``--attend-layer``, ``--attend-head``) look, from each coordinate's prediction position, at the image
token holding the target's box centre (does binding or read-out hold the model back?); ``--soft-sigma`` trains each
coordinate on a Gaussian over neighbouring values instead of the one true token.

Every ``--eval-every`` steps it decodes 64 held-out scenes greedily and prints one JSON line: accuracy (colour word
exact; box IoU >= 0.5) and mean IoU.  docs/embedded-model.md records what it measured and why it matters.

    python benchmarks/embedded_probe.py --base runs/probe/base --task where --steps 1800
    python benchmarks/embedded_probe.py --base runs/probe/base --task find --warm-steps 400 --warm-objects 1-2
    python benchmarks/embedded_probe.py --base runs/probe/v --task find --question-first --attend-weight 1
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any


def _example(
    index: int, split: int, task: str, objects: tuple[int, int] = (3, 5)
) -> tuple[Any, str, str, tuple[float, float, float, float]]:
    from regionreasoner.core.world import make_dialogue, make_scene

    if task == "list":
        from regionreasoner.trainers.data.short_traces import left_to_right

        scene = make_scene((split, index), size=(320, 240), n_objects=objects)
        (w, h) = scene.image.size
        entries = [
            f"{o.colour} {o.kind} "
            + " ".join(str(round(100 * v / d)) for v, d in zip(o.box, (w, h, w, h), strict=True))
            for o in left_to_right(scene)
        ]
        return scene.image, "list?", " " + " , ".join(entries), (0.0, 0.0, 0.0, 0.0)
    if task in ("find", "pick"):
        scene = make_scene((split, index), size=(320, 240), n_objects=objects)
        dialogue = make_dialogue(scene, seed=(split, index), n_turns=1, language="any")
        question, shape = dialogue.turns[0].question, dialogue.target(0)
        if task == "pick":  # the target's English expression alone, as <think> restates it before the answer
            question = dialogue.turns[0].expression
    else:
        scene = make_scene((split, index), size=(320, 240), n_objects=(1, 1))
        question, shape = ("colour?" if task == "colour" else "where?"), scene.objects[0]
    (w, h) = scene.image.size
    box = (100 * shape.box.x1 / w, 100 * shape.box.y1 / h, 100 * shape.box.x2 / w, 100 * shape.box.y2 / h)
    if task == "colour":
        return scene.image, question, f" {shape.colour}", box
    return scene.image, question, " " + " ".join(str(round(v)) for v in box), box


def _iou(a: list[float], b: tuple[float, float, float, float]) -> float:
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _score_list(text: str, truth: str) -> list[float]:
    """Per true shape, the IoU of the first unused predicted entry with its colour and kind (0 when none)."""

    def entries(t: str) -> list[tuple[str, list[float]]]:
        out = []
        for part in t.split(","):
            words = part.split()
            try:
                out.append((" ".join(words[:2]), [float(v) for v in words[2:6]]))
            except ValueError:
                continue
        return [(n, b) for n, b in out if len(b) == 4]

    predicted, scores = entries(text), []
    for name, box in entries(truth):
        hit = next((i for i, (n, _) in enumerate(predicted) if n == name), None)
        scores.append(0.0 if hit is None else _iou(predicted.pop(hit)[1], (box[0], box[1], box[2], box[3])))
    return scores


_PREDICTS_COORDS = slice(-6, -2)
"""Where the four coordinates are predicted: the answer is the last five tokens (four values, ``<|im_end|>``), and
the output at position t predicts token t + 1, so positions -6 .. -3."""


def _soft_loss(logits: Any, items: list[Any], value_ids: Any, sigma: float) -> Any:
    """Cross-entropy of the four coordinate predictions against Gaussians (width ``sigma``) around the truth.

    A coordinate token is one of 101 classes with no order; a one-hot target says "58 is as wrong as 3" when the
    truth is 57.  The soft target gives the near misses most of the mass, so early guesses get graded credit.
    ``logits`` is (batch, seq, vocab), read at :data:`_PREDICTS_COORDS`.
    """
    import torch

    values = torch.arange(101, dtype=torch.float32)
    truth = torch.tensor([[round(v) for v in box] for *_, box in items], dtype=torch.float32)  # (batch, 4)
    target = torch.softmax(-((values[None, None, :] - truth[..., None]) ** 2) / (2 * sigma**2), dim=-1)
    scores = torch.log_softmax(logits[:, _PREDICTS_COORDS, :].float(), dim=-1)[..., value_ids]  # (batch, 4, 101)
    return -(target * scores).sum(-1).mean()


def _attend_loss(weights: Any, enc: Any, items: list[Any], image_token: int) -> Any:
    """-log of the attention ``weights`` (batch, query, key) from the coordinate positions to the target's patch.

    The target's patch is the merged image token (row-major over the merged grid) holding its box centre, where
    ``embedded-vision`` taught the tower to put the box.
    """
    import torch

    losses = []
    for row, (*_, box) in enumerate(items):
        positions = (enc["input_ids"][row] == image_token).nonzero().flatten()
        _, gh, gw = (int(v) for v in enc["image_grid_thw"][row])
        rows, cols = gh // 2, gw // 2
        c = min(cols - 1, int((box[0] + box[2]) / 200 * cols))
        r = min(rows - 1, int((box[1] + box[3]) / 200 * rows))
        key = positions[r * cols + c]
        losses.append(-torch.log(weights[row, _PREDICTS_COORDS, key] + 1e-6).mean())
    return torch.stack(losses).mean()


def main() -> None:
    """Train and evaluate as the arguments say; one JSON line per evaluation."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="an embedded base folder (regionreasoner-train embedded-base)")
    parser.add_argument("--task", choices=("colour", "where", "list", "pick", "find"), default="where")
    parser.add_argument("--steps", type=int, default=1800)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-every", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--objects", default="3-5", help="find, pick: shapes per scene, MIN-MAX (evaluated on 3-5)")
    parser.add_argument("--question-first", action="store_true", help="the question before the image in the prompt")
    parser.add_argument("--warm-steps", type=int, default=0, help="find: first train this many steps on --warm-objects")
    parser.add_argument("--freeze-vision", action="store_true", help="train the text model only")
    parser.add_argument("--warm-objects", default="1-2", help="find, pick: shapes per scene of the warm-up steps")
    parser.add_argument(
        "--attend-weight",
        type=float,
        default=0.0,
        help="find, pick, where: weight of a loss that makes one attention head of the text model look, from each "
        "coordinate's prediction position, at the image token holding the target's box centre (0: off)",
    )
    parser.add_argument("--attend-layer", type=int, default=1, help="the supervised head's text layer")
    parser.add_argument("--attend-head", type=int, default=0, help="the supervised head")
    parser.add_argument(
        "--soft-sigma",
        type=float,
        default=0.0,
        help="where, pick, find: train each coordinate on a Gaussian over neighbouring values of this width "
        "(norm:100 units) instead of the one true token (0: off)",
    )
    args = parser.parse_args()

    def span(text: str) -> tuple[int, int]:
        lo, _, hi = text.partition("-")
        return int(lo), int(hi or lo)

    import torch
    from transformers import AutoModelForImageTextToText

    from regionreasoner.trainers.processing import load_processor

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    processor = load_processor(args.base)
    # eager attention returns the weights the --attend-weight loss supervises; sdpa does not
    eager = {"attn_implementation": "eager"} if args.attend_weight else {}
    model = AutoModelForImageTextToText.from_pretrained(args.base, dtype=torch.float32, **eager)
    image_token = model.config.image_token_id
    boxed = args.task in ("where", "pick", "find")  # the tasks whose answer is four coordinate tokens
    value_ids = None
    if args.soft_sigma:  # the token id of every norm:100 value (the tokenizer keeps numbers whole)
        tokenizer = processor.tokenizer
        value_ids = torch.tensor([tokenizer.convert_tokens_to_ids(tokenizer.tokenize(f" {v}"))[-1] for v in range(101)])
    if args.freeze_vision:  # keep what regionreasoner-train embedded-vision taught the tower
        model.model.visual.requires_grad_(False)
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=args.lr, weight_decay=0.0)

    def prompts(items: list[Any]) -> list[str]:
        def content(q: str) -> list[dict[str, str]]:
            parts = [{"type": "image"}, {"type": "text", "text": q}]
            return parts[::-1] if args.question_first else parts

        messages = [[{"role": "user", "content": content(q)}] for _, q, _, _ in items]
        return [processor.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in messages]

    def evaluate() -> tuple[float, float]:
        model.eval()
        right, ious = 0, []
        with torch.no_grad():
            for start in range(0, 64, 16):
                items = [_example(10**6 + start + j, 99, args.task) for j in range(16)]
                enc = processor(
                    text=prompts(items),
                    images=[i[0] for i in items],
                    return_tensors="pt",
                    padding=True,
                    padding_side="left",
                )
                out = model.generate(**enc, max_new_tokens=64 if args.task == "list" else 6, do_sample=False)
                for (_, _, answer, box), row in zip(items, out[:, enc["input_ids"].shape[1] :], strict=True):
                    decoded = processor.tokenizer.decode(row, skip_special_tokens=True)
                    text = decoded.split()
                    if args.task == "list":
                        scored = _score_list(decoded, answer)
                        right, ious = right + sum(i >= 0.5 for i in scored), ious + scored
                        continue
                    if args.task == "colour":
                        right += text[:1] == answer.split()
                        continue
                    try:
                        iou = _iou([float(v) for v in text[:4]], box) if len(text) >= 4 else 0.0
                    except ValueError:  # a non-number where a coordinate belongs
                        iou = 0.0
                    ious.append(iou)
                    right += iou >= 0.5
        model.train()
        total = max(len(ious), 1) if args.task == "list" else 64  # list: per true shape, else per scene
        return right / total, (sum(ious) / len(ious) if ious else float("nan"))

    model.train()
    started, seen = time.time(), 0
    for step in range(1, args.steps + 1):
        objects = span(args.warm_objects if step <= args.warm_steps else args.objects)
        items = [_example(seen + j, 0, args.task, objects) for j in range(args.batch)]
        seen += args.batch
        ends = [a + "<|im_end|>" for _, _, a, _ in items]
        enc = processor(
            text=[p + e for p, e in zip(prompts(items), ends, strict=True)],
            images=[i[0] for i in items],
            return_tensors="pt",
            padding=True,
            padding_side="left",
        )
        labels = torch.full_like(enc["input_ids"], -100)
        for row, end in enumerate(ends):  # loss on the answer tokens only (left padding: they are the last ones)
            n = len(processor.tokenizer(end)["input_ids"])
            labels[row, -n:] = enc["input_ids"][row, -n:]
        out = model(**enc, labels=labels, output_attentions=bool(args.attend_weight and boxed))
        loss = out.loss
        if boxed and value_ids is not None:
            loss = _soft_loss(out.logits, items, value_ids, args.soft_sigma)
        answer_loss, attend_loss = loss, None
        if boxed and args.attend_weight:
            attend_loss = _attend_loss(out.attentions[args.attend_layer][:, args.attend_head], enc, items, image_token)
            loss = loss + args.attend_weight * attend_loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        optimizer.zero_grad()
        if step % args.eval_every == 0 or step == args.steps:
            accuracy, mean_iou = evaluate()
            line = {"task": args.task, "step": step, "loss": round(answer_loss.item(), 3), "accuracy": accuracy}
            if attend_loss is not None:  # -log of the supervised head's weight on the target patch
                line["attend_loss"] = round(attend_loss.item(), 3)
            line |= {"mean_iou": round(mean_iou, 3), "seconds": round(time.time() - started)}
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
