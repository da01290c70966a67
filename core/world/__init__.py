"""The synthetic world: coloured, textured shapes with exact masks, their words, and dialogues about them.

Pure numpy + PIL, deterministic by seed.  It is shared by the demo, the training-data builder
(:mod:`regionreasoner.trainers.data`), the synthetic benchmark (:mod:`regionreasoner.evals.synthetic`) and
generator evaluation, so it lives in core/ (evals/ re-exports it for older imports).

* :mod:`~regionreasoner.core.world.scene`: :func:`make_scene`, :class:`Scene`, :class:`SceneObject` (exact masks and
  boxes in original pixels), :func:`inner_point`, and the vocabularies :data:`KINDS`, :data:`COLOURS`,
  :data:`TEXTURES`, :data:`SIZES`;
* :mod:`~regionreasoner.core.world.words`: :func:`referring_expression`, :func:`relational_expression`,
  :func:`describe`, :data:`RELATIONS`;
* :mod:`~regionreasoner.core.world.dialogue`: :func:`make_dialogue` (plain and relation turns with
  :data:`CONTEXT_PLACEHOLDER`).
"""

from regionreasoner.core.world.dialogue import CONTEXT_PLACEHOLDER, SyntheticDialogue, SyntheticTurn, make_dialogue
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
from regionreasoner.core.world.words import (
    ATTRIBUTES,
    POSITION_WORDS,
    RELATIONS,
    describe,
    referring_expression,
    relational_expression,
)

__all__ = [
    "ATTRIBUTES",
    "BACKGROUND",
    "COLOURS",
    "CONTEXT_PLACEHOLDER",
    "KINDS",
    "MIN_VISIBLE_PIXELS",
    "MIN_VISIBLE_SHARE",
    "POSITION_WORDS",
    "RELATIONS",
    "SIZES",
    "TEXTURES",
    "Scene",
    "SceneObject",
    "SyntheticDialogue",
    "SyntheticTurn",
    "describe",
    "inner_point",
    "make_dialogue",
    "make_scene",
    "referring_expression",
    "relational_expression",
]
