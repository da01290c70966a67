"""Tools of the agent: segmenters (masks from boxes and points), a detector, zoom, and tools the policy calls.

Importing this package loads no model library: SAM2 and Grounding DINO import torch and transformers, and load their
weights, on first use.
"""

from regionreasoner.tools.base import Crop, Detection, Detector, Segmenter, Tool, ToolResult
from regionreasoner.tools.detect import DetectTool, GroundingDinoDetector
from regionreasoner.tools.segment import BoxSegmenter, MaskPrediction, Sam2Segmenter, union
from regionreasoner.tools.zoom import ZoomTool, zoom

__all__ = [
    "BoxSegmenter",
    "Crop",
    "DetectTool",
    "Detection",
    "Detector",
    "GroundingDinoDetector",
    "MaskPrediction",
    "Sam2Segmenter",
    "Segmenter",
    "Tool",
    "ToolResult",
    "ZoomTool",
    "union",
    "zoom",
]
