"""Names of the suite's pluggable parts, looked up at the edge (the CLI), each with a dotted-path escape hatch.

A spec is a name of the small dicts below, or ``module:attribute`` naming an object with the needed method, or a
class or function that makes one when called without arguments.  Generators are a folder (NeoBabel's layout,
:class:`regionreasoner.tools.generate.Generator`), ``oracle`` (ground truth of the synthetic prompts) or a dotted
path.  Nothing loads weights here: every backend loads on first use.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from regionreasoner.core.errors import ConfigError
from regionreasoner.evals.generation.embed import (
    HFVQA,
    ExactWorldEmbedder,
    HFImageEmbedder,
    ImageEmbedder,
    VQAModel,
)
from regionreasoner.evals.generation.exact import ExactWorldDetector
from regionreasoner.evals.generation.geneval import ColourClassifier, ObjectDetector
from regionreasoner.evals.generation.meta import GenEvalPrompt
from regionreasoner.evals.generation.run import ImageGenerator

__all__ = [
    "COLOUR_CLASSIFIERS",
    "DETECTORS",
    "EMBEDDERS",
    "VQA_MODELS",
    "load_colours",
    "load_detector",
    "load_embedders",
    "load_generator",
    "load_vqa",
]

_T = TypeVar("_T")
_DOTTED = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def _resolve(spec: str, kind: type[_T], what: str) -> _T:
    """The object a ``module:attribute`` spec names (called without arguments when it is a class or factory)."""
    module_name, _, attribute = spec.partition(":")
    try:
        obj: object = importlib.import_module(module_name)
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import {what} {spec!r}: {exc}", hint="write module.path:attribute") from exc
    if not isinstance(obj, kind) or isinstance(obj, type):
        if not callable(obj):
            raise ConfigError(f"{spec!r} is not a {what}", hint=f"name an object, class or factory of a {what}")
        obj = obj()
    if not isinstance(obj, kind):
        raise ConfigError(f"{spec!r} made a {type(obj).__name__}, not a {what}", hint=f"see {kind.__name__}")
    return obj


def _needs(path: str | None, name: str, option: str) -> str:
    if not path:
        raise ConfigError(f"{name} needs a checkpoint", hint=f"pass {option} FOLDER (or a hub id)")
    return path


def _exact(path: str | None, device: str) -> ExactWorldDetector:
    return ExactWorldDetector()


def _zero_shot(path: str | None, device: str) -> ObjectDetector:
    from regionreasoner.evals.generation.backends import ZeroShotDetector

    return ZeroShotDetector(_needs(path, "this detector", "--detector-path"), device=device)


def _grounding_dino(path: str | None, device: str) -> ObjectDetector:
    from regionreasoner.evals.generation.backends import GroundingDinoGenEvalDetector

    return GroundingDinoGenEvalDetector(_needs(path, "grounding-dino", "--detector-path"), device=device)


def _mask2former(path: str | None, device: str) -> ObjectDetector:
    from regionreasoner.evals.generation.backends import Mask2FormerDetector

    return Mask2FormerDetector(_needs(path, "mask2former", "--detector-path"), device=device)


def _clip(path: str | None, device: str) -> ColourClassifier:
    from regionreasoner.evals.generation.backends import ClipColourClassifier

    return ClipColourClassifier(_needs(path, "the clip colour classifier", "--colours-path"), device=device)


DETECTORS: dict[str, Callable[[str | None, str], ObjectDetector]] = {
    "exact": _exact,
    "owlvit": _zero_shot,
    "owlv2": _zero_shot,
    "grounding-dino": _grounding_dino,
    "mask2former": _mask2former,
}
"""GenEval detectors by name: the synthetic world's exact one, or a transformers checkpoint (``--detector-path``)."""

COLOUR_CLASSIFIERS: dict[str, Callable[[str | None, str], ColourClassifier]] = {"exact": _exact, "clip": _clip}
"""Colour classifiers by name; ``clip`` takes any CLIP-family checkpoint (CLIP, SigLIP)."""

VQA_MODELS: dict[str, Callable[[str | None, str], VQAModel]] = {
    "exact": lambda path, device: _exact_vqa(),
    "hf": lambda path, device: HFVQA(_needs(path, "the VQA model", "--vqa-path"), device=device),
}
"""VQA models by name: the synthetic world's exact answers, or any AutoModelForVisualQuestionAnswering."""

EMBEDDERS: dict[str, Callable[[str | None, str], ImageEmbedder]] = {
    "exact": lambda path, device: ExactWorldEmbedder(),
    "dinov2": lambda path, device: HFImageEmbedder(
        _needs(path, "dinov2", "--embedder dinov2=PATH"), device=device, kind="dinov2"
    ),
    "clip": lambda path, device: HFImageEmbedder(
        _needs(path, "clip", "--embedder clip=PATH"), device=device, kind="clip"
    ),
}
"""Image embedders by name (``NAME=PATH`` on the command line)."""


def _exact_vqa() -> VQAModel:
    from regionreasoner.evals.generation.world_dpg import ExactWorldVQA

    return ExactWorldVQA()


def _lookup(
    table: dict[str, Callable[[str | None, str], _T]],
    spec: str,
    kind: type[_T],
    what: str,
    path: str | None,
    device: str,
) -> _T:
    if spec in table:
        return table[spec](path, device)
    if _DOTTED.match(spec):
        return _resolve(spec, kind, what)
    raise ConfigError(f"unknown {what} {spec!r}", hint=f"use one of {', '.join(table)}, or module:attribute")


def load_detector(spec: str, path: str | None = None, *, device: str = "cpu") -> ObjectDetector:
    """A GenEval detector: a name of :data:`DETECTORS` (with ``path``) or ``module:attribute``."""
    return _lookup(DETECTORS, spec, ObjectDetector, "detector", path, device)  # type: ignore[type-abstract]


def load_colours(spec: str, path: str | None = None, *, device: str = "cpu") -> ColourClassifier:
    """A colour classifier: a name of :data:`COLOUR_CLASSIFIERS` (with ``path``) or ``module:attribute``."""
    return _lookup(COLOUR_CLASSIFIERS, spec, ColourClassifier, "colour classifier", path, device)  # type: ignore[type-abstract]


def load_vqa(spec: str, path: str | None = None, *, device: str = "cpu") -> VQAModel:
    """A VQA model: a name of :data:`VQA_MODELS` (with ``path``) or ``module:attribute``."""
    return _lookup(VQA_MODELS, spec, VQAModel, "VQA model", path, device)  # type: ignore[type-abstract]


def load_embedders(specs: Sequence[str], *, device: str = "cpu") -> dict[str, ImageEmbedder]:
    """Embedders by label from ``NAME[=PATH]`` specs (``dinov2=/ckpt``, ``exact``, ``mine=pkg.mod:Embedder``)."""
    out: dict[str, ImageEmbedder] = {}
    for spec in specs:
        label, _, rest = spec.partition("=")
        if rest and _DOTTED.match(rest):
            out[label] = _resolve(rest, ImageEmbedder, "embedder")  # type: ignore[type-abstract]
        else:
            out[label] = _lookup(EMBEDDERS, label, ImageEmbedder, "embedder", rest or None, device)  # type: ignore[type-abstract]
    if not out:
        raise ConfigError("no embedder given", hint="pass --embedder exact, dinov2=PATH or clip=PATH")
    return out


def load_generator(spec: str, *, known: Iterable[GenEvalPrompt] = (), device: str | None = None) -> ImageGenerator:
    """A generator: a NeoBabel folder, ``oracle`` (draws the ground truth of the ``known`` prompts) or a dotted path.

    A folder loads lazily (:class:`regionreasoner.tools.generate.Generator`); raises :class:`ConfigError` for a
    spec that is none of these.
    """
    if spec == "oracle":
        from regionreasoner.evals.generation.world_render import WorldOracle

        return WorldOracle(known)
    if Path(spec).is_dir():
        from regionreasoner.tools.generate import Generator

        return Generator(spec, device=device)
    if _DOTTED.match(spec):
        return _resolve(spec, ImageGenerator, "generator")  # type: ignore[type-abstract]
    raise ConfigError(f"--generator {spec!r} is not a folder", hint="pass a generator folder, 'oracle' or module:attr")
