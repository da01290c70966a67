"""Training pictures and captions of the generator: the synthetic world's shapes, said in six languages and mixes.

A sample is a :class:`Picture`: one to four solid shapes (:class:`~regionreasoner.core.world.render.Placed`, drawn
by the world's own code) and the caption that says what they are, in one of the world's languages or a
code-switched mix.  What is said follows the tasks the generator is measured on (synthetic m-GenEval):

* ``single``: one shape, its colour said or not ("een foto van een rode cirkel");
* ``two``: two shapes of different kinds, colours said for both, or for neither;
* ``count``: one to four shapes of one kind, the count said ("a photo of three stars"), colours free;
* ``position``: two shapes, the first left of / right of / above / below the second, well beyond GenEval's margin.

* ``inpaint``: one to three shapes; the caption says only the first (always with its colour; half of the time
  as a bare phrase, "een groene ster", as an inpainting request says it), and
  :attr:`Picture.region` is a box of code cells around it that no other shape touches: the LM regenerates only
  those cells, so it learns to put the named shape into the masked region of a given context.

With ``lattice`` (a cell size in pixels, the code grid's stride) the shapes sit on the centres of the code grid's
cells at one radius.  ``footprint=3``: 11/8 of a cell, at least three cells apart, so each shape fills the 3x3 cells
around its centre cell and its codes depend on kind, colour and cell only, not on a sub-cell offset, which shrinks
what the LM has to learn from thousands of code patterns per shape to nine.  ``footprint=1``: 0.36 of a cell, one
shape per cell, so one code IS one shape (kind and colour) and the LM's choices are per object, not per piece of one
(docs/decisions.md, "The generator's canonical world" and "One code per shape").

Captions come from :func:`~regionreasoner.core.world.captions.world_prompt` (the same words and grammar as the
evaluation prompts); a share of them is code-switched (:class:`~regionreasoner.core.world.languages.CodeSwitch`):
English frame with the other language's colour and shape words and the reverse (the CSS mixes), or any two
languages.  Shapes are drawn solid and larger than the evaluation's ground truth (the scorer does not care about
size; large flat shapes survive an 8x8-pixel code grid).  Everything is a pure function of the numpy generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.world.captions import MAX_COUNT, Thing, world_phrase, world_prompt
from regionreasoner.core.world.languages import LANGUAGES, CodeSwitch
from regionreasoner.core.world.render import Placed, render_objects
from regionreasoner.core.world.scene import COLOURS, KINDS

if TYPE_CHECKING:
    import torch

__all__ = [
    "FOOTPRINTS",
    "POSITIONS",
    "TASK_MIX",
    "Picture",
    "caption_corpus",
    "draw_picture",
    "pictures_to_tensor",
    "train_caption_tokenizer",
]

POSITIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
"""GenEval's position words (``things[0] <position> things[1]``)."""

TASK_MIX: dict[str, float] = {"single": 0.2, "two": 0.2, "count": 0.25, "position": 0.2, "inpaint": 0.15}
"""Share of each kind of picture in the training stream."""

_EXTENT = 1.25
"""Every kind lies within this many radii of its centre (a square's corner: 0.85·√2)."""
_SWITCHED = (("colour", "kind"), ("colour",), ("kind",))
_LATTICE_RADIUS = {3: 1.375, 1: 0.36}
"""A lattice shape's radius in cells, per footprint (cells per side it fills): 11 px of an 8 px cell stays inside the
3x3 cells around its own; 0.36 of a cell keeps every kind (extent 1.25 radii) inside its own cell with a margin.
The least Chebyshev distance between lattice shapes, in cells, is the footprint: footprints never share a cell."""
FOOTPRINTS: tuple[int, ...] = (1, 3)
"""Lattice footprints: 3x3 cells per shape, or one cell per shape."""


@dataclass(frozen=True)
class Picture:
    """One training sample: the shapes drawn and the caption that says them."""

    objects: tuple[Placed, ...]
    caption: str
    task: str
    """A key of :data:`TASK_MIX`."""
    language: str
    """A world language, or ``"mix"`` for a code-switched caption."""
    region: tuple[int, int, int, int] | None = None
    """``inpaint``: the code cells to regenerate, ``(x0, y0, x1, y1)`` in cells, x1/y1 exclusive."""

    def image(self, resolution: int) -> Image.Image:
        """The RGB picture, ``resolution`` pixels square."""
        return render_objects(self.objects, (resolution, resolution))


def _language(rng: np.random.Generator, languages: tuple[str, ...], switch_share: float) -> str | CodeSwitch:
    if len(languages) < 2 or rng.random() >= switch_share:
        return languages[int(rng.integers(len(languages)))]
    others = [lang for lang in languages if lang != "en"]
    if "en" in languages and others and rng.random() < 0.6:  # English-first and English-second, as CSS measures
        other = others[int(rng.integers(len(others)))]
        matrix, donor = ("en", other) if rng.random() < 0.5 else (other, "en")
        return CodeSwitch(matrix=matrix, donor=donor, switched=("colour", "kind"))
    a, b = (languages[int(i)] for i in rng.permutation(len(languages))[:2])
    return CodeSwitch(matrix=a, donor=b, switched=_SWITCHED[int(rng.integers(len(_SWITCHED)))])


def _region(relation: str | None, first: bool, r: float, side: int) -> tuple[float, float, float, float]:
    """Where a centre may go (x0, y0, x1, y1): anywhere, or its side of a position relation."""
    m = _EXTENT * r + 1
    if relation is None:
        return m, m, side - m, side - m
    left_or_top = first == (relation in ("left of", "above"))
    a0, a1 = (m, 0.36 * side) if left_or_top else (0.64 * side, side - m)
    c0, c1 = max(m, 0.3 * side), min(side - m, 0.7 * side)
    return (a0, c0, a1, c1) if relation in ("left of", "right of") else (c0, a0, c1, a1)


def _place(
    rng: np.random.Generator, kinds: list[str], side: int, relation: str | None, radius: tuple[float, float]
) -> list[Placed] | None:
    placed: list[Placed] = []
    for i, kind in enumerate(kinds):
        for _attempt in range(200):
            r = float(rng.uniform(*radius)) * side
            x0, y0, x1, y1 = _region(relation, i == 0, r, side)
            if x1 <= x0 or y1 <= y0:
                return None
            cx, cy = float(rng.uniform(x0, x1)), float(rng.uniform(y0, y1))
            if all(np.hypot(cx - o.cx, cy - o.cy) >= _EXTENT * (r + o.radius) + 2 for o in placed):
                break
        else:
            return None
        colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
        placed.append(Placed(kind, colour, cx, cy, r))
    return placed


def _cell_region(relation: str, first: bool, grid: int, cell: int) -> tuple[float, float, float, float]:
    """Where a one-cell lattice centre may go for a position relation (x0, y0, x1, y1 in pixels).

    Along the relation's axis the first shape takes the cells before the grid's last two, the second the cells from
    the third on (and :func:`_apart` keeps it two cells beyond the first: far beyond GenEval's margin) on any grid of
    3 or more cells; across it, any cell.
    """
    before = first == (relation in ("left of", "above"))
    a0, a1 = (0.0, (grid - 2) * cell - 1.0) if before else (2.0 * cell, float(grid * cell))
    b0, b1 = 0.0, float(grid * cell)
    return (a0, b0, a1, b1) if relation in ("left of", "right of") else (b0, a0, b1, a1)


def _apart(relation: str, first: Placed, x: float, y: float, gap: float) -> bool:
    """Whether a second shape at ``(x, y)`` is ``gap`` pixels or more on the far side of ``first`` for ``relation``."""
    along = x - first.cx if relation in ("left of", "right of") else y - first.cy
    return along >= gap if relation in ("left of", "above") else -along >= gap


def _lattice_place(
    rng: np.random.Generator, kinds: list[str], side: int, cell: int, relation: str | None, footprint: int
) -> list[Placed] | None:
    """Shapes on cell centres (one radius), ``footprint`` cells apart (Chebyshev), the footprint on the grid."""
    radius = _LATTICE_RADIUS[footprint] * cell
    edge = footprint // 2  # cells a footprint reaches beyond its centre cell
    corners = cell * (np.arange(edge, side // cell - edge, dtype=np.float64) + 0.5)
    placed: list[Placed] = []
    for i, kind in enumerate(kinds):
        x0, y0, x1, y1 = _region(relation, i == 0, radius, side)
        if footprint == 1 and relation is not None:
            x0, y0, x1, y1 = _cell_region(relation, i == 0, side // cell, cell)
        free = [
            (x, y)
            for x in corners
            for y in corners
            if x0 <= x <= x1
            and y0 <= y <= y1
            and all(max(abs(x - o.cx), abs(y - o.cy)) >= footprint * cell for o in placed)
            and (footprint == 3 or relation is None or not placed or _apart(relation, placed[0], x, y, 2 * cell))
        ]
        if not free:
            return None
        cx, cy = free[int(rng.integers(len(free)))]
        colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
        placed.append(Placed(kind, colour, float(cx), float(cy), radius))
    return placed


def _inpaint_region(
    rng: np.random.Generator, target: Placed, others: Sequence[Placed], cell: int, grid: int, cells: int = 3
) -> tuple[int, int, int, int]:
    """The ``cells`` x ``cells`` footprint of ``target``, a 3x3 one grown where no other shape's cells are.

    A 3x3 footprint grows by 0 or 1 cell on each side; a one-cell footprint stays its cell (the agent's inpainting
    window, ``cell_window``, puts the region on one cell).
    """

    def footprint(o: Placed) -> tuple[int, int, int, int]:
        ix, iy = int(o.cx // cell), int(o.cy // cell)
        return ix - cells // 2, iy - cells // 2, ix + cells // 2 + 1, iy + cells // 2 + 1

    if cells == 1:
        return footprint(target)

    def clear(box: tuple[int, int, int, int]) -> bool:
        x0, y0, x1, y1 = box
        return all(x1 <= a0 or a1 <= x0 or y1 <= b0 or b1 <= y0 for a0, b0, a1, b1 in map(footprint, others))

    region = list(footprint(target))
    for side, grow in enumerate(rng.integers(0, 2, size=4)):
        trial = list(region)
        trial[side] += -int(grow) if side < 2 else int(grow)
        trial = [max(0, trial[0]), max(0, trial[1]), min(grid, trial[2]), min(grid, trial[3])]
        if clear((trial[0], trial[1], trial[2], trial[3])):
            region = trial
    return region[0], region[1], region[2], region[3]


def draw_picture(
    rng: np.random.Generator,
    *,
    resolution: int,
    languages: tuple[str, ...] = LANGUAGES,
    switch_share: float = 0.2,
    task: str | None = None,
    lattice: int = 0,
    footprint: int = 3,
) -> Picture:
    """A random :class:`Picture` (``task`` None: drawn from :data:`TASK_MIX`), ``resolution`` pixels square.

    ``lattice``: 0 places shapes anywhere at random sizes; a cell size in pixels (the code grid's stride) puts them
    on the grid's cell centres, ``footprint`` (1 or 3) cells per side each (module docstring).  ``inpaint`` needs a
    lattice.
    """
    if task is None:
        names = [name for name in TASK_MIX if lattice or name != "inpaint"]
        shares = np.array([TASK_MIX[name] for name in names])
        task = names[int(rng.choice(len(names), p=shares / shares.sum()))]
    if task not in TASK_MIX:
        raise ConfigError(f"task={task!r}", hint=f"use one of {list(TASK_MIX)}")
    if lattice < 0 or (lattice and resolution % lattice) or (task == "inpaint" and not lattice):
        raise ConfigError(
            f"lattice={lattice} at resolution {resolution} for task {task!r}",
            hint="pass the code grid's stride (a divisor of the resolution); inpaint needs one",
        )
    if footprint not in FOOTPRINTS or (lattice and resolution // lattice < 3):
        raise ConfigError(
            f"footprint={footprint} on a {resolution // max(lattice, 1)}-cell grid",
            hint=f"use a footprint of {FOOTPRINTS} and a grid of at least 3x3 cells",
        )
    language = _language(rng, languages, switch_share)
    a, b = (KINDS[int(i)] for i in rng.permutation(len(KINDS))[:2])
    relation: str | None = None
    count = 1
    if task == "single":
        kinds = [a]
    elif task == "inpaint":
        kinds = [KINDS[int(i)] for i in rng.integers(len(KINDS), size=1 + int(rng.integers(3)))]
    elif task == "count":
        count = 1 + int(rng.integers(MAX_COUNT))
        kinds = [a] * count
    else:
        kinds = [a, b]
        relation = POSITIONS[int(rng.integers(len(POSITIONS)))] if task == "position" else None
    radius = (0.12, 0.17) if count <= 2 else (0.09, 0.12)
    placed = None
    for _attempt in range(1000):  # a draw can fail (no free cell left); the task's geometry is always possible
        if placed is not None:
            break
        placed = (
            _lattice_place(rng, kinds, resolution, lattice, relation, footprint)
            if lattice
            else _place(rng, kinds, resolution, relation, radius)
        )
    if placed is None:
        raise ConfigError(f"no placement of {kinds} for {task!r} at {resolution} px", hint="use a larger resolution")
    say_colour = task != "count" and rng.random() < (0.6 if task != "position" else 0.25)
    region = None
    if task == "inpaint":  # the caption says the first shape only, and which cells it is in
        region = _inpaint_region(rng, placed[0], placed[1:], lattice, resolution // lattice, footprint)
        things = [Thing(placed[0].kind, placed[0].colour)]
    elif task == "count":
        things = [Thing(a, count=count, counted=True)]
    else:
        things = [Thing(p.kind, p.colour if say_colour else None) for p in placed]
    if task == "inpaint" and rng.random() < 0.5:  # a request names the shape bare as often as in a frame
        caption = world_phrase(things[0], language)
    else:
        caption = world_prompt(things, language, relation=relation)
    name = language if isinstance(language, str) else "mix"
    return Picture(tuple(placed), caption, task, name, region)


def pictures_to_tensor(pictures: list[Picture], resolution: int) -> torch.Tensor:
    """Pixels ``(B, 3, R, R)`` in [-1, 1] (the generator's preprocessing: ``x / 127.5 - 1``)."""
    import torch

    arrays = np.stack([np.asarray(p.image(resolution), dtype=np.float32) for p in pictures])
    return torch.from_numpy(arrays).permute(0, 3, 1, 2) / 127.5 - 1.0


def caption_corpus(count: int, *, seed: int, languages: tuple[str, ...] = LANGUAGES) -> list[str]:
    """``count`` training captions (every task, every language and mix) for the text tokenizer."""
    rng = np.random.default_rng([seed, 7])
    return [
        draw_picture(rng, resolution=64, languages=languages, switch_share=0.3, lattice=8).caption for _ in range(count)
    ]


def train_caption_tokenizer(captions: list[str], *, vocab_size: int) -> Any:
    """The Gemma-shaped byte-level BPE tokenizer (``prompting.gemma_bpe_tokenizer``) trained on ``captions``.

    Trained on the captions, so the world's words are a token or two in all six languages.
    """
    from regionreasoner.tools.generate.prompting import gemma_bpe_tokenizer

    return gemma_bpe_tokenizer(captions, vocab_size=vocab_size)
