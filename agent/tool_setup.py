"""Turning the tool arguments of :class:`~regionreasoner.agent.api.RegionAgent` into tool objects.

A checkpoint given by name (a folder or hub id) becomes its tool here, unloaded: SAM2 and Grounding DINO weights
load on the first mask or detection, and a generator folder (NeoBabel) on the first ``generate`` or ``inpaint``
call, so building an agent (or importing this module) never touches torch.
"""

from __future__ import annotations

from pathlib import Path

from regionreasoner.core.errors import ConfigError
from regionreasoner.tools.base import Detector, ImageGenerator, Segmenter, Tool

__all__ = ["agent_tools"]


def agent_tools(
    segmenter: Segmenter | str | Path | None,
    detector: Detector | str | Path | None,
    zoom: bool,
    tools: list[Tool] | None,
    generator: ImageGenerator | str | Path | None = None,
) -> tuple[Segmenter | None, list[Tool]]:
    """The agent's segmenter and its think-time tools, none loaded yet.

    ``detect``, ``zoom``, ``generate`` and ``inpaint`` (both from ``generator``: a folder or an ImageGenerator),
    then ``tools``.
    """
    from regionreasoner.tools.detect import DetectTool, GroundingDinoDetector
    from regionreasoner.tools.generate_tools import generation_tools
    from regionreasoner.tools.segment import Sam2Segmenter
    from regionreasoner.tools.zoom import ZoomTool

    if isinstance(segmenter, str | Path):
        segmenter = Sam2Segmenter(segmenter)
    elif segmenter is not None and not isinstance(segmenter, Segmenter):
        raise ConfigError(
            f"segmenter={type(segmenter).__name__}: pass a SAM2 checkpoint (folder or hub id) or a Segmenter",
            hint="e.g. segmenter='facebook/sam2.1-hiera-large'",
        )
    made: list[Tool] = []
    if isinstance(detector, str | Path):
        made.append(DetectTool(GroundingDinoDetector(detector)))
    elif isinstance(detector, Detector):
        made.append(DetectTool(detector))
    elif detector is not None:
        raise ConfigError(
            f"detector={type(detector).__name__}: pass a Grounding DINO checkpoint or a Detector",
            hint="e.g. detector='IDEA-Research/grounding-dino-tiny'",
        )
    if not isinstance(zoom, bool):
        raise ConfigError(f"zoom={zoom!r}: pass True or False")
    if zoom:
        made.append(ZoomTool())
    if isinstance(generator, str | Path | ImageGenerator):
        made.extend(generation_tools(generator))
    elif generator is not None:
        raise ConfigError(
            f"generator={type(generator).__name__}: pass a NeoBabel generator folder or an ImageGenerator",
            hint="e.g. generator='path/to/neobabel' (docs/tools.md, 'Generate and inpaint')",
        )
    extra = list(tools or [])
    if not all(isinstance(t, Tool) for t in extra):
        raise ConfigError("tools must be regionreasoner.tools.Tool instances", hint="subclass Tool for your own")
    return segmenter, made + extra
