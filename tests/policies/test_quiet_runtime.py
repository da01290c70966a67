r"""A policy call raises no DeprecationWarning or FutureWarning: the project uses current library APIs.

Filtering by ``module=r"regionreasoner\..*"`` would miss the point: a library warns with ``stacklevel`` pointing
into its own wrappers (transformers' ``past_key_values`` warning names ``transformers/utils/generic.py``), so the
warning's location says nothing about who made the deprecated call.  Instead every warning raised during the calls
is recorded with its stack, and any deprecation is a failure that shows the innermost project frame that led to it.
"""

from __future__ import annotations

import importlib.util
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from regionreasoner.agent.demo_scene import demo_scene
from regionreasoner.core.images import LoadedImage, load_image
from regionreasoner.policies.base import ImageSlot, Message, PolicyRequest, SamplingParams, TurnConstraint
from regionreasoner.policies.transformers_policy import TransformersPolicy

PROJECT_DIRS = tuple(
    str(Path(importlib.util.find_spec(f"regionreasoner.{name}").origin).parent)  # type: ignore[union-attr,arg-type]
    for name in ("core", "memory", "policies", "tools", "agent")
)


@dataclass
class Raised:
    """One warning raised during the calls, with the stack that raised it."""

    category: type[Warning]
    message: str
    filename: str
    stack: list[traceback.FrameSummary]

    def blamed_frame(self) -> str:
        """The innermost project frame on the stack, or where the warning points when none is."""
        ours = [f for f in self.stack if f.filename.startswith(PROJECT_DIRS)]
        return f"{ours[-1].filename}:{ours[-1].lineno}" if ours else self.filename


@contextmanager
def recorded() -> Iterator[list[Raised]]:
    """Every warning raised inside, each time it is raised (no once-per-location filtering), with its stack."""
    log: list[Raised] = []

    def hook(message: Warning | str, category: type[Warning], filename: str, lineno: int, *_: object) -> None:
        log.append(Raised(category, str(message), f"{filename}:{lineno}", traceback.extract_stack()[:-1]))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = hook
        yield log


@pytest.fixture(scope="module")
def image() -> LoadedImage:
    return load_image(demo_scene()[0])


def request(image: LoadedImage, *, prefix: str = "", constrained: bool, stop: tuple[str, ...] = ()) -> PolicyRequest:
    spec = TurnConstraint(bounds=(840, 840), char_limits={"scene": 30, "focus": 20, "think": 30}, max_objects=1)
    return PolicyRequest(
        messages=(Message("user", (ImageSlot(0), "find the ball")),),
        images=(image,),
        assistant_prefix=prefix,
        stop=stop,
        constraint=spec if constrained else None,
        sampling=SamplingParams(max_new_tokens=200 if constrained else 12),
    )


@pytest.mark.parametrize("family", ["qwen2.5-vl", "qwen3-vl", "llava"])
def test_policy_calls_raise_no_deprecation_warning(
    family: str, image: LoadedImage, tiny_qwen25: Path, tiny_qwen3: Path, tiny_llava: Path
) -> None:
    path = {"qwen2.5-vl": tiny_qwen25, "qwen3-vl": tiny_qwen3, "llava": tiny_llava}[family]
    policy = TransformersPolicy(path, frame="fixed:840x840")
    with recorded() as log:
        policy.complete(request(image, constrained=False))  # free decoding
        piece = policy.complete(request(image, constrained=True, stop=("</scene>",)))  # a constrained piece...
        policy.complete(request(image, constrained=True, prefix=piece.text))  # ...continued from its KV session
        policy.complete_batch([request(image, constrained=False), request(image, constrained=True)])  # a batch
    deprecations = [w for w in log if issubclass(w.category, (DeprecationWarning, FutureWarning))]
    assert not deprecations, "\n".join(
        sorted({f"{w.category.__name__} via {w.blamed_frame()}: {w.message}" for w in deprecations})
    )
