"""What the agent needs from tools: a :class:`Segmenter` for masks and :class:`Tool` for calls from ``<think>``.

An :class:`ImageGenerator` (NeoBabel: :mod:`regionreasoner.tools.generate`) backs the ``generate`` and ``inpaint``
tools (:mod:`regionreasoner.tools.generate_tools`), whose results are new image versions (:class:`NewVersion`).

Tools declare themselves (name, description, JSON-schema inputs as class attributes) and load lazily: heavy
weights load in :meth:`Tool.setup` on first use, never at import or construction.  Boxes and points are in
original-image pixels (xyxy floats); masks are COCO RLE of the whole image.

Every call of :meth:`Tool.run` has a time limit (:attr:`Tool.timeout_s`): it runs in a worker thread, and a call
that has not returned in time becomes a :class:`ToolError` observation, so a hung tool cannot hang the turn.
Python cannot kill a thread: the hung call is abandoned (a daemon thread, so it does not keep the process alive),
and the tool refuses further calls until it returns.
"""

from __future__ import annotations

import contextvars
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from PIL import Image

from regionreasoner.core.errors import ConfigError, ToolError
from regionreasoner.core.geometry import Box, Point
from regionreasoner.core.images import LoadedImage
from regionreasoner.core.masks import Rle

__all__ = [
    "REGION_ARGUMENT",
    "Crop",
    "Detection",
    "Detector",
    "ImageGenerator",
    "NewVersion",
    "RegionTarget",
    "Segmenter",
    "Tool",
    "ToolResult",
]

REGION_ARGUMENT = "region"
"""A tool argument of this name is a stored region: the policy writes its name (``"R2"``, a JSON string), and the
agent resolves it to a :class:`RegionTarget` before :meth:`Tool.run` sees it."""


@runtime_checkable
class Segmenter(Protocol):
    """Turns boxes (and optional positive points) into masks on one image."""

    def segment(self, image: LoadedImage, boxes: Sequence[Box], points: Sequence[Point | None]) -> list[Rle]:
        """One mask per box, each of the image's size (H, W); boxes and points in original pixels."""
        ...


@runtime_checkable
class Detector(Protocol):
    """Finds objects named by phrases in one image (Grounding DINO: :class:`regionreasoner.tools.detect`)."""

    def detect(self, image: LoadedImage, phrases: Sequence[str]) -> list[Detection]:
        """Detections for all ``phrases`` in one call, boxes in original pixels, best score first."""
        ...


@runtime_checkable
class ImageGenerator(Protocol):
    """Makes images from text and repaints masked parts of images (NeoBabel: ``tools.generate.Generator``).

    Prompts are passed through unchanged (any language, code-switched ones included).  The same ``seed`` gives the
    same images; None draws a fresh one.
    """

    def generate(self, prompts: Sequence[str], *, seed: int | None = None) -> list[Image.Image]:
        """One RGB image per prompt."""
        ...

    def inpaint(
        self, image: Image.Image, mask: npt.NDArray[np.bool_], prompt: str, *, seed: int | None = None
    ) -> Image.Image:
        """``image`` with its ``mask`` (bool (H, W), True: repaint) redrawn after ``prompt``, at the same size.

        Every pixel outside the mask is the input's.
        """
        ...


@dataclass(frozen=True)
class RegionTarget:
    """A stored region named by a tool argument (:data:`REGION_ARGUMENT`), as the agent resolves it.

    ``box`` is xyxy in original pixels of ``image`` (the hash of the version it was found on), whose size is ``size``
    ``(width, height)``; ``mask`` its COCO RLE (SAM2's), or None when the region has only its box.
    """

    name: str
    box: Box
    size: tuple[int, int]
    image: str = ""
    mask: Rle | None = None


@dataclass(frozen=True)
class NewVersion:
    """A new image version a tool made: the dialogue's later turns run on it.

    ``edited``: True when it was made from the image the tool ran on (inpaint: that image is its parent), False for a
    new picture (generate: no parent).  ``prompt`` as the policy wrote it; ``region`` the region it edited.
    """

    image: Image.Image
    prompt: str
    edited: bool
    region: str | None = None


@dataclass(frozen=True)
class Detection:
    """One detected object: ``box`` in original-image pixels (xyxy floats), ``score`` in [0, 1], its phrase."""

    box: Box
    score: float
    label: str


@dataclass(frozen=True)
class Crop:
    """Where a zoomed image came from: ``box`` (original pixels, margin included) resized to ``size`` (w, h).

    A point ``(u, v)`` in the crop's pixels is ``(x1 + u * box.width / w, y1 + v * box.height / h)`` in the
    original image (:meth:`to_original`).
    """

    box: Box
    size: tuple[int, int]

    def to_original(self, box: Box) -> Box:
        """``box`` in the crop's pixels, in original-image pixels."""
        sx, sy = self.box.width / self.size[0], self.box.height / self.size[1]
        return Box(
            self.box.x1 + box.x1 * sx, self.box.y1 + box.y1 * sy, self.box.x1 + box.x2 * sx, self.box.y1 + box.y2 * sy
        )

    def point_to_original(self, point: Point) -> Point:
        """``point`` in the crop's pixels, in original-image pixels."""
        sx, sy = self.box.width / self.size[0], self.box.height / self.size[1]
        return Point(self.box.x1 + point.x * sx, self.box.y1 + point.y * sy)


@dataclass(frozen=True)
class ToolResult:
    """What a tool call returns to the policy.

    ``text`` is the observation appended to ``<think>`` inside ``<tool_response>``.  ``detections`` (original
    pixels) are rendered by the agent into the policy's frame and appended as JSON, so a tool never needs to know
    the policy's frame.  ``image`` (with ``crop``, where it came from) is a new image the agent adds to the
    conversation (a zoom), after which boxes the policy writes about that image are mapped back through ``crop``.
    ``new_version`` is a new image version of the dialogue (generate, inpaint): the agent stores it, linked to its
    parent, and the dialogue's later turns run on it.
    """

    text: str
    detections: tuple[Detection, ...] = ()
    image: Image.Image | None = None
    crop: Crop | None = None
    new_version: NewVersion | None = None


_JSON_TYPES: Mapping[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (Mapping,),
    "null": (type(None),),
}


def _has_type(value: Any, declared: Any) -> bool:
    """True when ``value`` is of the JSON-schema ``type`` ``declared`` (a name or a list of names; None: any)."""
    if declared is None:
        return True
    names = [declared] if isinstance(declared, str) else list(declared)
    for name in names:
        if isinstance(value, bool) and name in ("number", "integer"):  # bool is an int in Python, not in JSON
            continue
        if name == "integer" and isinstance(value, float) and value.is_integer():
            return True
        if name not in _JSON_TYPES or isinstance(value, _JSON_TYPES[name]):
            return True  # a type name this check does not know is the tool's to check
    return False


def _names(names: Sequence[Any], most: int = 8) -> str:
    """Argument names for an error message: at most ``most``, each shortened (they are model-written)."""
    shown = [n if len(n) <= 32 else n[:29] + "..." for n in map(str, names[:most])]
    return repr(shown) + (f" and {len(names) - most} more" if len(names) > most else "")


def _json_name(value: Any) -> str:
    """The JSON type name of a value, for error messages (never its repr: it may be huge or deeply nested)."""
    if isinstance(value, bool):
        return "boolean"
    for name in ("string", "integer", "number", "array", "object", "null"):
        if isinstance(value, _JSON_TYPES[name]):
            return name
    return type(value).__name__


class Tool(ABC):
    """A tool the ``<think>`` section may call as ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``."""

    timeout_s: float = 60.0
    """Longest a :meth:`run` call may take, in seconds (a class default; an instance may set its own).  A call
    past it is abandoned and becomes a :class:`ToolError` ("tool X exceeded its time limit of N s").  :meth:`setup`
    (loading weights, once) is not limited."""

    name: ClassVar[str]
    description: ClassVar[str]
    inputs: ClassVar[Mapping[str, Any]]
    """JSON schema of the arguments object.  :meth:`__call__` enforces ``properties`` (the allowed names),
    ``required`` and each property's ``type`` (a name or a list of names); finer checks are :meth:`run`'s, which
    raises :class:`ToolError` for a value it cannot use, so that the policy gets it back as an observation.  An
    argument named :data:`REGION_ARGUMENT` is declared as a string (what the policy writes) and reaches :meth:`run` as
    a :class:`RegionTarget` (the agent resolves the name)."""

    edits_image: ClassVar[bool] = False
    """True for a tool that makes image versions (inpaint): within a turn it runs on the newest version the turn's
    tools made, so a second edit builds on the first; every other tool runs on the image the turn started on."""

    def __init__(self) -> None:
        self._ready = False
        self._setup_lock = threading.Lock()
        self._abandoned: threading.Thread | None = None

    def setup(self) -> None:  # noqa: B027 - most tools have nothing to load
        """Load weights; called once, on first use."""

    @abstractmethod
    def run(self, image: LoadedImage, arguments: Mapping[str, Any]) -> ToolResult:
        """Run on ``image`` (the turn's current image) with validated ``arguments``."""

    def __call__(self, image: LoadedImage, arguments: Mapping[str, Any]) -> ToolResult:
        """Check the arguments against :attr:`inputs`, set up on first use, run.

        ``arguments`` comes from the policy (:func:`~regionreasoner.core.protocol.parse_tool_call`): anything that
        is not a mapping of allowed names to values of the declared types raises :class:`ToolError`, which the
        agent returns to the policy as an observation.
        """
        properties: Mapping[str, Any] = self.inputs.get("properties", {})
        # WHY: a model can write any JSON as "arguments" (5, true, a list of lists); set() of those raises
        # TypeError, so the shape is checked before the names.
        if not isinstance(arguments, Mapping):
            raise ToolError(
                f"tool {self.name!r} takes a JSON object of arguments, not {_json_name(arguments)}",
                hint=f"its arguments are {sorted(properties)}",
            )
        if not all(isinstance(k, str) for k in arguments):
            raise ToolError(f"tool {self.name!r} got argument names that are not strings", hint="name each argument")
        unknown = sorted(set(arguments) - set(properties))
        missing = sorted(set(self.inputs.get("required", [])) - set(arguments))
        if unknown or missing:
            raise ToolError(
                f"tool {self.name!r} got arguments {_names(sorted(arguments))}",
                hint=f"it takes {sorted(properties)}" + (f"; required: {missing}" if missing else ""),
            )
        wrong = [
            f"{key} is {_json_name(value)}, not {properties[key]['type']}"
            for key, value in arguments.items()
            if not _has_type(value, properties[key].get("type"))
            and not (key == REGION_ARGUMENT and isinstance(value, RegionTarget))
        ]
        if wrong:
            raise ToolError(f"tool {self.name!r} got {'; '.join(wrong)}", hint="send values of the declared types")
        with self._setup_lock:
            if not self._ready:
                self.setup()
                self._ready = True
        return self._run_limited(image, arguments)

    def _run_limited(self, image: LoadedImage, arguments: Mapping[str, Any]) -> ToolResult:
        """:meth:`run` in a daemon worker thread, waited for at most :attr:`timeout_s` seconds."""
        limit = self.timeout_s
        if not (isinstance(limit, int | float) and not isinstance(limit, bool) and math.isfinite(limit) and limit > 0):
            raise ConfigError(f"{type(self).__name__}.timeout_s={limit!r}: set it to a number of seconds > 0")
        hung = self._abandoned
        if hung is not None and hung.is_alive():
            # WHY: the abandoned call may still be using the tool's state (a model, a cache); a second call on top
            # of it could race with it, and a tool that hangs every time would pile up one thread per call.
            raise ToolError(
                f"tool {self.name!r} is still running a call that exceeded its time limit of {limit:g} s",
                hint="answer without this tool",
            )
        outcome: list[ToolResult | BaseException] = []

        def work() -> None:
            try:
                outcome.append(self.run(image, arguments))
            except BaseException as exc:  # handed to the caller's thread, raised there
                outcome.append(exc)

        context = contextvars.copy_context()  # the caller's trace span stays the parent of spans the tool opens
        worker = threading.Thread(target=context.run, args=(work,), name=f"tool-{self.name}", daemon=True)
        worker.start()
        worker.join(limit)
        if worker.is_alive():
            self._abandoned = worker
            raise ToolError(f"tool {self.name!r} exceeded its time limit of {limit:g} s", hint="answer without it")
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        return result
