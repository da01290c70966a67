"""The GenEval words of the synthetic world: moved to :mod:`regionreasoner.core.world.captions` (re-exported here).

The generator's trainer needs them too, and nothing outside evals/ may import evals/, so they live in core/.
"""

from regionreasoner.core.world.captions import COUNT_WORDS, MAX_COUNT, PLURALS, Thing, position_relation, world_prompt

__all__ = ["COUNT_WORDS", "MAX_COUNT", "PLURALS", "Thing", "position_relation", "world_prompt"]
