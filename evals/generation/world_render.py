"""Ground-truth pictures of synthetic prompts: shapes drawn with the world's own code on its background.

:func:`layout_for` places what a GenEval prompt's ``include`` asks for (random free colours and textures, objects
apart so none touches another, positions well beyond GenEval's 0.1 shrink); :func:`render_objects` draws any list of
:class:`Placed` shapes.  :class:`WorldOracle` is a generator that answers every known prompt with its ground truth:
the exact scorer gives it 1.0, which checks a whole evaluation pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.world.render import Placed, render_objects
from regionreasoner.core.world.scene import COLOURS, KINDS, TEXTURES
from regionreasoner.evals.generation.meta import GenEvalPrompt

__all__ = ["Placed", "WorldOracle", "layout_for", "render_objects"]

_EXTENT = 1.25
"""Every kind lies within this many radii of its centre (a square's corner: 0.85·√2)."""


def layout_for(
    prompt: GenEvalPrompt,
    *,
    size: tuple[int, int] = (256, 256),
    seed: int = 0,
    textures: Sequence[str] = TEXTURES,
) -> list[Placed]:
    """Shapes that satisfy ``prompt``'s ``include`` (and so its ``exclude``), deterministic in ``seed``.

    Clause colours are kept; the others, and textures (from ``textures``), are drawn at random.  Raises
    :class:`ConfigError` for classes that are not world kinds or a size too small to place them apart.
    """
    width, height = size
    rng = np.random.default_rng([seed, width, height])
    short = min(width, height)
    total = sum(c.count for c in prompt.include)
    # A position clause puts its objects on one side of the image and the cited group's on the other.
    roles: dict[int, tuple[str, bool]] = {}
    for i, clause in enumerate(prompt.include):
        if clause.position is not None:
            relation, group = clause.position
            roles[i], roles[group] = (relation, True), (relation, False)
    placed: list[Placed] = []
    for i, clause in enumerate(prompt.include):
        if clause.cls not in KINDS:
            raise ConfigError(f"class {clause.cls!r} is not a world kind", hint=f"use one of {', '.join(KINDS)}")
        for _ in range(clause.count):
            colour = clause.color or list(COLOURS)[int(rng.integers(len(COLOURS)))]
            if colour not in COLOURS:
                raise ConfigError(f"colour {colour!r} is not a world colour", hint=f"use one of {', '.join(COLOURS)}")
            texture = textures[int(rng.integers(len(textures)))]
            for _attempt in range(400):
                r = float(rng.uniform(0.07, 0.12 if total <= 2 else 0.1)) * short
                lo, hi = _region(roles.get(i), r, (width, height))
                cx, cy = float(rng.uniform(lo[0], hi[0])), float(rng.uniform(lo[1], hi[1]))
                if all(np.hypot(cx - o.cx, cy - o.cy) >= _EXTENT * (r + o.radius) + 3 for o in placed):
                    break
            else:
                raise ConfigError(f"could not place {total} shapes in {width}x{height}", hint="use a larger size")
            placed.append(Placed(clause.cls, colour, cx, cy, r, texture))
    return placed


def _region(
    role: tuple[str, bool] | None, r: float, size: tuple[int, int]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """The box (lo, hi) a centre may take: anywhere, or the side of a ``(relation, is_target)`` role.

    A target "left of" its anchor has its centre between 12% and 38% of the width, the anchor between 62% and 88%,
    both within 8% of the width of the middle row, so the relation holds with a wide margin whatever the radii.
    """
    width, height = size
    m = _EXTENT * r + 2
    if role is None:
        return (m, m), (width - m, height - m)
    relation, target = role
    first = target == (relation in ("left of", "above"))  # in the left (top) part of the image
    along, across = (width, height) if relation in ("left of", "right of") else (height, width)
    a_lo, a_hi = (max(m, 0.12 * along), 0.38 * along) if first else (0.62 * along, min(along - m, 0.88 * along))
    c_lo, c_hi = max(m, across / 2 - 0.08 * along), min(across - m, across / 2 + 0.08 * along)
    if relation in ("left of", "right of"):
        return (a_lo, c_lo), (a_hi, c_hi)
    return (c_lo, a_lo), (c_hi, a_hi)


class WorldOracle:
    """A "generator" that draws the ground truth of known synthetic prompts (others: an empty background).

    ``prompts`` are the metadata it knows (any languages); ``size`` is (width, height) of its images.
    """

    def __init__(self, prompts: Iterable[GenEvalPrompt], *, size: tuple[int, int] = (256, 256)) -> None:
        self.size = size
        self.known = {p.prompt: p for p in prompts}

    def generate(self, prompts: Sequence[str], *, seed: int | None = None) -> list[Image.Image]:
        """One image per prompt; ``seed`` (None: 0) and the sample's position pick colours, textures, places."""
        out = []
        for k, text in enumerate(prompts):
            meta = self.known.get(text)
            objects = [] if meta is None else layout_for(meta, size=self.size, seed=(seed or 0) * 7919 + k)
            out.append(render_objects(objects, self.size))
        return out
