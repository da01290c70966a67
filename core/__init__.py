"""The shared vocabulary of regionreasoner: geometry, coordinate frames, the structured-action protocol, types.

Nothing here imports torch or transformers.  Submodules:

* :mod:`~regionreasoner.core.geometry`, :mod:`~regionreasoner.core.masks`, :mod:`~regionreasoner.core.relations`
  boxes, points, masks (RLE), IoU and spatial relations, in original-image pixels;
* :mod:`~regionreasoner.core.frames`: original pixels <-> a policy's coordinates (840x840, Qwen smart resize, 0..1000);
* :mod:`~regionreasoner.core.prompts`, :mod:`~regionreasoner.core.protocol` (on :mod:`~regionreasoner.core.answer` and
  :mod:`~regionreasoner.core.tool_calls`), :mod:`~regionreasoner.core.citations`:
  exact prompt texts, the never-raising parser :func:`parse_action`, region references and citations;
* :mod:`~regionreasoner.core.answer_map`: parsed answers -> regions in original pixels (default and official rules);
* :mod:`~regionreasoner.core.types`: pydantic Region, Turn, Dialogue, Problem; :mod:`~regionreasoner.core.images`:
  safe image loading; :mod:`~regionreasoner.core.errors`: the error hierarchy.
"""

from regionreasoner.core.errors import RegionReasonerError
from regionreasoner.core.frames import FixedResizeFrame, Frame, NormalizedFrame, SmartResizeFrame, frame_from_spec
from regionreasoner.core.geometry import Box, Point, iou, iou_matrix
from regionreasoner.core.images import LoadedImage, load_image
from regionreasoner.core.protocol import ParsedAction, parse_action
from regionreasoner.core.types import Dialogue, Problem, Region, RegionDraft, Turn, TurnDraft

__all__ = [
    "Box",
    "Dialogue",
    "FixedResizeFrame",
    "Frame",
    "LoadedImage",
    "NormalizedFrame",
    "ParsedAction",
    "Point",
    "Problem",
    "Region",
    "RegionDraft",
    "RegionReasonerError",
    "SmartResizeFrame",
    "Turn",
    "TurnDraft",
    "frame_from_spec",
    "iou",
    "iou_matrix",
    "load_image",
    "parse_action",
]
