"""The Python API: ``RegionAgent`` and the dialogues it holds.

    from regionreasoner.agent import RegionAgent
    agent = RegionAgent.from_pretrained("path/or/hf-id", memory="sqlite:///rr.db")
    dlg = agent.dialogue("photo.jpg")            # or agent.dialogue(id=...) to continue one
    turn = dlg.ask("find the dog lying down")    # Turn: .regions (R1...), .sections, .citations, .status
    dlg.ask("the standing dog next to R1")
    dlg.regions(); dlg.render()                  # PIL image with overlays
    for event in dlg.stream("..."): ...          # section deltas for UIs
    dlg.versions()                               # image versions (generate, inpaint): later turns run on the newest

Each ``ask`` runs the turn graph once on the dialogue's thread; checkpoints go to a SQLite file beside the memory
(or Postgres, by URL), so a dialogue resumes in a new process with ``agent.dialogue(id=...)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from langchain_core.runnables import RunnableConfig
from PIL import Image

from regionreasoner.agent.checkpoint import make_checkpointer
from regionreasoner.agent.context import DEFAULT_MODEL, AppContext, Context, load_policy
from regionreasoner.agent.graph import builder
from regionreasoner.agent.render import render_regions
from regionreasoner.agent.state import InputState
from regionreasoner.agent.tool_setup import agent_tools
from regionreasoner.core.errors import ConfigError, InputError, PolicyError
from regionreasoner.core.images import ImageSource
from regionreasoner.core.types import ImageVersion, ProblemKind, Region, Turn
from regionreasoner.memory import RegionMemory
from regionreasoner.policies.base import Policy
from regionreasoner.tools.base import Detector, ImageGenerator, Segmenter, Tool

__all__ = ["DialogueSession", "RegionAgent", "StreamEvent"]


@dataclass(frozen=True)
class StreamEvent:
    """One event of :meth:`DialogueSession.stream`: a text delta of a section, a finished node, or the turn."""

    kind: Literal["delta", "node", "turn"]
    section: str | None = None
    text: str = ""
    node: str | None = None
    turn: Turn | None = None


class RegionAgent:
    """A policy, a region memory, optional tools, and the compiled turn graph with its checkpointer.

    ``segmenter``: a Segmenter, or a SAM2 checkpoint (folder or hub id) that ``ground`` masks every region with.
    ``detector``: a Detector or a Grounding DINO checkpoint, offered to ``<think>`` as the ``detect`` tool; ``zoom``
    offers the ``zoom`` tool; ``generator``: an ImageGenerator or a NeoBabel generator folder, offered as the
    ``generate`` and ``inpaint`` tools (their images become new versions of the dialogue's image); ``tools``: more
    tools.  Checkpoints load on first use, never here.
    ``memory``: a :class:`RegionMemory` or its URL (None: the default SQLite file).  ``checkpoints``: a path, a
    Postgres URL, a LangGraph checkpointer, or None (a ``checkpoints.db`` beside a SQLite memory).  Remaining keyword
    arguments set :class:`~regionreasoner.agent.context.Context` fields (``max_new_tokens``, ``char_limits``, ...).
    """

    def __init__(
        self,
        policy: Policy,
        *,
        memory: RegionMemory | str | None = None,
        segmenter: Segmenter | str | Path | None = None,
        detector: Detector | str | Path | None = None,
        zoom: bool = False,
        generator: ImageGenerator | str | Path | None = None,
        tools: list[Tool] | None = None,
        checkpoints: str | Path | Any | None = None,
        tracer_provider: Any | None = None,
        durability: Literal["sync", "async", "exit"] = "exit",
        **context: Any,
    ) -> None:
        settable = {f.name for f in fields(Context)}
        unknown = sorted(set(context) - settable)
        if unknown:
            raise ConfigError(
                f"RegionAgent got unknown keyword arguments {unknown}",
                hint="it takes memory, segmenter, detector, zoom, generator, tools, checkpoints, tracer_provider, "
                f"durability and the Context "
                f"fields {sorted(settable)}",
            )
        self.policy = policy
        self.memory = memory if isinstance(memory, RegionMemory) else RegionMemory(memory)
        segmenter, tools = agent_tools(segmenter, detector, zoom, tools, generator)
        self.segmenter = segmenter
        self.checkpointer = make_checkpointer(self.memory, checkpoints)
        self.durability = durability
        self.graph = builder.compile(checkpointer=self.checkpointer, name="regionreasoner")
        self.context = AppContext(
            policy=policy,
            memory=self.memory,
            segmenter=segmenter,
            tools=tools,
            tracer_provider=tracer_provider,
            **context,
        )
        names = [t.name for t in self.context.tools]
        if len(set(names)) != len(names):
            raise ConfigError(f"tools {names} have repeated names", hint="give each tool its own name")

    @classmethod
    def from_pretrained(
        cls,
        model: str | Path = DEFAULT_MODEL,
        *,
        frame: str | None = None,
        prompt_template: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        **kwargs: Any,
    ) -> RegionAgent:
        """Load a checkpoint with TransformersPolicy (default: :data:`~regionreasoner.policies.embedded.DEFAULT_MODEL`).

        ``model`` is a folder or hub id, ``"embedded"`` (a small model trained here on the synthetic shapes world,
        docs/embedded-model.md) or ``"tiny"`` (the untrained tiny model).  Untrained weights (``"tiny"``) are
        loaded with a logged warning that says how to point at real ones.
        ``segmenter="facebook/sam2.1-hiera-large"``, ``detector="IDEA-Research/grounding-dino-tiny"`` and
        ``zoom=True`` and ``generator="path/to/neobabel"`` (see :class:`RegionAgent`) load their weights lazily, on
        first use.
        """
        policy = load_policy(str(model), frame=frame, prompt_template=prompt_template, device=device, dtype=dtype)
        return cls(policy, **kwargs)

    def dialogue(
        self,
        image: ImageSource | None = None,
        *,
        id: str | None = None,
        title: str | None = None,
        owner: str | None = None,
    ) -> DialogueSession:
        """Start a dialogue about ``image``, or continue dialogue ``id`` (its image comes from memory).

        ``owner`` (a principal name, as the HTTP server derives from a token) is stored with a new dialogue.
        """
        if image is None and id is None:
            raise InputError("agent.dialogue() needs an image to start one, or id=... to continue one")
        if image is None:
            assert id is not None
            return DialogueSession(self, self.memory.dialogue(id).id)
        info = self.memory.put_image(image)
        return DialogueSession(self, self.memory.create_dialogue(info.hash, id=id, title=title, owner=owner).id)

    def close(self) -> None:
        """Close the memory and the policy."""
        self.policy.close()
        self.memory.close()

    def __enter__(self) -> RegionAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_StreamMode = Literal["custom", "updates"]


def _stream_modes() -> list[_StreamMode]:
    # A list (not a tuple): LangGraph yields (mode, chunk) pairs only for list-valued stream modes.
    return ["custom", "updates"]


class DialogueSession:
    """A dialogue of a :class:`RegionAgent`: ask questions, read regions, render overlays."""

    def __init__(self, agent: RegionAgent, dialogue_id: str) -> None:
        self.agent = agent
        self.id = dialogue_id

    def _config(self) -> RunnableConfig:
        return {"configurable": {"thread_id": self.id}}

    def _input(self, question: str, image: ImageSource | None, key: str | None) -> InputState:
        # The question and key are checked (InputState raises InputError) before the image is stored, so a refused
        # call stores nothing; the graph's resolve node checks the rest (length, cited names and boxes) before any
        # model call.  The dialogue exists in memory already (agent.dialogue created it), so resolve finds its image.
        checked = InputState(question=question, key=key)
        if image is None:
            return checked
        return InputState(question=question, image=self.agent.memory.put_image(image).hash, key=key)

    def ask(self, question: str, *, image: ImageSource | None = None, key: str | None = None) -> Turn:
        """Run one turn and return it as stored (a failed turn is returned too, with its problems).

        When the policy itself fails (server down, timeouts, a backend bug), the turn is recorded as failed (problem
        ``policy_fault``, stored without its key) and PolicyError is raised with ``.turn`` set to it: asking again
        with the same ``key`` runs the turn again once the cause is fixed.

        Bad input raises a :class:`~regionreasoner.core.errors.RegionReasonerError` subclass before any model call,
        with nothing stored: ``InputError`` (not a string, a lone surrogate or NUL, a question longer than the
        server's ``max_question_chars``, ``R0``, a malformed ``bbox=[...]``), ``GeometryError`` (an inline box that
        is inverted or outside the image), ``RegionNotFoundError``, ``TurnConflictError``.
        """
        out = self.agent.graph.invoke(
            self._input(question, image, key),
            self._config(),
            context=self.agent.context,
            durability=self.agent.durability,
        )
        turn = out["turn"]
        assert isinstance(turn, Turn)
        _raise_if_faulted(turn)
        return turn

    def stream(
        self, question: str, *, image: ImageSource | None = None, key: str | None = None
    ) -> Iterator[StreamEvent]:
        """Run one turn, yielding section text deltas as they are generated, node ends, then the turn."""
        turn: Turn | None = None
        for mode, chunk in self.agent.graph.stream(
            self._input(question, image, key),
            self._config(),
            context=self.agent.context,
            stream_mode=_stream_modes(),
            durability=self.agent.durability,
        ):
            if not isinstance(chunk, dict):
                continue
            if mode == "custom" and chunk.get("type") == "delta":
                yield StreamEvent(kind="delta", section=chunk["section"], text=chunk["text"])
            elif mode == "updates":
                for node, update in chunk.items():
                    yield StreamEvent(kind="node", node=node)
                    if isinstance(update, dict) and isinstance(update.get("turn"), Turn):
                        turn = update["turn"]
        if turn is not None:
            yield StreamEvent(kind="turn", turn=turn)
            _raise_if_faulted(turn)

    def turns(self) -> list[Turn]:
        """The stored turns, first first."""
        return self.agent.memory.turns(self.id)

    def regions(self) -> list[Region]:
        """Every region of the dialogue, R1 first (original pixels)."""
        return self.agent.memory.regions(self.id)

    def versions(self) -> list[ImageVersion]:
        """The dialogue's image versions, 0 (the image it started on) first; later turns run on the newest."""
        return self.agent.memory.versions(self.id)

    def inpaint(self, region: str, prompt: str, *, seed: int | None = None) -> ImageVersion:
        """Repaint ``region`` of the newest image after ``prompt`` with the agent's generator; the new version."""
        from regionreasoner.agent.edit import inpaint_region

        return inpaint_region(self.agent, self.id, region, prompt, seed=seed)

    def image(self, *, version: int | None = None) -> Image.Image:
        """Image version ``version`` (default: the newest, which the next turn runs on)."""
        return self.agent.memory.load_image(self._image_hash(version)).image

    def _image_hash(self, version: int | None) -> str:
        if version is None:
            return self.agent.memory.latest_image(self.id)
        versions = self.versions()
        if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version < len(versions):
            raise InputError(
                f"dialogue {self.id!r} has no image version {version!r}", hint=f"versions are 0..{len(versions) - 1}"
            )
        return versions[version].image

    def render(self, *, turn: int | None = None, version: int | None = None, mask_alpha: float = 0.4) -> Image.Image:
        """An image of the dialogue with the regions found on it drawn (a region belongs to the image it was found on).

        Default: the newest image version.  ``version``: that version.  ``turn`` (0-based): the image that turn ran
        on, with the regions found on it up to that turn (that turn's own drawn thicker).
        """
        if turn is not None and version is not None:
            raise InputError("render() takes turn= or version=, not both", hint="pick one")
        regions = self.regions()
        highlight: list[str] = []
        if turn is not None:
            image_hash = self.agent.memory.turn(self.id, turn).image
            regions = [r for r in regions if r.turn <= turn]
            highlight = [r.id for r in regions if r.turn == turn]
        else:
            image_hash = self._image_hash(version)
        image = self.agent.memory.load_image(image_hash).image
        on_image = [r for r in regions if r.image == image_hash]
        return render_regions(image, on_image, mask_alpha=mask_alpha, highlight=highlight)


def _raise_if_faulted(turn: Turn) -> None:
    """Raise PolicyError (``.turn`` set) when ``turn`` was ended by a policy fault; it is stored already."""
    faults = [p for p in turn.problems if p.kind is ProblemKind.POLICY_FAULT]
    if not faults:
        return
    error = PolicyError(
        f"{faults[0].message} (turn {turn.index + 1} of dialogue {turn.dialogue_id!r} is recorded as failed)",
        hint="fix the policy or its server, then ask again (with the same key, if you gave one)",
    )
    error.turn = turn
    raise error
