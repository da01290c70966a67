"""The exact scorer of the synthetic world as GenEval's detector: :class:`ExactWorldDetector`.

The segmentation itself (palette labels, components, shape templates) is
:class:`~regionreasoner.core.world.exact.WorldSegmenter` in core, where the demo reaches it too; this class adds
the :class:`~regionreasoner.evals.generation.geneval.ObjectDetector` interface (boxes, scores, masks) to its
:class:`~regionreasoner.evals.generation.geneval.ColourClassifier` one (majority palette colour of a crop).
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from regionreasoner.core.world.exact import FILL_RGB, WorldObject, WorldSegmenter
from regionreasoner.evals.generation.geneval import Detection

__all__ = ["FILL_RGB", "ExactWorldDetector", "WorldObject"]


class ExactWorldDetector(WorldSegmenter):
    """Exact detector and colour classifier of the world (:class:`WorldSegmenter`'s thresholds and rules)."""

    def detect(self, image: Image.Image, classes: Sequence[str]) -> list[Detection]:
        """Objects of ``classes`` (world kinds; others are never found) in ``image``: label = kind, with masks."""
        wanted = set(classes)
        return [
            Detection(label=o.kind, box=o.box, score=o.score, mask=o.mask)
            for o in self.segment(image)
            if o.kind in wanted
        ]
