"""Throughput of the full RegionReasoner reward on 10,000 generated completions; prints one JSON line.

The completions come from the parity-fixture generator (tests/data/rewards/make_fixture.py): well-formed and
broken sections, focus copying the question, hallucinated citations, odd JSON values, answers of 120+ objects,
in groups of 8 completions per question as GRPO samples them (``rollout.n = 8``).  ``ours_per_s`` is
``score_region_reasoner`` (every component).  With ``--official PATH`` (a folder outside the repository holding
the reference ``region_reasoner.py``) the reference ``region_reasoner_compute_score`` runs on the same inputs,
interleaved with ours round by round; ``speedup`` is the ratio of the medians, and ``max_abs_diff`` the largest
difference of the totals.  Both are warmed up first (imports, caches).

    .venv/bin/python benchmarks/rewards.py [--official /tmp/official_rewards] [--rounds 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from regionreasoner.trainers.rewards import score_region_reasoner

ROOT = Path(__file__).resolve().parents[1]
COMPLETIONS = 10_000
GROUP = 8

Case = tuple[str | None, str, str]


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rate(fn: Callable[[Case], float], cases: list[Case]) -> float:
    t0 = time.perf_counter()
    for case in cases:
        fn(case)
    return len(cases) / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--official", type=Path, help="folder with the reference region_reasoner.py (not in the repo)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--completions", type=int, default=COMPLETIONS)
    args = parser.parse_args(argv)
    generator = _load(ROOT / "tests" / "data" / "rewards" / "make_fixture.py", "reward_fixture_generator")
    cases: list[Case] = list(generator.region_cases(args.completions, seed=7, edge=False, group=GROUP))

    def ours(case: Case) -> float:
        return score_region_reasoner(case[0], case[1], case[2])["total"]

    runners: dict[str, Callable[[Case], float]] = {"ours": ours}
    if args.official is not None:
        warnings.simplefilter("ignore")  # numpy's divide-by-zero warnings in the reference code
        official = _load(args.official / "region_reasoner.py", "official_region_reasoner")

        def reference(case: Case) -> float:
            return float(official.region_reasoner_compute_score(case[1], case[2], case[0]))

        runners["official"] = reference
    for fn in runners.values():  # warm-up: imports (scipy), caches
        for case in cases[:500]:
            fn(case)
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, fn in runners.items():
            rates[name].append(_rate(fn, cases))
    out: dict[str, object] = {
        "completions": len(cases),
        "group": GROUP,
        "rounds": args.rounds,
        "ours_per_s": round(statistics.median(rates["ours"])),
    }
    if "official" in runners:
        out["official_per_s"] = round(statistics.median(rates["official"]))
        out["speedup"] = round(statistics.median(rates["ours"]) / statistics.median(rates["official"]), 2)
        out["max_abs_diff"] = max(abs(ours(c) - runners["official"](c)) for c in cases)
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
