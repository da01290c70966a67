"""Test-local generators for the CLI tests, named on the command line as ``rr_generation_fakes:<factory>``.

They answer the synthetic prompts (every language and both code switches, n_per_task = N_PER_TASK, prompt seed 0)
with ground-truth drawings at SIZE; ``wrong_colours`` draws every shape in another colour.  ``CALLS`` counts the
prompts each instance was asked for, so a test can see that a rerun generates nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from PIL import Image

from regionreasoner.core.world import COLOURS, LANGUAGES
from regionreasoner.evals.generation.meta import GenEvalPrompt
from regionreasoner.evals.generation.similarity import world_switch
from regionreasoner.evals.generation.world_prompts import world_geneval_prompts
from regionreasoner.evals.generation.world_render import layout_for, render_objects

N_PER_TASK = 2
SIZE = (96, 96)
CALLS: list[int] = []


def known_prompts(n_per_task: int = N_PER_TASK) -> list[GenEvalPrompt]:
    """Every synthetic prompt the CLI may ask for with ``--n-per-task n_per_task``."""
    out: list[GenEvalPrompt] = []
    english = world_geneval_prompts("en", n_per_task=n_per_task)
    for lang in LANGUAGES:
        out += world_geneval_prompts(lang, n_per_task=n_per_task)
        if lang != "en":
            out += [world_switch(p, lang, english_first=first) for p in english for first in (True, False)]
    return out


class FakeGenerator:
    """Ground truth of the known prompts (an empty background for others), optionally in the wrong colours."""

    def __init__(self, *, wrong_colours: bool = False) -> None:
        self.known = {p.prompt: p for p in known_prompts()}
        self.wrong_colours = wrong_colours

    def generate(self, prompts: Sequence[str], *, seed: int | None = None) -> list[Image.Image]:
        CALLS.append(len(prompts))
        names = list(COLOURS)
        out = []
        for k, text in enumerate(prompts):
            meta = self.known.get(text)
            shapes = [] if meta is None else layout_for(meta, size=SIZE, seed=(seed or 0) + k)
            if self.wrong_colours:
                shapes = [replace(s, colour=names[(names.index(s.colour) + 1) % len(names)]) for s in shapes]
            out.append(render_objects(shapes, SIZE))
        return out


def good() -> FakeGenerator:
    """The right pictures."""
    return FakeGenerator()


def wrong_colours() -> FakeGenerator:
    """The right shapes and places, every colour wrong."""
    return FakeGenerator(wrong_colours=True)
