"""What the ``tools`` node does for tools that name regions or make image versions (``inpaint``, ``generate``).

* A ``region`` argument (:data:`~regionreasoner.tools.base.REGION_ARGUMENT`, ``"R1"``) is looked up in the dialogue,
  as a region cited in a question is, and reaches the tool as a :class:`~regionreasoner.tools.base.RegionTarget`:
  its box and mask in original pixels of the version it was found on.  An unknown name is a ToolError observation
  listing the names that exist.
* A :class:`~regionreasoner.tools.base.NewVersion` is stored in the memory's image store (an edited one with the
  image it was made from as its parent) and becomes a :class:`~regionreasoner.core.types.VersionDraft` of the turn;
  ``remember`` records it, in the turn's transaction, as the dialogue's next image version.
"""

from __future__ import annotations

from typing import Any

from regionreasoner.agent.context import Resources
from regionreasoner.agent.state import TurnWork
from regionreasoner.core.errors import InputError, RegionNotFoundError, ToolError
from regionreasoner.core.types import VersionDraft
from regionreasoner.memory import RegionMemory
from regionreasoner.tools.base import REGION_ARGUMENT, NewVersion, RegionTarget

__all__ = ["next_version_number", "resolve_region_argument", "store_version"]


def resolve_region_argument(
    arguments: dict[str, Any], res: Resources, memory: RegionMemory, dialogue_id: str
) -> dict[str, Any]:
    """``arguments`` with a string ``region`` replaced by its :class:`RegionTarget` (other values: left to the tool).

    A region keeps the image version it was found on (``target.image``, ``target.size``): the tool decides what it
    names on the image it edits (:func:`~regionreasoner.tools.generate_tools.region_mask`).
    """
    name = arguments.get(REGION_ARGUMENT)
    if not isinstance(name, str):
        return arguments  # absent, or of the wrong type: Tool.__call__ reports it
    try:
        region = memory.get_region(dialogue_id, name)
    except RegionNotFoundError as exc:
        raise ToolError(str(exc)) from None
    info = res.image_info(memory, region.image)
    target = RegionTarget(
        name=region.id, box=region.box, size=(info.width, info.height), image=region.image, mask=region.mask
    )
    return {**arguments, REGION_ARGUMENT: target}


def next_version_number(memory: RegionMemory, dialogue_id: str, work: TurnWork) -> int:
    """The number the next version this turn makes will get when ``remember`` stores it.

    The dialogue's stored versions, plus one when the turn runs on an image the caller sent (it is recorded first),
    plus the versions this turn made already.
    """
    stored = memory.versions(dialogue_id)
    number = stored[-1].number + 1 if stored else 0
    if stored and stored[-1].image != work.image_hash:
        number += 1
    return number + len(work.versions)


def store_version(made: NewVersion, tool: str, memory: RegionMemory, parent: str) -> VersionDraft:
    """Store ``made`` in the memory's image store and return it as the turn's version draft.

    ``parent`` is the image the tool ran on; an edited version (inpaint) records it as its parent, a new picture
    (generate) has none.  An image that cannot be stored, or an edit that changed nothing, is a ToolError.
    """
    try:
        info = memory.put_image(made.image, parent=parent if made.edited else None)
    except InputError as exc:  # ImageError subclasses, or "an image cannot be its own parent": nothing changed
        raise ToolError(f"tool {tool!r} made an image that cannot be a new version: {exc}") from None
    return VersionDraft(
        image=info.hash,
        parent=parent if made.edited else None,
        tool=tool,
        prompt=made.prompt,
        region=made.region,
    )
