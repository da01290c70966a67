"""Run configurations: dataclasses that validate themselves and double as YAML files and CLI flags.

A config is built from a preset YAML (``trainers/configs/*.yaml``, or any file), then from command-line flags, each
later source overriding the earlier (``regionreasoner-train grpo --config paper --learning-rate 5e-7``).  Every field
is a flag (``--max-steps``); unknown keys in a YAML file and values of the wrong type are a ConfigError naming the
key and the fix.  No torch or TRL at import.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from regionreasoner.core.errors import ConfigError

__all__ = ["PRESETS", "GRPORunConfig", "SFTRunConfig", "add_config_arguments", "config_from_args", "load_config"]

PRESETS = Path(__file__).with_name("configs")
"""Folder of the shipped presets (``paper.yaml``, ``tiny.yaml``, ...); ``--config NAME`` finds them by name."""

Feed = Literal["official", "multiturn"]
TraceStyle = Literal["full", "short"]

Rollouts = Literal["generate", "vllm", "graph"]


@dataclass(kw_only=True)
class _RunConfig:
    """What SFT and GRPO runs share."""

    model: str = field(default="tiny", metadata={"help": "checkpoint folder or hub id ('tiny': the tiny random model)"})
    data: str = field(
        default="synthetic",
        metadata={"help": "a dataset folder written by `regionreasoner-train data`, or 'synthetic' (built on the fly)"},
    )
    output_dir: str = field(default="runs/grpo", metadata={"help": "checkpoints, metrics.jsonl and the plot go here"})
    max_steps: int = field(default=3, metadata={"help": "optimizer steps"})
    learning_rate: float = field(default=1e-6, metadata={"help": "peak learning rate"})
    seed: int = field(default=0, metadata={"help": "seed of data order, sampling and initialisation"})
    save_steps: int = field(default=0, metadata={"help": "save a checkpoint every N steps (0: only at the end)"})
    feed: Feed = field(
        default="official",
        metadata={"help": "official: each round a sample with the reference box in the question; multiturn: history"},
    )
    synthetic_samples: int = field(default=64, metadata={"help": "dialogues of the on-the-fly synthetic dataset"})
    synthetic_style: TraceStyle = field(
        default="full", metadata={"help": "synthetic traces: full (RegionReasoner prompt) or short (embedded model)"}
    )
    synthetic_language: str = field(
        default="en", metadata={"help": "language of synthetic questions: en zh nl fr hi fa, mix, or any (all)"}
    )
    synthetic_rounds: str = field(default="2-5", metadata={"help": "rounds per synthetic dialogue, MIN-MAX"})
    synthetic_sizes: str = field(
        default="320x240", metadata={"help": "canvas sizes WxH of synthetic scenes, comma-separated (cycled)"}
    )
    frame: str = field(default="fixed:840x840", metadata={"help": "coordinate frame of the data and answers"})
    prompt_template: str = field(
        default="regionreasoner-train", metadata={"help": "prompt template the questions are rendered in"}
    )
    lr_scheduler: str = field(default="constant", metadata={"help": "transformers scheduler: constant, cosine, ..."})
    warmup_steps: int = field(default=0, metadata={"help": "linear warm-up steps"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    lora: bool = field(default=False, metadata={"help": "train LoRA adapters (peft) instead of all weights"})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha"})
    use_cpu: bool = field(default=False, metadata={"help": "train on CPU even where a GPU is present"})

    def __post_init__(self) -> None:
        _check_types(self)
        for name in ("max_steps", "lora_r", "lora_alpha", "synthetic_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: set it >= 1")
        if self.save_steps < 0 or self.seed < 0:
            raise ConfigError(f"save_steps={self.save_steps}, seed={self.seed}: set them >= 0")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate={self.learning_rate}: set it > 0")
        if self.warmup_steps < 0 or self.weight_decay < 0:
            raise ConfigError(f"warmup_steps={self.warmup_steps}, weight_decay={self.weight_decay}: set them >= 0")
        self.rounds()  # validates synthetic_rounds
        self.sizes()
        from regionreasoner.core.frames import frame_from_spec
        from regionreasoner.core.prompts import get_prompt

        frame_from_spec(self.frame)
        get_prompt(self.prompt_template)
        from regionreasoner.core.world.dialogue import DIALOGUE_LANGUAGES

        if self.synthetic_language not in DIALOGUE_LANGUAGES:
            raise ConfigError(
                f"synthetic_language={self.synthetic_language!r}", hint=f"use one of {list(DIALOGUE_LANGUAGES)}"
            )

    def rounds(self) -> tuple[int, int]:
        """``synthetic_rounds`` as ``(min, max)``."""
        lo, sep, hi = self.synthetic_rounds.partition("-")
        try:
            pair = (int(lo), int(hi or lo))
        except ValueError:
            pair = (0, 0)
        if not 1 <= pair[0] <= pair[1] <= 12 or (sep and not hi):
            raise ConfigError(
                f"synthetic_rounds={self.synthetic_rounds!r}", hint="write MIN-MAX with 1 <= MIN <= MAX <= 12"
            )
        return pair

    def sizes(self) -> tuple[tuple[int, int], ...]:
        """``synthetic_sizes`` as ``((W, H), ...)``."""
        out = []
        for part in self.synthetic_sizes.split(","):
            w, _, h = part.strip().lower().partition("x")
            if not (w.isdigit() and h.isdigit()) or min(int(w), int(h)) < 64:
                raise ConfigError(
                    f"synthetic_sizes={self.synthetic_sizes!r}", hint="write WxH[,WxH...] with sides of at least 64"
                )
            out.append((int(w), int(h)))
        return tuple(out)

    def synthetic_dataset(self) -> Any:
        """The on-the-fly synthetic ``datasets.Dataset`` this config describes (``data: synthetic``)."""
        from regionreasoner.core.frames import frame_from_spec
        from regionreasoner.trainers.data import synthetic_dataset

        return synthetic_dataset(
            count=self.synthetic_samples,
            seed=self.seed,
            mode=self.feed,
            frame=frame_from_spec(self.frame),
            style=self.synthetic_style,
            language=self.synthetic_language,
            rounds=self.rounds(),
            template=self.prompt_template,
            sizes=self.sizes(),
        )


@dataclass(kw_only=True)
class GRPORunConfig(_RunConfig):
    """A GRPO run (TRL ``GRPOTrainer``); the defaults are a tiny CPU run, ``paper.yaml`` the paper's set-up."""

    prompts_per_step: int = field(default=2, metadata={"help": "distinct prompts per optimizer step"})
    num_generations: int = field(default=4, metadata={"help": "completions per prompt (the GRPO group)"})
    max_completion_length: int = field(default=64, metadata={"help": "most generated tokens per completion"})
    temperature: float = field(default=1.0, metadata={"help": "rollout sampling temperature"})
    beta: float = field(default=0.0, metadata={"help": "KL coefficient to the reference model (0: no reference)"})
    epsilon: float = field(default=0.2, metadata={"help": "PPO-style ratio clip"})
    loss_type: str = field(default="grpo", metadata={"help": "TRL loss_type (grpo, dapo, dr_grpo, bnpo)"})
    rollouts: Rollouts = field(
        default="generate",
        metadata={"help": "generate: transformers; vllm: TRL's vLLM (see vllm_mode); graph: the agent's turn graph"},
    )
    vllm_mode: Literal["colocate", "server"] = field(default="colocate", metadata={"help": "TRL vLLM mode"})
    vllm_server_url: str = field(default="", metadata={"help": "base URL of `trl vllm-serve` (server mode)"})
    freeze_vision: bool = field(
        default=False,
        metadata={"help": "keep the vision encoder fixed (trained: the language model); vLLM syncs skip it"},
    )
    alpha_ref: float = field(default=1.0, metadata={"help": "weight of R_ref in R = R_base + a*R_ref + b*R_cons"})
    beta_cons: float = field(default=1.0, metadata={"help": "weight of R_cons"})

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("prompts_per_step", "num_generations", "max_completion_length"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: set it >= 1")
        if self.num_generations < 2:
            raise ConfigError(f"num_generations={self.num_generations}: GRPO needs a group of at least 2")
        if self.temperature <= 0 or self.beta < 0 or not 0 < self.epsilon < 1:
            raise ConfigError(
                f"temperature={self.temperature}, beta={self.beta}, epsilon={self.epsilon}: need > 0, >= 0, in (0, 1)"
            )
        if self.rollouts == "vllm" and self.vllm_mode == "server" and not self.vllm_server_url:
            raise ConfigError(
                "vllm_mode=server needs vllm_server_url", hint="e.g. --vllm-server-url http://127.0.0.1:8000"
            )

    @property
    def batch_size(self) -> int:
        """Completions per optimizer step (prompts x group), TRL's per-device batch on one device."""
        return self.prompts_per_step * self.num_generations


@dataclass(kw_only=True)
class SFTRunConfig(_RunConfig):
    """A supervised run on ground-truth traces (TRL ``SFTTrainer``, loss on the assistant message only)."""

    batch_size: int = field(default=4, metadata={"help": "samples per optimizer step"})
    max_length: int = field(default=1024, metadata={"help": "longest tokenized sample"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.batch_size < 1 or self.max_length < 16:
            raise ConfigError(f"batch_size={self.batch_size}, max_length={self.max_length}: need >= 1 and >= 16")


_C = TypeVar("_C", bound=_RunConfig)


def _allowed(tp: Any) -> tuple[type, ...] | tuple[Any, ...]:
    """The Python types (or Literal values) a field annotation allows."""
    if get_origin(tp) is Literal:
        return get_args(tp)
    if get_origin(tp) in (types.UnionType, typing.Union):
        return tuple(a for a in get_args(tp) if a is not type(None))
    return (tp,)


def _check_types(cfg: _RunConfig) -> None:
    """Raise ConfigError for a field whose value is not of its declared type (YAML gives any JSON type)."""
    hints = typing.get_type_hints(type(cfg))
    for f in fields(cfg):
        value, tp = getattr(cfg, f.name), hints[f.name]
        if get_origin(tp) is Literal:
            if value not in get_args(tp):
                raise ConfigError(f"{f.name}={value!r}: choose one of {list(get_args(tp))}")
            continue
        ok = tp is float and isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok or (isinstance(value, tp) and not (tp is int and isinstance(value, bool)))
        if not ok:
            raise ConfigError(f"{f.name}={value!r} is {type(value).__name__}, not {tp.__name__}")
        if tp is float:
            object.__setattr__(cfg, f.name, float(value))


def load_config(cls: type[_C], preset: str | Path | None = None, **overrides: Any) -> _C:
    """A config of ``cls`` from a preset (a name under :data:`PRESETS` or a YAML path), then ``overrides``."""
    values: dict[str, Any] = {}
    if preset is not None:
        values.update(_read_yaml(preset))
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys {unknown}", hint=f"known keys: {sorted(known)}")
    return cls(**values)


def _read_yaml(preset: str | Path) -> dict[str, Any]:
    import yaml

    path = Path(preset)
    if not path.suffix and not path.exists():
        path = PRESETS / f"{preset}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in PRESETS.glob("*.yaml"))
        raise ConfigError(f"no config {str(preset)!r}", hint=f"give a YAML file or a preset name: {names}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not a YAML file: {exc}", hint="fix the file") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} holds a {type(data).__name__}, not a mapping of keys to values")
    return data


def add_config_arguments(parser: argparse.ArgumentParser, cls: type[_RunConfig]) -> None:
    """``--config PRESET`` and one flag per field of ``cls`` (default None: the preset's or the field's value)."""
    parser.add_argument("--config", default=None, help=f"a YAML file or a preset under {PRESETS.name}/")
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        flag = "--" + f.name.replace("_", "-")
        tp = hints[f.name]
        default = f.default if f.default is not MISSING else None
        help_text = f"{f.metadata.get('help', '')} (default: {default})"
        if tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif get_origin(tp) is Literal:
            parser.add_argument(flag, choices=list(get_args(tp)), default=None, help=help_text)
        else:
            parser.add_argument(flag, type=_allowed(tp)[0], default=None, help=help_text)


def config_from_args(cls: type[_C], args: argparse.Namespace) -> _C:
    """The config a parsed command line asks for (its preset, then its flags)."""
    overrides = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(cls)}
    return load_config(cls, args.config, **overrides)
