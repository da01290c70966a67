"""The last stage of the generator recipe: a generator folder (what ``Generator.from_pretrained`` loads) + its card.

    generator.json                 resolution, max_seq_length and the sampler defaults of the run's config
    config.json                    NeoBabel's config (inline Gemma-2 ``llm_config``)
    pytorch_model.safetensors      NeoBabel's weights (float16 by default: the loader casts them to its dtype)
    tokenizer.json, ...            the caption tokenizer with NeoBabel's ten tokens
    vq/                            MAGVIT-v2 (config.json + pytorch_model.safetensors, float32)
    README.md                      the model card: data, recipe, training metrics, measured numbers, limits

The card takes its numbers from the run (the last logged metrics of each stage) and, when given, from an
m-GenEval ``summary.json`` of ``regionreasoner-eval geneval`` and a JSON of ``docs/generator/measure.py``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from regionreasoner.core.errors import InputError
from regionreasoner.trainers.generator_config import GeneratorRunConfig
from regionreasoner.trainers.metrics_log import read_metrics

__all__ = ["MAX_BYTES", "export_generator", "generator_card"]

MAX_BYTES = 25 * 1024 * 1024
"""The shipped folder's limit (25 MB, every file)."""

EVAL_COMMAND = (
    "regionreasoner-eval geneval --generator tools/generate/weights/world --lang all --n-per-task 100 "
    "--out runs/generator/geneval"
)


def export_generator(
    cfg: GeneratorRunConfig,
    lm_final: Path,
    vq_final: Path,
    *,
    geneval: dict[str, Any] | None = None,
    measured: dict[str, Any] | None = None,
    seconds: float | None = None,
) -> Path:
    """Write the generator folder of ``cfg`` (replaced) and return it; InputError when it exceeds 25 MB."""
    import torch
    from transformers import AutoTokenizer

    from regionreasoner.tools.generate.generator import GENERATOR_JSON, GeneratorDefaults
    from regionreasoner.tools.generate.magvit import Magvit
    from regionreasoner.tools.generate.model import NeoBabel

    out = cfg.export_folder
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    model = NeoBabel.from_pretrained(lm_final)
    if cfg.export_dtype == "float16":
        model = model.to(torch.float16)
    model.save_pretrained(out)
    Magvit.from_pretrained(vq_final).save_pretrained(out / "vq")
    AutoTokenizer.from_pretrained(lm_final).save_pretrained(out)
    GeneratorDefaults(
        resolution=cfg.resolution,
        max_seq_length=cfg.max_seq_length,
        timesteps=cfg.timesteps,
        guidance_scale=cfg.guidance_scale,
        temperature=cfg.temperature,
        code_temperature=cfg.code_temperature,
        inpaint_timesteps=cfg.inpaint_timesteps,
        inpaint_guidance_scale=cfg.inpaint_guidance_scale,
        inpaint_context=cfg.inpaint_context,
        inpaint_cover=cfg.inpaint_cover,
        inpaint_cell=cfg.inpaint_cell,
        extrapolate_timesteps=cfg.timesteps,
        extrapolate_guidance_scale=cfg.guidance_scale,
    ).write(out / GENERATOR_JSON)
    run = Path(cfg.output_dir)
    (out / "README.md").write_text(
        generator_card(cfg, run, out, geneval=geneval, measured=measured, seconds=seconds), encoding="utf-8"
    )
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    if size > MAX_BYTES:
        raise InputError(f"{out} holds {size / 2**20:.1f} MiB", hint="ship at most 25 MB: shrink the model sizes")
    return out


def _last(run: Path, stage: str) -> dict[str, Any]:
    path = run / stage / "metrics.jsonl"
    records = read_metrics(path) if path.is_file() else []
    return records[-1] if records else {}


def _params(folder: Path) -> int:
    from safetensors import safe_open

    total = 0
    for file in (folder / "pytorch_model.safetensors", folder / "vq" / "pytorch_model.safetensors"):
        with safe_open(str(file), framework="pt") as f:
            for name in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                n = 1
                for dim in f.get_slice(name).get_shape():
                    n *= int(dim)
                total += n if not name.startswith("quantize.") else 0
    return total


def _geneval_table(summary: dict[str, Any]) -> list[str]:
    columns = [c for c in summary.get("columns", []) if c != "language"]
    rows = dict(summary.get("languages", {}))
    if isinstance(summary.get("mean"), dict):
        rows["mean"] = summary["mean"]
    if not columns or not rows:
        return []
    lines = ["| language | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for lang, row in rows.items():
        cells = [("-" if row.get(c) is None else f"{row[c]:.2f}") for c in columns]
        lines.append(f"| {lang} | " + " | ".join(cells) + " |")
    return lines


def generator_card(
    cfg: GeneratorRunConfig,
    run: Path,
    folder: Path,
    *,
    geneval: dict[str, Any] | None = None,
    measured: dict[str, Any] | None = None,
    seconds: float | None = None,
) -> str:
    """The model card (markdown) of the exported ``folder`` of ``run``."""
    vq, lm = _last(run, "vq"), _last(run, "lm")
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name != "README.md")
    recipe = {k: v for k, v in asdict(cfg).items() if k not in ("output_dir", "export_dir")}
    lines = [
        "# world: a tiny NeoBabel + MAGVIT-v2 trained on the synthetic world",
        "",
        "A text-to-image generator and inpainter for the synthetic world's pictures (coloured shapes on a grey",
        f"background), {cfg.resolution}x{cfg.resolution} pixels, captions in English, Chinese, Dutch, French, Hindi,",
        "Persian and code-switched mixes.  Both models are the library's own classes (`NeoBabel` on transformers'",
        "Gemma-2, `Magvit`), trained from random weights with `make generator` (`regionreasoner-train generator",
        "--config generator`).  Load it with `Generator.from_pretrained('tools/generate/weights/world')`.",
        "",
        "## Data",
        "",
        "Pictures drawn on the fly by the world's own code (`core/world/render.py`): one shape (colour said or not),",
        "two shapes of different kinds (colours said for both or neither), one to four shapes of one kind (count",
        "said), or two shapes left of / right of / above / below each other; solid fills.  Captions are",
        "`core/world/captions.py`'s GenEval phrasing in a uniformly drawn language; "
        f"{cfg.switch_share:.0%} are code-switched",
        f"(English frame with the other language's colour and shape words and the reverse, or any pair); "
        f"{cfg.cond_dropout:.0%} are",
        "dropped (the empty prompt) for classifier-free guidance.  "
        + (
            f"Shapes sit on the centres of the {cfg.resolution // cfg.stride}x{cfg.resolution // cfg.stride} code "
            + (
                "grid's cells at one radius (11/8 of a cell), three cells apart (the canonical world, "
                "docs/decisions.md); "
                if cfg.lattice_footprint == 3
                else "grid's cells at one radius (0.36 of a cell), one shape per cell: one code is one shape "
                "(docs/decisions.md); "
            )
            + "15% of the stream are inpainting samples: one shape named, only its cells regenerated."
            if cfg.lattice
            else "Shapes are placed freely."
        ),
        "",
        "## Recipe",
        "",
        f"- MAGVIT-v2: width {cfg.vq_ch}, multipliers {cfg.vq_ch_mult} (stride {cfg.stride}), {cfg.vq_z_channels}-bit "
        f"lookup-free codes ({2**cfg.vq_z_channels} codes, {cfg.num_vq_tokens} per picture); L1 + L2 + "
        f"{cfg.vq_commit} commitment + {cfg.vq_entropy} LFQ entropy (codebook term over {cfg.vq_entropy_cells} cells), "
        f"{cfg.vq_steps} steps of {cfg.vq_batch} pictures.",
        f"- NeoBabel: Gemma-2, hidden {cfg.lm_hidden}, {cfg.lm_layers} layers, {cfg.lm_heads} heads, MLP "
        f"{cfg.lm_intermediate}, text {cfg.max_seq_length} tokens (byte-level BPE of {cfg.tokenizer_vocab}); MaskGIT "
        f"(cosine masking; shape cells weigh 1 + {cfg.lm_shape_weight}, decaying to 1 at half the steps), "
        f"{cfg.lm_steps} steps of {cfg.lm_batch} pictures, lr {cfg.lm_lr}.",
        f"- Sampler defaults (generator.json, tuned on prompt seed 3, not the table's): {cfg.timesteps} steps, "
        f"CFG w = {cfg.guidance_scale}, Gumbel temperature {cfg.temperature}, code temperature "
        f"{cfg.code_temperature}; inpainting "
        f"{cfg.inpaint_timesteps} steps, w = {cfg.inpaint_guidance_scale}.",
        f"- {_params(folder) / 1e6:.2f} M parameters, {size / 2**20:.1f} MiB on disk (NeoBabel in {cfg.export_dtype}).",
    ]
    if seconds is not None:
        lines.append(f"- Whole recipe: {seconds / 60:.1f} minutes on the 2-core CPU machine it was made on.")
    lines += [
        "",
        "## Training metrics (last logged step)",
        "",
        f"- MAGVIT-v2 step {vq.get('step')}: L1 {vq.get('l1')}, L2 {vq.get('l2')}, pixels off by more than the",
        f"  scorer's palette radius {vq.get('far_pixels')}, codes used in a batch {vq.get('codes_used')}.",
        f"- NeoBabel step {lm.get('step')}: masked-token loss {lm.get('loss')}, accuracy {lm.get('masked_accuracy')}.",
        "",
        "Logs and plots: docs/generator/ (`vq-metrics.jsonl`, `lm-metrics.jsonl`, `*.png`).",
    ]
    if geneval:
        lines += [
            "",
            "## Synthetic m-GenEval (exact scorer)",
            "",
            f"`{EVAL_COMMAND}`",
            "",
            *_geneval_table(geneval),
        ]
    if measured:
        lines += ["", "## Other measurements (docs/generator/measure.py)", "", "```json"]
        lines += [json.dumps(measured, ensure_ascii=False, indent=1), "```"]
    lines += [
        "",
        "## Limits",
        "",
        "- It knows only the synthetic world: six kinds, seven colours, flat grey background, solid fills, at most",
        "  four shapes; any other prompt gives a picture of the world's shapes or noise.",
        f"- {cfg.resolution}x{cfg.resolution} pixels on an {cfg.resolution // cfg.stride}x"
        f"{cfg.resolution // cfg.stride} code grid: edges are soft, small shapes may lose their kind.",
        *(
            [
                "- It draws one shape per code cell at one size; inpainting crops a window of "
                f"{cfg.resolution // cfg.stride} cells of the region's",
                "  longer side with the region on one cell, so the new shape fills about three quarters of the region.",
            ]
            if cfg.inpaint_cell
            else [
                f"- It draws shapes at one size on the code grid's lattice; inpainting crops a window "
                f"{cfg.inpaint_context}x the region's",
                "  longer side, so the new shape fills about three quarters of the region, whatever the scene's scale.",
            ]
        ),
        "- Trained on two CPU cores; the numbers above are what this recipe reaches, not what the architecture can.",
        "",
        "## Run configuration",
        "",
        "```json",
        json.dumps(recipe, indent=1),
        "```",
        "",
    ]
    return "\n".join(lines)
