"""The synthetic world's scenes, re-exported from :mod:`regionreasoner.core.world` (where they now live).

Kept so that ``from regionreasoner.evals.synthetic_world import make_scene`` goes on working; new code imports
:mod:`regionreasoner.core.world`.
"""

from regionreasoner.core.world.scene import (
    BACKGROUND,
    COLOURS,
    KINDS,
    MIN_VISIBLE_PIXELS,
    MIN_VISIBLE_SHARE,
    SIZES,
    TEXTURES,
    Scene,
    SceneObject,
    inner_point,
    make_scene,
)

__all__ = [
    "BACKGROUND",
    "COLOURS",
    "KINDS",
    "MIN_VISIBLE_PIXELS",
    "MIN_VISIBLE_SHARE",
    "SIZES",
    "TEXTURES",
    "Scene",
    "SceneObject",
    "inner_point",
    "make_scene",
]
