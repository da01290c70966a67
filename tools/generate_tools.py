"""The ``generate`` and ``inpaint`` tools: new image versions of a dialogue, from a multilingual prompt.

``generate`` makes a new picture; ``inpaint`` repaints a stored region of the current image (its SAM2 mask when it has
one, else its box).  Either result is a :class:`~regionreasoner.tools.base.NewVersion` the agent stores in memory
(an inpainted one linked to its parent), and the dialogue's later turns run on it.

Prompts are passed to the generator exactly as the policy wrote them (UTF-8, any of NeoBabel's six languages -- en,
zh, nl, fr, hi, fa -- or code-switched); only their length and content are checked (:func:`check_prompt`).  Any
:class:`~regionreasoner.tools.base.ImageGenerator` backs the tools; a generator folder (NeoBabel) is loaded lazily,
once, by :class:`LazyGenerator`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt
from PIL import Image

from regionreasoner.core.errors import ConfigError, InputError, ToolError
from regionreasoner.core.images import LoadedImage
from regionreasoner.core.masks import decode_rle
from regionreasoner.tools.base import ImageGenerator, NewVersion, RegionTarget, Tool, ToolResult

if TYPE_CHECKING:
    from regionreasoner.tools.generate import Generator

__all__ = [
    "LANGUAGES",
    "MAX_PROMPT_CHARS",
    "GenerateTool",
    "InpaintTool",
    "LazyGenerator",
    "check_prompt",
    "generation_tools",
    "region_mask",
]

LANGUAGES = ("en", "zh", "nl", "fr", "hi", "fa")
"""NeoBabel's languages; a prompt may be in any of them, or mix them."""

MAX_PROMPT_CHARS = 300
"""The longest prompt, in characters (NeoBabel reads at most 512 text tokens; 300 characters of Hindi or Chinese stay
well within them).  The tool schemas carry it as ``maxLength``, so a constrained policy cannot write more."""

_PROMPT = {"type": "string", "minLength": 1, "maxLength": MAX_PROMPT_CHARS}
_REGION = {"type": "string", "pattern": "^R[1-9][0-9]{0,9}$"}
_HINT = "describe the picture in a few words, in any of " + ", ".join(LANGUAGES) + " (or mixed)"


def check_prompt(prompt: object, *, max_chars: int = MAX_PROMPT_CHARS) -> str:
    """``prompt`` unchanged when it is usable, else :class:`ToolError` (an observation for the policy).

    Refused: a non-string, an empty or blank one, one longer than ``max_chars``, one with a NUL or another control
    character than tab and newline, or a lone surrogate (not UTF-8).

    >>> check_prompt("vervang door een rode paraplu")
    'vervang door een rode paraplu'
    >>> check_prompt("一把 red umbrella")
    '一把 red umbrella'
    """
    if not isinstance(prompt, str):
        raise ToolError(f"the prompt is {type(prompt).__name__}, not a string", hint=_HINT)
    if not prompt.strip():
        raise ToolError("the prompt is empty", hint=_HINT)
    if len(prompt) > max_chars:
        raise ToolError(f"the prompt is {len(prompt)} characters, more than {max_chars}", hint="shorten it")
    if any(ord(c) < 32 and c not in "\t\n" for c in prompt):
        raise ToolError("the prompt holds a control character", hint="write plain text")
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError:
        raise ToolError("the prompt holds a lone surrogate, which is not text", hint="write plain text") from None
    return prompt


def region_mask(target: RegionTarget, width: int, height: int) -> tuple[npt.NDArray[np.bool_], str]:
    """The pixels to repaint for ``target`` on a ``width`` x ``height`` image (bool (H, W)), and their source.

    The region's mask (``"mask"``) when it has a non-empty one; else every pixel its box touches (``"box"``:
    columns ``floor(x1)`` to ``ceil(x2) - 1``, rows alike, clipped to the image).  A region belongs to the version it
    was found on: on another version of the same size its box and mask are used as they are; on one of another size
    (a generated picture) it names nothing there, and that is a :class:`ToolError`, as is a box that covers no pixel.
    """
    if tuple(target.size) != (width, height):
        raise ToolError(
            f"{target.name} was found on a {target.size[0]}x{target.size[1]} image; the current image is "
            f"{width}x{height}",
            hint="find the region on the current image first, then edit it",
        )
    if target.mask is not None and tuple(target.mask.size) == (height, width):
        mask = decode_rle(target.mask)
        if mask.any():
            return mask, "mask"
    box = target.box
    if not box.is_finite():
        raise ToolError(f"{target.name} has no usable box", hint="cite a region with a box")
    x0, y0 = max(0, math.floor(box.x1)), max(0, math.floor(box.y1))
    x1, y1 = min(width, math.ceil(box.x2)), min(height, math.ceil(box.y2))
    if x1 <= x0 or y1 <= y0:
        raise ToolError(f"{target.name}'s box {list(box)} covers no pixel of the image", hint="cite another region")
    mask = np.zeros((height, width), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask, "box"


class LazyGenerator:
    """A NeoBabel generator folder as an :class:`~regionreasoner.tools.base.ImageGenerator`, loaded on first use.

    Building it checks nothing and imports no torch; the first :meth:`generate` or :meth:`inpaint` loads the folder
    (``regionreasoner.tools.generate.Generator``), once, shared by every tool that holds this object.
    """

    def __init__(self, path: str | Path, **kwargs: Any) -> None:
        self.path = Path(path).expanduser()  # "world" names the shipped generator (Generator resolves it)
        self.kwargs = kwargs
        self._lock = threading.Lock()
        self._generator: Generator | None = None

    def load(self) -> Generator:
        """The loaded generator (ModelLoadError naming the fix for a missing or broken folder)."""
        with self._lock:
            if self._generator is None:
                from regionreasoner.tools.generate import Generator

                self._generator = Generator.from_pretrained(self.path, **self.kwargs)
            return self._generator

    def generate(self, prompts: Sequence[str], *, seed: int | None = None) -> list[Image.Image]:
        """One image per prompt (the folder's default settings)."""
        return self.load().generate(prompts, seed=seed)

    def inpaint(
        self, image: Image.Image, mask: npt.NDArray[np.bool_], prompt: str, *, seed: int | None = None
    ) -> Image.Image:
        """``image`` with ``mask`` repainted after ``prompt``."""
        return self.load().inpaint(image, mask, prompt, seed=seed)


def _check_generator(generator: object) -> ImageGenerator:
    if not isinstance(generator, ImageGenerator):
        raise ConfigError(
            f"generator={type(generator).__name__}: pass a generator folder or an object with generate() and inpaint()",
            hint="e.g. generator='path/to/neobabel' (regionreasoner.tools.generate)",
        )
    return generator


def _check_seed(seed: object) -> int | None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ConfigError(f"seed={seed!r}: pass a whole number >= 0, or None for a fresh seed per call")
    return seed


class GenerateTool(Tool):
    """The ``generate`` tool: a new picture from a prompt, which becomes the dialogue's newest image version.

    ``seed``: every call uses it (the same prompt then gives the same picture); None draws a fresh one per call.
    """

    name: ClassVar[str] = "generate"
    description: ClassVar[str] = (
        "Make a new picture from a prompt in any language (en, zh, nl, fr, hi, fa, or mixed); later turns see it "
        '(e.g. {"prompt": "a red umbrella on a beach"}).'
    )
    inputs: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "properties": {"prompt": _PROMPT},
        "required": ["prompt"],
        "additionalProperties": False,
    }
    timeout_s: float = 600.0

    def __init__(self, generator: ImageGenerator, *, seed: int | None = None) -> None:
        super().__init__()
        self.generator = _check_generator(generator)
        self.seed = _check_seed(seed)

    def run(self, image: LoadedImage, arguments: Mapping[str, Any]) -> ToolResult:
        """Generate one picture after ``arguments["prompt"]`` (``image`` is not used)."""
        prompt = check_prompt(arguments["prompt"])
        try:
            made = self.generator.generate([prompt], seed=self.seed)
        except InputError as exc:  # what the generator cannot use (a prompt too long in tokens, ...) is data
            raise ToolError(f"the generator refused the prompt: {exc}") from None
        if len(made) != 1 or not isinstance(made[0], Image.Image):
            raise ToolError(f"the generator returned {len(made)} images for one prompt", hint="answer without it")
        picture = made[0].convert("RGB")
        text = f"a new {picture.width}x{picture.height} px picture"
        return ToolResult(text=text, new_version=NewVersion(image=picture, prompt=prompt, edited=False))


class InpaintTool(Tool):
    """The ``inpaint`` tool: repaint a stored region after a prompt; the result is the newest image version.

    ``region`` reaches :meth:`run` as a :class:`~regionreasoner.tools.base.RegionTarget` (the agent resolves the
    name); the pixels repainted are :func:`region_mask`'s (its mask, else its box).  It runs on the newest version
    of the turn (:attr:`Tool.edits_image`), and every pixel outside the mask stays as it was.
    """

    name: ClassVar[str] = "inpaint"
    description: ClassVar[str] = (
        "Repaint a stored region after a prompt in any language (en, zh, nl, fr, hi, fa, or mixed); the edited image "
        'becomes the dialogue\'s new version (e.g. {"region": "R1", "prompt": "een rode paraplu"}).'
    )
    inputs: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "properties": {"region": _REGION, "prompt": _PROMPT},
        "required": ["region", "prompt"],
        "additionalProperties": False,
    }
    edits_image: ClassVar[bool] = True
    timeout_s: float = 600.0

    def __init__(self, generator: ImageGenerator, *, seed: int | None = None) -> None:
        super().__init__()
        self.generator = _check_generator(generator)
        self.seed = _check_seed(seed)

    def run(self, image: LoadedImage, arguments: Mapping[str, Any]) -> ToolResult:
        """Repaint ``arguments["region"]`` (a RegionTarget) of ``image`` after ``arguments["prompt"]``."""
        target = arguments["region"]
        if not isinstance(target, RegionTarget):
            raise ToolError(
                f"tool 'inpaint' got region {target!r} unresolved",
                hint="call it through the agent, or pass a RegionTarget",
            )
        prompt = check_prompt(arguments["prompt"])
        mask, source = region_mask(target, image.width, image.height)
        try:
            edited = self.generator.inpaint(image.image, mask, prompt, seed=self.seed)
        except InputError as exc:  # e.g. a region too small for the generator's code grid: data, not a crash
            raise ToolError(f"the generator cannot repaint {target.name}: {exc}") from None
        if not isinstance(edited, Image.Image) or edited.size != image.image.size:
            got = f"{edited.width}x{edited.height}" if isinstance(edited, Image.Image) else type(edited).__name__
            raise ToolError(
                f"the generator returned {got} for a {image.width}x{image.height} image", hint="answer without it"
            )
        text = f"{target.name} repainted ({source}, {int(mask.sum())} px)"
        version = NewVersion(image=edited.convert("RGB"), prompt=prompt, edited=True, region=target.name)
        return ToolResult(text=text, new_version=version)


def generation_tools(generator: ImageGenerator | str | Path, *, seed: int | None = None) -> list[Tool]:
    """The ``generate`` and ``inpaint`` tools sharing one generator (a folder is loaded lazily, once)."""
    backend = LazyGenerator(generator) if isinstance(generator, str | Path) else _check_generator(generator)
    return [GenerateTool(backend, seed=seed), InpaintTool(backend, seed=seed)]
