"""Tools of the agent: segmenters, a detector, zoom, generate and inpaint, and the tools the policy calls.

Importing this package loads no model library: SAM2 and Grounding DINO import torch and transformers, and load their
weights, on first use.
"""

from regionreasoner.tools.base import (
    Crop,
    Detection,
    Detector,
    ImageGenerator,
    NewVersion,
    RegionTarget,
    Segmenter,
    Tool,
    ToolResult,
)
from regionreasoner.tools.detect import DetectTool, GroundingDinoDetector
from regionreasoner.tools.generate_tools import GenerateTool, InpaintTool, LazyGenerator
from regionreasoner.tools.segment import BoxSegmenter, MaskPrediction, Sam2Segmenter, union
from regionreasoner.tools.zoom import ZoomTool, zoom

__all__ = [
    "BoxSegmenter",
    "Crop",
    "DetectTool",
    "Detection",
    "Detector",
    "GenerateTool",
    "GroundingDinoDetector",
    "ImageGenerator",
    "InpaintTool",
    "LazyGenerator",
    "MaskPrediction",
    "NewVersion",
    "RegionTarget",
    "Sam2Segmenter",
    "Segmenter",
    "Tool",
    "ToolResult",
    "ZoomTool",
    "union",
    "zoom",
]
