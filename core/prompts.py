"""Prompt templates with the exact texts of the reference implementations, selectable by name.

The texts are copied character for character from the official code (see docs/protocol.md for the sources and
commits): whitespace, typos ("bboxs") and quoting are part of what the released checkpoints were trained on.
``{Question}`` and ``{Answer}`` are filled by :meth:`PromptTemplate.render`.
"""

from __future__ import annotations

from dataclasses import dataclass

from regionreasoner.core.errors import ConfigError

__all__ = [
    "ANSWER_EXAMPLE",
    "PROMPTS",
    "SEGZERO_ANSWER_EXAMPLE",
    "SHORT_TEXT",
    "PromptTemplate",
    "get_prompt",
]

ANSWER_EXAMPLE = (
    '[{"bbox_2d": [10,100,200,210], "point_2d": [30,110]}, {"bbox_2d": [225,296,706,786], "point_2d": [302,410]}]'
)
"""The answer exemplar of the RegionReasoner and VisionReasoner prompts."""

SEGZERO_ANSWER_EXAMPLE = "{'bbox': [10,100,200,210], 'points_1': [30,110], 'points_2': [35,180]}"
"""The answer exemplar of the original single-object Seg-Zero prompt."""

# lmsdss/RegionReasoner f34dbfc, train/verl/utils/rl_dataset.py (RLHFDataset.user_prompt)
_RR_TRAIN = (
    "<image>\n"
    'Please find "{Question}" with bboxs and points.\n'
    "If a reference bbox is provided (e.g., 'above/ below/ to the left of/ to the right of/ inside/ "
    "overlapping with/ touching bbox=[x1,y1,x2,y2]'), "
    "use it as spatial guidance.\n"
    "\n"
    "1) In <scene> </scene>, give a concise global scene description.\n"
    "2) In <focus> </focus>, describe what is visible inside the reference bbox (if provided). "
    "(do not output the final answer or target label here).\n"
    "3) In <think> </think>, reason over the whole image by combining the global scene and the reference bbox "
    "relation. "
    "Explicitly state which spatial relation from the question you apply (e.g., 'target is above the reference'), "
    "and use it to constrain the search over the scene to locate the target object(s). "
    "If multiple candidates exist, compare them and pick the closest match.\n"
    "4) In <answer> </answer>, output the bbox(es) and point(s) for the target object(s) in JSON.\n"
    "\n"
    "Format:\n"
    "<scene> global description of the image here </scene>\n"
    "<focus> description of reference bbox content here </focus>\n"
    "<think> thinking process here </think>\n"
    "<answer>{Answer}</answer>"
)

# lmsdss/RegionReasoner f34dbfc, test/vision_reasoner/models/vision_reasoner_model.py (DETECTION_TEMPLATE)
_RR_EVAL = (
    'Please find "{Question}" with bboxs and points.\n'
    "If a reference bbox is provided (e.g., 'above/ below/ to the left of/ to the right of/ inside/ "
    "overlapping with/ touching bbox=[x1,y1,x2,y2]'), "
    "use it as spatial guidance only.\n"
    "\n"
    "1) In <scene> </scene>, give a concise global scene description.\n"
    "2) If a reference bbox exists, in <focus> </focus> describe ONLY what is visible inside that bbox "
    "(do not output the final answer or target label here).\n"
    "3) In <think> </think>, reason over the whole image by combining the global scene and the reference bbox "
    "relation. "
    "Explicitly state which spatial relation from the question you apply (e.g., 'target is above the reference'), "
    "and use it to constrain the search over the scene to locate the target object(s). "
    "If multiple candidates exist, compare them and pick the closest match.\n"
    "4) In <answer> </answer>, output the bbox(es) and point(s) for the target object(s) in JSON.\n"
    "\n"
    "Format:\n"
    "<scene> global scene description </scene>\n"
    "<focus> description of reference bbox content (if provided bbox=[x1,y1,x2,y2]) </focus>\n"
    "<think> reasoning that applies the spatial relation to the scene and narrows to the final target(s) </think>\n"
    "<answer>{Answer}</answer>"
)

# dvlab-research/VisionReasoner a455092, vision_reasoner/models/vision_reasoner_model.py (DETECTION_TEMPLATE);
# the training version (Seg-Zero 42a3345, verl/utils/rl_dataset.py) prefixes "<image>\n".
_VR = (
    'Please find "{Question}" with bboxs and points.'
    "Compare the difference between object(s) and find the most closely matched object(s)."
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags."
    "Output the bbox(es) and point(s) inside the interested object(s) in JSON format."
    "i.e., <think> thinking process here </think>"
    "<answer>{Answer}</answer>"
)

# dvlab-research/Seg-Zero 77f9ea5 (single object), verl/utils/rl_dataset.py
_SEGZERO = (
    "<image>Please find '{Question}' with bbox and points."
    "Compare the difference between objects and find the most closely matched one."
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags."
    "Output the one bbox and points of two largest inscribed circles inside the interested object in JSON format."
    "i.e., <think> thinking process here </think>"
    "<answer>{Answer}</answer>"
)


SHORT_TEXT = "{Question}\n<image>"
"""The embedded model's template: the question, then the image (``bbox=[...]`` references already rendered).

A few-million-parameter model has no use for instructions it cannot read: it was trained on this prompt, with the
sections it writes (scene, focus when a region is cited, think, answer) fixed by the agent's grammar.  The question
comes first so that the image tokens, which a causal model lets see only what precedes them, can weigh themselves
against it (docs/embedded-model.md, "Probes, 2026-12-04")."""


@dataclass(frozen=True, kw_only=True)
class PromptTemplate:
    """A user-prompt template and how the question is normalised before it is inserted.

    ``strip_chars`` are stripped from both ends of the lowercased question (the reference code calls
    ``question.lower().strip(strip_chars)``).  ``sections`` lists the assistant tags the template asks for, in
    order; ``focus`` is only produced when the question cites a region.
    """

    name: str
    text: str
    answer_example: str = ANSWER_EXAMPLE
    strip_chars: str = '."?!'
    lowercase: bool = True
    sections: tuple[str, ...] = ("scene", "focus", "think", "answer")
    image_placeholder: str | None = None
    source: str = ""

    def normalise_question(self, question: str) -> str:
        """The question as the reference code inserts it (lowercased and stripped)."""
        q = question.lower() if self.lowercase else question
        return q.strip(self.strip_chars)

    def split_at_image(self, text: str) -> tuple[str, str] | None:
        """``text`` (a prompt rendered with this template) before and after its image placeholder; None without one.

        The one place the image's position in a user message is decided: the agent and the training rows both ask.
        """
        if not self.image_placeholder:
            return None
        before, found, after = text.partition(self.image_placeholder)
        return (before, after) if found else None

    def render(self, question: str, *, answer_example: str | None = None) -> str:
        """The user prompt text for ``question`` (already rendered with bbox=[...] references)."""
        return self.text.replace("{Question}", self.normalise_question(question)).replace(
            "{Answer}", self.answer_example if answer_example is None else answer_example
        )


PROMPTS: dict[str, PromptTemplate] = {
    "regionreasoner-train": PromptTemplate(
        name="regionreasoner-train",
        text=_RR_TRAIN,
        strip_chars=".",
        image_placeholder="<image>",
        source="lmsdss/RegionReasoner@f34dbfc train/verl/utils/rl_dataset.py",
    ),
    "regionreasoner-eval": PromptTemplate(
        name="regionreasoner-eval",
        text=_RR_EVAL,
        source="lmsdss/RegionReasoner@f34dbfc test/vision_reasoner/models/vision_reasoner_model.py",
    ),
    "visionreasoner": PromptTemplate(
        name="visionreasoner",
        text=_VR,
        sections=("think", "answer"),
        source="dvlab-research/VisionReasoner@a455092 vision_reasoner/models/vision_reasoner_model.py",
    ),
    "visionreasoner-train": PromptTemplate(
        name="visionreasoner-train",
        text="<image>\n" + _VR,
        strip_chars=".",
        sections=("think", "answer"),
        image_placeholder="<image>",
        source="dvlab-research/Seg-Zero@42a3345 verl/utils/rl_dataset.py",
    ),
    "regionreasoner-short": PromptTemplate(
        name="regionreasoner-short",
        text=SHORT_TEXT,
        strip_chars='."?!。？',
        image_placeholder="<image>",
        source="regionreasoner: the embedded model's own template (docs/embedded-model.md)",
    ),
    "segzero": PromptTemplate(
        name="segzero",
        text=_SEGZERO,
        answer_example=SEGZERO_ANSWER_EXAMPLE,
        strip_chars=".",
        sections=("think", "answer"),
        image_placeholder="<image>",
        source="dvlab-research/Seg-Zero@77f9ea5 verl/utils/rl_dataset.py",
    ),
}
"""Templates by name. ``regionreasoner-eval`` is what the agent uses by default."""


def get_prompt(name: str) -> PromptTemplate:
    """Look a template up by name; the error lists the valid names."""
    try:
        return PROMPTS[name]
    except KeyError:
        raise ConfigError(f"unknown prompt template {name!r}", hint=f"use one of {sorted(PROMPTS)}") from None
