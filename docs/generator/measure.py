"""Measurements of the generator trained here, scored by the exact scorer of the synthetic world.

    python docs/generator/measure.py recon   --vq runs/generator/vq/final [--n 200 --free --footprint 1]
    python docs/generator/measure.py inpaint --generator tools/generate/weights/world [--n 100]
    python docs/generator/measure.py geneval --generator DIR [--n-per-task 20 --lang en,nl --steps 12 --guidance 3]
    python docs/generator/measure.py baseline --generator tools/generate/weights/world --out runs/generator/random
    python docs/generator/measure.py collect --run runs/generator         # the card's "measured" JSON

Each prints one JSON line.  ``recon``: the share of drawn objects whose kind and colour the exact scorer finds in
the MAGVIT-v2 reconstruction (and in the original, as the ceiling).  ``inpaint``: a world scene (320x240), one
object's box repainted after another kind and colour in a language (:func:`inpaint`); a case counts when the scorer
finds that kind and colour centred inside the box, and every pixel outside the mask is checked to be the original's.
``geneval``: synthetic m-GenEval in batches (prompts of a task batched with one
seeded stream, so not image-identical to ``regionreasoner-eval geneval``, which seeds every prompt): for tuning the
sampler; the reported numbers come from ``regionreasoner-eval``.  ``baseline``: a copy of the generator folder with
both models re-initialised from their configs (seed ``--seed``): the random-weights baseline of CLC and CSS.
``collect``: ``RUN/inpaint.json`` and the CLC/CSS summaries of ``RUN/{clc,css}/{world,random}`` in one object.
Kept beside the docs because it imports both the trainer's data and evals/ (library code may not import evals/).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np


def recon(vq: Path, n: int, seed: int, lattice: bool, footprint: int = 1) -> dict[str, object]:
    """Share of drawn objects the exact scorer finds (kind and colour) in MAGVIT-v2 reconstructions.

    ``lattice``: the pictures the LM is trained on (shapes on the code grid's cells, ``footprint`` cells per side
    each), else freely placed ones.
    """
    import torch

    from regionreasoner.evals.generation.exact import ExactWorldDetector
    from regionreasoner.tools.generate.images import postprocess_images
    from regionreasoner.tools.generate.magvit import Magvit
    from regionreasoner.trainers.generator_data import draw_picture, pictures_to_tensor

    torch.set_num_threads(2)
    model = Magvit.from_pretrained(vq)
    res = model.config.resolution
    rng = np.random.default_rng([seed, 99])
    cell = model.stride if lattice else 0
    pictures = [draw_picture(rng, resolution=res, lattice=cell, footprint=footprint) for _ in range(n)]
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
    """Share of repainted regions holding the requested shape, and of results unchanged outside the mask.

    Case ``i``: a world scene (320x240, 3 to 6 shapes, seeds ``(seed, i)``, none a training stream's), one of its
    objects' box as the mask (as the agent repaints a found region ``R<k>``), a kind and colour both other than the
    object's, asked in language ``i mod len(languages)``, as a bare phrase ("een groene ster") on even cases and in
    the GenEval frame on odd ones.  Found: the exact scorer finds that kind and colour with its centroid in the mask.
    """
    from regionreasoner.core.world import make_scene
    from regionreasoner.core.world.captions import Thing, world_phrase, world_prompt
    from regionreasoner.core.world.scene import COLOURS, KINDS
    from regionreasoner.evals.generation.exact import ExactWorldDetector
    from regionreasoner.tools.generate import Generator

    gen = Generator.from_pretrained(generator)
    detector = ExactWorldDetector()
    rng = np.random.default_rng([seed, 5])
    hits, unchanged, by_lang, asked = 0, 0, Counter[str](), Counter[str]()
    for i in range(n):
        scene = make_scene((seed, i), size=(320, 240), n_objects=(3, 6))
        old = scene.objects[int(rng.integers(len(scene.objects)))]
        kind = [k for k in KINDS if k != old.kind][int(rng.integers(len(KINDS) - 1))]
        colour = [c for c in COLOURS if c != old.colour][int(rng.integers(len(COLOURS) - 1))]
        x0, y0, x1, y1 = (round(v) for v in old.box)
        mask = np.zeros((scene.size[1], scene.size[0]), dtype=bool)
        mask[y0:y1, x0:x1] = True
        lang = languages[i % len(languages)]
        thing = Thing(kind, colour)
        prompt = world_phrase(thing, lang) if i % 2 == 0 else world_prompt([thing], lang)
        out = gen.inpaint(scene.image, mask, prompt, seed=seed + i)
        a, b = np.asarray(scene.image.convert("RGB")), np.asarray(out)
        unchanged += bool(np.array_equal(a[~mask], b[~mask]))
        ok = False
        for obj in detector.segment(out):
            ys, xs = np.nonzero(obj.mask)
            ok = ok or ((obj.kind, obj.colour) == (kind, colour) and bool(mask[int(ys.mean()), int(xs.mean())]))
        hits += ok
        by_lang[lang] += ok
        asked[lang] += 1
    per = {lang: by_lang[lang] / asked[lang] for lang in languages if asked[lang]}
    return {"cases": n, "found": hits / n, "outside_unchanged": unchanged / n, "by_language": per}


def geneval(
    generator: Path,
    n_per_task: int,
    languages: tuple[str, ...],
    seed: int,
    steps: int | None,
    guidance: float | None,
    prompt_seed: int = 3,
) -> dict[str, object]:
    """Synthetic m-GenEval per task and language, prompts of a task in one batch.

    ``prompt_seed`` 3 by default: tuning the sampler on the reported table's prompts (seed 0) would tune on the test.
    """
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
            prompts = world_geneval_prompts(lang, n_per_task=n_per_task, seed=prompt_seed, tasks=(task,))
            images = gen.generate([p.prompt for p in prompts], seed=seed, steps=steps, guidance=guidance)
            row[task] = float(
                np.mean(
                    [evaluate_image(im, p, detector, detector).correct for im, p in zip(images, prompts, strict=True)]
                )
            )
        row["overall"] = float(np.mean([row[t] for t in TASKS]))
        table[lang] = row
    return {"steps": steps, "guidance": guidance, "n_per_task": n_per_task, "prompt_seed": prompt_seed, "table": table}


def baseline(generator: Path, out: Path, seed: int) -> dict[str, object]:
    """The generator folder at ``out`` with NeoBabel and MAGVIT-v2 at random weights (same configs and tokenizer)."""
    import shutil

    import torch

    from regionreasoner.tools.generate.magvit import Magvit
    from regionreasoner.tools.generate.model import NeoBabel

    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(generator, out)
    torch.manual_seed(seed)
    trained = NeoBabel.from_pretrained(generator)
    NeoBabel(trained.config).to(trained.dtype).save_pretrained(out)
    vq = Magvit.from_pretrained(generator / "vq")
    Magvit(vq.config).save_pretrained(out / "vq")
    (out / "README.md").write_text(
        f"Random-weights baseline of {generator} (seed {seed}): the same configs and tokenizer, no training.\n",
        encoding="utf-8",
    )
    return {"baseline": str(out), "seed": seed}


def collect(run: Path) -> dict[str, object]:
    """The measurements of ``make generator-eval`` in one object (what the model card prints)."""
    out: dict[str, object] = {}
    inpaint_file = run / "inpaint.json"
    if inpaint_file.is_file():
        out["inpaint"] = json.loads(inpaint_file.read_text(encoding="utf-8"))
    for metric in ("clc", "css"):
        for which in ("world", "random"):
            summary = run / metric / which / "summary.json"
            if summary.is_file():
                data = json.loads(summary.read_text(encoding="utf-8"))
                out[f"{metric}_{which}"] = {"mean": data.get("mean"), "languages": data.get("languages")}
    return out


def main(argv: list[str] | None = None) -> int:
    """Run one measurement and print its JSON line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["recon", "inpaint", "geneval", "baseline", "collect"])
    parser.add_argument("--run", type=Path, default=Path("runs/generator"))
    parser.add_argument("--out", type=Path, default=Path("runs/generator/random"))
    parser.add_argument("--vq", type=Path, default=Path("runs/generator/vq/final"))
    parser.add_argument("--generator", type=Path, default=Path("tools/generate/weights/world"))
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--free", action="store_true", help="recon: freely placed shapes instead of the lattice")
    parser.add_argument("--footprint", type=int, default=1, help="recon: cells per side of a lattice shape (1 or 3)")
    parser.add_argument("--n-per-task", type=int, default=20)
    parser.add_argument("--lang", default="en,zh,nl,fr,hi,fa")
    parser.add_argument("--seed", type=int, default=123456)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--guidance", type=float, default=None)
    parser.add_argument("--prompt-seed", type=int, default=3, help="geneval: seed of the prompts (the table uses 0)")
    args = parser.parse_args(argv)
    langs = tuple(args.lang.split(","))
    if args.what == "recon":
        result = recon(args.vq, args.n, args.seed, not args.free, args.footprint)
    elif args.what == "collect":
        result = collect(args.run)
    elif args.what == "baseline":
        result = baseline(args.generator, args.out, args.seed)
    elif args.what == "inpaint":
        result = inpaint(args.generator, args.n, args.seed, langs)
    else:
        result = geneval(args.generator, args.n_per_task, langs, args.seed, args.steps, args.guidance, args.prompt_seed)
    print(json.dumps(result, ensure_ascii=False))  # noqa: T201 - the script's output
    return 0


if __name__ == "__main__":
    sys.exit(main())
