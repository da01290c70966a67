import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regionreasoner.core.errors import ConfigError, GeometryError
from regionreasoner.core.frames import (
    FixedResizeFrame,
    Frame,
    NormalizedFrame,
    PixelFrame,
    SmartResizeFrame,
    frame_from_spec,
    smart_resize,
)
from regionreasoner.core.geometry import Box, Point

FRAMES: list[Frame] = [
    FixedResizeFrame(840, 840),
    FixedResizeFrame(448, 336),
    SmartResizeFrame(28, 3136, 12845056),
    SmartResizeFrame(28, 28 * 28 * 4, 28 * 28 * 64),
    SmartResizeFrame(32, 32 * 32 * 4, 32 * 32 * 256),
    NormalizedFrame(1000),
    PixelFrame(),
]
sizes = st.tuples(st.integers(1, 4000), st.integers(1, 4000)).filter(lambda s: max(s) / min(s) <= 150)


@st.composite
def image_and_box(draw: st.DrawFn) -> tuple[tuple[int, int], Box]:
    w, h = draw(sizes)
    xs = sorted(draw(st.floats(0, w)) for _ in range(2))
    ys = sorted(draw(st.floats(0, h)) for _ in range(2))
    return (w, h), Box(xs[0], ys[0], xs[1], ys[1])


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: f.spec)
@settings(max_examples=150, deadline=None)
@given(data=image_and_box())
def test_original_to_model_and_back_within_half_a_model_pixel(frame: Frame, data: tuple[tuple[int, int], Box]) -> None:
    size, box = data
    mw, mh = frame.model_size(size)
    model = frame.box_to_model(box, size)
    assert all(isinstance(v, int) for v in model)
    assert 0 <= model[0] <= model[2] <= mw and 0 <= model[1] <= model[3] <= mh
    back = frame.box_from_model(model, size)
    tol_x, tol_y = 0.5 * size[0] / mw + 1e-9, 0.5 * size[1] / mh + 1e-9
    assert abs(back.x1 - box.x1) <= tol_x and abs(back.x2 - box.x2) <= tol_x
    assert abs(back.y1 - box.y1) <= tol_y and abs(back.y2 - box.y2) <= tol_y
    p = frame.point_to_model(Point(box.x2, box.y1), size)
    assert frame.point_to_model(frame.point_from_model(p, size), size) == p


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: f.spec)
@settings(max_examples=150, deadline=None)
@given(size=sizes, data=st.data())
def test_model_integers_survive_a_round_trip(frame: Frame, size: tuple[int, int], data: st.DataObject) -> None:
    mw, mh = frame.model_size(size)
    xs = sorted(data.draw(st.integers(0, mw)) for _ in range(2))
    ys = sorted(data.draw(st.integers(0, mh)) for _ in range(2))
    model = (xs[0], ys[0], xs[1], ys[1])
    original = frame.box_from_model(model, size)
    assert original.within(size[0], size[1], tol=1e-6)
    assert frame.box_to_model(original, size) == model


def test_frame_corners_map_to_frame_corners() -> None:
    size = (640, 427)
    for frame in FRAMES:
        mw, mh = frame.model_size(size)
        assert frame.box_to_model(Box(0, 0, 640, 427), size) == (0, 0, mw, mh)


def test_regionreasoner_rounding_matches_reference() -> None:
    # Training data: x' = int(x * 840 / W + 0.5).
    f = FixedResizeFrame()
    assert f.box_to_model(Box(47, 107, 303, 466), (640, 480)) == (
        int(47 * 840 / 640 + 0.5),
        int(107 * 840 / 480 + 0.5),
        int(303 * 840 / 640 + 0.5),
        int(466 * 840 / 480 + 0.5),
    )
    assert f.resized_image_size((640, 480)) == (840, 840)
    assert NormalizedFrame().resized_image_size((640, 480)) is None


@settings(max_examples=300, deadline=None)
@given(h=st.integers(1, 5000), w=st.integers(1, 5000))
def test_smart_resize_matches_transformers(h: int, w: int) -> None:
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as hf_smart_resize

    for factor, lo, hi in [(28, 56 * 56, 28 * 28 * 1280), (28, 3136, 12845056), (32, 32 * 32 * 4, 32 * 32 * 256)]:
        if max(h, w) / min(h, w) > 200:
            with pytest.raises(GeometryError, match="aspect ratio"):
                smart_resize(h, w, factor, lo, hi)
            with pytest.raises(ValueError):
                hf_smart_resize(h, w, factor, lo, hi)
        else:
            assert smart_resize(h, w, factor, lo, hi) == hf_smart_resize(h, w, factor, lo, hi)


def test_smart_frame_size_is_multiple_of_factor() -> None:
    f = SmartResizeFrame(28, 3136, 12845056)
    mw, mh = f.model_size((640, 427))
    assert mw % 28 == 0 and mh % 28 == 0
    assert (mw, mh) == (644, 420)


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: f.spec)
def test_spec_round_trip(frame: Frame) -> None:
    assert frame_from_spec(frame.spec) == frame
    assert str(frame) == frame.spec


def test_aliases_and_errors() -> None:
    assert frame_from_spec("regionreasoner") == FixedResizeFrame(840, 840)
    assert frame_from_spec("Qwen3-VL") == NormalizedFrame(1000)
    assert frame_from_spec("qwen2.5-vl") == SmartResizeFrame(28, 3136, 12845056)
    with pytest.raises(ConfigError, match="unknown coordinate frame"):
        frame_from_spec("bogus")
    with pytest.raises(ConfigError):
        FixedResizeFrame(0, 840)
    with pytest.raises(ConfigError):
        SmartResizeFrame(28, 100, 10)
    with pytest.raises(ConfigError):
        NormalizedFrame(0)
    with pytest.raises(GeometryError, match="positive"):
        FixedResizeFrame().box_to_model(Box(0, 0, 1, 1), (0, 10))


def test_normalized_frame_maps_edges() -> None:
    f = NormalizedFrame(1000)
    assert f.box_to_model(Box(0, 0, 320, 240), (640, 480)) == (0, 0, 500, 500)
    back = f.box_from_model((0, 0, 500, 500), (640, 480))
    assert math.isclose(back.x2, 320) and math.isclose(back.y2, 240)
