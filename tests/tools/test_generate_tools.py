"""The generate and inpaint tools alone: prompts in six languages pass unchanged, masks, errors as ToolError."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from regionreasoner.agent.tool_setup import agent_tools
from regionreasoner.core.errors import ConfigError, InputError, ModelLoadError, ToolError
from regionreasoner.core.geometry import Box
from regionreasoner.core.images import load_image
from regionreasoner.core.masks import encode_rle
from regionreasoner.policies.base import ToolSpec
from regionreasoner.policies.grammar import tool_call_grammar
from regionreasoner.tools.base import ImageGenerator, RegionTarget
from regionreasoner.tools.generate_tools import (
    MAX_PROMPT_CHARS,
    GenerateTool,
    InpaintTool,
    LazyGenerator,
    check_prompt,
    generation_tools,
    region_mask,
)

PROMPTS = {
    "en": "a red umbrella",
    "zh": "一把红色的雨伞",
    "nl": "een rode paraplu",
    "fr": "un parapluie rouge",
    "hi": "एक लाल छाता",
    "fa": "یک چتر قرمز",
    "mixed": "een rode 雨伞 on the beach, सुंदर",
}


class PaintRed:
    """An explicit fake ImageGenerator: generate paints a flat picture, inpaint paints the mask red."""

    def __init__(self) -> None:
        self.prompts: list[str] = []
        self.seeds: list[int | None] = []

    def generate(self, prompts: Sequence[str], *, seed: int | None = None) -> list[Image.Image]:
        self.prompts.extend(prompts)
        self.seeds.append(seed)
        return [Image.new("RGB", (48, 32), (0, 90, 200)) for _ in prompts]

    def inpaint(
        self, image: Image.Image, mask: npt.NDArray[np.bool_], prompt: str, *, seed: int | None = None
    ) -> Image.Image:
        self.prompts.append(prompt)
        self.seeds.append(seed)
        pixels = np.asarray(image.convert("RGB")).copy()
        pixels[mask] = (255, 0, 0)
        return Image.fromarray(pixels)


def _picture(width: int = 64, height: int = 48) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8))


@pytest.mark.parametrize("language", sorted(PROMPTS))
def test_prompts_in_every_language_pass_unchanged(language: str) -> None:
    fake = PaintRed()
    prompt = PROMPTS[language]
    assert check_prompt(prompt) == prompt
    result = GenerateTool(fake, seed=7)(load_image(_picture()), {"prompt": prompt})
    assert fake.prompts == [prompt] and fake.seeds == [7]
    assert result.new_version is not None and result.new_version.prompt == prompt
    assert result.new_version.edited is False and result.new_version.region is None
    assert result.new_version.image.size == (48, 32) and result.text == "a new 48x32 px picture"


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("", "the prompt is empty"),
        ("  \n ", "the prompt is empty"),
        ("x" * (MAX_PROMPT_CHARS + 1), f"more than {MAX_PROMPT_CHARS}"),
        ("een\x00paraplu", "control character"),
        ("a\ud800b", "lone surrogate"),
        (5, "not a string"),
    ],
)
def test_bad_prompts_are_tool_errors(prompt: object, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        check_prompt(prompt)


def test_the_tools_check_their_arguments() -> None:
    fake = PaintRed()
    image = load_image(_picture())
    with pytest.raises(ToolError, match="prompt is empty"):
        GenerateTool(fake)(image, {"prompt": " "})
    with pytest.raises(ToolError, match="required"):
        InpaintTool(fake)(image, {"prompt": "een rode paraplu"})
    with pytest.raises(ToolError, match="region is integer, not string"):
        InpaintTool(fake)(image, {"region": 5, "prompt": "een rode paraplu"})
    with pytest.raises(ToolError, match="unresolved"):  # a name reaches run only through the agent
        InpaintTool(fake)(image, {"region": "R1", "prompt": "een rode paraplu"})
    assert fake.prompts == []


def test_inpaint_repaints_the_mask_and_nothing_else() -> None:
    fake = PaintRed()
    picture = _picture()
    mask = np.zeros((48, 64), dtype=bool)
    mask[10:20, 5:30] = True
    target = RegionTarget(name="R1", box=Box(5, 10, 30, 20), size=(64, 48), mask=encode_rle(mask))
    result = InpaintTool(fake, seed=3)(load_image(picture), {"region": target, "prompt": PROMPTS["hi"]})
    version = result.new_version
    assert version is not None and version.edited and version.region == "R1" and version.prompt == PROMPTS["hi"]
    before, after = np.asarray(picture), np.asarray(version.image)
    assert np.array_equal(after[~mask], before[~mask])
    assert (after[mask] == (255, 0, 0)).all()
    assert result.text == "R1 repainted (mask, 250 px)" and fake.seeds == [3]


def test_region_mask_prefers_the_mask_then_the_box() -> None:
    mask = np.zeros((48, 64), dtype=bool)
    mask[1:3, 1:3] = True
    with_mask = RegionTarget(name="R2", box=Box(0, 0, 10, 10), size=(64, 48), mask=encode_rle(mask))
    got, source = region_mask(with_mask, 64, 48)
    assert source == "mask" and np.array_equal(got, mask)
    # An empty mask (SAM2 found nothing) falls back to the box; the box covers every pixel it touches.
    empty = RegionTarget(name="R2", box=Box(2.5, 3.2, 7.1, 9.0), size=(64, 48), mask=encode_rle(np.zeros((48, 64))))
    got, source = region_mask(empty, 64, 48)
    assert source == "box" and got.sum() == (9 - 3) * (8 - 2) and got[3:9, 2:8].all()


def test_region_mask_refusals() -> None:
    flat = RegionTarget(name="R3", box=Box(10, 10, 10, 20), size=(64, 48))
    with pytest.raises(ToolError, match=r"R3's box .* covers no pixel"):
        region_mask(flat, 64, 48)
    elsewhere = RegionTarget(name="R1", box=Box(0, 0, 10, 10), size=(640, 480))
    with pytest.raises(ToolError, match="R1 was found on a 640x480 image; the current image is 64x48"):
        region_mask(elsewhere, 64, 48)


def test_generator_settings_are_checked(tmp_path: Path) -> None:
    assert isinstance(PaintRed(), ImageGenerator)
    with pytest.raises(ConfigError, match="generate\\(\\) and inpaint\\(\\)"):
        GenerateTool(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="seed=-1"):
        InpaintTool(PaintRed(), seed=-1)
    # A folder becomes a LazyGenerator shared by both tools: nothing is read until the first call.
    generate, inpaint = generation_tools(tmp_path / "missing")
    assert isinstance(generate, GenerateTool) and isinstance(inpaint, InpaintTool)
    assert generate.generator is inpaint.generator and isinstance(generate.generator, LazyGenerator)
    with pytest.raises(ModelLoadError):
        generate.generator.generate(["a red umbrella"])
    _, tools = agent_tools(None, None, False, None, PaintRed())
    assert [t.name for t in tools] == ["generate", "inpaint"] and [t.edits_image for t in tools] == [False, True]
    with pytest.raises(ConfigError, match="generator=int"):
        agent_tools(None, None, False, None, 5)  # type: ignore[arg-type]


def test_the_tool_schemas_compile_into_the_turn_grammar() -> None:
    specs = tuple(ToolSpec.of(t.name, t.inputs) for t in generation_tools(PaintRed()))
    ebnf = tool_call_grammar(specs)
    assert '"\\"region\\""' in ebnf and "^R[1-9][0-9]{0,9}$" in ebnf and f"{{1, {MAX_PROMPT_CHARS}}}" in ebnf


class Refuses(PaintRed):
    """An explicit fake ImageGenerator that refuses every request, as NeoBabel refuses a mask covering no code cell."""

    def generate(self, prompts: Sequence[str], *, seed: int | None = None) -> list[Image.Image]:
        raise InputError("the prompt is 600 tokens, more than 512", hint="shorten it")

    def inpaint(
        self, image: Image.Image, mask: npt.NDArray[np.bool_], prompt: str, *, seed: int | None = None
    ) -> Image.Image:
        raise InputError("the mask covers no code cell", hint="enlarge the mask")


def test_what_the_generator_refuses_is_a_tool_error() -> None:
    image = load_image(_picture())
    target = RegionTarget(name="R1", box=Box(1, 1, 3, 3), size=(64, 48))
    with pytest.raises(ToolError, match="cannot repaint R1: the mask covers no code cell"):
        InpaintTool(Refuses())(image, {"region": target, "prompt": "een rode paraplu"})
    with pytest.raises(ToolError, match="refused the prompt: the prompt is 600 tokens"):
        GenerateTool(Refuses())(image, {"prompt": "een rode paraplu"})
