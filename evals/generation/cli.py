"""``regionreasoner-eval geneval | dpg | clc | css``: generate with a generator, score, report per language.

Each subcommand writes into ``--out``: the prompts it used (``prompts/``), one folder of images per language (the
official layouts; a rerun skips what exists), ``results.jsonl`` per language where images are scored one by one,
and ``summary.json``, ``summary.md`` and ``plots/<benchmark>_<language>.png``.  Without ``--prompts``/``--data``
the synthetic world's prompts are used and scored exactly; ``--generator oracle`` draws their ground truth.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from regionreasoner.agent.cli_args import (
    existing_file,
    existing_folder,
    make_folder,
    non_negative_int,
    output_folder,
    positive_int,
)
from regionreasoner.core.errors import ConfigError
from regionreasoner.core.world import LANGUAGES
from regionreasoner.evals.subcommand import Subcommand

if TYPE_CHECKING:
    from regionreasoner.evals.generation.meta import GenEvalPrompt
    from regionreasoner.evals.generation.report import ScoreTable
    from regionreasoner.evals.generation.run import ImageGenerator

__all__ = ["CLC", "CSS", "DPG", "GENEVAL", "SUBCOMMANDS", "languages"]


def languages(text: str) -> tuple[str, ...]:
    """``all`` or a comma list of language codes (en zh nl fr hi fa)."""
    if text == "all":
        return LANGUAGES
    out = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    if not out or any(t not in LANGUAGES for t in out):
        raise argparse.ArgumentTypeError(f"{text!r}: use 'all' or some of {','.join(LANGUAGES)}")
    return out


def _common(parser: argparse.ArgumentParser, *, prompts: bool = True) -> None:
    parser.add_argument("--generator", required=True, help="generator folder, 'oracle' or module:attribute")
    parser.add_argument("--lang", type=languages, default=LANGUAGES, help="'all' (default) or e.g. en,nl,zh")
    parser.add_argument("--out", type=output_folder, required=True, help="output folder (a rerun resumes)")
    parser.add_argument("--seed", type=non_negative_int, default=123456, help="generation seed (default 123456)")
    parser.add_argument("--device", default=None, help="device of the generator (default: CUDA when available)")
    parser.add_argument("--model-device", default="cpu", help="device of the scoring models (default cpu)")
    parser.add_argument("--limit", type=positive_int, default=None, help="only the first N prompts per language")
    parser.add_argument("--n-per-task", type=positive_int, default=100, help="synthetic prompts per task (default 100)")
    parser.add_argument("--prompt-seed", type=non_negative_int, default=0, help="seed of the synthetic prompts")
    if prompts:
        parser.add_argument(
            "--prompts",
            type=existing_folder,
            default=None,
            help="folder of GenEval metadata per language (<lang>.jsonl or NeoBabel's evaluation_metadata_*.jsonl); "
            "default: the synthetic world's prompts",
        )


def _prompt_sets(args: argparse.Namespace, out: Path) -> tuple[dict[str, list[GenEvalPrompt]], bool]:
    """The prompts per language (``--limit`` applied) and whether they are the synthetic world's (then written)."""
    from regionreasoner.evals.generation.meta import find_metadata, read_metadata, write_metadata
    from regionreasoner.evals.generation.world_prompts import world_geneval_prompts

    synthetic = getattr(args, "prompts", None) is None
    sets: dict[str, list[GenEvalPrompt]] = {}
    for lang in args.lang:
        if synthetic:
            prompts = world_geneval_prompts(lang, n_per_task=args.n_per_task, seed=args.prompt_seed)
        else:
            prompts = read_metadata(find_metadata(args.prompts, lang))
        sets[lang] = prompts[: args.limit] if args.limit else prompts
        if synthetic:
            write_metadata(out / "prompts" / f"{lang}.jsonl", sets[lang])
    return sets, synthetic


def _generator(args: argparse.Namespace, known: list[GenEvalPrompt]) -> ImageGenerator:
    from regionreasoner.evals.generation.loading import load_generator

    return load_generator(args.generator, known=known, device=args.device)


def _finish(table: ScoreTable, out: Path, extra: dict[str, object]) -> int:
    from regionreasoner.evals.generation.report import table_markdown, write_report

    paths = write_report(table, out, extra=extra)
    print(table_markdown(table))
    files = [str(paths.json), str(paths.markdown), *(str(p) for p in paths.plots)]
    print(json.dumps({"benchmark": table.name, "mean": table.mean, "counts": table.counts, "files": files}))
    return 0


# ------------------------------------------------------------------------------------------------ geneval


def _geneval_args(parser: argparse.ArgumentParser) -> None:
    from regionreasoner.evals.generation.loading import COLOUR_CLASSIFIERS, DETECTORS

    _common(parser)
    parser.add_argument("--samples", type=positive_int, default=1, help="images per prompt (m-GenEval: 1)")
    parser.add_argument("--detector", default="exact", help=f"{', '.join(DETECTORS)} or module:attr (default exact)")
    parser.add_argument("--detector-path", default=None, help="the detector's checkpoint folder or hub id")
    parser.add_argument("--colours", default="exact", help=f"{', '.join(COLOUR_CLASSIFIERS)} or module:attr")
    parser.add_argument("--colours-path", default=None, help="the colour classifier's checkpoint (clip: CLIP/SigLIP)")


def _geneval_run(args: argparse.Namespace) -> int:
    from regionreasoner.evals.generation.loading import load_colours, load_detector
    from regionreasoner.evals.generation.meta import TASKS
    from regionreasoner.evals.generation.report import ScoreTable
    from regionreasoner.evals.generation.run import generate_geneval, score_geneval, summarise_geneval

    out = make_folder(args.out, "--out")
    sets, synthetic = _prompt_sets(args, out)
    if not synthetic and "exact" in (args.detector, args.colours):
        raise ConfigError(
            "the exact scorer knows only the synthetic world's shapes",
            hint="with --prompts pass --detector mask2former --detector-path DIR --colours clip --colours-path DIR",
        )
    detector = load_detector(args.detector, args.detector_path, device=args.model_device)
    colours = load_colours(args.colours, args.colours_path, device=args.model_device)
    generator = _generator(args, [p for ps in sets.values() for p in ps])
    rows: dict[str, dict[str, float | None]] = {}
    counts: dict[str, int] = {}
    for lang, prompts in sets.items():
        folder = out / lang
        generate_geneval(generator, prompts, folder, seed=args.seed, samples=args.samples, desc=f"geneval {lang}")
        scores = summarise_geneval(score_geneval(folder, detector, colours, desc=f"score {lang}"))
        rows[lang] = {**{t: scores.tasks.get(t) for t in TASKS}, "overall": scores.overall}
        counts[lang] = sum(scores.counts.values())
    kind = "synthetic world, exact scorer" if synthetic else f"detector {args.detector}, colours {args.colours}"
    table = ScoreTable(
        name="geneval",
        title=f"m-GenEval ({kind})",
        columns=(*TASKS, "overall"),
        rows=rows,
        counts=counts,
        notes=(
            "task accuracy = share of images whose include clauses all hold and no exclude clause fires",
            "overall = mean of the six task accuracies; mean row = unweighted mean over languages",
        ),
    )
    return _finish(table, out, {"generator": args.generator, "seed": args.seed, "samples": args.samples})


# ------------------------------------------------------------------------------------------------ dpg


def _dpg_args(parser: argparse.ArgumentParser) -> None:
    from regionreasoner.evals.generation.loading import VQA_MODELS

    _common(parser, prompts=False)
    parser.add_argument("--data", type=existing_file, default=None, help="DPG-Bench CSV (default: synthetic items)")
    parser.add_argument(
        "--translations",
        type=existing_folder,
        default=None,
        help="folder of translated prompts: <lang>/<item_id>.txt or NeoBabel's <name>-prompts/<item_id>.txt",
    )
    parser.add_argument("--vqa", default="exact", help=f"{', '.join(VQA_MODELS)} or module:attr (default exact)")
    parser.add_argument("--vqa-path", default=None, help="the VQA checkpoint (AutoModelForVisualQuestionAnswering)")


def _dpg_run(args: argparse.Namespace) -> int:
    from regionreasoner.evals.generation.dpg import (
        generate_dpg,
        read_dpg_csv,
        read_translations,
        score_dpg,
        write_dpg_csv,
    )
    from regionreasoner.evals.generation.loading import load_vqa
    from regionreasoner.evals.generation.report import ScoreTable
    from regionreasoner.evals.generation.world_dpg import world_dpg_items
    from regionreasoner.evals.generation.world_prompts import reword, world_geneval_prompts

    out = make_folder(args.out, "--out")
    known: list[GenEvalPrompt] = []
    texts: dict[str, dict[str, str]] = {}
    if args.data is None:
        english = world_geneval_prompts("en", n_per_task=args.n_per_task, seed=args.prompt_seed)
        english = english[: args.limit] if args.limit else english
        items = world_dpg_items(english)
        write_dpg_csv(out / "prompts" / "dpg_bench.csv", items)
        for lang in args.lang:
            worded = [reword(p, lang) for p in english]
            known += worded
            texts[lang] = {item.item_id: p.prompt for item, p in zip(items, worded, strict=True)}
            for item_id, text in texts[lang].items():
                (out / "prompts" / lang).mkdir(parents=True, exist_ok=True)
                (out / "prompts" / lang / f"{item_id}.txt").write_text(text + "\n", encoding="utf-8")
    else:
        items = read_dpg_csv(args.data)
        items = items[: args.limit] if args.limit else items
        for lang in args.lang:
            if lang == "en" and args.translations is None:
                texts[lang] = {i.item_id: i.text for i in items}
            elif args.translations is None:
                raise ConfigError(f"no {lang} prompts", hint="pass --translations DIR, or --lang en")
            else:
                found = read_translations(args.translations, lang)
                texts[lang] = {i.item_id: found[i.item_id] for i in items if i.item_id in found}
    vqa = load_vqa(args.vqa, args.vqa_path, device=args.model_device)
    generator = _generator(args, known)
    rows: dict[str, dict[str, float | None]] = {}
    counts: dict[str, int] = {}
    categories = sorted({q.category_broad for i in items for q in i.questions})
    for lang in args.lang:
        folder = out / lang
        generate_dpg(generator, texts[lang], folder, seed=args.seed, desc=f"dpg {lang}")
        results = score_dpg(folder, [i for i in items if i.item_id in texts[lang]], vqa, desc=f"score {lang}")
        if not results:
            continue
        per_cat = {c: [r.categories[c] for r in results if c in r.categories] for c in categories}
        rows[lang] = {c: sum(v) / len(v) if v else None for c, v in per_cat.items()}
        rows[lang]["DPG"] = sum(r.score for r in results) / len(results)
        counts[lang] = len(results)
    table = ScoreTable(
        name="dpg",
        title="m-DPG" + (" (synthetic world, exact VQA)" if args.data is None else f" (VQA {args.vqa})"),
        columns=(*categories, "DPG"),
        rows=rows,
        counts=counts,
        notes=(
            "a question scores 1 for 'yes', then 0 when a parent scored 0; tile = mean over questions; "
            "prompt = mean of its 4 tiles; DPG = mean over prompts",
            "category columns: mean question score per category_broad after the dependency rule",
        ),
    )
    return _finish(table, out, {"generator": args.generator, "seed": args.seed})


# ------------------------------------------------------------------------------------------------ clc, css


def _similarity_args(parser: argparse.ArgumentParser) -> None:
    from regionreasoner.evals.generation.loading import EMBEDDERS

    _common(parser)
    parser.add_argument(
        "--embedder",
        action="append",
        default=None,
        help=f"NAME[=PATH], repeatable: {', '.join(EMBEDDERS)} (e.g. dinov2=/ckpt, clip=/ckpt) or "
        "LABEL=module:attr (default: exact)",
    )


def _sample(folder: Path, index: int) -> Path:
    return folder / f"{index:05d}" / "samples" / "00000.png"


def _similarity(args: argparse.Namespace, *, switch: bool) -> int:
    from regionreasoner.evals.generation.loading import load_embedders
    from regionreasoner.evals.generation.meta import GenEvalPrompt as Prompt
    from regionreasoner.evals.generation.report import ScoreTable
    from regionreasoner.evals.generation.run import generate_geneval
    from regionreasoner.evals.generation.similarity import pair_cosines, sentence_switch, world_switch

    out = make_folder(args.out, "--out")
    if "en" not in args.lang:
        args.lang = ("en", *args.lang)
    sets, synthetic = _prompt_sets(args, out)
    embedders = load_embedders(args.embedder or ["exact"], device=args.model_device)
    english = sets["en"]
    others = [lang for lang in sets if lang != "en"]
    if not others:
        raise ConfigError("only English was asked for", hint="add other languages with --lang")
    # (folder name, language, variant) -> prompts whose index matches the English prompt's
    runs: dict[str, tuple[str, list[tuple[int, Prompt]]]] = {"en": ("en", list(enumerate(english)))}
    for lang in others:
        if not switch:
            runs[lang] = (lang, list(enumerate(sets[lang][: len(english)])))
            continue
        for variant, first in (("EF", True), ("ES", False)):
            pairs: list[tuple[int, Prompt]] = []
            for i, (en, ot) in enumerate(zip(english, sets[lang], strict=False)):
                if synthetic:
                    pairs.append((i, world_switch(en, lang, english_first=first)))
                elif (text := sentence_switch(en.prompt, ot.prompt, english_first=first)) is not None:
                    pairs.append((i, Prompt(tag=en.tag, include=en.include, exclude=en.exclude, prompt=text)))
            runs[f"{variant.lower()}-{lang}"] = (lang, pairs)
    generator = _generator(args, [p for _, ps in runs.values() for _, p in ps])
    for name, (_, pairs) in runs.items():
        generate_geneval(generator, [p for _, p in pairs], out / name, seed=args.seed, desc=f"{name}")
    rows: dict[str, dict[str, float | None]] = {}
    counts: dict[str, int] = {}
    columns = [f"{e} {v}" for e in embedders for v in ("EF", "ES")] if switch else list(embedders)
    for lang in others:
        rows[lang] = {}
        for name, (run_lang, pairs) in runs.items():
            if run_lang != lang or not pairs:
                continue
            left = [_sample(out / "en", i) for i, _ in pairs]
            right = [_sample(out / name, k) for k in range(len(pairs))]
            for label, embedder in embedders.items():
                cos = pair_cosines(embedder, left, right)
                column = f"{label} {name.split('-')[0].upper()}" if switch else label
                rows[lang][column] = sum(cos) / len(cos)
            counts[lang] = len(pairs)
    rows = {lang: row for lang, row in rows.items() if row}
    metric = "CSS" if switch else "CLC"
    how = (
        "CSS_EF/ES = mean cos(E(G(code-switched prompt)), E(G(English prompt))), English first / second"
        if switch
        else "CLC = mean over prompts of cos(E(G(English prompt)), E(G(translated prompt)))"
    )
    table = ScoreTable(
        name=metric.lower(),
        title=f"{metric} ({'synthetic world' if synthetic else 'GenEval prompts'})",
        columns=tuple(columns),
        rows=rows,
        percent=False,
        counts=counts,
        notes=(how + "; same seed, embeddings L2-normalised", "definition assumed: see docs (neobabel.md §5.3)"),
    )
    return _finish(table, out, {"generator": args.generator, "seed": args.seed, "embedders": list(embedders)})


GENEVAL = Subcommand(
    "m-GenEval: generate, score with GenEval's rules (exact scorer on synthetic prompts), report per language",
    _geneval_args,
    _geneval_run,
)
"""``regionreasoner-eval geneval``."""

DPG = Subcommand("m-DPG: 2x2 grids, VQA with the dependency rule, per language", _dpg_args, _dpg_run)
"""``regionreasoner-eval dpg``."""

CLC = Subcommand(
    "Cross-Lingual Consistency: image similarity between English and translated prompts",
    _similarity_args,
    lambda args: _similarity(args, switch=False),
)
"""``regionreasoner-eval clc``."""

CSS = Subcommand(
    "Code-Switching Similarity: code-switched (English first / second) against English prompts",
    _similarity_args,
    lambda args: _similarity(args, switch=True),
)
"""``regionreasoner-eval css``."""

SUBCOMMANDS: dict[str, Subcommand] = {"geneval": GENEVAL, "dpg": DPG, "clc": CLC, "css": CSS}
"""The generation suite's subcommands, by the name ``regionreasoner-eval`` registers them under."""
