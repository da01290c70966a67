"""Zooming: the crop region, the output size, exact mapping back to original pixels, and refused boxes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from regionreasoner.core.errors import ConfigError, ToolError
from regionreasoner.core.geometry import Box, Point
from regionreasoner.core.images import LoadedImage, load_image
from regionreasoner.tools.base import Crop
from regionreasoner.tools.zoom import ZoomTool, zoom, zoom_box

RED = (220, 20, 20)
RECT = Box(103.0, 57.0, 141.0, 90.0)
"""The drawn rectangle: columns 103..140 and rows 57..89, so xyxy (103, 57, 141, 90) in continuous pixels."""


def scene(width: int = 320, height: int = 200) -> LoadedImage:
    """A grey image with one red rectangle at :data:`RECT`."""
    image = Image.new("RGB", (width, height), (128, 128, 128))
    ImageDraw.Draw(image).rectangle((103, 57, 140, 89), fill=RED)  # PIL's rectangle includes its last pixel
    return load_image(image)


def red_box(image: Image.Image) -> Box:
    """The box of the red pixels (those nearer red than grey: the half-intensity edge under bicubic blur)."""
    rgb = np.asarray(image).astype(np.int32)
    mask = (rgb[..., 0] > 174) & (rgb[..., 1] < 74)
    rows, cols = np.nonzero(mask)
    return Box(float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1))


@pytest.mark.parametrize("size", [448, 100, (300, 120)])
@pytest.mark.parametrize("box", [Box(95.0, 50.0, 150.0, 96.0), Box(90.5, 40.25, 160.75, 99.9), Box(0, 0, 320, 200)])
def test_a_box_drawn_on_the_zoom_maps_back_onto_the_same_content(box: Box, size: Any) -> None:
    image = scene()
    zoomed, crop = zoom(image.image, box, margin=0.1, size=size)
    found = crop.to_original(red_box(zoomed))
    # One zoomed pixel is at most one original pixel here (or 320/100 for the whole-image zoom to 100 px).
    tol = max(1.0, crop.box.width / crop.size[0], crop.box.height / crop.size[1])
    assert all(abs(a - b) <= tol for a, b in zip(found, RECT, strict=True)), (found, RECT)


def test_corners_of_the_zoom_map_to_the_crop_box() -> None:
    zoomed, crop = zoom(scene().image, Box(95.0, 50.0, 150.0, 96.0), margin=0.1, size=448)
    w, h = zoomed.size
    assert crop.size == (w, h)
    assert crop.to_original(Box(0, 0, w, h)) == crop.box
    assert crop.point_to_original(Point(w / 2, h / 2)) == crop.box.center


def test_region_is_the_box_grown_by_the_margin_and_snapped_to_pixels() -> None:
    # 55 x 46 box, margin 0.1: 5.5 px left and right, 4.6 px above and below, then outward to whole pixels.
    assert zoom_box(Box(95, 50, 150, 96), 320, 200, margin=0.1) == Box(89, 45, 156, 101)
    assert zoom_box(Box(95.2, 50.7, 150.1, 96.3), 320, 200, margin=0.0) == Box(95, 50, 151, 97)
    # Clipped at the image's edges; a box partly outside the image is zoomed on its visible part.
    assert zoom_box(Box(-40, 180, 60, 260), 320, 200, margin=0.1) == Box(0, 172, 70, 200)


@pytest.mark.parametrize(("box", "out"), [(Box(0, 0, 200, 100), (448, 224)), (Box(0, 0, 30, 90), (149, 448))])
def test_longer_side_is_size_and_aspect_is_kept(box: Box, out: tuple[int, int]) -> None:
    zoomed, crop = zoom(scene().image, box, margin=0.0, size=448)
    assert zoomed.size == out == crop.size
    assert math.isclose(out[0] / out[1], crop.box.width / crop.box.height, rel_tol=0.01)


def test_tuple_size_is_the_exact_output_and_still_maps_back() -> None:
    zoomed, crop = zoom(scene().image, Box(100, 50, 150, 100), margin=0.0, size=(64, 32))
    assert zoomed.size == (64, 32) and crop.to_original(Box(32, 16, 64, 32)) == Box(125, 75, 150, 100)


@pytest.mark.parametrize(
    ("box", "message"),
    [
        (Box(math.nan, 0, 10, 10), "finite"),
        (Box(0, 0, math.inf, 10), "finite"),
        (Box(50, 50, 10, 90), "inverted"),
        (Box(10, 10, 10, 90), "no area"),
        (Box(400, 10, 500, 90), "outside the image"),
        (Box(-50, -50, -1, -1), "outside the image"),
        (Box(10, 10, 13, 40), "needs 8 px a side"),
    ],
)
def test_unusable_boxes_raise_tool_errors(box: Box, message: str) -> None:
    with pytest.raises(ToolError, match=message) as info:
        zoom(scene().image, box)
    assert info.value.hint


def test_zoom_tool_through_call() -> None:
    image = scene()
    result = ZoomTool(size=224)(image, {"bbox_2d": [95, 50, 150.0, 96]})
    assert result.image is not None and result.crop == Crop(box=Box(89, 45, 156, 101), size=(224, 187))
    assert result.image.size == (224, 187) and result.detections == ()
    assert result.text == "a zoom of a 67x56 px region, x3.34, as 224x187 px"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"bbox_2d": "95, 50, 150, 96"}, "bbox_2d is string, not array"),
        ({"bbox_2d": [95, 50, 150]}, "4 numbers, got 3"),
        ({"bbox_2d": [95, 50, 150, 96, 1]}, "4 numbers, got 5"),
        ({"bbox_2d": [95, 50, True, 96]}, "4 numbers"),
        ({"bbox_2d": [95, 50, "150", 96]}, "4 numbers"),
        ({"box": [95, 50, 150, 96]}, "it takes \\['bbox_2d'\\]"),
        ({"bbox_2d": [150, 50, 95, 96]}, "inverted"),
    ],
)
def test_zoom_tool_checks_its_arguments(arguments: Any, message: str) -> None:
    with pytest.raises(ToolError, match=message):
        ZoomTool()(scene(), arguments)


@pytest.mark.parametrize(
    "settings",
    [{"margin": -0.1}, {"margin": math.nan}, {"size": 0}, {"size": (448,)}, {"size": 44.8}, {"min_side": 0}],
)
def test_bad_settings_raise_config_errors(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        ZoomTool(**settings)
