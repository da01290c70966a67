"""Evaluation of regionreasoner: metrics, RegionDial-Bench, single-turn RefCOCO, a synthetic benchmark, generation.

Modules (import them directly; nothing is loaded at package import):

* :mod:`~regionreasoner.evals.metrics`: ``score_turn``, Acc@0.5 / gIoU / cIoU per round (``RoundMetrics``,
  ``summarise``); :mod:`~regionreasoner.evals.coco_ap`: COCO AP (pycocotools and numpy);
* :mod:`~regionreasoner.evals.results`: the per-turn ``TurnResult`` records (JSON lines);
* :mod:`~regionreasoner.evals.regiondial`: RegionDial-Bench loading, writing, statistics, the context rule;
* :mod:`~regionreasoner.evals.refcoco`: RefCOCO/+/g records as one-turn dialogues;
* :mod:`~regionreasoner.evals.synthetic`: the shapes benchmark (its world lives in :mod:`regionreasoner.core.world`);
* :mod:`~regionreasoner.evals.report`: summary.json, summary.md, rounds.png; :mod:`~regionreasoner.evals.cli`:
  ``regionreasoner-eval``;
* :mod:`~regionreasoner.evals.generation`: m-GenEval, m-DPG, CLC and CSS, with an exact scorer for the synthetic
  world (docs/generation-eval.md).
"""

__all__: list[str] = []
