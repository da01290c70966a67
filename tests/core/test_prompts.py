import pytest

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.prompts import ANSWER_EXAMPLE, PROMPTS, get_prompt

# Independent transcriptions of the reference texts, one physical line per "\n" of the original code
# (lmsdss/RegionReasoner f34dbfc; dvlab-research/VisionReasoner a455092; dvlab-research/Seg-Zero 77f9ea5).
RR_EVAL = """Please find "{Question}" with bboxs and points.
If a reference bbox is provided (e.g., 'above/ below/ to the left of/ to the right of/ inside/ overlapping with/ touching bbox=[x1,y1,x2,y2]'), use it as spatial guidance only.

1) In <scene> </scene>, give a concise global scene description.
2) If a reference bbox exists, in <focus> </focus> describe ONLY what is visible inside that bbox (do not output the final answer or target label here).
3) In <think> </think>, reason over the whole image by combining the global scene and the reference bbox relation. Explicitly state which spatial relation from the question you apply (e.g., 'target is above the reference'), and use it to constrain the search over the scene to locate the target object(s). If multiple candidates exist, compare them and pick the closest match.
4) In <answer> </answer>, output the bbox(es) and point(s) for the target object(s) in JSON.

Format:
<scene> global scene description </scene>
<focus> description of reference bbox content (if provided bbox=[x1,y1,x2,y2]) </focus>
<think> reasoning that applies the spatial relation to the scene and narrows to the final target(s) </think>
<answer>{Answer}</answer>"""  # noqa: E501

RR_TRAIN = """<image>
Please find "{Question}" with bboxs and points.
If a reference bbox is provided (e.g., 'above/ below/ to the left of/ to the right of/ inside/ overlapping with/ touching bbox=[x1,y1,x2,y2]'), use it as spatial guidance.

1) In <scene> </scene>, give a concise global scene description.
2) In <focus> </focus>, describe what is visible inside the reference bbox (if provided). (do not output the final answer or target label here).
3) In <think> </think>, reason over the whole image by combining the global scene and the reference bbox relation. Explicitly state which spatial relation from the question you apply (e.g., 'target is above the reference'), and use it to constrain the search over the scene to locate the target object(s). If multiple candidates exist, compare them and pick the closest match.
4) In <answer> </answer>, output the bbox(es) and point(s) for the target object(s) in JSON.

Format:
<scene> global description of the image here </scene>
<focus> description of reference bbox content here </focus>
<think> thinking process here </think>
<answer>{Answer}</answer>"""  # noqa: E501

VR = (
    'Please find "{Question}" with bboxs and points.Compare the difference between object(s) and find the most '
    "closely matched object(s).Output the thinking process in <think> </think> and final answer in <answer> "
    "</answer> tags.Output the bbox(es) and point(s) inside the interested object(s) in JSON format.i.e., <think> "
    "thinking process here </think><answer>{Answer}</answer>"
)
SEGZERO = (
    "<image>Please find '{Question}' with bbox and points.Compare the difference between objects and find the most "
    "closely matched one.Output the thinking process in <think> </think> and final answer in <answer> </answer> "
    "tags.Output the one bbox and points of two largest inscribed circles inside the interested object in JSON "
    "format.i.e., <think> thinking process here </think><answer>{Answer}</answer>"
)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("regionreasoner-eval", RR_EVAL),
        ("regionreasoner-train", RR_TRAIN),
        ("visionreasoner", VR),
        ("visionreasoner-train", "<image>\n" + VR),
        ("segzero", SEGZERO),
    ],
)
def test_exact_reference_texts(name: str, text: str) -> None:
    assert get_prompt(name).text == text


def test_render_normalises_like_the_reference() -> None:
    p = get_prompt("regionreasoner-eval")
    out = p.render('Find the guy near bbox=[304, 69, 597, 495]?"')
    assert 'Please find "find the guy near bbox=[304, 69, 597, 495]" with bboxs' in out
    assert out.endswith(f"<answer>{ANSWER_EXAMPLE}</answer>")
    assert "{Question}" not in out and "{Answer}" not in out
    # Training strips only dots.
    assert 'find "a dog?" with' in get_prompt("regionreasoner-train").render("A dog?.")
    assert "'points_1'" in get_prompt("segzero").render("cat")


def test_unknown_prompt_lists_names() -> None:
    with pytest.raises(ConfigError, match="regionreasoner-eval"):
        get_prompt("nope")
    assert set(PROMPTS) >= {"regionreasoner-train", "regionreasoner-eval", "visionreasoner", "segzero"}
