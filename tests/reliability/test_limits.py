"""Issue 9, defect 7: resource limits, checked before the expensive work.

Images: the encoded size is capped before anything is read or decoded (a 300 MB file was read whole and accepted;
here it is a sparse file made with ``truncate``, so no disk is written).  Prompts: a prompt that does not fit in the
model's context is a ``PromptTooLongError`` (an ``InputError``) before any generation (a 100,000-character question
became 62,000 prompt tokens past a 32,768-token context, silently), and the generation budget is clamped to the room
the context leaves.  The question-length cap itself is agent/resolve.py's (tested with it).
"""

from __future__ import annotations

import base64
import io
import json
import sys
import threading
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from regionreasoner.core.errors import ImageTooLargeError, InputError, PolicyError, PromptTooLongError
from regionreasoner.core.images import DEFAULT_MAX_BYTES, load_image
from regionreasoner.policies.base import ImageSlot, Message, PolicyRequest, SamplingParams
from regionreasoner.policies.openai_policy import OpenAIPolicy
from regionreasoner.policies.transformers_policy import TransformersPolicy

LONG_QUESTION = "find the region " + "1234567890 " * 9_000  # ~100,000 characters, one token per digit


def _png(size: tuple[int, int] = (8, 6)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buf, "PNG")
    return buf.getvalue()


def _request(question: str, *, max_new_tokens: int = 8, prefix: str = "") -> PolicyRequest:
    image = load_image(Image.new("RGB", (56, 56), (120, 30, 200)))
    return PolicyRequest(
        messages=(Message("user", (ImageSlot(0), question)),),
        images=(image,),
        assistant_prefix=prefix,
        sampling=SamplingParams(max_new_tokens=max_new_tokens),
    )


# -- images ----------------------------------------------------------------------------------------------------------
def test_a_300_mb_file_is_refused_before_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(_png())
    with big.open("r+b") as f:
        f.truncate(300_000_000)  # sparse: a valid PNG header, 300 MB long, nothing written
    read: list[int] = []
    real_open = Path.open

    def spy_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        read.append(1)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", spy_open)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("the whole file was read"))
    with pytest.raises(ImageTooLargeError, match=r"300000000 bytes exceeds the limit of 50000000 bytes") as info:
        load_image(big)
    assert not read, "the file was opened although its size is over the limit"
    assert "max_bytes" in str(info.value) and info.value.hint and isinstance(info.value, InputError)
    assert DEFAULT_MAX_BYTES == 50_000_000


def test_the_byte_cap_is_configurable_for_files_bytes_and_data_urls(tmp_path: Path) -> None:
    data = _png()
    path = tmp_path / "small.png"
    path.write_bytes(data)
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    for source in (path, data, url):
        assert load_image(source, max_bytes=len(data) + 3).size == (8, 6)  # under the cap: loads
        with pytest.raises(ImageTooLargeError, match="max_bytes"):
            load_image(source, max_bytes=len(data) // 2)


def test_a_data_url_over_the_cap_is_refused_before_decoding() -> None:
    # Not even valid base64: the size check comes first, so the error is the size, not the decoding.
    url = "data:image/png;base64," + "!" * 80_000
    with pytest.raises(ImageTooLargeError, match=r"data URL: 60000 bytes exceeds the limit of 1000 bytes"):
        load_image(url, max_bytes=1_000)


def test_a_file_that_grows_after_stat_is_still_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "grows.png"
    path.write_bytes(_png() + b"\0" * 5_000)
    real_stat = Path.stat
    monkeypatch.setattr(
        Path, "stat", lambda self, **kw: type("S", (), {"st_size": 10, "st_mode": real_stat(self).st_mode})()
    )
    with pytest.raises(ImageTooLargeError, match="max_bytes"):
        load_image(path, max_bytes=1_000)


# -- prompts: transformers --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def policy(tiny_qwen25: Path) -> Iterator[TransformersPolicy]:
    p = TransformersPolicy(tiny_qwen25, device="cpu")
    yield p
    p.close()


def test_context_length_comes_from_the_model_config(policy: TransformersPolicy, tiny_qwen25: Path) -> None:
    config = json.loads((tiny_qwen25 / "config.json").read_text())
    expected = config.get("max_position_embeddings") or config["text_config"]["max_position_embeddings"]
    assert policy.max_model_len == expected == 32_768


def test_a_100k_character_question_is_refused_before_generation(
    policy: TransformersPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    import regionreasoner.policies.transformers_policy as module

    monkeypatch.setattr(module, "run_rows", lambda *a, **k: pytest.fail("the model ran on a prompt past its context"))
    assert len(LONG_QUESTION) >= 99_000
    for call in (lambda r: policy.complete(r), lambda r: policy.complete_batch([r, r])):
        with pytest.raises(PromptTooLongError, match=r"prompt is \d+ tokens but .* context of 32768 tokens") as info:
            call(_request(LONG_QUESTION))
        assert info.value.prompt_tokens > 32_768 and info.value.context_tokens == 32_768
        assert isinstance(info.value, InputError) and "shorten the question" in str(info.value)


def test_max_new_tokens_is_clamped_to_the_room_left(tiny_qwen25: Path) -> None:
    probe = TransformersPolicy(tiny_qwen25, device="cpu")
    first = probe.complete(_request("find the dog", max_new_tokens=1))
    prompt = first.prompt_tokens
    small = TransformersPolicy(tiny_qwen25, device="cpu", max_model_len=prompt + 3)
    c = small.complete(_request("find the dog", max_new_tokens=50))
    assert c.generated_tokens <= 3 and c.finish_reason in ("length", "eos")
    if c.finish_reason == "length":
        assert c.generated_tokens == 3
    # The prompt alone leaves no room: refused before generation.
    with pytest.raises(PromptTooLongError):
        TransformersPolicy(tiny_qwen25, device="cpu", max_model_len=prompt).complete(_request("find the dog"))
    # The assistant text so far filled the context (model output, tool responses): an empty `length` completion,
    # which the agent records as a truncated (failed) turn, not an error.
    full = small.complete(_request("find the dog", prefix="<scene> a b c d e f g h i j k l m n o p </scene>"))
    assert full.text == "" and full.finish_reason == "length" and full.generated_tokens == 0


# -- prompts: OpenAI-compatible servers -------------------------------------------------------------------------------
@pytest.fixture
def server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    bodies: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            message = (
                "This model's maximum context length is 4096 tokens. However, your prompt contains 9000 input "
                "tokens, which exceeds this limit even without any output tokens."
            )
            payload = json.dumps({"error": {"message": message}}).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", bodies
    httpd.shutdown()
    httpd.server_close()


def test_openai_with_a_tokenizer_refuses_before_any_request(
    server: tuple[str, list[dict[str, Any]]], tiny_qwen25: Path
) -> None:
    url, bodies = server
    policy = OpenAIPolicy(url, "rr", tokenizer=str(tiny_qwen25), retries=0)
    assert policy.max_model_len == 32_768
    with pytest.raises(PromptTooLongError, match="context of 32768 tokens"):
        policy.complete(_request(LONG_QUESTION))
    assert bodies == []


def test_openai_without_a_tokenizer_reports_the_servers_refusal_clearly(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, bodies = server
    with pytest.raises(PolicyError, match=r"400.*maximum context length.*shorten the question.*--max-model-len"):
        OpenAIPolicy(url, "rr", retries=0).complete(_request(LONG_QUESTION))
    assert len(bodies) == 1


# -- through the agent ------------------------------------------------------------------------------------------------
def test_a_question_past_the_context_raises_from_ask_and_stores_nothing(tiny_qwen25: Path, tmp_path: Path) -> None:
    from regionreasoner.agent import RegionAgent

    policy = TransformersPolicy(tiny_qwen25, device="cpu", max_model_len=1_500)
    agent = RegionAgent(policy, memory=f"sqlite:///{tmp_path}/memory.db", max_new_tokens=16)
    dialogue = agent.dialogue(Image.new("RGB", (56, 56), (10, 200, 30)))
    with pytest.raises(PromptTooLongError, match="context of 1500 tokens"):
        dialogue.ask("the region " + "1234567890 " * 150)  # ~1,650 characters: ~1,800 tokens
    assert dialogue.turns() == []
    turn = dialogue.ask("find the dog")  # the dialogue goes on; a short turn fits (clamped, maybe truncated)
    assert [t.index for t in dialogue.turns()] == [turn.index]


# -- prompts: vLLM, over a fake engine (tests/policies/test_frame_derivation.py's approach) ---------------------------
class _FakeLLM:
    """``vllm.LLM`` with the tiny checkpoint's tokenizer; ``generate`` records calls or raises the engine's error."""

    refusal: str | None = None

    def __init__(self, model: str, **kwargs: Any) -> None:
        from transformers import AutoConfig, AutoTokenizer

        config = AutoConfig.from_pretrained(model)
        self._tokenizer = AutoTokenizer.from_pretrained(model)
        vocab = int(config.get_text_config().vocab_size)
        model_config = types.SimpleNamespace(hf_config=config, get_vocab_size=lambda: vocab, max_model_len=None)
        self.llm_engine = types.SimpleNamespace(model_config=model_config)
        self.calls: list[Any] = []

    def get_tokenizer(self) -> Any:
        return self._tokenizer

    def generate(self, prompts: Any, params: Any, **kwargs: Any) -> Any:
        self.calls.append(prompts)
        if self.refusal is not None:  # the wording of vllm/v1/engine/input_processor.py
            raise ValueError(self.refusal)
        pytest.fail("the engine generated")


@pytest.fixture
def fake_vllm(tiny_qwen25: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from regionreasoner.policies.vllm_policy import VLLMPolicy

    fake = types.ModuleType("vllm")
    fake.LLM = _FakeLLM  # type: ignore[attr-defined]
    fake.SamplingParams = lambda **kw: kw  # type: ignore[attr-defined]
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.StructuredOutputsParams = lambda **kw: kw  # type: ignore[attr-defined]
    inputs = types.ModuleType("vllm.inputs")
    inputs.TokensPrompt = lambda **kw: kw  # type: ignore[attr-defined]
    for name, module in (("vllm", fake), ("vllm.sampling_params", sampling), ("vllm.inputs", inputs)):
        monkeypatch.setitem(sys.modules, name, module)
    return VLLMPolicy(tiny_qwen25, max_model_len=4096)


def test_vllm_refuses_a_long_question_before_the_engine_runs(fake_vllm: Any) -> None:
    assert fake_vllm.max_model_len == 4096
    with pytest.raises(PromptTooLongError, match="context of 4096 tokens"):
        fake_vllm.complete(_request(LONG_QUESTION))
    assert fake_vllm.llm.calls == []


def test_vllm_engine_refusal_with_image_tokens_is_a_prompt_too_long_error(fake_vllm: Any) -> None:
    fake_vllm.llm.refusal = (
        "The decoder prompt (length 4200) is longer than the maximum model length of 4096. Make sure that "
        "`max_model_len` is no smaller than the number of text tokens plus multimodal tokens."
    )
    with pytest.raises(PromptTooLongError, match="prompt is 4200 tokens") as info:
        fake_vllm.complete(_request("find the dog"))
    assert info.value.prompt_tokens == 4200 and len(fake_vllm.llm.calls) == 1
    fake_vllm.llm.refusal = "some other engine error"
    with pytest.raises(ValueError, match="some other engine error"):
        fake_vllm.complete(_request("find the cat"))


def test_vllm_prefix_that_fills_the_context_generates_nothing(fake_vllm: Any) -> None:
    fake_vllm.max_model_len = 120  # the prompt fits, the prefix does not
    c = fake_vllm.complete(_request("find the dog", prefix="<scene>" + " a" * 200 + "</scene>"))
    assert c.text == "" and c.finish_reason == "length" and fake_vllm.llm.calls == []
