import pytest

from regionreasoner.core.citations import (
    check_citations,
    find_cited_boxes,
    find_question_boxes,
    find_region_names,
    render_bbox,
    render_question,
    render_region,
)


def test_render_bbox() -> None:
    assert render_bbox((0, 457.4, 374.5, 672)) == "bbox=[0, 457, 375, 672]"
    with pytest.raises(ValueError):
        render_bbox((1, 2, 3))


def test_render_region_in_a_frame() -> None:
    from regionreasoner.core.frames import FixedResizeFrame, NormalizedFrame, PixelFrame
    from regionreasoner.core.geometry import Box

    box = Box(250, 330, 320, 400)
    assert render_region(box, FixedResizeFrame(840, 840), (640, 480)) == "bbox=[328, 578, 420, 700]"
    assert render_region(box, NormalizedFrame(1000), (640, 480)) == "bbox=[391, 688, 500, 833]"
    assert render_region(box, PixelFrame(), (640, 480)) == "bbox=[250, 330, 320, 400]"


def test_find_region_names() -> None:
    assert find_region_names("the dog next to R1, left of R12 and R1") == ["R1", "R12"]
    assert find_region_names("R2-D2, PR1, R0, R01, r3, R3a") == []
    assert find_region_names("(R4).") == ["R4"]


def test_find_cited_boxes_matches_reward_regex() -> None:
    think = "target is left of bbox=[1, 2, 3, 4]; compare bbox [5,6,7,8] and BBOX = [9, 10, 11, 12.5] not [1,1,1,1]"
    assert find_cited_boxes(think) == [(1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12.5)]


def test_render_question_replaces_names_and_inline_boxes() -> None:
    q = "the standing dog next to R1, above bbox=[10, 20, 30, 40] and R2"
    assert [qb.coords for qb in find_question_boxes(q)] == [(10, 20, 30, 40)]
    out = render_question(q, {"R1": (0, 457, 374, 672), "R2": (1, 2, 3, 4)}, inline=[(13, 26, 39, 52)])
    assert out == "the standing dog next to bbox=[0, 457, 374, 672], above bbox=[13, 26, 39, 52] and bbox=[1, 2, 3, 4]"
    with pytest.raises(KeyError):
        render_question("near R9", {})
    with pytest.raises(ValueError, match="inline"):
        render_question(q, {"R1": (0, 0, 1, 1), "R2": (0, 0, 1, 1)})


def test_check_citations_exact_integer_rule() -> None:
    refs = {"R1": (0, 457, 374, 672), "R2": (10, 10, 20, 20)}
    checks, missing = check_citations([(0, 457, 374, 672), (0, 457, 374, 673)], refs)
    assert [c.region for c in checks] == ["R1", None]
    assert [c.verified for c in checks] == [True, False]
    assert missing == ["R2"]
    assert check_citations([], {}) == ([], [])
