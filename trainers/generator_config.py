"""The generator recipe's configuration: one dataclass that is YAML file and command-line flags at once.

``regionreasoner-train generator --config generator [--lm-steps 50 ...]``: a preset under ``trainers/configs/``
(or any YAML file), then flags, each later source overriding the earlier; unknown keys and values of the wrong
type are a ConfigError naming the key.  No torch at import.
"""

from __future__ import annotations

import argparse
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.world.languages import LANGUAGES

__all__ = [
    "STAGES",
    "GeneratorRunConfig",
    "add_generator_arguments",
    "generator_config_from_args",
    "load_generator_config",
]

STAGES = ("tokenizer", "vq", "lm", "export")
"""The recipe's stages, in order (``--stage all`` runs them all)."""

_PRESETS = Path(__file__).with_name("configs")


def _ints(name: str, text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise ConfigError(f"{name}={text!r}", hint="write positive integers separated by commas, e.g. 1,2,4,4")
    return values


@dataclass(kw_only=True)
class GeneratorRunConfig:
    """A from-scratch run of the tiny NeoBabel + MAGVIT-v2 on the synthetic world (defaults: a few-step test run)."""

    output_dir: str = field(default="runs/generator", metadata={"help": "run folder: one sub-folder per stage"})
    seed: int = field(default=0, metadata={"help": "seed of initialisation and of the picture stream"})
    threads: int = field(default=2, metadata={"help": "torch CPU threads"})
    resolution: int = field(default=64, metadata={"help": "square picture side in pixels"})
    languages: str = field(default="all", metadata={"help": "caption languages: all, or a comma list of en zh nl ..."})
    switch_share: float = field(default=0.2, metadata={"help": "share of code-switched captions"})
    lattice: bool = field(default=True, metadata={"help": "shapes on the code grid's corners (generator_data)"})
    lattice_footprint: int = field(
        default=3, metadata={"help": "cells per side a lattice shape fills: 3, or 1 (one code per shape)"}
    )
    vq_free_share: float = field(default=0.2, metadata={"help": "share of freely placed pictures in MAGVIT training"})
    tokenizer_vocab: int = field(default=1024, metadata={"help": "text tokenizer size (byte-level BPE)"})
    tokenizer_captions: int = field(default=20000, metadata={"help": "captions the tokenizer is trained on"})
    max_seq_length: int = field(default=40, metadata={"help": "text tokens before padding (text part: +1)"})
    # MAGVIT-v2
    vq_ch: int = field(default=16, metadata={"help": "MAGVIT-v2 base width"})
    vq_ch_mult: str = field(default="1,2,4,4", metadata={"help": "width multipliers per level"})
    vq_res_blocks: int = field(default=1, metadata={"help": "res blocks per level (encoder and decoder)"})
    vq_z_channels: int = field(default=10, metadata={"help": "bits per code (2**z codes)"})
    vq_norm_groups: int = field(default=8, metadata={"help": "GroupNorm groups"})
    vq_steps: int = field(default=4, metadata={"help": "MAGVIT-v2 optimizer steps"})
    vq_batch: int = field(default=4, metadata={"help": "pictures per MAGVIT-v2 step"})
    vq_lr: float = field(default=2e-3, metadata={"help": "MAGVIT-v2 peak learning rate (AdamW, cosine)"})
    vq_commit: float = field(default=0.25, metadata={"help": "weight of the LFQ commitment loss"})
    vq_entropy: float = field(default=0.05, metadata={"help": "weight of the LFQ entropy loss"})
    vq_shape_weight: float = field(default=4.0, metadata={"help": "extra loss weight of shape (non-background) pixels"})
    vq_entropy_cells: str = field(
        default="all", metadata={"help": "where the codebook-entropy term looks: all cells, or shapes (their cells)"}
    )
    vq_entropy_temperature: float = field(default=0.01, metadata={"help": "softmax temperature of the entropy loss"})
    # NeoBabel
    lm_hidden: int = field(default=64, metadata={"help": "Gemma-2 hidden size"})
    lm_layers: int = field(default=2, metadata={"help": "Gemma-2 layers"})
    lm_heads: int = field(default=4, metadata={"help": "attention heads (kv heads: half)"})
    lm_intermediate: int = field(default=128, metadata={"help": "MLP width"})
    lm_steps: int = field(default=4, metadata={"help": "NeoBabel optimizer steps"})
    lm_batch: int = field(default=4, metadata={"help": "pictures per NeoBabel step"})
    lm_lr: float = field(default=1e-3, metadata={"help": "NeoBabel peak learning rate (AdamW, cosine)"})
    lm_warmup: int = field(default=0, metadata={"help": "linear warm-up steps of both stages"})
    lm_shape_weight: float = field(
        default=0.0, metadata={"help": "extra loss weight of shape cells, decaying to 0 at half the LM steps"}
    )
    lm_weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay of NeoBabel"})
    cond_dropout: float = field(default=0.1, metadata={"help": "share of captions dropped (empty prompt), for CFG"})
    save_steps: int = field(default=0, metadata={"help": "checkpoint every N steps (0: only at the end)"})
    log_steps: int = field(default=1, metadata={"help": "log metrics every N steps"})
    # sampler defaults written to generator.json
    timesteps: int = field(default=8, metadata={"help": "sampler steps (generator.json)"})
    guidance_scale: float = field(default=2.0, metadata={"help": "CFG weight w (generator.json)"})
    temperature: float = field(default=1.0, metadata={"help": "Gumbel temperature of the re-masking (generator.json)"})
    inpaint_timesteps: int = field(default=8, metadata={"help": "inpainting sampler steps (generator.json)"})
    inpaint_guidance_scale: float = field(default=2.0, metadata={"help": "inpainting CFG weight (generator.json)"})
    code_temperature: float = field(
        default=1.0, metadata={"help": "temperature of the sampler's code draw (generator.json; 1 = the release)"}
    )
    inpaint_context: float = field(
        default=2.0, metadata={"help": "inpainting window / mask box side (generator.json; 0 = largest window)"}
    )
    inpaint_cover: float = field(
        default=0.9, metadata={"help": "share of a code cell the mask must cover to be regenerated (generator.json)"}
    )
    inpaint_cell: bool = field(
        default=False, metadata={"help": "inpainting puts the region on one code cell (generator.json; footprint 1)"}
    )
    export_dir: str = field(default="", metadata={"help": "generator folder to write (default: OUTPUT_DIR/export)"})
    export_dtype: str = field(default="float16", metadata={"help": "NeoBabel weights dtype: float32 or float16"})

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            value, tp = getattr(self, f.name), hints[f.name]
            if tp is float and isinstance(value, int) and not isinstance(value, bool):
                setattr(self, f.name, float(value))
            elif not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
                raise ConfigError(f"{f.name}={value!r} is {type(value).__name__}, not {tp.__name__}")
        for name in ("threads", "tokenizer_captions", "vq_ch", "vq_res_blocks", "vq_steps", "vq_batch", "lm_hidden"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: set it >= 1")
        for name in ("lm_layers", "lm_heads", "lm_intermediate", "lm_steps", "lm_batch", "log_steps", "timesteps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)}: set it >= 1")
        if self.save_steps < 0 or self.seed < 0 or self.lm_warmup < 0:
            raise ConfigError(f"save_steps={self.save_steps}, seed={self.seed}, lm_warmup={self.lm_warmup}: >= 0")
        if self.lattice_footprint not in (1, 3) or self.resolution // self.stride < 3:
            raise ConfigError(
                f"lattice_footprint={self.lattice_footprint} on a {self.resolution // self.stride}-cell grid",
                hint="use a footprint of 1 or 3 and a code grid of at least 3x3 cells",
            )
        if self.vq_entropy_cells not in ("all", "shapes"):
            raise ConfigError(f"vq_entropy_cells={self.vq_entropy_cells!r}: use all or shapes")
        if not 0 <= self.vq_free_share <= 1:
            raise ConfigError(f"vq_free_share={self.vq_free_share}: use [0, 1]")
        if not 0 <= self.cond_dropout < 1 or not 0 <= self.switch_share <= 1:
            raise ConfigError(f"cond_dropout={self.cond_dropout}, switch_share={self.switch_share}: use [0, 1)")
        if self.lm_hidden % self.lm_heads or (self.lm_hidden // self.lm_heads) % 2:
            raise ConfigError(f"lm_hidden={self.lm_hidden}, lm_heads={self.lm_heads}: heads must divide hidden evenly")
        if self.resolution % self.stride:
            raise ConfigError(f"resolution={self.resolution} with stride {self.stride}: use a multiple of the stride")
        if not 2 <= self.vq_z_channels <= 14:
            raise ConfigError(f"vq_z_channels={self.vq_z_channels}: use 2..14 bits")
        if self.export_dtype not in ("float32", "float16"):
            raise ConfigError(f"export_dtype={self.export_dtype!r}: use float32 or float16")
        self.language_list()

    @property
    def stride(self) -> int:
        """Pixels per code along each axis (2 ** (levels - 1))."""
        return int(2 ** (len(_ints("vq_ch_mult", self.vq_ch_mult)) - 1))

    @property
    def num_vq_tokens(self) -> int:
        """Codes per picture."""
        return (self.resolution // self.stride) ** 2

    def language_list(self) -> tuple[str, ...]:
        """``languages`` as a tuple of world languages."""
        if self.languages == "all":
            return LANGUAGES
        out = tuple(t.strip() for t in self.languages.split(",") if t.strip())
        if not out or any(t not in LANGUAGES for t in out):
            raise ConfigError(f"languages={self.languages!r}", hint=f"use all or some of {','.join(LANGUAGES)}")
        return out

    def magvit_config(self) -> Any:
        """The :class:`~regionreasoner.tools.generate.magvit.MagvitConfig` of this run."""
        from regionreasoner.tools.generate.magvit import MagvitConfig

        mult = _ints("vq_ch_mult", self.vq_ch_mult)
        blocks = (self.vq_res_blocks,) * len(mult)
        return MagvitConfig(
            ch=self.vq_ch,
            encoder_ch_mult=mult,
            encoder_num_res_blocks=blocks,
            decoder_ch_mult=mult,
            decoder_num_res_blocks=blocks,
            z_channels=self.vq_z_channels,
            resolution=self.resolution,
            attn_resolutions=(),
            norm_groups=self.vq_norm_groups,
        )

    @property
    def export_folder(self) -> Path:
        """Where the export stage writes the generator folder."""
        return Path(self.export_dir) if self.export_dir else Path(self.output_dir) / "export"


def load_generator_config(preset: str | Path | None = None, **overrides: Any) -> GeneratorRunConfig:
    """A config from a preset (name under trainers/configs/ or a YAML path), then ``overrides`` (None: unset)."""
    import yaml

    values: dict[str, Any] = {}
    if preset is not None:
        path = Path(preset)
        if not path.suffix and not path.exists():
            path = _PRESETS / f"{preset}.yaml"
        if not path.is_file():
            names = sorted(p.stem for p in _PRESETS.glob("generator*.yaml"))
            raise ConfigError(f"no config {str(preset)!r}", hint=f"give a YAML file or a preset name: {names}")
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path} holds a {type(data).__name__}, not a mapping of keys to values")
        values.update(data)
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(values) - {f.name for f in fields(GeneratorRunConfig)})
    if unknown:
        raise ConfigError(f"unknown generator config keys {unknown}", hint="see regionreasoner-train generator -h")
    return GeneratorRunConfig(**values)


def add_generator_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config PRESET`` and one flag per field (default None: the preset's or the field's value)."""
    parser.add_argument("--config", default=None, help="a YAML file or a preset under trainers/configs/")
    hints = typing.get_type_hints(GeneratorRunConfig)
    for f in fields(GeneratorRunConfig):
        default = f.default if f.default is not MISSING else None
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            type=hints[f.name],
            default=None,
            help=f"{f.metadata.get('help', '')} (default: {default})",
        )


def generator_config_from_args(args: argparse.Namespace) -> GeneratorRunConfig:
    """The config a parsed command line asks for (its preset, then its flags)."""
    overrides = {f.name: getattr(args, f.name, None) for f in fields(GeneratorRunConfig)}
    return load_generator_config(args.config, **overrides)
