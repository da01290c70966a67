"""What the agent needs from tools: a :class:`Segmenter` for masks and :class:`Tool` for calls from ``<think>``.

Tools declare themselves (name, description, JSON-schema inputs as class attributes) and load lazily: heavy
weights load in :meth:`Tool.setup` on first use, never at import or construction.  Boxes and points are in
original-image pixels (xyxy floats); masks are COCO RLE of the whole image.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from regionreasoner.core.errors import ToolError
from regionreasoner.core.geometry import Box, Point
from regionreasoner.core.images import LoadedImage
from regionreasoner.core.masks import Rle

__all__ = ["Segmenter", "Tool", "ToolResult"]


@runtime_checkable
class Segmenter(Protocol):
    """Turns boxes (and optional positive points) into masks on one image."""

    def segment(self, image: LoadedImage, boxes: Sequence[Box], points: Sequence[Point | None]) -> list[Rle]:
        """One mask per box, each of the image's size (H, W); boxes and points in original pixels."""
        ...


@dataclass(frozen=True)
class ToolResult:
    """What a tool call returns to the policy: the observation text appended to ``<think>``.

    Tools that return images (zoom crops, edited image versions) come with the tools issue, together with the
    node code that feeds such images back to the policy; until then a result is text only.
    """

    text: str


class Tool(ABC):
    """A tool the ``<think>`` section may call as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``."""

    name: ClassVar[str]
    description: ClassVar[str]
    inputs: ClassVar[Mapping[str, Any]]
    """JSON schema of the arguments object."""

    def __init__(self) -> None:
        self._ready = False
        self._setup_lock = threading.Lock()

    def setup(self) -> None:  # noqa: B027 - most tools have nothing to load
        """Load weights; called once, on first use."""

    @abstractmethod
    def run(self, image: LoadedImage, arguments: Mapping[str, Any]) -> ToolResult:
        """Run on ``image`` (the turn's current image) with validated ``arguments``."""

    def __call__(self, image: LoadedImage, arguments: Mapping[str, Any]) -> ToolResult:
        """Set up on first use, check the argument names, run."""
        with self._setup_lock:
            if not self._ready:
                self.setup()
                self._ready = True
        allowed = set(self.inputs.get("properties", {}))
        unknown = sorted(set(arguments) - allowed)
        missing = sorted(set(self.inputs.get("required", [])) - set(arguments))
        if unknown or missing:
            raise ToolError(
                f"tool {self.name!r} got arguments {sorted(arguments)}",
                hint=f"it takes {sorted(allowed)}" + (f"; required: {missing}" if missing else ""),
            )
        return self.run(image, arguments)
