"""The NeoBabel transformer: Gemma-2 over one text + image-code vocabulary (neobabel.md §1.1–§1.2, §3.2).

:class:`NeoBabel` wraps transformers' ``Gemma2ForCausalLM`` as attribute ``neobabel``, so its state-dict keys are the
released ``neobabel.model.*`` / ``neobabel.lm_head.*``.  Attention is always ``eager``: SDPA would drop Gemma-2's
attention soft-cap (50), and the custom 4-D mask of :func:`~regionreasoner.tools.generate.prompting.attention_mask`
is passed as given.  Checkpoint folders follow the release (diffusers ``ModelMixin`` layout)::

    config.json                          NeoBabel init kwargs (vocab_size, llm_vocab_size, llm_model_path, ...)
    pytorch_model.safetensors            or model.safetensors, or pytorch_model.bin, or a sharded *.index.json
    unwrapped_model/pytorch_model.bin    what training checkpoints and the eval scripts use (config.json optional)

The Gemma-2 architecture comes from ``llm_config`` inlined in config.json (our extension), a local folder named by
``llm_model_path`` (absolute, or relative to the checkpoint), the embedded copy of ``google/gemma-2-2b-it``'s
config, or ``AutoConfig.from_pretrained(llm_model_path)`` (the hub, as the release does).  transformers is imported
on first use; torch at import (the class is an ``nn.Module``).
"""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from regionreasoner.core.errors import ConfigError, InputError, ModelLoadError
from regionreasoner.tools.generate.prompting import NUM_NEW_SPECIAL_TOKENS, VocabLayout

__all__ = ["GEMMA2_2B_IT", "WEIGHT_NAMES", "NeoBabel", "NeoBabelConfig", "SaveLayout"]

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
UNWRAPPED = "unwrapped_model"
WEIGHT_NAMES = ("pytorch_model.safetensors", "model.safetensors", "pytorch_model.bin", f"{UNWRAPPED}/pytorch_model.bin")
"""Weight files :meth:`NeoBabel.from_pretrained` looks for, in this order (sharded indexes after them)."""
# Sharded saves (diffusers' split_torch_state_dict_into_shards): an index naming the shard of every tensor.
INDEX_NAMES = tuple(
    f"{s}.{e}.index.json" for e in ("safetensors", "bin") for s in ("pytorch_model", "diffusion_pytorch_model", "model")
)
SaveLayout = Literal["safetensors", "bin", "unwrapped"]
_SAVE_FILES: dict[str, str] = {
    "safetensors": "pytorch_model.safetensors",
    "bin": "pytorch_model.bin",
    "unwrapped": f"{UNWRAPPED}/pytorch_model.bin",
}
_HEAD = "neobabel.lm_head.weight"
_EMBED = "neobabel.model.embed_tokens.weight"

GEMMA2_2B_IT: Mapping[str, object] = {
    "model_type": "gemma2",
    "vocab_size": 256000,
    "hidden_size": 2304,
    "intermediate_size": 9216,
    "num_hidden_layers": 26,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "hidden_activation": "gelu_pytorch_tanh",
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "attn_logit_softcapping": 50.0,
    "final_logit_softcapping": 30.0,
    "query_pre_attn_scalar": 256,
    "sliding_window": 4096,
    "tie_word_embeddings": True,
    "bos_token_id": 2,
    "eos_token_id": [1, 107],
    "pad_token_id": 0,
}
"""Architecture keys of ``google/gemma-2-2b-it``'s config.json (a gated repo), so released checkpoints load offline."""
_KNOWN_LLMS = {"google/gemma-2-2b-it": GEMMA2_2B_IT, "google/gemma-2-2b": GEMMA2_2B_IT}


@dataclass(kw_only=True)
class NeoBabelConfig:
    """NeoBabel's config.json: the released init kwargs, plus an optional inline Gemma-2 config.

    ``vocab_size`` must be ``llm_vocab_size + 10 + codebook_size + 1``; ``mask_token_id`` is ``vocab_size - 1``.
    """

    vocab_size: int
    """Rows of the (resized) embedding: text + 10 added tokens + codes + MASK (264203 released)."""
    llm_vocab_size: int
    """Text tokenizer size T before the ten NeoBabel tokens (256000 for Gemma-2)."""
    llm_model_path: str = ""
    """Where the Gemma-2 config comes from: a hub id or a local folder (relative paths: to the checkpoint)."""
    codebook_size: int = 8192
    """Image codes K (MAGVIT-v2: 8192)."""
    num_vq_tokens: int = 256
    """Codes per image N: 256 at 256², 1024 at 512²."""
    load_from_huggingface: bool = True
    """Released flag: True built the LLM from its config (random), False loaded Gemma weights; ignored on load."""
    num_new_special_tokens: int = NUM_NEW_SPECIAL_TOKENS
    """[PAD] + nine task tokens: always 10."""
    mask_token_id: int | None = None
    """MASK id; None means ``vocab_size - 1`` (the only valid value)."""
    llm_config: dict[str, object] | None = None
    """Inline Gemma-2 config.json content (``model_type`` gemma2); wins over ``llm_model_path``."""
    extra: dict[str, object] = field(default_factory=dict)
    """Other keys of a released config.json (``_class_name``, ``w_clip_vit``, ...), kept to be written back."""

    def __post_init__(self) -> None:
        if self.num_new_special_tokens != NUM_NEW_SPECIAL_TOKENS:
            raise ConfigError(
                f"num_new_special_tokens={self.num_new_special_tokens}",
                hint=f"set it to {NUM_NEW_SPECIAL_TOKENS} ([PAD] + 9 task tokens)",
            )
        if self.num_vq_tokens < 1:
            raise ConfigError(f"num_vq_tokens={self.num_vq_tokens}: set it to the codes per image (256, 1024)")
        want = VocabLayout(text_vocab_size=self.llm_vocab_size, codebook_size=self.codebook_size).vocab_size
        if self.vocab_size != want:
            raise ConfigError(
                f"vocab_size={self.vocab_size} with llm_vocab_size={self.llm_vocab_size}, "
                f"codebook_size={self.codebook_size}",
                hint=f"set vocab_size={want} (text + 10 + codes + MASK)",
            )
        if self.mask_token_id is None:
            self.mask_token_id = self.vocab_size - 1
        elif self.mask_token_id != self.vocab_size - 1:
            raise ConfigError(f"mask_token_id={self.mask_token_id}", hint=f"set it to vocab_size - 1 = {want - 1}")

    @property
    def layout(self) -> VocabLayout:
        """Token ids of this vocabulary (``<bos>`` 2 and ``<eos>`` 1, as in Gemma)."""
        return VocabLayout(text_vocab_size=self.llm_vocab_size, codebook_size=self.codebook_size)

    @classmethod
    def from_dict(cls, data: Mapping[str, object], *, source: str = CONFIG_NAME) -> NeoBabelConfig:
        """A config from parsed config.json; unknown keys go to :attr:`extra`.  Bad values raise ModelLoadError."""
        names = {f.name for f in fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names}
        for key in ("vocab_size", "llm_vocab_size"):
            if not isinstance(known.get(key), int):
                raise ModelLoadError(f"{source}: {key} is {known.get(key)!r}", hint=f"write {key} as an integer")
        try:
            return cls(**known, extra=dict(extra))  # type: ignore[arg-type]
        except (ConfigError, TypeError) as exc:
            raise ModelLoadError(f"{source}: {exc}", hint="fix config.json (keys of NeoBabel.__init__)") from exc

    def to_dict(self) -> dict[str, object]:
        """config.json content: released keys (``_class_name`` NeoBabel first), then ``llm_config`` if inline."""
        out: dict[str, object] = {"_class_name": "NeoBabel", **self.extra}
        out.update({k: v for k, v in asdict(self).items() if k != "extra" and not (k == "llm_config" and v is None)})
        return out

    @classmethod
    def tiny(
        cls,
        llm_vocab_size: int,
        *,
        codebook_size: int = 64,
        num_vq_tokens: int = 64,
        hidden_size: int = 64,
        num_layers: int = 2,
        num_heads: int = 4,
    ) -> NeoBabelConfig:
        """A tiny Gemma-2 NeoBabel for tests: inline ``llm_config`` (head_dim 16, soft-caps 50/30, tied head)."""
        head_dim = 16
        llm = {
            **GEMMA2_2B_IT,
            "vocab_size": llm_vocab_size,
            "hidden_size": hidden_size,
            "intermediate_size": 2 * hidden_size,
            "num_hidden_layers": num_layers,
            "num_attention_heads": num_heads,
            "num_key_value_heads": max(1, num_heads // 2),
            "head_dim": head_dim,
            "query_pre_attn_scalar": head_dim,
            "max_position_embeddings": 2048,
        }
        vocab = VocabLayout(text_vocab_size=llm_vocab_size, codebook_size=codebook_size).vocab_size
        return cls(
            vocab_size=vocab,
            llm_vocab_size=llm_vocab_size,
            codebook_size=codebook_size,
            num_vq_tokens=num_vq_tokens,
            llm_config=llm,
        )

    def gemma_config(self, base_dir: str | Path | None = None) -> Any:
        """The ``Gemma2Config`` (vocab resized to :attr:`vocab_size`, eager attention), found as the module says."""
        from transformers import AutoConfig, PretrainedConfig

        data: Mapping[str, object] | None = self.llm_config
        source = "llm_config"
        path = Path(self.llm_model_path).expanduser() if self.llm_model_path else None
        if data is None and path is not None:
            local = path if path.is_absolute() or base_dir is None else Path(base_dir) / path
            for candidate in (local, path):
                if (candidate / CONFIG_NAME).is_file():
                    source = str(candidate / CONFIG_NAME)
                    data = _read_json(candidate / CONFIG_NAME)
                    break
        if data is None and self.llm_model_path in _KNOWN_LLMS:
            data, source = _KNOWN_LLMS[self.llm_model_path], f"embedded {self.llm_model_path} config"
        if data is not None:
            values = {k: v for k, v in data.items() if k != "model_type"}
            if data.get("model_type", "gemma2") != "gemma2":
                raise ModelLoadError(f"{source} is a {data.get('model_type')!r} config", hint="NeoBabel needs Gemma-2")
            llm: PretrainedConfig = AutoConfig.for_model("gemma2", **values)
        elif self.llm_model_path:
            try:
                llm = AutoConfig.from_pretrained(self.llm_model_path)
            except (OSError, ValueError) as exc:
                raise ModelLoadError(
                    f"cannot get the Gemma-2 config {self.llm_model_path!r}: {exc}",
                    hint="put its config.json in a local folder and point llm_model_path there, or inline llm_config",
                ) from exc
            if llm.model_type != "gemma2":
                raise ModelLoadError(f"{self.llm_model_path} is a {llm.model_type!r} model", hint="use a Gemma-2")
        else:
            raise ModelLoadError(
                "config.json names no Gemma-2 config", hint='set llm_model_path ("google/gemma-2-2b-it") or llm_config'
            )
        llm.vocab_size = self.vocab_size  # the release's resize_token_embeddings(vocab_size)
        llm._attn_implementation = "eager"  # soft-capping holds only in eager attention
        return llm


class NeoBabel(nn.Module):
    """Gemma-2 with NeoBabel's vocabulary; ``forward`` gives full logits, ``image_logits`` only the code logits.

    ``NeoBabel(config)`` builds random weights in ``dtype`` on torch's current device (``with torch.device(...)``);
    ``init_weights=False`` leaves them uninitialised, to be loaded into; ``base_dir`` resolves a relative
    ``llm_model_path``.  Inputs are token ids (B, L) and the additive mask
    (B, 1, L, L) of :func:`~regionreasoner.tools.generate.prompting.attention_mask` in :attr:`dtype`.
    """

    def __init__(
        self,
        config: NeoBabelConfig,
        *,
        base_dir: str | Path | None = None,
        init_weights: bool = True,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        from transformers import Gemma2ForCausalLM
        from transformers.initialization import no_init_weights

        self.config = config
        llm = config.gemma_config(base_dir)
        dtype = dtype or torch.float32
        if init_weights:
            self.neobabel = Gemma2ForCausalLM._from_config(llm, dtype=dtype)
        else:
            with no_init_weights():
                self.neobabel = Gemma2ForCausalLM._from_config(llm, dtype=dtype)
        self.neobabel.eval()

    @property
    def layout(self) -> VocabLayout:
        """Token ids (pad, soi, eoi, image offset, MASK) of this model's vocabulary."""
        return self.config.layout

    @property
    def dtype(self) -> torch.dtype:
        """Parameter dtype (the attention mask must use it)."""
        return self.neobabel.model.embed_tokens.weight.dtype

    @property
    def device(self) -> torch.device:
        """Parameter device."""
        return self.neobabel.model.embed_tokens.weight.device

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Logits (B, L, vocab_size) at every position, soft-capped (30·tanh(x/30)); no next-token shift."""
        return self.neobabel(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits

    def image_logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, num_image_tokens: int
    ) -> torch.Tensor:
        """Float32 code logits (B, N, K) at the image positions ``[-(N+1):-1]``: ``forward(...)[..., off:off+K]``.

        Only the N image rows and the K code columns of the tied head are computed (the release computes all
        L x vocab_size logits and slices); the final soft-cap is applied as Gemma-2 does, before any CFG mix.
        """
        n = num_image_tokens
        if input_ids.ndim != 2 or input_ids.shape[1] < n + 2:
            raise InputError(f"input_ids of shape {tuple(input_ids.shape)} for {n} image tokens", hint="pass (B, L)")
        hidden = self.neobabel.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        h = hidden.last_hidden_state[:, -(n + 1) : -1]
        off = self.layout.image_offset
        logits = nn.functional.linear(h, self.neobabel.lm_head.weight[off : off + self.config.codebook_size])
        cap = self.neobabel.config.final_logit_softcapping
        if cap is not None:
            logits = torch.tanh(logits / cap) * cap
        return logits.float()

    # ---------------------------------------------------------------- checkpoints

    @classmethod
    def from_pretrained(
        cls,
        folder: str | Path,
        *,
        config: NeoBabelConfig | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> NeoBabel:
        """Load a released-layout folder strictly (see the module docstring); returns the model in eval mode.

        ``config`` replaces config.json (the eval scripts' ``unwrapped_model/`` folders have none).  A ``module.``
        prefix (DDP) is stripped; a missing tied ``lm_head`` is restored from the embedding.  Every other missing,
        unexpected or mis-shaped key raises :class:`ModelLoadError`.
        """
        root = Path(folder)
        if not root.is_dir():
            raise ModelLoadError(f"no NeoBabel checkpoint folder at {root}", hint="pass the folder holding config.json")
        if config is None:
            found = next((p for p in (root / CONFIG_NAME, root / UNWRAPPED / CONFIG_NAME) if p.is_file()), None)
            if found is None:
                raise ModelLoadError(
                    f"{root} has no {CONFIG_NAME}", hint="write NeoBabelConfig(...).to_dict() there, or pass config="
                )
            data = _read_json(found)
            if not isinstance(data, dict):
                raise ModelLoadError(f"{found} is not a JSON object", hint="rewrite it as NeoBabel's init kwargs")
            config = NeoBabelConfig.from_dict(data, source=str(found))
        state = _read_weights(root)
        with torch.device(device):
            model = cls(config, base_dir=root, init_weights=False, dtype=dtype)
        model.load_checkpoint(state, source=str(root))
        logger.info("loaded NeoBabel from %s (%d tensors, %s)", root, len(state), dtype)
        return model.eval()

    def load_checkpoint(self, state: Mapping[str, torch.Tensor], *, source: str = "state dict") -> None:
        """``load_state_dict(strict=True)`` after stripping ``module.`` and restoring a tied head; typed errors."""
        clean = {k.removeprefix("module."): v for k, v in state.items()}
        tied = bool(self.neobabel.config.tie_word_embeddings)
        if tied and _HEAD not in clean and _EMBED in clean:
            clean[_HEAD] = clean[_EMBED]  # safetensors cannot store the shared tensor twice
        expected = self.state_dict()
        missing = sorted(set(expected) - set(clean))
        unexpected = sorted(set(clean) - set(expected))
        wrong = sorted(k for k in set(expected) & set(clean) if expected[k].shape != clean[k].shape)
        if missing or unexpected or wrong:
            parts = [f"{len(missing)} missing {missing[:3]}"] if missing else []
            parts += [f"{len(unexpected)} unexpected {unexpected[:3]}"] if unexpected else []
            parts += [f"{k}: file {tuple(clean[k].shape)}, model {tuple(expected[k].shape)}" for k in wrong[:3]]
            raise ModelLoadError(
                f"{source} does not match its config: {'; '.join(parts)}",
                hint="check vocab_size/llm_vocab_size/codebook_size and the Gemma-2 config in config.json",
            )
        self.load_state_dict(clean, strict=True)
        if tied:
            self.neobabel.tie_weights()

    def save_pretrained(self, folder: str | Path, *, layout: SaveLayout = "safetensors") -> Path:
        """Write config.json and the weights in a released layout; returns the weights file.

        ``safetensors``: ``pytorch_model.safetensors`` (the tied head is stored once, as the embedding);
        ``bin``: ``pytorch_model.bin`` (``torch.save`` of the full state dict, as training's final save);
        ``unwrapped``: ``unwrapped_model/pytorch_model.bin`` (training checkpoints), config.json beside it.
        """
        if layout not in _SAVE_FILES:
            raise ConfigError(f"layout={layout!r}", hint=f"use one of {sorted(_SAVE_FILES)}")
        root = Path(folder)
        target = root / _SAVE_FILES[layout]
        target.parent.mkdir(parents=True, exist_ok=True)
        (root / CONFIG_NAME).write_text(json.dumps(self.config.to_dict(), indent=2) + "\n", encoding="utf-8")
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.state_dict().items()}
        if layout == "safetensors":
            from safetensors.torch import save_file

            if self.neobabel.config.tie_word_embeddings:
                state.pop(_HEAD, None)
            save_file(state, str(target), metadata={"format": "pt"})
        else:
            torch.save(state, target)
        return target


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}", hint="fix the file or download it again") from exc


def _read_weights(root: Path) -> dict[str, torch.Tensor]:
    """The state dict of ``root``: the first of :data:`WEIGHT_NAMES`, else a sharded index's files."""
    single = next((root / n for n in WEIGHT_NAMES if (root / n).is_file()), None)
    if single is not None:
        return _read_file(single)
    index = next((root / n for n in INDEX_NAMES if (root / n).is_file()), None)
    if index is None:
        raise ModelLoadError(
            f"{root} has no weights (looked for {', '.join(WEIGHT_NAMES)} and sharded indexes)",
            hint="save with NeoBabel.save_pretrained(folder) or copy the released checkpoint there",
        )
    weight_map = _read_json(index).get("weight_map")
    if not isinstance(weight_map, dict):
        raise ModelLoadError(f"{index} has no weight_map", hint="rewrite the index or download it again")
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        state.update(_read_file(root / str(shard)))
    return state


def _read_file(path: Path) -> dict[str, torch.Tensor]:
    """A flat ``{name: tensor}`` from safetensors, or a torch pickle read with ``weights_only=True``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state: object = (
            load_file(str(path)) if path.suffix == ".safetensors" else torch.load(path, "cpu", weights_only=True)
        )
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError, SafetensorError) as exc:
        raise ModelLoadError(f"cannot read weights {path}: {exc}", hint="download or save the file again") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"{path} is not a flat state dict", hint="save model.state_dict(), not a training state")
    return {str(k): v for k, v in state.items()}
