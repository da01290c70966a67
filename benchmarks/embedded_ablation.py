"""The paper's ablation in miniature, on the embedded model: SFT only, SFT + GRPO, GRPO without R_ref and R_cons.

    .venv/bin/python benchmarks/embedded_ablation.py [--run runs/embedded] [--n-dialogues 200]

Needs a finished ``make model`` in ``--run`` (its ``sft/final`` and ``grpo/final``).  Trains one more GRPO run from
the same SFT weights with the same data, steps and seed but ``--alpha-ref 0 --beta-cons 0`` (``grpo-no-ref/``),
evaluates the three checkpoints on the same held-out dialogues with ``regionreasoner-eval synthetic``, and prints
(and writes to ``RUN/ablation.md``) per-round Acc@0.5 and citation rate side by side.  docs/benchmarks.md records
the result with this command.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _evaluate(model: Path, out: Path, n: int) -> dict[str, object]:
    if not (out / "world.json").is_file():
        subprocess.run(
            [
                _bin("regionreasoner-eval"),
                "synthetic",
                "--model",
                str(model),
                "--out",
                str(out),
                "--n-dialogues",
                str(n),
                "--seed",
                "2026",
                "--language",
                "any",
                "--workers",
                "4",
            ],
            check=True,
        )
    return dict(json.loads((out / "world.json").read_text(encoding="utf-8")))


def _cell(row: dict[str, object] | None, key: str) -> str:
    value = None if row is None else row.get(key)
    return "-" if value is None else f"{float(str(value)):.3f}"


def main() -> int:
    """Run the ablation; print and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/embedded"))
    parser.add_argument("--n-dialogues", type=int, default=200)
    args = parser.parse_args()
    run: Path = args.run
    no_ref = run / "grpo-no-ref"
    if not (no_ref / "final").is_dir():
        subprocess.run(
            [
                _bin("regionreasoner-train"),
                "grpo",
                "--config",
                "embedded-grpo",
                "--model",
                str(run / "sft" / "final"),
                "--output-dir",
                str(no_ref),
                "--alpha-ref",
                "0",
                "--beta-cons",
                "0",
            ],
            check=True,
        )
    arms = {
        "SFT only": run / "sft" / "final",
        "SFT + GRPO (full reward)": run / "grpo" / "final",
        "SFT + GRPO (alpha = beta = 0)": no_ref / "final",
    }
    results = {
        name: _evaluate(model, run / "ablation" / model.parent.name, args.n_dialogues) for name, model in arms.items()
    }
    header = "| round | " + " | ".join(f"{name}: Acc@0.5 | citation" for name in arms) + " |"
    lines = [header, "|---" * (1 + 2 * len(arms)) + "|"]
    for k in range(1, 6):
        cells = []
        for result in results.values():
            rows = result.get("rounds", [])
            row = next((r for r in rows if isinstance(r, dict) and r.get("round") == k), None)  # type: ignore[union-attr]
            cells += [_cell(row, "acc50"), _cell(row, "citation_rate")]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    command = f"python benchmarks/embedded_ablation.py --run {run} --n-dialogues {args.n_dialogues}"
    text = "\n".join([f"`{command}`", "", *lines, ""])
    (run / "ablation.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
