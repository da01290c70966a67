"""Editing a dialogue's image outside a turn: inpaint a stored region with the agent's generator."""

from __future__ import annotations

from typing import TYPE_CHECKING

from regionreasoner.core.errors import ConfigError, InputError
from regionreasoner.core.types import ImageVersion, VersionDraft
from regionreasoner.tools.base import RegionTarget

if TYPE_CHECKING:
    from regionreasoner.agent.api import RegionAgent

__all__ = ["inpaint_region"]


def inpaint_region(
    agent: RegionAgent, dialogue_id: str, region: str, prompt: str, *, seed: int | None = None
) -> ImageVersion:
    """Repaint ``region`` (e.g. ``"R1"``) of the dialogue's newest image after ``prompt``; the new image version.

    The result is stored as the newest version (tool ``inpaint``), which later turns run on.  The generator is the
    one the agent's ``inpaint`` tool holds (``RegionAgent(generator=...)``); ConfigError without one.  Pixels
    repainted are the region's mask, else its box, scaled to the newest image.
    """
    from regionreasoner.tools.generate_tools import InpaintTool, check_prompt, region_mask

    tool = next((t for t in agent.context.tools if isinstance(t, InpaintTool)), None)
    if tool is None:
        raise ConfigError(
            "this agent has no generator, so it cannot inpaint",
            hint="build it with generator='path/to/neobabel' (or --generator on the command line)",
        )
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise InputError(f"seed={seed!r}", hint="pass a whole number >= 0, or none for a fresh seed")
    text = check_prompt(prompt)
    memory = agent.memory
    found = memory.get_region(dialogue_id, region)
    found_on = memory.image_info(found.image)
    source = memory.load_image(memory.latest_image(dialogue_id))
    target = RegionTarget(
        name=found.id, box=found.box, size=(found_on.width, found_on.height), image=found.image, mask=found.mask
    )
    mask, _ = region_mask(target, source.width, source.height)
    edited = tool.generator.inpaint(source.image, mask, text, seed=seed if seed is not None else tool.seed)
    stored = memory.put_image(edited.convert("RGB"), parent=source.hash)
    draft = VersionDraft(image=stored.hash, parent=source.hash, tool="inpaint", prompt=text, region=found.id)
    return memory.add_version(dialogue_id, draft)
