"""The multilingual generation suite: m-GenEval, m-DPG, CLC and CSS (NeoBabel's evaluation, neobabel.md §5).

Modules (import them directly; importing this package loads nothing, and torch/transformers load only inside the
real backends when first used):

* :mod:`~.meta`: GenEval prompt metadata (``tag``, ``include``, ``exclude``, ``prompt``), read and written;
* :mod:`~.geneval`: GenEval's rules (:func:`~.geneval.evaluate_image`) over a pluggable
  :class:`~.geneval.ObjectDetector` and :class:`~.geneval.ColourClassifier`;
* :mod:`~.world_words`, :mod:`~.world_prompts`, :mod:`~.world_render`: synthetic m-GenEval about the world's shapes
  in six languages, and its ground-truth pictures (:class:`~.world_render.WorldOracle`);
* :mod:`~.exact`: :class:`~.exact.ExactWorldDetector`, the exact detector and colour classifier of the world;
* :mod:`~.run`: generation folders in the official layout (resumable) and their scoring;
* :mod:`~.dpg`, :mod:`~.world_dpg`: m-DPG (CSV, grids, dependency rule) and a synthetic DPG with an exact VQA;
* :mod:`~.similarity`, :mod:`~.embed`: CLC and CSS, image embedders and VQA models;
* :mod:`~.backends`: transformers detectors (OWL-ViT/OWLv2, Grounding DINO, Mask2Former) and CLIP/SigLIP colours;
* :mod:`~.loading`, :mod:`~.report`, :mod:`~.cli`: names at the edge, reports, ``regionreasoner-eval geneval | dpg
  | clc | css``.
"""

__all__: list[str] = []
