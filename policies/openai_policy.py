"""``OpenAIPolicy``: any OpenAI-compatible chat server (``vllm serve``, SGLang, ...) as a policy.

Special-token strings in the messages' text and in tool responses are escaped before they are sent (the server
tokenizes the text itself): a zero-width joiner after their first character
(:func:`~regionreasoner.policies.hf_inputs.escape_special_tokens`, reversible), for the special tokens of
``tokenizer`` when one is given and for every ``<|name|>`` string otherwise; docs/policies.md says why.

Images travel as base64 data URLs (prepared for the policy's frame on the client, so the server's own resizing is
the identity for fixed and smart-resize frames).  A partial assistant message is continued with the server's
``continue_final_message`` option (vLLM and SGLang).  Constrained turns are served one segment per request with
``structured_outputs: {"grammar": <EBNF>}`` (vLLM's structured outputs; see
:mod:`~regionreasoner.policies.engine_driver`); ``json_schema`` requests use ``response_format``.  Connection errors
and resets, timeouts, bodies cut off or not JSON, and 5xx answers are retried (``retries`` times at most) with
exponential backoff, then a :class:`PolicyError`; a 4xx answer is a :class:`PolicyError` carrying the server's message.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from regionreasoner.core.errors import ConfigError, DependencyMissingError, PolicyError
from regionreasoner.core.frames import Frame, SmartResizeFrame
from regionreasoner.core.images import LoadedImage, load_image
from regionreasoner.policies.base import (
    Completion,
    DeltaCallback,
    ImageSlot,
    Policy,
    PolicyRequest,
    PreparedImages,
    prompt_too_long,
)
from regionreasoner.policies.constraints import GrammarCache, TurnMachine
from regionreasoner.policies.engine_driver import EngineCall, EngineResult, RowDriver
from regionreasoner.policies.families import checkpoint_folder, derive_frame, frame_for_name
from regionreasoner.policies.hf_inputs import SpecialTokens, assistant_segments, escape_special_tokens, render_chat

__all__ = ["OpenAIPolicy", "default_frame_for_name"]

logger = logging.getLogger(__name__)


def default_frame_for_name(model: str) -> Frame:
    """The frame a served model answers in, guessed from its name (pass ``frame=`` when the guess is wrong).

    :func:`~regionreasoner.policies.families.frame_for_name`, the rule :func:`derive_frame` falls back on.
    """
    return frame_for_name(model)


def _json_object(content: bytes) -> dict[str, Any] | str:
    """The JSON object ``content`` holds, or why it holds none (a short reason, never the body itself)."""
    try:
        data = json.loads(content)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return f"{type(exc).__name__}: {exc}"
    return data if isinstance(data, dict) else f"a JSON {type(data).__name__}, not an object"


def _first_choice(data: dict[str, Any], url: str) -> dict[str, Any]:
    """``data["choices"][0]`` of a chat completion, or a :class:`PolicyError` when the answer has another shape.

    Not retried: a server that answers 2xx with an error object (``{"object": "error", ...}``) or another API's
    shape answers the same request the same way again.
    """
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
        shown = json.dumps(data)[:300]
        raise PolicyError(
            f"{url}/chat/completions answered with no choices (not a chat completion): {shown}",
            hint="point base_url at an OpenAI-compatible server (vllm serve, SGLang) and check its log",
        )
    return choice


class OpenAIPolicy(Policy):
    """A policy served over the OpenAI chat-completions API.

    ``base_url`` is the server root (``http://127.0.0.1:8000``; ``/v1`` is added when missing), ``model`` the served
    model name.  ``tokenizer`` (a folder or hub id with the model's tokenizer) is needed for constrained turns: it
    checks the server's output against the grammar it was given.  The frame is derived like the local backends'
    (:func:`~regionreasoner.policies.families.derive_frame`) from the ``tokenizer`` checkpoint folder when it is
    one, with the served ``model`` name for the name rule; without a folder it is guessed from ``model``.
    ``timeout`` is per request in seconds; ``retries`` bounds the retries of one request after connection errors,
    timeouts and 5xx answers.  ``max_model_len`` is the server's context length in tokens (default: with a
    ``tokenizer`` checkpoint folder, its config's ``max_position_embeddings``; otherwise unknown): a prompt whose text
    tokens alone do not fit raises :class:`~regionreasoner.core.errors.PromptTooLongError` before any request, and
    ``max_tokens`` is clamped to the room left.  Image tokens are counted by the server only, whose refusal of a
    longer prompt is a :class:`PolicyError` saying so (docs/policies.md, "Context length").
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        tokenizer: str | None = None,
        frame: Frame | str | None = None,
        prompt_template: str = "regionreasoner-eval",
        api_key: str | None = None,
        timeout: float = 120.0,
        retries: int = 4,
        backoff: float = 0.5,
        extra_body: dict[str, Any] | None = None,
        max_model_len: int | None = None,
    ) -> None:
        try:
            import httpx
        except ImportError as exc:
            raise DependencyMissingError(
                "OpenAIPolicy needs httpx", hint="pip install 'regionreasoner[openai]'"
            ) from exc
        if retries < 0 or timeout <= 0 or backoff < 0:
            raise ConfigError(f"retries={retries}, timeout={timeout}, backoff={backoff}: need >= 0, > 0, >= 0")
        if max_model_len is not None and max_model_len < 2:
            raise ConfigError(f"max_model_len={max_model_len}: set it >= 2 tokens, or leave it unset")
        root = base_url.rstrip("/")
        self.url = root if root.endswith("/v1") else root + "/v1"
        self.name = model
        self.frame = derive_frame(tokenizer, name=model, override=frame)
        self._images = PreparedImages(self.prepare_image)
        self.prompt_template = prompt_template
        self.retries = retries
        self.backoff = backoff
        self.extra_body = dict(extra_body or {})
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)
        self._tokenizer_name = tokenizer
        self.max_model_len = max_model_len or (_configured_context(tokenizer) if tokenizer is not None else None)
        """The server's context length in tokens, when known (checked only with a ``tokenizer``)."""
        self._grammars: GrammarCache | None = None
        self._tokenizer: Any = None
        self._special_tokens: SpecialTokens | None = None
        self._lock = threading.Lock()

    # -- images and messages ------------------------------------------------------------------------------------
    def prepare_image(self, image: LoadedImage) -> LoadedImage:
        """Resize for fixed frames, and to the smart-resize size for native frames (the server then keeps it)."""
        if isinstance(self.frame, SmartResizeFrame):
            size = self.frame.model_size(image.size)
            return image if size == image.size else load_image(image.image.resize(size))
        return super().prepare_image(image)

    def _tokenizer_loaded(self) -> Any:
        """The ``tokenizer`` checkpoint's tokenizer (loaded on first use), or None when none was given."""
        if self._tokenizer is None and self._tokenizer_name is not None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self._tokenizer_name)
        return self._tokenizer

    def _special(self) -> SpecialTokens | None:
        """The served model's special tokens, known from ``tokenizer`` (None without one)."""
        if self._special_tokens is None and self._tokenizer_loaded() is not None:
            self._special_tokens = SpecialTokens(self._tokenizer)
        return self._special_tokens

    def _escape(self, text: str) -> str:
        """``text`` with its special-token strings escaped, so the server tokenizes them as plain text."""
        special = self._special()
        return special.escape(text) if special is not None else escape_special_tokens(text, None)

    def _messages(self, request: PolicyRequest, prefix: str) -> list[dict[str, Any]]:
        """The chat as the server takes it: message text and tool responses escaped, the model's own text as is.

        The model's text is the server's decoding of its tokens (special tokens kept), so sending it back as is
        gives the server the same tokens again; tool responses (:func:`assistant_segments`) are not the model's.
        """
        urls = [self._images.data_url(i) for i in request.images]
        out: list[dict[str, Any]] = []
        for m in request.messages:
            parts = [
                {"type": "image_url", "image_url": {"url": urls[p.index]}}
                if isinstance(p, ImageSlot)
                else {"type": "text", "text": self._escape(p)}
                for p in m.parts
            ]
            text_only = len(parts) == 1 and isinstance(m.parts[0], str)
            out.append({"role": m.role, "content": self._escape(m.text) if text_only else parts})
        if prefix:
            content = "".join(t if trusted else self._escape(t) for t, trusted in assistant_segments(prefix))
            out.append({"role": "assistant", "content": content})
        return out

    # -- HTTP -----------------------------------------------------------------------------------------------------
    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST one chat completion; retried (at most ``retries`` times) after failures a retry can fix.

        Retried: connection errors and resets, timeouts, a body cut off mid-response, 5xx answers, and a 2xx answer
        whose body is not a JSON object (a proxy's error page, half a document).  Not retried: 4xx answers.  Every
        failure ends as a :class:`PolicyError` naming the URL and the last failure.
        """
        import httpx

        url = self.url + "/chat/completions"
        last: str = ""
        for attempt in range(self.retries + 1):
            try:
                response = self._client.post(url, json=body)
            except (httpx.TransportError, httpx.DecodingError) as exc:  # refused/reset, timeouts, cut-off bodies
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code >= 400:
                    detail = response.text[:500]
                    if response.status_code < 500:
                        hint = "check the model name, the request options and the server's limits (max_model_len)"
                        if _CONTEXT_WORDS.search(detail):
                            hint = (
                                "the prompt does not fit in the served model's context: shorten the question (or "
                                "use a smaller image), or serve a longer context (vllm serve --max-model-len)"
                            )
                        raise PolicyError(
                            f"{url} rejected the request with {response.status_code}: {detail}", hint=hint
                        )
                    last = f"HTTP {response.status_code}: {detail}"
                else:
                    data = _json_object(response.content)
                    if isinstance(data, dict):
                        return data
                    last = f"HTTP {response.status_code} with a body that is not a JSON document ({data})"
            if attempt < self.retries:
                delay = self.backoff * (2**attempt) * (1 + 0.1 * random.random())
                logger.warning("%s failed (%s); retry %d/%d in %.2f s", url, last, attempt + 1, self.retries, delay)
                time.sleep(delay)
        raise PolicyError(
            f"{url} failed after {self.retries + 1} attempts: {last}",
            hint="is the server running and reachable? (vllm serve MODEL --host 127.0.0.1 --port ...)",
        )

    def _call(self, request: PolicyRequest, call: EngineCall) -> EngineResult:
        s = request.sampling
        body: dict[str, Any] = {
            "model": self.name,
            "messages": self._messages(request, call.prefix),
            "max_tokens": call.max_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "skip_special_tokens": False,
            **self.extra_body,
        }
        if s.top_k:
            body["top_k"] = s.top_k
        if s.seed is not None:
            body["seed"] = s.seed
        if call.prefix:
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        if call.grammar is not None:
            body["structured_outputs"] = {"grammar": call.grammar}
        elif request.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": dict(request.json_schema), "strict": True},
            }
        elif request.grammar is not None:
            body["structured_outputs"] = {"grammar": request.grammar}
        if call.stop:
            body["stop"] = list(call.stop)
            body["include_stop_str_in_output"] = True
        t0 = time.perf_counter()
        data = self._post(body)
        seconds = time.perf_counter() - t0
        choice = _first_choice(data, self.url)
        text = str(choice["message"].get("content") or "")
        stop_reason = choice.get("stop_reason")
        if choice.get("finish_reason") == "stop" and isinstance(stop_reason, str) and not text.endswith(stop_reason):
            text += stop_reason  # servers that drop the matched stop string
        usage = data.get("usage") or {}
        details = usage.get("prompt_tokens_details") or {}
        finish = choice.get("finish_reason")
        return EngineResult(
            text=text,
            token_ids=None,
            finish="length" if finish == "length" else "stop" if isinstance(stop_reason, str) else "eos",
            generated_tokens=int(usage.get("completion_tokens") or 0),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            cached_tokens=int(details.get("cached_tokens") or 0),
            seconds=seconds,
        )

    # -- the Policy interface -------------------------------------------------------------------------------------
    def _machine(self, request: PolicyRequest) -> TurnMachine | None:
        if request.constraint is None:
            return None
        if self._tokenizer_name is None:
            raise ConfigError(
                "constrained turns through OpenAIPolicy need the model's tokenizer",
                hint="pass tokenizer='<checkpoint folder or hub id>' (the server's model)",
            )
        if self._grammars is None:
            tokenizer = self._tokenizer_loaded()
            self._grammars = GrammarCache(tokenizer, len(tokenizer))
        machine = TurnMachine(request.constraint, self._grammars, self._tokenizer, bounded_sections=True)
        if not machine.accept_text(request.assistant_prefix):
            raise PolicyError("the assistant prefix does not follow the request's constraint")
        return machine

    def _room(self, request: PolicyRequest) -> int | None:
        """Tokens left for generation in the context (text tokens counted; None: unknown), or PromptTooLongError."""
        special = self._special()
        if self.max_model_len is None or special is None:
            return None
        prompt = len(special.encode(render_chat(self._tokenizer, request.messages).pieces))
        if prompt >= self.max_model_len:
            raise prompt_too_long(self.name, prompt, self.max_model_len, "max_model_len=, vllm serve --max-model-len")
        return self.max_model_len - prompt - len(special.encode(assistant_segments(request.assistant_prefix)))

    def complete(self, request: PolicyRequest, *, on_delta: DeltaCallback | None = None) -> Completion:
        """Serve one request (one HTTP call, or one per segment for a constrained turn)."""
        if (request.json_schema is not None or request.grammar is not None) and request.assistant_prefix:
            raise ConfigError("a json_schema or grammar request cannot continue an assistant prefix on a server")
        with self._lock:
            self._special()  # loads the tokenizer once, under the lock, when one is given
            room = self._room(request)
            driver = RowDriver(request=request, machine=self._machine(request))
        while (call := driver.next_call()) is not None:
            if room is not None:  # the generation budget clamped to the context, as the server would clamp it
                if room - driver.generated < 1:
                    driver.finish = "length"  # the text so far filled the context: nothing more to generate
                    break
                call = replace(call, max_tokens=min(call.max_tokens, room - driver.generated))
            result = self._call(request, call)
            driver.feed(result)
            if on_delta is not None and result.text:
                on_delta(result.text)
        return driver.completion()

    def complete_batch(self, requests: Sequence[PolicyRequest]) -> list[Completion]:
        """Serve requests one after the other (the server batches concurrent clients itself)."""
        return [self.complete(r) for r in requests]

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def __repr__(self) -> str:
        return f"OpenAIPolicy({self.url!r}, {self.name!r}, frame={self.frame.spec!r})"


_CONTEXT_WORDS = re.compile(r"context length|maximum model length|max_model_len", re.IGNORECASE)
"""How OpenAI-compatible servers (vLLM, SGLang, OpenAI) word a refusal of a prompt past the model's context."""


def _configured_context(checkpoint: str) -> int | None:
    """``max_position_embeddings`` of a checkpoint folder's ``config.json`` (or of its ``text_config``), if any."""
    folder = checkpoint_folder(checkpoint)
    config_file = folder / "config.json" if folder is not None else None
    if config_file is None or not config_file.is_file():
        return None
    config = json.loads(config_file.read_text())
    value = config.get("max_position_embeddings") or (config.get("text_config") or {}).get("max_position_embeddings")
    return int(value) if isinstance(value, int) and value > 1 else None
