"""Tools of the agent: segmenters (masks from boxes and points) and tools the policy calls while thinking."""

from regionreasoner.tools.base import Segmenter, Tool, ToolResult
from regionreasoner.tools.segment import BoxSegmenter

__all__ = ["BoxSegmenter", "Segmenter", "Tool", "ToolResult"]
