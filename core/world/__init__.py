"""The synthetic world: coloured, textured shapes with exact masks, their words, and dialogues about them.

Pure numpy + PIL, deterministic by seed.  It is shared by the demo, the training-data builder
(:mod:`regionreasoner.trainers.data`), the synthetic benchmark (:mod:`regionreasoner.evals.synthetic`) and
generator evaluation, so it lives in core/ (evals/ re-exports it for older imports).

* :mod:`~regionreasoner.core.world.scene`: :func:`make_scene`, :class:`Scene`, :class:`SceneObject` (exact masks and
  boxes in original pixels), :func:`inner_point`, and the vocabularies :data:`KINDS`, :data:`COLOURS`,
  :data:`TEXTURES`, :data:`SIZES`;
* :mod:`~regionreasoner.core.world.words`: :func:`referring_expression`, :func:`relational_expression`,
  :func:`describe`, :data:`RELATIONS`;
* :mod:`~regionreasoner.core.world.words`: also :class:`Expression` (the language-free choice of words),
  :func:`referring_attributes`, :func:`relational_attributes`;
* :mod:`~regionreasoner.core.world.languages`: :data:`LANGUAGES` (en zh nl fr hi fa), :data:`CODE_SWITCHED`
  (``"mix"``), :data:`ANY_LANGUAGE` (``"any"``), :class:`CodeSwitch`, :func:`render_expression`,
  :func:`render_question`, :func:`question_templates`, :func:`draw_code_switch`, :func:`vocabulary` (word tables in
  :mod:`~regionreasoner.core.world.lexicon`);
* :mod:`~regionreasoner.core.world.dialogue`: :func:`make_dialogue` (plain and relation turns with
  :data:`CONTEXT_PLACEHOLDER`, in any of :data:`DIALOGUE_LANGUAGES`).
"""

from regionreasoner.core.world.dialogue import (
    CONTEXT_PLACEHOLDER,
    DIALOGUE_LANGUAGES,
    SyntheticDialogue,
    SyntheticTurn,
    make_dialogue,
)
from regionreasoner.core.world.languages import (
    ANY_LANGUAGE,
    CODE_SWITCHED,
    LANGUAGES,
    CodeSwitch,
    draw_code_switch,
    question_templates,
    render_expression,
    render_question,
    vocabulary,
)
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
    Expression,
    describe,
    referring_attributes,
    referring_expression,
    relational_attributes,
    relational_expression,
)

__all__ = [
    "ANY_LANGUAGE",
    "ATTRIBUTES",
    "BACKGROUND",
    "CODE_SWITCHED",
    "COLOURS",
    "CONTEXT_PLACEHOLDER",
    "DIALOGUE_LANGUAGES",
    "KINDS",
    "LANGUAGES",
    "MIN_VISIBLE_PIXELS",
    "MIN_VISIBLE_SHARE",
    "POSITION_WORDS",
    "RELATIONS",
    "SIZES",
    "TEXTURES",
    "CodeSwitch",
    "Expression",
    "Scene",
    "SceneObject",
    "SyntheticDialogue",
    "SyntheticTurn",
    "describe",
    "draw_code_switch",
    "inner_point",
    "make_dialogue",
    "make_scene",
    "question_templates",
    "referring_attributes",
    "referring_expression",
    "relational_attributes",
    "relational_expression",
    "render_expression",
    "render_question",
    "vocabulary",
]
