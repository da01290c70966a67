import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regionreasoner.core.errors import GeometryError
from regionreasoner.core.geometry import Box, Point, as_box, as_point, iou, iou_matrix
from regionreasoner.core.masks import (
    Rle,
    box_to_mask,
    decode_rle,
    encode_rle,
    mask_area,
    mask_iou,
    mask_to_box,
    rle_area,
    rle_from_any,
    rle_iou,
)

coord = st.floats(min_value=0, max_value=1000, allow_nan=False)


@st.composite
def boxes(draw: st.DrawFn) -> Box:
    x1, x2 = sorted((draw(coord), draw(coord)))
    y1, y2 = sorted((draw(coord), draw(coord)))
    return Box(x1, y1, x2, y2)


def test_box_properties() -> None:
    b = Box(10, 20, 30, 60)
    assert (b.width, b.height, b.area) == (20, 40, 800)
    assert b.center == Point(20, 40)
    assert b.to_xywh() == [10, 20, 20, 40]
    assert Box(5, 5, 1, 1).area == 0
    assert b.clip(25, 50) == Box(10, 20, 25, 50)
    assert b.within(30, 60) and not b.within(29, 60) and b.within(29, 60, tol=1)
    assert Box(0.5, 1.49, 2.5, 3.5).rounded() == (1, 1, 3, 4)


def test_iou_known_values() -> None:
    a, b = Box(0, 0, 10, 10), Box(5, 0, 15, 10)
    assert iou(a, b) == pytest.approx(50 / 150)
    assert iou(a, a) == 1.0
    assert iou(a, Box(20, 20, 30, 30)) == 0.0
    assert iou(Box(0, 0, 0, 0), Box(0, 0, 0, 0)) == 0.0
    # +1 convention of the Seg-Zero/VisionReasoner rewards: [0,0,9,9] covers 10x10 pixels.
    assert iou(Box(0, 0, 9, 9), Box(5, 0, 14, 9), inclusive=True) == pytest.approx(50 / 150)


@settings(max_examples=200, deadline=None)
@given(st.lists(boxes(), min_size=0, max_size=6), st.lists(boxes(), min_size=0, max_size=6), st.booleans())
def test_iou_matrix_matches_pairwise(a: list[Box], b: list[Box], inclusive: bool) -> None:
    m = iou_matrix(a, b, inclusive=inclusive)
    assert m.shape == (len(a), len(b))
    for i, bi in enumerate(a):
        for j, bj in enumerate(b):
            assert m[i, j] == pytest.approx(iou(bi, bj, inclusive=inclusive), abs=1e-12)
            assert 0.0 <= m[i, j] <= 1.0


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ([1, 2, 3], "exactly 4"),
        ([1, 2, 3, 4, 5], "exactly 4"),
        ("1234", "exactly 4"),
        ([1, "a", 3, 4], "numbers"),
        ([0, 0, math.nan, 4], "finite"),
        ([0, 0, math.inf, 4], "finite"),
        ([10, 0, 5, 4], "inverted"),
    ],
)
def test_as_box_rejects(value: object, match: str) -> None:
    with pytest.raises(GeometryError, match=match):
        as_box(value)  # type: ignore[arg-type]


def test_as_box_and_point_accept() -> None:
    assert as_box([1, 2, 3, 4]) == Box(1.0, 2.0, 3.0, 4.0)
    assert as_box([3, 2, 1, 4], allow_inverted=True) == Box(3, 2, 1, 4)
    assert as_point((1, 2)) == Point(1.0, 2.0)
    with pytest.raises(GeometryError):
        as_point([1])
    with pytest.raises(GeometryError):
        as_point([1, math.nan])


def test_mask_box_round_trip() -> None:
    m = box_to_mask(Box(3, 2, 7, 5), 10, 12)
    assert m.shape == (10, 12) and mask_area(m) == 4 * 3
    assert mask_to_box(m) == Box(3, 2, 7, 5)
    assert mask_to_box(np.zeros((4, 4), bool)) is None
    # Clipped to the image, fractional corners use pixel centres.
    assert mask_to_box(box_to_mask(Box(-5, 0.6, 3.4, 100), 10, 10)) == Box(0, 1, 3, 10)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.data())
def test_rle_round_trip_and_iou(h: int, w: int, data: st.DataObject) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    a = rng.random((h, w)) < 0.3
    b = rng.random((h, w)) < 0.5
    ra, rb = encode_rle(a), encode_rle(b)
    assert np.array_equal(decode_rle(ra), a)
    assert rle_area(ra) == int(a.sum())
    assert rle_iou(ra, rb) == pytest.approx(mask_iou(a, b), abs=1e-12)
    assert Rle.model_validate_json(ra.model_dump_json()) == ra


def test_rle_from_any_formats() -> None:
    m = np.zeros((5, 6), bool)
    m[1:3, 2:5] = True
    compressed = encode_rle(m)
    assert rle_from_any(compressed) == compressed
    assert rle_from_any(m.astype(int).tolist()) == compressed
    assert rle_from_any({"size": [5, 6], "counts": compressed.counts}) == compressed
    # Uncompressed COCO RLE: column-major run lengths starting with background.
    flat = m.flatten(order="F")
    runs, cur, n = [], False, 0
    for v in flat:
        if v != cur:
            runs.append(n)
            cur, n = v, 0
        n += 1
    runs.append(n)
    assert rle_from_any({"size": [5, 6], "counts": runs}) == compressed
    with pytest.raises(GeometryError):
        rle_from_any({"counts": "x"})


def test_mask_errors() -> None:
    with pytest.raises(GeometryError, match="2-D"):
        mask_area(np.zeros((2, 2, 2)))
    with pytest.raises(GeometryError, match="differ"):
        mask_iou(np.zeros((2, 2)), np.zeros((3, 3)))
    with pytest.raises(GeometryError, match="differ"):
        rle_iou(encode_rle(np.zeros((2, 2))), encode_rle(np.zeros((3, 3))))
