"""Pictures of given shapes drawn with the world's own code: :class:`Placed` and :func:`render_objects`.

:func:`~regionreasoner.core.world.scene.make_scene` chooses its shapes itself; these two draw shapes someone else
placed (the generation evals' ground truth, the generator's training pictures), pixel for pixel as the world draws
its scenes.  Moved here from ``evals/generation/world_render.py`` (which re-exports them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

# WHY the private names: pictures must be drawn exactly as the world draws its scenes.
from regionreasoner.core.world.scene import BACKGROUND, _shape_mask, _Spec, _texture

__all__ = ["Placed", "render_objects"]


@dataclass(frozen=True)
class Placed:
    """One shape to draw: kind, colour, texture, centre ``(cx, cy)`` and radius in pixels."""

    kind: str
    colour: str
    cx: float
    cy: float
    radius: float
    texture: str = "solid"


def render_objects(objects: Sequence[Placed], size: tuple[int, int] = (256, 256)) -> Image.Image:
    """An RGB image of ``size`` (width, height) with ``objects`` drawn in order on the world's background."""
    width, height = size
    canvas = np.empty((height, width, 3), dtype=np.uint8)
    canvas[:] = BACKGROUND
    for obj in objects:
        spec = _Spec(obj.kind, obj.colour, obj.texture, obj.cx, obj.cy, obj.radius)
        mask = _shape_mask(spec, width, height)
        canvas[mask] = _texture(spec, mask)[mask]
    return Image.fromarray(canvas)
