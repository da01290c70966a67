"""``TransformersPolicy``: a local vision-language model through transformers, with KV reuse between pieces.

Loads anything ``AutoModelForImageTextToText`` loads (Qwen2-VL, Qwen2.5-VL, Qwen3-VL natively; other families
through their processor) from a local folder or a hub id, without torchvision.  The four pieces of a turn share one
KV cache: a **session** keyed by the prompt (tokens + image hashes) keeps the tokens, the cache and the constraint
state, and a request whose ``assistant_prefix`` extends what the session holds only feeds the difference.  A prefix
that diverges is handled by cropping the cache to the longest common token prefix.
"""

from __future__ import annotations

import json
import logging
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from cachetools import LRUCache

from regionreasoner.core.errors import (
    ConfigError,
    DependencyMissingError,
    ModelLoadError,
    PolicyError,
)
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
from regionreasoner.policies.constraints import GrammarCache, GrammarMachine, TokenConstraint, TurnMachine
from regionreasoner.policies.decoding import Row, RowCall, run_rows
from regionreasoner.policies.families import checkpoint_folder, derive_frame, family_for, resolve_prompt_template
from regionreasoner.policies.hf_inputs import EncodedPrompt, PromptEncoder
from regionreasoner.policies.tiny import is_untrained_checkpoint

__all__ = ["TransformersPolicy"]

logger = logging.getLogger(__name__)


@dataclass
class _Session:
    """One turn's KV session: the row (tokens, how many are in the cache, constraint state) and its cache.

    Invariant: ``cache`` holds exactly the keys and values of ``row.ids[: row.fed]``.
    """

    row: Row
    cache: Any


def _drop(cache: Any, n: int) -> None:
    """Remove the last ``n`` positions from a transformers cache (``crop`` takes a negative count)."""
    if n > 0:
        cache.crop(-n)


def _call_seed(request: PolicyRequest, key: str) -> int | None:
    """A per-call seed from the request's seed and content: reproducible, and different for different requests."""
    if request.sampling.seed is None:
        return None
    return (zlib.crc32((key + request.assistant_prefix).encode()) ^ request.sampling.seed) & 0xFFFFFFFF


_LOAD_HINT = (
    "pass a local checkpoint folder (config.json, *.safetensors, tokenizer files), or a hub id with "
    "network access and HF_HUB_OFFLINE unset; `regionreasoner demo` builds a tiny offline one"
)


def _load_error(
    model: str, exc: Exception, *, what: str = "model", where: object = None, hint: str = _LOAD_HINT
) -> ModelLoadError:
    """A ModelLoadError for ``exc`` (raised by transformers), in one line, naming the file or folder it read."""
    subject = f"model {model!r}" if what == "model" else f"{what} of {model!r}"
    source = f" from {where}" if where else ""
    return ModelLoadError(f"cannot load {subject}{source}: {' '.join(str(exc).split())}", hint=hint)


class TransformersPolicy(Policy):
    """A transformers VLM policy; see the module docstring.

    ``frame`` overrides the checkpoint's coordinate frame (see :mod:`~regionreasoner.policies.families`),
    ``device`` defaults to CUDA when available, ``dtype`` to bfloat16 on CUDA and float32 on CPU.  ``sessions``
    bounds how many turns' KV caches are kept (least recently used dropped).  ``section_limits`` says how a
    section's character limit is enforced: ``"mask"`` (only tokens starting with ``<`` once the limit is reached;
    compiles instantly) or ``"grammar"`` (a bounded repetition, exactly as the engine backends do; a few seconds of
    compiling per limit with a 150k vocabulary).  ``max_model_len`` is the context length in tokens (default: the
    model config's ``max_position_embeddings``): a prompt that does not fit raises
    :class:`~regionreasoner.core.errors.PromptTooLongError` before any generation, and ``max_new_tokens`` is clamped
    to the room the prompt and prefix leave (docs/policies.md, "Context length").
    """

    def __init__(
        self,
        model: str | Path,
        *,
        frame: Frame | str | None = None,
        prompt_template: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        attn_implementation: str | None = None,
        sessions: int = 4,
        section_limits: Literal["mask", "grammar"] = "mask",
        max_model_len: int | None = None,
    ) -> None:
        if sessions < 1:
            raise ConfigError(f"sessions={sessions}: set it >= 1")
        if max_model_len is not None and max_model_len < 2:
            raise ConfigError(f"max_model_len={max_model_len}: set it >= 2 tokens, or leave it unset (the config's)")
        if section_limits not in ("mask", "grammar"):
            raise ConfigError(f"section_limits={section_limits!r}: use 'mask' or 'grammar'")
        self.section_limits = section_limits
        try:
            import torch
            from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - core dependencies
            raise DependencyMissingError(
                "TransformersPolicy needs torch and transformers: pip install regionreasoner"
            ) from exc
        self.name = str(model)
        # Loading: settings first, then the files of a local folder (headers and JSON only, each named when
        # broken: policies/checkpoint_files.py), then transformers; what it raises for a file is a ModelLoadError.
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device_type = torch.device(self.device).type
        except RuntimeError as exc:
            raise ConfigError(f"device={self.device!r} is not a torch device", hint="use cpu, cuda or cuda:N") from exc
        if device_type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"device={self.device!r} but no CUDA GPU is available", hint="use device='cpu'")
        if dtype is not None and not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ConfigError(f"dtype={dtype!r} is not a torch dtype", hint="use float32, bfloat16 or float16")
        torch_dtype = getattr(torch, dtype) if dtype else (torch.bfloat16 if device_type == "cuda" else torch.float32)
        import pickle

        from safetensors import SafetensorError

        from regionreasoner.policies.checkpoint_files import (
            COPY_AGAIN,
            PICKLE_HINT,
            check_checkpoint_folder,
            local_checkpoint,
        )

        folder = local_checkpoint(model)
        weights = check_checkpoint_folder(folder) if folder is not None else []
        try:
            config = AutoConfig.from_pretrained(str(model))
        except (OSError, ValueError) as exc:
            raise _load_error(str(model), exc, where=folder and folder / "config.json") from exc
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(model))
        except (OSError, ValueError) as exc:
            raise _load_error(str(model), exc, what="the tokenizer", where=folder) from exc
        self.family = family_for(config.model_type)
        configured = getattr(config.get_text_config(), "max_position_embeddings", None)
        self.max_model_len = int(max_model_len or configured or 0) or None
        """Context length in tokens (None: the config names none, nothing is checked)."""
        processor = None
        try:
            if self.family.mrope:
                image_processor = AutoImageProcessor.from_pretrained(str(model))
            else:
                from transformers import AutoProcessor

                processor = AutoProcessor.from_pretrained(str(model))
                image_processor = getattr(processor, "image_processor", None)
        except (OSError, ValueError) as exc:
            where = folder and folder / "preprocessor_config.json"
            raise _load_error(str(model), exc, what="the image processor", where=where) from exc
        files = ", ".join(str(p) for p in weights) or (str(folder) if folder else repr(str(model)))
        try:
            loaded = AutoModelForImageTextToText.from_pretrained(
                str(model), dtype=torch_dtype, attn_implementation=attn_implementation
            )
        except pickle.UnpicklingError as exc:  # torch.load(weights_only=True) met a pickled object: never run it
            raise ModelLoadError(
                f"{files} holds pickled Python objects besides tensors: refused (unpickling could run code)",
                hint=PICKLE_HINT,
            ) from exc
        except SafetensorError as exc:  # a hub snapshot (local folders were checked above)
            raise _load_error(str(model), exc, what="the weights", where=files, hint=COPY_AGAIN) from exc
        except RuntimeError as exc:  # torch: weights that do not fit the config, an unreadable file, no memory
            hint = "use the config.json that came with these weights, or copy the checkpoint again"
            raise _load_error(str(model), exc, what="the weights", where=files, hint=hint) from exc
        except (OSError, ValueError) as exc:
            raise _load_error(str(model), exc, what="the weights", where=folder) from exc
        try:
            self.model = loaded.to(self.device)
        except torch.OutOfMemoryError as exc:
            raise ModelLoadError(
                f"not enough memory on {self.device} for {self.name}",
                hint="use a smaller model, dtype='bfloat16', or another device",
            ) from exc
        self.model.eval()
        path = checkpoint_folder(model)
        self.frame = derive_frame(model, override=frame)
        self.prompt_template = resolve_prompt_template(path=path, override=prompt_template)
        self.encoder = PromptEncoder(self.tokenizer, image_processor, processor=processor)
        gen_eos = self.model.generation_config.eos_token_id
        eos = set(gen_eos if isinstance(gen_eos, list) else [gen_eos] if gen_eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos.add(int(self.tokenizer.eos_token_id))
        self.eos_ids = eos
        self.pad_id = int(self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(eos))
        self.vocab_size = int(self.model.get_output_embeddings().weight.shape[0])
        self._grammars: GrammarCache | None = None
        self._sessions: LRUCache[str, _Session] = LRUCache(maxsize=sessions)
        """KV sessions by prompt key, least recently used dropped; read and written under ``_lock``."""
        self._images = PreparedImages(self.prepare_image)
        self._lock = threading.Lock()
        self.untrained = path is not None and is_untrained_checkpoint(path)

    # -- constraints --------------------------------------------------------------------------------------------
    @property
    def grammars(self) -> GrammarCache:
        """The grammar cache of this tokenizer (built on first constrained request)."""
        if self._grammars is None:
            self._grammars = GrammarCache(self.tokenizer, self.vocab_size)
        return self._grammars

    def _machine(self, request: PolicyRequest) -> TokenConstraint | None:
        if request.constraint is not None:
            bounded = self.section_limits == "grammar"
            return TurnMachine(request.constraint, self.grammars, self.tokenizer, bounded_sections=bounded)
        if request.json_schema is not None:
            return GrammarMachine(self.grammars.json_schema(json.dumps(dict(request.json_schema))))
        if request.grammar is not None:
            return GrammarMachine(self.grammars.compiled(request.grammar))
        return None

    # -- rows and sessions --------------------------------------------------------------------------------------
    def _decode(self, ids: list[int]) -> str:
        return str(self.tokenizer.decode(ids, skip_special_tokens=False))

    def _prepared(self, request: PolicyRequest) -> tuple[LoadedImage, ...]:
        return tuple(self._images.get(i) for i in request.images)

    def _encode(self, request: PolicyRequest) -> EncodedPrompt:
        return self.encoder.encode(request.messages, self._prepared(request))

    def _new_row(self, request: PolicyRequest, enc: EncodedPrompt) -> Row:
        prefix = self.encoder.encode_text(request.assistant_prefix)  # tool responses as plain text
        return Row(
            ids=enc.input_ids + prefix,
            prompt_len=len(enc.input_ids),
            mm_token_type_ids=enc.mm_token_type_ids + [0] * len(prefix),
            vision=enc.vision,
        )

    def _resume(self, session: _Session, request: PolicyRequest) -> tuple[str, bool]:
        """Line the session up with the request's prefix; returns (text still to feed, machine must be rebuilt).

        The agent sends text (every section so far), the session holds tokens, so they are compared as text: the
        session's assistant tokens decode (special tokens kept) to exactly the text the model produced.
        """
        row, prefix = session.row, request.assistant_prefix
        held = self._decode(row.assistant_ids)
        if prefix.startswith(held):
            # The usual case: the prefix extends what the session holds.  Only the extra text is tokenized and
            # appended; re-tokenizing the whole prefix could merge the model's tokens differently (BPE), change
            # ids that are already in the cache and silently break the exactness of the continuation.
            return prefix[len(held) :], False
        # The prefix diverges.  Typically a stop string ended inside a token in free decoding (the model wrote
        # "</scene>\n" as one token; the text was cut after "</scene>"), or the caller edited the text.  Keep the
        # longest run of the session's tokens whose text is still a prefix of the request's (a linear scan of
        # decodes: divergence is rare and the assistant part is short), and crop the cache to it: a cached position
        # after the cut was computed over a history the request no longer has.
        keep = len(row.assistant_ids)
        while keep > 0 and not prefix.startswith(self._decode(row.assistant_ids[:keep])):
            keep -= 1
        cut = row.prompt_len + keep
        if row.fed > cut:
            _drop(session.cache, row.fed - cut)
            row.fed = cut
        del row.ids[cut:]
        # The constraint machine cannot step back over the cut tokens, hence True: rebuild it from the prefix.
        return prefix[len(self._decode(row.assistant_ids)) :], True

    def _prepare(self, request: PolicyRequest) -> tuple[RowCall, Any, str]:
        """The call that serves ``request``, the KV cache it continues (None: prefill) and its session key.

        The session is continued in place: after this, the row holds every token of prompt + prefix and the cache
        holds ``row.ids[: row.fed]``, so the decode loop feeds ``row.ids[row.fed :]`` and goes on from there.
        """
        images = self._prepared(request)
        chat = self.encoder.render(request.messages)
        # Same rendered prompt (template structure and message text told apart) and same prepared images mean the
        # same prompt tokens and the same vision features, so a cache built for one is valid for the other: that
        # is what the key captures.
        key = self.encoder.key(chat, images)
        session = self._sessions.get(key)  # a hit also marks the session most recently used
        machine = self._machine(request)
        if session is None:
            enc = self.encoder.encode(request.messages, images, chat=chat)
            row, cache, cached = self._new_row(request, enc), None, 0
            if machine is not None and not machine.accept_text(request.assistant_prefix):
                raise PolicyError("the assistant prefix does not follow the request's constraint")
        else:
            row, cache = session.row, session.cache
            extra, rebuilt = self._resume(session, request)
            cached = row.fed
            # Encoded as part of the whole prefix, so a tool response stays plain text wherever ``extra`` starts.
            prefix = request.assistant_prefix
            row.ids.extend(self.encoder.encode_text(prefix, start=len(prefix) - len(extra)))
            # The session's TurnMachine has already consumed the text it holds, so when the request asks for the
            # same constraint it only needs the extra text: a turn in pieces is then constrained exactly like one
            # call (the machine's segment state carries over).  Anything else gets the fresh machine, replayed
            # over the whole prefix.
            same_spec = not rebuilt and isinstance(row.machine, TurnMachine) and row.machine.spec == request.constraint
            if same_spec and row.machine is not None:
                machine = row.machine
                ok = machine.accept_text(extra)
            else:
                ok = machine is None or machine.accept_text(request.assistant_prefix)
            if not ok:
                raise PolicyError("the assistant prefix does not follow the request's constraint")
            if row.fed == len(row.ids):
                # Everything is cached, but sampling needs the next-token logits of the last token and a KV cache
                # keeps keys and values, not logits.  Drop its position and feed it again (one token of work).  So a
                # resumed piece counts one token less than its prompt as cached either way: usually the last token
                # is the one sampled last, which was never fed.
                _drop(cache, 1)
                row.fed -= 1
                cached -= 1
        row.machine = machine
        call = RowCall(
            row=row,
            sampling=request.sampling,
            stop=request.stop,
            seed=_call_seed(request, key),
            cached_tokens=cached,
            input_tokens=len(row.ids),
        )
        return call, cache, key

    # -- context length -----------------------------------------------------------------------------------------
    def _fit(self, call: RowCall) -> Completion | None:
        """Fit ``call`` in the context; returns the completion when nothing can be generated, else None.

        Raises PromptTooLongError when the prompt alone leaves no room for a token; returns the empty ``length``
        completion when the prompt and prefix together fill the context; else clamps ``max_new_tokens`` to the room.
        """
        if self.max_model_len is None:
            return None
        row = call.row
        if row.prompt_len >= self.max_model_len:  # room for at least one new token is needed
            raise prompt_too_long(self.name, row.prompt_len, self.max_model_len, "max_model_len=")
        room = self.max_model_len - len(row.ids)
        if room < 1:  # the assistant text so far (model output, tool responses) filled the context
            return Completion(text="", finish_reason="length", prompt_tokens=len(row.ids), cached_tokens=row.fed)
        if call.sampling.max_new_tokens > room:
            call.sampling = replace(call.sampling, max_new_tokens=room)
        return None

    # -- the Policy interface -----------------------------------------------------------------------------------
    def complete(self, request: PolicyRequest, *, on_delta: DeltaCallback | None = None) -> Completion:
        """Serve one request, continuing its turn's KV session when the prompt and prefix match one."""
        with self._lock:
            call, cache, key = self._prepare(request)
            full = self._fit(call)
            if full is not None:
                return full
            call.on_delta = on_delta
            bitmask = self.grammars.new_bitmask(1) if call.row.machine is not None else None
            cache, (completion,) = run_rows(
                self.model,
                self.tokenizer,
                [call],
                mrope=self.family.mrope,
                eos_ids=self.eos_ids,
                pad_id=self.pad_id,
                cache=cache,
                bitmask=bitmask,
            )
            self._keep(key, call.row, cache)
            return completion

    def _keep(self, key: str, row: Row, cache: Any) -> None:
        """Store (or refresh) the KV session of ``key``; the least recently used beyond ``sessions`` is dropped."""
        self._sessions[key] = _Session(row=row, cache=cache)

    def complete_batch(self, requests: Sequence[PolicyRequest]) -> list[Completion]:
        """Serve independent requests in one left-padded batch (no KV sessions; one request uses :meth:`complete`)."""
        if len(requests) == 1:
            return [self.complete(requests[0])]
        with self._lock:
            calls = []
            for request in requests:
                row = self._new_row(request, self._encode(request))
                row.machine = self._machine(request)
                if row.machine is not None and not row.machine.accept_text(request.assistant_prefix):
                    raise PolicyError("an assistant prefix does not follow its request's constraint")
                seed = _call_seed(
                    request, self.encoder.key(self.encoder.render(request.messages), self._prepared(request))
                )
                calls.append(
                    RowCall(row=row, sampling=request.sampling, stop=request.stop, seed=seed, input_tokens=len(row.ids))
                )
            full = [self._fit(c) for c in calls]  # before any generation: a prompt too long raises for the batch
            todo = [c for c, f in zip(calls, full, strict=True) if f is None]
            needs_mask = any(c.row.machine is not None for c in todo)
            _, done = (
                run_rows(
                    self.model,
                    self.tokenizer,
                    todo,
                    mrope=self.family.mrope,
                    eos_ids=self.eos_ids,
                    pad_id=self.pad_id,
                    bitmask=self.grammars.new_bitmask(len(todo)) if needs_mask else None,
                )
                if todo
                else (None, [])
            )
            generated = iter(done)
            return [f if f is not None else next(generated) for f in full]

    def held_tokens(self, request: PolicyRequest) -> tuple[list[int], int] | None:
        """The token ids this policy's session for ``request``'s prompt holds, and how many are the prompt.

        After a turn's last piece that is exactly the sequence the model conditioned on: the prompt (images expanded
        to their vision tokens) and the assistant message so far, generated tokens and fed text (tool responses)
        alike.  A trainer reads it to score the turn under the same tokens (None: no session, e.g. evicted).
        """
        images = self._prepared(request)
        key = self.encoder.key(self.encoder.render(request.messages), images)
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                return None
            return list(session.row.ids), session.row.prompt_len

    def use_model(self, model: Any) -> None:
        """Serve from ``model`` (a live model of the same architecture and vocabulary, e.g. one being trained).

        The KV sessions are dropped: they were computed with the previous weights.
        """
        with self._lock:
            self.model = model
            self._sessions.clear()

    def reset_sessions(self) -> None:
        """Drop every cached KV session."""
        with self._lock:
            self._sessions.clear()

    def close(self) -> None:
        """Drop the KV sessions (the model itself is freed with the policy object).  Idempotent."""
        self.reset_sessions()
