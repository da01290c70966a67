"""LangChain tools over regionreasoner's memory and tools, for an app's own LangChain or LangGraph agent.

    from regionreasoner.agent.langchain_tools import region_tools
    tools = region_tools(memory, segmenter=Sam2Segmenter(...), detector=GroundingDinoDetector(...))
    agent = create_agent(model, tools)           # or langgraph.prebuilt.ToolNode(tools) in a graph of your own

:func:`region_tools` returns real :class:`langchain_core.tools.BaseTool` subclasses with pydantic ``args_schema``s:
``list_regions`` and ``zoom_region`` (memory only), ``segment_region`` (with a segmenter) and ``detect_objects``
(with a detector).  Boxes and points in arguments and results are original-image pixels, xyxy floats, as memory
stores them.

Errors the calling model can act on (an unknown dialogue or region, a bad box, a failed tool call:
:class:`~regionreasoner.core.errors.InputError`, :class:`~regionreasoner.core.errors.NotFoundError`,
:class:`~regionreasoner.core.errors.ToolError`) become :class:`~langchain_core.tools.ToolException` with the
error's message, and the tools set ``handle_tool_error=True``, so the model gets the message back as an observation
(a ``ToolMessage`` with ``status="error"``) instead of the run crashing; arguments that fail the schema come back the
same way.  Infrastructure failures (:class:`~regionreasoner.core.errors.StorageError`, missing weights or
dependencies) still raise, as everywhere in regionreasoner.

Artifacts (``response_format="content_and_artifact"``) are JSON-safe dicts (:class:`CocoRle`,
:class:`ZoomArtifact`), so messages that carry them survive a LangGraph checkpointer and the LangGraph API; a PIL
image in an artifact would make the checkpointer's serializer fail.  :func:`crop_from_artifact` turns a zoom's
artifact back into the PIL image and its :class:`~regionreasoner.tools.base.Crop`.

langchain-core is imported only when a tool class is first needed (:func:`region_tools`, or attribute access such
as ``langchain_tools.SegmentRegionTool``), so importing this module stays cheap.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypedDict

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field, StringConstraints, ValidationError, model_validator

from regionreasoner.core.errors import ConfigError, InputError, NotFoundError, ToolError
from regionreasoner.core.geometry import Box
from regionreasoner.core.masks import box_to_mask, decode_rle, mask_to_box
from regionreasoner.core.types import is_image_hash
from regionreasoner.memory import RegionMemory
from regionreasoner.tools.base import Crop, Detector, Segmenter

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

    from regionreasoner.agent.api import RegionAgent

    # Built by _tool_classes() on first access (module __getattr__), so that importing this module skips langchain.
    ListRegionsTool: type[BaseTool]
    SegmentRegionTool: type[BaseTool]
    DetectObjectsTool: type[BaseTool]
    ZoomRegionTool: type[BaseTool]

__all__ = [
    "CocoRle",
    "DetectObjectsArgs",
    "DetectObjectsTool",
    "DialogueArgs",
    "ListRegionsTool",
    "SegmentRegionArgs",
    "SegmentRegionTool",
    "ZoomArtifact",
    "ZoomRegionArgs",
    "ZoomRegionTool",
    "crop_from_artifact",
    "region_tools",
]

_BOX_NOTE = "Boxes are [x1, y1, x2, y2] in pixels of the original image (top-left, then bottom-right)."

# ------------------------------------------------------------------------------------------------ argument schemas


class DialogueArgs(BaseModel):
    """Arguments of ``list_regions``."""

    dialogue_id: str = Field(min_length=1, max_length=128, description="id of the dialogue whose regions to list")


class SegmentRegionArgs(BaseModel):
    """Arguments of ``segment_region``."""

    dialogue_id: str = Field(min_length=1, max_length=128, description="id of the dialogue the region belongs to")
    region: str = Field(min_length=1, max_length=32, description='name of a stored region, e.g. "R2"')


class DetectObjectsArgs(BaseModel):
    """Arguments of ``detect_objects``."""

    image: str = Field(
        min_length=1,
        max_length=128,
        description="a stored image hash (64 hex digits), or a dialogue id to use that dialogue's current image",
    )
    phrases: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=16, description='short noun phrases naming what to find, e.g. ["red ball", "tree"]'
    )


class ZoomRegionArgs(BaseModel):
    """Arguments of ``zoom_region``: a dialogue and exactly one of ``region`` or ``box``."""

    dialogue_id: str = Field(min_length=1, max_length=128, description="id of the dialogue whose image to zoom into")
    region: str | None = Field(default=None, max_length=32, description='a stored region to zoom into, e.g. "R2"')
    box: list[float] | None = Field(
        default=None,
        min_length=4,
        max_length=4,
        description="or a box to zoom into: [x1, y1, x2, y2] in original-image pixels",
    )

    @model_validator(mode="after")
    def _one_target(self) -> ZoomRegionArgs:
        if (self.region is None) == (self.box is None):
            raise ValueError('give exactly one of region (e.g. "R2") or box ([x1, y1, x2, y2] in original pixels)')
        return self


# ------------------------------------------------------------------------------------------------------- artifacts


class CocoRle(TypedDict):
    """A mask as COCO compressed RLE of the whole image: ``size`` is ``[height, width]``, ``counts`` text.

    :func:`regionreasoner.core.masks.rle_from_any` reads it back as an :class:`~regionreasoner.core.masks.Rle`.
    """

    size: list[int]
    counts: str


class ZoomArtifact(TypedDict):
    """What ``zoom_region`` returns beside its text: the zoomed image (PNG, base64) and where it came from.

    ``crop_box`` is the cropped region in original pixels (margin included), ``crop_size`` the zoomed image's
    ``[width, height]``; ``target`` is the region name or box that was asked for.  See :func:`crop_from_artifact`.
    """

    png_base64: str
    crop_box: list[float]
    crop_size: list[int]
    target: str


def crop_from_artifact(artifact: ZoomArtifact) -> tuple[Image.Image, Crop]:
    """The zoomed PIL image of a ``zoom_region`` artifact and its :class:`Crop` (maps zoomed pixels to original)."""
    image = Image.open(io.BytesIO(base64.b64decode(artifact["png_base64"])))
    image.load()
    width, height = artifact["crop_size"]
    return image, Crop(box=Box(*(float(v) for v in artifact["crop_box"])), size=(int(width), int(height)))


# --------------------------------------------------------------------------------------------- what the tools do


def _xyxy(box: Box) -> list[float]:
    return [round(float(v), 1) for v in box]


@contextlib.contextmanager
def _observed() -> Iterator[None]:
    """Turn errors the calling model can act on into ToolException, which the tool returns as an observation."""
    from langchain_core.tools import ToolException

    try:
        yield
    except (InputError, NotFoundError, ToolError) as exc:
        raise ToolException(str(exc)) from exc


def _validation_message(error: Exception) -> str:
    """A schema failure as one line the model can act on (``handle_validation_error``)."""
    if not isinstance(error, ValidationError):
        return f"invalid arguments: {error}"
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in error.errors(include_url=False)
    ]
    return "invalid arguments: " + "; ".join(parts)


def _list_regions(memory: RegionMemory, dialogue_id: str) -> str:
    regions = memory.regions(dialogue_id)
    if not regions:
        return f"dialogue {dialogue_id!r} has no regions yet"
    rows = [
        {
            "region": r.id,
            "box": _xyxy(r.box),
            "point": None if r.point is None else [round(r.point.x, 1), round(r.point.y, 1)],
            "label": r.label,
            "has_mask": r.mask is not None,
        }
        for r in regions
    ]
    return json.dumps(rows)


def _segment_region(
    memory: RegionMemory, segmenter: Segmenter, dialogue_id: str, region_id: str
) -> tuple[str, CocoRle]:
    region = memory.get_region(dialogue_id, region_id)
    image = memory.load_image(region.image)  # the version the region was found on
    masks = segmenter.segment(image, [region.box], [region.point])
    if len(masks) != 1:
        raise ToolError(f"the segmenter returned {len(masks)} masks for one box", hint="fix the Segmenter")
    rle = masks[0]
    if tuple(rle.size) != (image.height, image.width):
        raise ToolError(
            f"the segmenter returned a {rle.size[0]}x{rle.size[1]} (HxW) mask for a {image.height}x{image.width} image",
            hint="a Segmenter returns masks of the whole image",
        )
    mask = decode_rle(rle)
    area = int(np.count_nonzero(mask))
    artifact = CocoRle(size=[rle.size[0], rle.size[1]], counts=rle.counts)
    box_pixels = box_to_mask(region.box, image.height, image.width)
    inside = int(np.count_nonzero(mask & box_pixels))
    coverage = inside / max(1, int(np.count_nonzero(box_pixels)))
    bbox = mask_to_box(mask)
    if bbox is None:
        return f"{region.id}: the mask is empty (0 px) for box {_xyxy(region.box)}", artifact
    text = (
        f"{region.id}: mask of {area} px, bounding box {_xyxy(bbox)} (original pixels, xyxy); it covers "
        f"{coverage:.1%} of the region's box {_xyxy(region.box)}"
    )
    if area > inside:
        text += f", and {area - inside} px lie outside that box"
    return text, artifact


def _detect_objects(memory: RegionMemory, detector: Detector, image_ref: str, phrases: list[str]) -> str:
    image_hash = image_ref if is_image_hash(image_ref) else memory.latest_image(image_ref)
    image = memory.load_image(image_hash)
    found = detector.detect(image, phrases)
    return json.dumps([{"label": d.label, "box": _xyxy(d.box), "score": round(float(d.score), 3)} for d in found])


def _zoom_region(
    memory: RegionMemory, dialogue_id: str, region_id: str | None, box: list[float] | None, *, size: int
) -> tuple[str, ZoomArtifact]:
    from regionreasoner.tools.zoom import zoom

    if region_id is not None:
        region = memory.get_region(dialogue_id, region_id)
        target, image_hash, target_box = region.id, region.image, region.box
    else:
        assert box is not None  # ZoomRegionArgs requires one of them
        target_box = Box(*(float(v) for v in box))
        target, image_hash = f"box {_xyxy(target_box)}", memory.latest_image(dialogue_id)
    zoomed, crop = zoom(memory.load_image(image_hash).image, target_box, size=size)
    buffer = io.BytesIO()
    zoomed.save(buffer, format="PNG")
    sx, sy = crop.box.width / crop.size[0], crop.box.height / crop.size[1]
    x1, y1 = crop.box.x1, crop.box.y1
    text = (
        f"zoomed into {target}: the region {_xyxy(crop.box)} of the original image (margin included), shown as a "
        f"{crop.size[0]}x{crop.size[1]} px image; a point (u, v) of the zoomed image is "
        f"({x1:g} + u * {sx:.4g}, {y1:g} + v * {sy:.4g}) in original pixels"
    )
    artifact = ZoomArtifact(
        png_base64=base64.b64encode(buffer.getvalue()).decode("ascii"),
        crop_box=[float(v) for v in crop.box],
        crop_size=[crop.size[0], crop.size[1]],
        target=target,
    )
    return text, artifact


# ----------------------------------------------------------------------------------------------- the tool classes


@functools.cache
def _tool_classes() -> dict[str, type[BaseTool]]:
    """Build the BaseTool subclasses once, importing langchain-core here rather than at module import."""
    from langchain_core.callbacks import CallbackManagerForToolRun
    from langchain_core.tools import BaseTool

    class _RegionTool(BaseTool):
        """What the regionreasoner tools share: the memory, error handling, and content plus artifact."""

        memory: RegionMemory = Field(exclude=True, description="the region memory the tool reads")
        handle_tool_error: bool = True
        handle_validation_error: bool | str | Callable[[Any], str] | None = _validation_message

    class ListRegionsTool(_RegionTool):
        """``list_regions``: the stored regions of a dialogue (name, box, point, label) as JSON text."""

        name: str = "list_regions"
        description: str = (
            "List the regions (R1, R2, ...) stored for a dialogue, as JSON: "
            '[{"region": "R1", "box": [x1, y1, x2, y2], "point": [x, y] or null, "label", "has_mask"}]. ' + _BOX_NOTE
        )
        args_schema: type[BaseModel] = DialogueArgs

        def _run(self, dialogue_id: str, run_manager: CallbackManagerForToolRun | None = None) -> str:
            with _observed():
                return _list_regions(self.memory, dialogue_id)

    class SegmentRegionTool(_RegionTool):
        """``segment_region``: the mask of a stored region; text summary, COCO RLE (:class:`CocoRle`) artifact."""

        name: str = "segment_region"
        description: str = (
            'Segment a stored region (e.g. "R2") of a dialogue: runs the segmenter on the region\'s box and point '
            "and reports the mask's area in pixels, its bounding box, and how much of the region's box it covers. "
            + _BOX_NOTE
        )
        args_schema: type[BaseModel] = SegmentRegionArgs
        response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
        segmenter: Segmenter = Field(exclude=True, description="turns the region's box and point into a mask")

        def _run(
            self, dialogue_id: str, region: str, run_manager: CallbackManagerForToolRun | None = None
        ) -> tuple[str, CocoRle]:
            with _observed():
                return _segment_region(self.memory, self.segmenter, dialogue_id, region)

    class DetectObjectsTool(_RegionTool):
        """``detect_objects``: boxes for phrases on a stored image, as JSON text."""

        name: str = "detect_objects"
        description: str = (
            "Detect objects named by short phrases in an image (a stored image hash, or a dialogue id for that "
            'dialogue\'s current image). Returns JSON: [{"label", "box": [x1, y1, x2, y2], "score"}], best first. '
            + _BOX_NOTE
        )
        args_schema: type[BaseModel] = DetectObjectsArgs
        detector: Detector = Field(exclude=True, description="finds the phrases' objects")

        def _run(self, image: str, phrases: list[str], run_manager: CallbackManagerForToolRun | None = None) -> str:
            with _observed():
                return _detect_objects(self.memory, self.detector, image, phrases)

    class ZoomRegionTool(_RegionTool):
        """``zoom_region``: a close-up of a region or box; the image goes to the model, :class:`ZoomArtifact` beside.

        With ``image_content`` the content is a text block plus a base64 PNG ``image`` block (LangChain's standard
        content blocks); without it, the text alone.
        """

        name: str = "zoom_region"
        description: str = (
            'Look closer at a stored region (region="R2") or at any box (box=[x1, y1, x2, y2]) of a dialogue\'s '
            "image: returns an enlarged image of it and how its pixels map back to the original image. " + _BOX_NOTE
        )
        args_schema: type[BaseModel] = ZoomRegionArgs
        response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"
        size: int = Field(default=448, ge=1, description="longer side of the zoomed image, pixels")
        image_content: bool = Field(default=True, description="send the zoomed image to the model as an image block")

        def _run(
            self,
            dialogue_id: str,
            region: str | None = None,
            box: list[float] | None = None,
            run_manager: CallbackManagerForToolRun | None = None,
        ) -> tuple[str | list[str | dict[str, str]], ZoomArtifact]:
            with _observed():
                text, artifact = _zoom_region(self.memory, dialogue_id, region, box, size=self.size)
            if not self.image_content:
                return text, artifact
            image_block = {"type": "image", "base64": artifact["png_base64"], "mime_type": "image/png"}
            return [{"type": "text", "text": text}, image_block], artifact

    classes: list[type[BaseTool]] = [ListRegionsTool, SegmentRegionTool, DetectObjectsTool, ZoomRegionTool]
    for cls in classes:
        cls.__module__, cls.__qualname__ = __name__, cls.__name__
    return {cls.__name__: cls for cls in classes}


def __getattr__(name: str) -> type[BaseTool]:
    if name in ("ListRegionsTool", "SegmentRegionTool", "DetectObjectsTool", "ZoomRegionTool"):
        return _tool_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def region_tools(
    memory: RegionMemory | RegionAgent,
    *,
    segmenter: Segmenter | None = None,
    detector: Detector | None = None,
    zoom_size: int = 448,
    zoom_image_content: bool = True,
) -> list[BaseTool]:
    """The LangChain tools these components allow, for an app's own agent.

    ``memory``: a :class:`RegionMemory`, or a :class:`~regionreasoner.agent.api.RegionAgent` (its memory, and its
    segmenter when ``segmenter`` is None).  Always ``list_regions`` and ``zoom_region``; ``segment_region`` with a
    segmenter; ``detect_objects`` with a detector.  ``zoom_size``: longer side of a zoomed image in pixels;
    ``zoom_image_content``: send the zoomed image to the model as an image content block (False: text only, for
    models without image input).  Raises ConfigError for arguments of the wrong kind.
    """
    if isinstance(memory, RegionMemory):
        store = memory
    else:
        from regionreasoner.agent.api import RegionAgent

        if not isinstance(memory, RegionAgent):
            raise ConfigError(
                f"region_tools() got a {type(memory).__name__} as memory", hint="pass a RegionMemory or a RegionAgent"
            )
        store = memory.memory
        segmenter = segmenter if segmenter is not None else memory.segmenter
    if segmenter is not None and not isinstance(segmenter, Segmenter):
        raise ConfigError(
            f"segmenter is a {type(segmenter).__name__}, which has no segment(image, boxes, points) method",
            hint="pass a regionreasoner.tools.base.Segmenter",
        )
    if detector is not None and not isinstance(detector, Detector):
        raise ConfigError(
            f"detector is a {type(detector).__name__}, which has no detect(image, phrases) method",
            hint="pass a regionreasoner.tools.base.Detector",
        )
    if isinstance(zoom_size, bool) or not isinstance(zoom_size, int) or zoom_size < 1:
        raise ConfigError(f"zoom_size={zoom_size!r}: set it to the zoomed image's longer side in pixels (e.g. 448)")
    classes = _tool_classes()
    tools: list[BaseTool] = [classes["ListRegionsTool"](memory=store)]
    if segmenter is not None:
        tools.append(classes["SegmentRegionTool"](memory=store, segmenter=segmenter))
    if detector is not None:
        tools.append(classes["DetectObjectsTool"](memory=store, detector=detector))
    tools.append(classes["ZoomRegionTool"](memory=store, size=zoom_size, image_content=zoom_image_content))
    return tools
