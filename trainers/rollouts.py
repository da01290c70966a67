"""Agentic rollouts: TRL's ``rollout_func`` that runs the project's own turn graph on the model being trained.

Each prompt TRL hands over (already repeated ``num_generations`` times) becomes one turn of a fresh dialogue through
:class:`~regionreasoner.agent.api.RegionAgent`: resolve, scene, focus, think with its bounded tool loop, the
grammar-constrained answer, ground, remember.  So the policy is trained inside the graph it serves in, with the
same prompt template, frames, constraints and tools.  What TRL gets back per turn:

* ``prompt_ids`` and ``completion_ids``: exactly the tokens the model conditioned on (read from the policy's KV
  session, :meth:`~regionreasoner.policies.transformers_policy.TransformersPolicy.held_tokens`), the assistant
  message closed with the end-of-turn token;
* ``env_mask``: 1 for tokens the model generated, 0 for the environment's (tool responses, the closing token), so
  TRL leaves them out of the loss;
* ``logprobs``: NaN per token (unused without vLLM's importance-sampling correction; TRL recomputes log-probs);
* ``turn_status``, ``turn_sections``, ``turn_regions`` (answer boxes in the policy's frame) and ``turn_problems``:
  extra columns every reward function receives, so rewards see the turn as the agent parsed it.

Rollouts run one turn at a time on the trainer's model (the weights of the current step); zoom is refused here:
TRL scores a completion with the dataset's images only, and a zoom adds one.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.prompts import get_prompt
from regionreasoner.policies.base import Completion, DeltaCallback, Policy, PolicyRequest
from regionreasoner.tools.base import Tool
from regionreasoner.trainers.config import GRPORunConfig

__all__ = ["GraphRollout", "question_of"]


def question_of(text: str, template: str) -> str:
    """The question inside a user text rendered with prompt ``template`` (its image placeholder removed)."""
    tpl = get_prompt(template)
    marker = "\x00"
    rendered = tpl.render(marker)
    if tpl.image_placeholder:
        rendered = rendered.replace(tpl.image_placeholder, "", 1)
    head, _, tail = rendered.partition(marker)
    if not (text.startswith(head) and text.endswith(tail)):
        raise ConfigError(
            f"a prompt does not follow the {template!r} template",
            hint="build the data with `regionreasoner-train data` (its prompts use that template)",
        )
    return text[len(head) : len(text) - len(tail)]


class _Recorder(Policy):
    """Forwards to ``inner`` and keeps each (request, completion) of the current turn."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.frame = inner.frame
        self.name = inner.name
        self.prompt_template = inner.prompt_template
        self.calls: list[tuple[PolicyRequest, Completion]] = []

    def complete(self, request: PolicyRequest, *, on_delta: DeltaCallback | None = None) -> Completion:
        if len(request.images) > 1:
            raise ConfigError("zoom is not supported in training rollouts", hint="train with tools that return text")
        completion: Completion = self.inner.complete(request, on_delta=on_delta)
        self.calls.append((request, completion))
        return completion

    def complete_batch(self, requests: Sequence[PolicyRequest]) -> list[Completion]:
        return [self.complete(r) for r in requests]


def _user_parts(prompt: Sequence[dict[str, Any]]) -> tuple[Any, str]:
    """The image and the text of the last user message of a TRL conversational prompt."""
    user = [m for m in prompt if m.get("role") == "user"][-1]
    content = user["content"]
    if isinstance(content, str):
        raise ConfigError("graph rollouts need prompts with an image block", hint="use a multimodal dataset")
    images = [b.get("image") for b in content if b.get("type") == "image" and b.get("image") is not None]
    texts = [str(b.get("text", "")) for b in content if b.get("type") == "text"]
    if len(images) != 1:
        raise ConfigError(f"a prompt has {len(images)} images; graph rollouts take one", hint="one image per round")
    return images[0], "".join(texts)


def env_mask_of(completion_ids: Sequence[int], generated: Sequence[Sequence[int]]) -> list[int]:
    """1 where ``completion_ids`` holds the ``generated`` spans (in order), 0 elsewhere (text the graph fed).

    The spans are found left to right: each generated piece starts at the first position, after the previous
    one, where its tokens appear; the tokens in between were fed by the environment (a tool response).
    """
    mask = [0] * len(completion_ids)
    pos = 0
    ids = list(completion_ids)
    for span in generated:
        span = list(span)
        if not span:
            continue
        at = next((i for i in range(pos, len(ids) - len(span) + 1) if ids[i : i + len(span)] == span), None)
        if at is None:
            raise ConfigError("a generated piece is missing from the session's tokens", hint="a bug: report it")
        mask[at : at + len(span)] = [1] * len(span)
        pos = at + len(span)
    return mask


class GraphRollout:
    """``rollout_func(prompts, trainer)`` for TRL's GRPOTrainer, running each prompt as one agent turn.

    ``tools``: what ``<think>`` may call (text tools only); ``constrained``: grammar-constrained turns (the
    default, as served); ``template``: the prompt template the data was built with.
    """

    def __init__(
        self,
        cfg: GRPORunConfig,
        processor: Any,
        *,
        tools: Sequence[Tool] = (),
        constrained: bool = True,
        template: str = "regionreasoner-train",
        frame: str = "fixed:840x840",
        char_limits: dict[str, int] | None = None,
    ) -> None:
        self.cfg = cfg
        self.processor = processor
        self.tools = list(tools)
        self.constrained = constrained
        self.template = template
        self.frame = frame
        self.char_limits = char_limits
        self._policy: Any = None
        self._folder = Path(tempfile.mkdtemp(prefix="rr-rollouts-"))
        self.calls = 0

    def _serving(self, trainer: Any) -> Any:
        """The TransformersPolicy serving the trainer's current weights (built once, its model swapped in)."""
        from regionreasoner.policies.transformers_policy import TransformersPolicy
        from regionreasoner.trainers.processing import model_path

        if self._policy is None:
            self._policy = TransformersPolicy(
                model_path(self.cfg.model), frame=self.frame, prompt_template=self.template, device="cpu"
            )
        model = trainer.accelerator.unwrap_model(trainer.model)
        self._policy.use_model(model)
        self._policy.device = str(next(model.parameters()).device)
        return self._policy

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, list[Any]]:
        """One turn per prompt; see the module docstring for what is returned."""
        import torch

        from regionreasoner.agent.api import RegionAgent

        self.calls += 1
        policy = self._serving(trainer)
        recorder = _Recorder(policy)
        memory = f"sqlite:///{self._folder}/rollout-{self.calls}.db"
        context: dict[str, Any] = {
            "max_new_tokens": self.cfg.max_completion_length,
            "temperature": self.cfg.temperature,
            "constrained": self.constrained,
        }
        if self.char_limits:
            context["char_limits"] = self.char_limits
        end = int(policy.tokenizer.convert_tokens_to_ids("<|im_end|>"))
        out: dict[str, list[Any]] = {
            k: []
            for k in (
                "prompt_ids",
                "completion_ids",
                "logprobs",
                "env_mask",
                "turn_status",
                "turn_sections",
                "turn_regions",
                "turn_problems",
            )
        }
        was_training = trainer.model.training
        trainer.model.eval()
        try:
            with RegionAgent(recorder, memory=memory, tools=list(self.tools), **context) as agent, torch.no_grad():
                for prompt in prompts:
                    image, text = _user_parts(prompt)
                    recorder.calls.clear()
                    dialogue = agent.dialogue(image)
                    turn = dialogue.ask(question_of(text, self.template))
                    held = policy.held_tokens(recorder.calls[-1][0]) if recorder.calls else None
                    if held is None:
                        raise ConfigError("the policy kept no session for the turn", hint="a bug: report it")
                    ids, prompt_len = held
                    completion = [*ids[prompt_len:], end]  # the message closed, as the chat template closes it
                    generated = [c.token_ids or () for _, c in recorder.calls]
                    mask = [*env_mask_of(completion[:-1], generated), 0]
                    out["prompt_ids"].append(ids[:prompt_len])
                    out["completion_ids"].append(completion)
                    out["logprobs"].append([math.nan] * len(completion))
                    out["env_mask"].append(mask)
                    out["turn_status"].append(turn.status.value)
                    out["turn_sections"].append(turn.sections.model_dump())
                    out["turn_regions"].append([_model_box(policy, r.box, image.size) for r in turn.regions])
                    out["turn_problems"].append([p.kind.value for p in turn.problems])
        finally:
            if was_training:
                trainer.model.train()
        return out


def _model_box(policy: Any, box: Any, size: tuple[int, int]) -> list[int]:
    """A region's box (original pixels) in the policy's frame, as the answer wrote it."""
    return list(policy.frame.box_to_model(box, size))
