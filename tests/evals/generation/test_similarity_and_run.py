"""CLC/CSS building blocks, and generation folders in the official layout (resumable, seed set per prompt)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from regionreasoner.core.errors import InputError
from regionreasoner.evals.generation.embed import ExactWorldEmbedder, normalise_rows
from regionreasoner.evals.generation.exact import ExactWorldDetector
from regionreasoner.evals.generation.run import generate_geneval, score_geneval, summarise_geneval
from regionreasoner.evals.generation.similarity import pair_cosines, sentence_switch, split_sentences, world_switch
from regionreasoner.evals.generation.world_prompts import world_geneval_prompts
from regionreasoner.evals.generation.world_render import Placed, WorldOracle, render_objects


def test_sentences_switch_halfway() -> None:
    en = "A red car. A dog sleeps under it. The sky is blue."
    nl = "Een rode auto. Een hond slaapt eronder. De lucht is blauw."
    assert split_sentences("一只猫。一只狗！") == ["一只猫。", "一只狗！"]
    assert sentence_switch(en, nl, english_first=True) == "A red car. A dog sleeps under it. De lucht is blauw."
    assert sentence_switch(en, nl, english_first=False) == "Een rode auto. Een hond slaapt eronder. The sky is blue."
    assert sentence_switch("One sentence.", "Eén zin.", english_first=True) is None
    assert sentence_switch(en, "Een zin. Twee zinnen.", english_first=True) is None


def test_world_switch_keeps_the_metadata() -> None:
    prompt = world_geneval_prompts("en", n_per_task=1, seed=0, tasks=("colors",))[0]
    ef, es = (world_switch(prompt, "fr", english_first=first) for first in (True, False))
    assert ef.prompt.startswith("a photo of a ") and es.prompt.startswith("une photo d")
    assert (ef.include, es.include) == (prompt.include, prompt.include)
    colour = prompt.include[0].color
    assert colour is not None and colour in es.prompt  # English words inside the French frame
    with pytest.raises(InputError):
        world_switch(prompt, "en", english_first=True)


def test_cosines_of_normalised_embeddings(tmp_path: Path) -> None:
    assert np.allclose(normalise_rows([[3, 4], [0, 0]]), [[0.6, 0.8], [0, 0]])
    a = render_objects([Placed("circle", "red", 30, 30, 12), Placed("star", "blue", 70, 60, 12)], (96, 96))
    b = render_objects([Placed("circle", "red", 60, 40, 10), Placed("star", "blue", 20, 70, 14)], (96, 96))
    c = render_objects([Placed("square", "green", 50, 50, 15)], (96, 96))
    paths = []
    for name, im in (("a", a), ("b", b), ("c", c)):
        paths.append(tmp_path / f"{name}.png")
        im.save(paths[-1])
    cos = pair_cosines(ExactWorldEmbedder(), [paths[0], paths[0]], [paths[1], paths[2]])
    assert cos == pytest.approx([1.0, 0.0])  # same shapes and colours anywhere: 1; nothing in common: 0
    with pytest.raises(InputError):
        pair_cosines(ExactWorldEmbedder(), paths[:2], paths[:1])


class Counting:
    """The oracle, counting calls and checking that every call carries the run's seed."""

    def __init__(self, oracle: WorldOracle) -> None:
        self.oracle, self.calls = oracle, 0

    def generate(self, prompts: Sequence[str], *, seed: int | None = None) -> list[Image.Image]:
        assert seed == 42
        self.calls += 1
        return self.oracle.generate(prompts, seed=seed)


def test_geneval_layout_resumes(tmp_path: Path) -> None:
    prompts = world_geneval_prompts("nl", n_per_task=2, seed=0)
    gen = Counting(WorldOracle(prompts, size=(96, 96)))
    stats = generate_geneval(gen, prompts, tmp_path, seed=42, samples=2, progress=False)
    assert (stats.generated, stats.skipped, gen.calls) == (12, 0, 12)  # one seeded call per prompt
    meta = json.loads((tmp_path / "00003" / "metadata.jsonl").read_text("utf-8"))
    assert meta == prompts[3].to_json()
    assert sorted(p.name for p in (tmp_path / "00003" / "samples").iterdir()) == ["00000.png", "00001.png"]
    (tmp_path / "00005" / "samples" / "00001.png").unlink()  # an interrupted prompt is generated again
    again = generate_geneval(gen, prompts, tmp_path, seed=42, samples=2, progress=False)
    assert (again.generated, again.skipped, gen.calls) == (1, 11, 13)
    detector = ExactWorldDetector()
    results = score_geneval(tmp_path, detector, detector, progress=False)
    assert len(results) == 24 and all(r.correct for r in results)
    scores = summarise_geneval(results)
    assert scores.overall == 1.0 and scores.counts == dict.fromkeys(scores.tasks, 4)
    assert len(score_geneval(tmp_path, detector, detector, progress=False)) == 24  # nothing scored twice


def test_summary_means_tasks_not_images() -> None:
    from regionreasoner.evals.generation.run import ImageResult

    results = [ImageResult(i, 0, "colors", "p", i < 1, "") for i in range(4)]  # 1/4
    results += [ImageResult(9, 0, "position", "p", True, "")]  # 1/1
    scores = summarise_geneval(results)
    assert scores.tasks == {"colors": 0.25, "position": 1.0}
    assert scores.overall == pytest.approx(0.625)
    with pytest.raises(InputError):
        summarise_geneval([])
