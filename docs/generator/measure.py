"""Measurements of the generator trained here, scored by the exact scorer of the synthetic world.

    python docs/generator/measure.py recon   --vq runs/generator/vq/final [--n 200]
    python docs/generator/measure.py inpaint --generator tools/generate/weights/world [--n 100]
    python docs/generator/measure.py geneval --generator DIR [--n-per-task 20 --lang en,nl --steps 12 --guidance 3]

Each prints one JSON line.  ``recon``: the share of drawn objects whose kind and colour the exact scorer finds in
the MAGVIT-v2 reconstruction (and in the original, as the ceiling).  ``inpaint``: a picture of two shapes, a square
window (32 px) around one of them repainted after "a photo of a <colour> <kind>" in a language; a case counts when
the scorer finds an object of that kind and colour centred inside the window, and every pixel outside the mask is
checked to be the original's.  ``geneval``: synthetic m-GenEval in batches (prompts of a task batched with one
seeded stream, so not image-identical to ``regionreasoner-eval geneval``, which seeds every prompt): for tuning the
sampler; the reported numbers come from ``regionreasoner-eval``.  Kept beside the docs because it imports both the
trainer's data and evals/ (library code may not import evals/).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np


def recon(vq: Path, n: int, seed: int) -> dict[str, object]:
    """Share of drawn objects the exact scorer finds (kind and colour) in MAGVIT-v2 reconstructions."""
    import torch

    from regionreasoner.evals.generation.exact import ExactWorldDetector
    from regionreasoner.tools.generate.images import postprocess_images
    from regionreasoner.tools.generate.magvit import Magvit
    from regionreasoner.trainers.generator_data import draw_picture, pictures_to_tensor

    torch.set_num_threads(2)
    model = Magvit.from_pretrained(vq)
    res = model.config.resolution
    rng = np.random.default_rng([seed, 99])
    pictures = [draw_picture(rng, resolution=res) for _ in range(n)]
    detector = ExactWorldDetector()
    found = ceiling = total = 0
    for start in range(0, n, 32):
        chunk = pictures[start : start + 32]
        with torch.no_grad():
            x = pictures_to_tensor(chunk, res)
            images = postprocess_images(model.decode_code(model.get_code(x)))
        for picture, image in zip(chunk, images, strict=True):
            want = Counter((o.kind, o.colour) for o in picture.objects)
            got = Counter((o.kind, o.colour) for o in detector.segment(image))
            orig = Counter((o.kind, o.colour) for o in detector.segment(picture.image(res)))
            total += sum(want.values())
            found += sum((want & got).values())
            ceiling += sum((want & orig).values())
    return {"objects": total, "found_in_reconstruction": found / total, "found_in_original": ceiling / total}


def inpaint(generator: Path, n: int, seed: int, languages: tuple[str, ...]) -> dict[str, object]:
    """Share of inpainted windows holding the requested shape, and of results unchanged outside the mask."""
    from regionreasoner.core.world.captions import Thing, world_prompt
    from regionreasoner.core.world.render import Placed, render_objects
    from regionreasoner.core.world.scene import COLOURS, KINDS
    from regionreasoner.evals.generation.exact import ExactWorldDetector
    from regionreasoner.tools.generate import Generator

    gen = Generator.from_pretrained(generator)
    res = gen.defaults.resolution
    detector = ExactWorldDetector()
    rng = np.random.default_rng([seed, 5])
    hits, unchanged, by_lang = 0, 0, Counter[str]()
    for i in range(n):
        kinds = [KINDS[int(k)] for k in rng.permutation(len(KINDS))]
        colours = [list(COLOURS)[int(c)] for c in rng.permutation(len(COLOURS))]
        old = Placed(kinds[0], colours[0], 0.27 * res, float(rng.uniform(0.3, 0.7)) * res, 0.14 * res)
        other = Placed(kinds[1], colours[1], 0.75 * res, float(rng.uniform(0.3, 0.7)) * res, 0.14 * res)
        image = render_objects([old, other], (res, res))
        half = res // 4
        y0 = int(np.clip(round(old.cy) - half, 0, res - 2 * half))
        x0 = int(np.clip(round(old.cx) - half, 0, res - 2 * half))
        mask = np.zeros((res, res), dtype=bool)
        mask[y0 : y0 + 2 * half, x0 : x0 + 2 * half] = True
        want = (kinds[2], colours[2])
        lang = languages[i % len(languages)]
        out = gen.inpaint(image, mask, world_prompt([Thing(want[0], want[1])], lang), seed=seed + i)
        a, b = np.asarray(image), np.asarray(out)
        unchanged += bool(np.array_equal(a[~mask], b[~mask]))
        ok = False
        for obj in detector.segment(out):
            ys, xs = np.nonzero(obj.mask)
            cy, cx = int(ys.mean()), int(xs.mean())
            ok = ok or ((obj.kind, obj.colour) == want and bool(mask[cy, cx]))
        hits += ok
        by_lang[lang] += ok
    per = {lang: by_lang[lang] / max(1, sum(1 for i in range(n) if languages[i % len(languages)] == lang))
           for lang in languages}  # fmt: skip
    return {"cases": n, "found": hits / n, "outside_unchanged": unchanged / n, "by_language": per}


def geneval(
    generator: Path, n_per_task: int, languages: tuple[str, ...], seed: int, steps: int | None, guidance: float | None
) -> dict[str, object]:
    """Synthetic m-GenEval per task and language, prompts of a task in one batch."""
    from regionreasoner.evals.generation.exact import ExactWorldDetector
    from regionreasoner.evals.generation.geneval import evaluate_image
    from regionreasoner.evals.generation.meta import TASKS
    from regionreasoner.evals.generation.world_prompts import world_geneval_prompts
    from regionreasoner.tools.generate import Generator

    gen = Generator.from_pretrained(generator)
    detector = ExactWorldDetector()
    table: dict[str, dict[str, float]] = {}
    for lang in languages:
        row = {}
        for task in TASKS:
            prompts = world_geneval_prompts(lang, n_per_task=n_per_task, tasks=(task,))
            images = gen.generate([p.prompt for p in prompts], seed=seed, steps=steps, guidance=guidance)
            row[task] = float(
                np.mean(
                    [evaluate_image(im, p, detector, detector).correct for im, p in zip(images, prompts, strict=True)]
                )
            )
        row["overall"] = float(np.mean([row[t] for t in TASKS]))
        table[lang] = row
    return {"steps": steps, "guidance": guidance, "n_per_task": n_per_task, "table": table}


def main(argv: list[str] | None = None) -> int:
    """Run one measurement and print its JSON line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["recon", "inpaint", "geneval"])
    parser.add_argument("--vq", type=Path, default=Path("runs/generator/vq/final"))
    parser.add_argument("--generator", type=Path, default=Path("tools/generate/weights/world"))
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--n-per-task", type=int, default=20)
    parser.add_argument("--lang", default="en,zh,nl,fr,hi,fa")
    parser.add_argument("--seed", type=int, default=123456)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--guidance", type=float, default=None)
    args = parser.parse_args(argv)
    langs = tuple(args.lang.split(","))
    if args.what == "recon":
        result = recon(args.vq, args.n, args.seed)
    elif args.what == "inpaint":
        result = inpaint(args.generator, args.n, args.seed, langs)
    else:
        result = geneval(args.generator, args.n_per_task, langs, args.seed, args.steps, args.guidance)
    print(json.dumps(result, ensure_ascii=False))  # noqa: T201 - the script's output
    return 0


if __name__ == "__main__":
    sys.exit(main())
