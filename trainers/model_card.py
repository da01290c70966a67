"""The embedded model's card (``README.md`` beside its weights): data, recipe, measured numbers, limits.

Written by ``regionreasoner-train embedded-export`` from the checkpoint itself (sizes, declared frame and template)
and the held-out evaluation of the same run (``world.json`` of ``regionreasoner-eval synthetic``), so the card
always describes the weights it ships with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["EVAL_COMMAND", "model_card", "parameter_count"]

EVAL_COMMAND = (
    "regionreasoner-eval synthetic --model policies/weights/embedded --out runs/embedded/eval --n-dialogues 500 "
    "--seed 2026 --language any --workers 4"
)
"""The held-out evaluation the card reports (``make model-eval``)."""


def parameter_count(folder: Path) -> int:
    """Parameters in ``folder/model.safetensors``, read from its header (no tensor data is loaded)."""
    from safetensors import safe_open

    total = 0
    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        for name in f.keys():  # noqa: SIM118 - safe_open is not a mapping
            shape = f.get_slice(name).get_shape()
            n = 1
            for dim in shape:
                n *= int(dim)
            total += n
    return total


def _table(evaluation: dict[str, Any]) -> list[str]:
    lines = ["| round | turns | Acc@0.5 | citation rate | scene precision |", "|---|---|---|---|---|"]
    for row in evaluation.get("rounds", []):
        cite = row.get("citation_rate")
        lines.append(
            f"| {row.get('round')} | {row.get('turns')} | {row.get('acc50', 0):.3f} | "
            f"{'-' if cite is None else f'{cite:.3f}'} | {row.get('scene_precision', 0):.3f} |"
        )
    langs = evaluation.get("languages", [])
    if langs:
        lines += ["", "| language | turns | Acc@0.5 |", "|---|---|---|"]
        lines += [f"| {r.get('language')} | {r.get('turns')} | {r.get('acc50', 0):.3f} |" for r in langs]
    return lines


def model_card(folder: Path, *, evaluation: dict[str, Any] | None = None) -> str:
    """The card of checkpoint ``folder`` (markdown), with the numbers of ``evaluation`` when given."""
    declared = json.loads((folder / "regionreasoner.json").read_text(encoding="utf-8"))
    params = parameter_count(folder)
    size = (folder / "model.safetensors").stat().st_size
    spec = declared.get("spec", {})
    seconds = declared.get("recipe_seconds")
    lines = [
        "# regionreasoner embedded model",
        "",
        f"A Qwen2.5-VL of {params / 1e6:.2f} M parameters ({size / 2**20:.1f} MiB of float32 safetensors), trained on",
        "two CPU cores by `make model` with `regionreasoner-train` (SFT on ground-truth traces, then GRPO with the",
        "RegionReasoner rewards) on the synthetic shapes world. It is the default model of `make demo`,",
        "`regionreasoner chat`, `langgraph dev`, `regionreasoner-eval` and `RegionAgent.from_pretrained()`.",
        "",
        "## What it does",
        "",
        "Finds coloured, textured shapes (circle, square, triangle, star, ring, cross; seven colours; solid, striped,",
        "dotted, checkered) in images drawn like the synthetic world (docs/world.md), over dialogues of up to five",
        "rounds where later questions cite earlier regions (`R1`, rendered `bbox=[...]`) with eight relations.",
        "Questions in English, Chinese, Dutch, French, Hindi, Persian and code-switched mixes; it reasons in English.",
        "",
        "## Format",
        "",
        f"- frame `{declared.get('frame')}` (both axes 0..100), prompt template `{declared.get('prompt_template')}`",
        "  (the image, then the question), both declared in `regionreasoner.json` and picked up by the agent;",
        "- sections: `<scene>` (shapes left to right), `<focus>` (cited box content), `<think>` (target in English,",
        "  the cited box copied exactly, the relation), `<answer>` (JSON box and point).",
        f"- sizes: {json.dumps(spec)}",
        "",
        "## Held-out evaluation",
        "",
    ]
    if evaluation:
        lines.append(f"`{evaluation.get('command', EVAL_COMMAND)}` (`make model-eval`), all rounds:")
        overall = evaluation.get("all", {})
        lines.append("")
        lines.append(
            f"Acc@0.5 {overall.get('acc50', 0):.3f}, parse rate {overall.get('parse_rate', 0):.3f}, citation rate "
            f"{overall.get('citation_rate') or 0:.3f}, scene precision {overall.get('scene_precision', 0):.3f} "
            f"over {overall.get('turns', 0)} turns."
        )
        lines.append("")
        lines += _table(evaluation)
    else:
        lines.append("(not evaluated)")
    if seconds is not None:
        lines += ["", f"Recipe wall time: {seconds / 60:.1f} min on this machine (`make model`)."]
    lines += [
        "",
        "## Limits",
        "",
        "- It knows only the synthetic world: real photographs, other objects or words outside docs/world.md are",
        "  out of its reach (it will still answer, wrongly). Use RegionReasoner-7B for real images.",
        "- Boxes are quantised to 1% of the image side; images are read at about 70 merged 28x28 patches.",
        "- Reasoning is in English whatever the question's language.",
        "",
        "Recipe, data and the ablation: docs/embedded-model.md.",
        "",
    ]
    return "\n".join(lines)
