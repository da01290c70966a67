"""The MAGVIT-v2 image tokenizer of Show-o and NeoBabel: pixels ↔ a grid of 13-bit codes.

:class:`Magvit` is the encoder, the lookup-free quantiser and the decoder of ``showlab/magvitv2`` (neobabel.md
§1.5), written in plain torch with Show-o's module names so that the released state dict loads strictly.  A
256×256 image becomes 16×16 = 256 codes, a 512×512 one 32×32 = 1024 codes, each in ``[0, 8192)``, in raster
order; :meth:`Magvit.decode_code` turns a code grid (square or not) back into pixels.

Checkpoint folders use the released layout: ``config.json`` (diffusers style, ``"_class_name": "MAGVITv2"``) and
``pytorch_model.safetensors`` (Show-o's name; ``model.safetensors``, ``diffusion_pytorch_model.safetensors`` and
``pytorch_model.bin`` are read too).  The released ``config.json`` carries no architecture keys (Show-o's
``MAGVITv2.__init__`` takes no arguments), so a missing key means the released default of :class:`MagvitConfig`.
"""

from __future__ import annotations

import json
import logging
import math
import pickle
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from regionreasoner.core.errors import ConfigError, InputError, ModelLoadError
from regionreasoner.tools.generate.magvit_blocks import LookupFreeQuantizer, MagvitDecoder, MagvitEncoder, lfq_tables

__all__ = ["CONFIG_NAME", "SAFETENSORS_NAME", "WEIGHT_NAMES", "Magvit", "MagvitConfig"]

logger = logging.getLogger(__name__)

CLASS_NAME = "MAGVITv2"
"""``_class_name`` of the released config.json (Show-o's class)."""
CONFIG_NAME = "config.json"
SAFETENSORS_NAME = "pytorch_model.safetensors"
"""What :meth:`Magvit.save_pretrained` writes: Show-o's ``SAFETENSORS_WEIGHTS_NAME`` (models/modeling_utils.py)."""
WEIGHT_NAMES = (SAFETENSORS_NAME, "model.safetensors", "diffusion_pytorch_model.safetensors", "pytorch_model.bin")
"""Weight files :meth:`Magvit.from_pretrained` looks for, in this order; the first one present is read."""
RELEASED = "showlab/magvitv2"
_DERIVED = ("quantize.embedding", "quantize.power_vals")
"""Constant buffers (functions of ``z_channels``): filled in when a checkpoint lacks them, checked when present."""
_TUPLES = ("encoder_ch_mult", "encoder_num_res_blocks", "decoder_ch_mult", "decoder_num_res_blocks", "attn_resolutions")


def _positive_ints(name: str, value: object, *, allow_empty: bool = False) -> tuple[int, ...]:
    if not isinstance(value, list | tuple) or not (value or allow_empty):
        raise ConfigError(f"{name}={value!r}: give a {'' if allow_empty else 'non-empty '}list of integers >= 1")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{name}={value!r}: every entry must be an integer >= 1")
    return tuple(value)


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}={value!r}: set it to an integer >= 1")


@dataclass(frozen=True, kw_only=True)
class MagvitConfig:
    """Architecture of the tokenizer; the defaults are the released ``showlab/magvitv2``.

    They are Show-o's ``VQGANEncoder``, ``VQGANDecoder`` and ``LFQuantizer`` defaults.  Lists from JSON are stored
    as tuples.
    """

    ch: int = 128
    """Base width; level ``i`` has ``ch * ch_mult[i]`` channels."""
    encoder_ch_mult: tuple[int, ...] = (1, 2, 2, 4, 4)
    """Encoder width multipliers, one per level; ``len - 1`` downsamplings (stride 16 for five levels)."""
    encoder_num_res_blocks: tuple[int, ...] = (4, 3, 4, 3, 4)
    """Encoder res blocks per level."""
    decoder_ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    """Decoder width multipliers, indexed like the encoder's (level 0 = full resolution); same length."""
    decoder_num_res_blocks: tuple[int, ...] = (4, 4, 3, 4, 3)
    """Decoder res blocks per level (level 0 = full resolution)."""
    z_channels: int = 13
    """Latent channels = code bits: ``2 ** z_channels`` codes (8192)."""
    in_ch: int = 3
    """Input image channels (RGB)."""
    out_ch: int = 3
    """Output image channels (RGB)."""
    resolution: int = 256
    """Nominal input size; only decides which levels get attention (with ``attn_resolutions``)."""
    attn_resolutions: tuple[int, ...] = (5,)
    """Level resolutions (``resolution / 2**level``) that get attention after each res block.  The released (5,)
    matches no level of 256 / 2**k, so only the middle attention exists; kept to mirror Show-o."""
    norm_groups: int = 32
    """GroupNorm groups (released: 32); smaller only for tiny models whose widths are not multiples of 32."""

    def __post_init__(self) -> None:
        for name in ("ch", "z_channels", "in_ch", "out_ch", "resolution", "norm_groups"):
            _positive_int(name, getattr(self, name))
        for name in _TUPLES:
            value = _positive_ints(name, getattr(self, name), allow_empty=name == "attn_resolutions")
            object.__setattr__(self, name, value)  # frozen: normalise lists to tuples once, here
        if self.z_channels > 20:
            raise ConfigError(f"z_channels={self.z_channels}: use at most 20 (the ±1 code table has 2**z rows)")
        for side in ("encoder", "decoder"):
            mult, blocks = getattr(self, f"{side}_ch_mult"), getattr(self, f"{side}_num_res_blocks")
            if len(mult) != len(blocks):
                raise ConfigError(
                    f"{side}_ch_mult has {len(mult)} levels, {side}_num_res_blocks {len(blocks)}: "
                    "give one count per level"
                )
            bad = [self.ch * m for m in mult if (self.ch * m) % self.norm_groups]
            if bad:
                raise ConfigError(
                    f"{side} widths {bad} are not multiples of norm_groups={self.norm_groups}: change ch or norm_groups"
                )
        if len(self.encoder_ch_mult) != len(self.decoder_ch_mult):
            raise ConfigError(
                f"encoder has {len(self.encoder_ch_mult)} levels, decoder {len(self.decoder_ch_mult)}: "
                "give both the same number so that decoding restores the input size"
            )

    @property
    def stride(self) -> int:
        """Pixels per code along each axis: ``2 ** (levels - 1)`` (16 for the released config)."""
        return int(2 ** (len(self.encoder_ch_mult) - 1))

    @property
    def codebook_size(self) -> int:
        """Number of codes, ``2 ** z_channels`` (8192 for the released config)."""
        return int(2**self.z_channels)

    @classmethod
    def tiny(cls, **changes: Any) -> MagvitConfig:
        """A 0.2 M-parameter model of the same structure for tests: 3 levels (stride 4), width 16, 13 bits.

        ``changes`` override fields (``MagvitConfig.tiny(z_channels=6)``).
        """
        base = cls(
            ch=16,
            encoder_ch_mult=(1, 2, 2),
            encoder_num_res_blocks=(1, 2, 1),
            decoder_ch_mult=(1, 1, 2),
            decoder_num_res_blocks=(2, 1, 1),
            resolution=32,
            norm_groups=8,
        )
        try:
            return replace(base, **changes)
        except TypeError as exc:
            names = ", ".join(f.name for f in fields(cls))
            raise ConfigError(f"MagvitConfig.tiny({', '.join(changes)}): {exc}", hint=f"fields are {names}") from exc

    def to_json(self) -> dict[str, Any]:
        """The config.json content: ``_class_name`` plus every field (tuples as lists)."""
        return {
            "_class_name": CLASS_NAME,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()},
        }

    @classmethod
    def from_json(cls, data: object, *, source: str = CONFIG_NAME) -> MagvitConfig:
        """A config from parsed config.json: ``_``-prefixed keys are metadata, absent fields take released defaults.

        Raises :class:`ModelLoadError` for another ``_class_name``, unknown keys or invalid values.
        """
        if not isinstance(data, dict):
            raise ModelLoadError(
                f"{source} holds {type(data).__name__}, not an object", hint="rewrite it as a JSON object"
            )
        class_name = data.get("_class_name", CLASS_NAME)
        if class_name != CLASS_NAME:
            raise ModelLoadError(
                f"{source} describes a {class_name!r}, not a {CLASS_NAME}", hint=f"point at a {RELEASED} folder"
            )
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if not k.startswith("_")}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ModelLoadError(
                f"{source} has unknown keys {unknown}", hint=f"remove them; known keys are {sorted(known)}"
            )
        try:
            return cls(**values)
        except ConfigError as exc:
            raise ModelLoadError(f"{source}: {exc}", hint="fix the value or delete the key (released default)") from exc


class Magvit(nn.Module):
    """MAGVIT-v2 tokenizer: ``encoder`` → ``quantize`` (lookup-free, no parameters) → ``decoder``.

    ``get_code`` maps pixels ``(B, 3, H, W)`` in [-1, 1] (H, W multiples of ``config.stride``) to int64 codes
    ``(B, H/s * W/s)``; ``decode_code`` maps codes back to pixels.  Construction builds randomly initialised
    weights (use ``with torch.device("meta"):`` to build a shape-only model); :meth:`from_pretrained` loads a
    checkpoint folder.  Inputs are moved to the model's device and dtype.
    """

    def __init__(self, config: MagvitConfig | None = None) -> None:
        super().__init__()
        self.config = c = config if config is not None else MagvitConfig()
        self.encoder = MagvitEncoder(
            ch=c.ch,
            ch_mult=c.encoder_ch_mult,
            num_res_blocks=c.encoder_num_res_blocks,
            z_channels=c.z_channels,
            in_ch=c.in_ch,
            resolution=c.resolution,
            attn_resolutions=c.attn_resolutions,
            groups=c.norm_groups,
        )
        self.decoder = MagvitDecoder(
            ch=c.ch,
            ch_mult=c.decoder_ch_mult,
            num_res_blocks=c.decoder_num_res_blocks,
            z_channels=c.z_channels,
            out_ch=c.out_ch,
            resolution=c.resolution,
            attn_resolutions=c.attn_resolutions,
            groups=c.norm_groups,
        )
        self.quantize = LookupFreeQuantizer(c.z_channels)

    @property
    def stride(self) -> int:
        """Pixels per code along each axis (16 for the released config)."""
        return self.config.stride

    @property
    def codebook_size(self) -> int:
        """Number of distinct codes, ``2 ** z_channels``."""
        return self.config.codebook_size

    def _weight(self) -> torch.Tensor:
        return self.encoder.conv_in.weight

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """The continuous latent ``(B, z_channels, H/s, W/s)`` of ``pixels`` ``(B, in_ch, H, W)`` in [-1, 1]."""
        if not isinstance(pixels, torch.Tensor) or pixels.ndim != 4 or not pixels.is_floating_point():
            shape = tuple(pixels.shape) if isinstance(pixels, torch.Tensor) else type(pixels).__name__
            raise InputError(f"pixels {shape}: give a float tensor (B, {self.config.in_ch}, H, W) in [-1, 1]")
        _, c, h, w = pixels.shape
        s = self.stride
        if c != self.config.in_ch or h < s or w < s or h % s or w % s:
            raise InputError(
                f"pixels of shape {tuple(pixels.shape)}: need {self.config.in_ch} channels "
                f"and H, W positive multiples of {s}",
                hint="resize with regionreasoner.tools.generate.images.preprocess_image",
            )
        weight = self._weight()
        return self.encoder(pixels.to(device=weight.device, dtype=weight.dtype))

    @torch.no_grad()
    def get_code(self, pixels: torch.Tensor) -> torch.Tensor:
        """Codes of ``pixels`` ``(B, in_ch, H, W)`` in [-1, 1]: int64 ``(B, H/s * W/s)`` in ``[0, 2**z_channels)``.

        Raster order over the ``(H/s, W/s)`` grid; code = ``sum_c 2**(C-1-c) * [z_c > 0]`` (channel 0 most
        significant).  Runs without gradients (codes are discrete).
        """
        return self.quantize.codes(self.encode(pixels))

    def decode_code(self, codes: torch.Tensor, shape: tuple[int, int] | None = None) -> torch.Tensor:
        """Pixels ``(B, out_ch, h*s, w*s)`` (roughly [-1, 1], unclamped) from int64 codes ``(B, h*w)``, raster order.

        ``shape=(h, w)`` is the code grid (non-square allowed); None means a square grid of side ``sqrt(N)``.
        """
        if (
            not isinstance(codes, torch.Tensor)
            or codes.ndim != 2
            or codes.dtype.is_floating_point
            or codes.dtype == torch.bool
        ):
            shape_ = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
            raise InputError(f"codes {shape_}: give an integer tensor (B, N)")
        n = codes.shape[1]
        h, w = _grid(shape, n)
        if n and (int(codes.min()) < 0 or int(codes.max()) >= self.codebook_size):
            raise InputError(
                f"codes outside [0, {self.codebook_size}): min {int(codes.min())}, max {int(codes.max())}",
                hint="subtract the text-vocabulary offset and clamp to the codebook, as the sampler does",
            )
        weight = self._weight()
        z = self.quantize.latent(codes.to(device=weight.device, dtype=torch.long), h, w)
        return self.decoder(z.to(weight.dtype))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Reconstruction through the codes: ``decode_code(get_code(pixels))``, same shape as ``pixels``."""
        codes = self.get_code(pixels)  # validates pixels
        return self.decode_code(codes, (pixels.shape[2] // self.stride, pixels.shape[3] // self.stride))

    # ---------------------------------------------------------------- checkpoints

    @classmethod
    def from_pretrained(
        cls, folder: str | Path, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ) -> Magvit:
        """Load a checkpoint folder (released ``showlab/magvitv2`` layout) strictly; returns the model in eval mode.

        Reads ``config.json`` and the first of :data:`WEIGHT_NAMES` present (``.bin`` with ``weights_only=True``).
        Every key and shape must match; only the constant quantiser tables may be absent (they are derived from
        ``z_channels`` and checked when present).  Raises :class:`ModelLoadError` naming the fix.
        """
        root = Path(folder)
        download = f"download it with `huggingface-cli download {RELEASED} --local-dir {root}`"
        if not root.is_dir():
            raise ModelLoadError(f"no MAGVIT-v2 checkpoint folder at {root}", hint=download)
        config_path = root / CONFIG_NAME
        try:
            data = json.loads(config_path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ModelLoadError(f"{config_path} is missing", hint=download) from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelLoadError(f"cannot read {config_path}: {exc}", hint="fix the file or download it again") from exc
        config = MagvitConfig.from_json(data, source=str(config_path))
        weights = next((root / name for name in WEIGHT_NAMES if (root / name).is_file()), None)
        if weights is None:
            raise ModelLoadError(f"{root} has no weights (looked for {', '.join(WEIGHT_NAMES)})", hint=download)
        state = _read_state_dict(weights)
        with torch.device("meta"):  # shapes only: the checkpoint's tensors are assigned, nothing is initialised twice
            model = cls(config)
        state = _check_state_dict(model, state, source=str(weights))
        model.load_state_dict(state, strict=True, assign=True)
        logger.info("loaded MAGVIT-v2 tokenizer from %s (%d tensors)", weights, len(state))
        return model.to(device=device, dtype=dtype).eval()

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write ``config.json`` and ``pytorch_model.safetensors`` (every tensor of the state dict) into ``folder``.

        The folder is created when missing; returns it.  :meth:`from_pretrained` reads it back exactly.
        """
        root = Path(folder)
        root.mkdir(parents=True, exist_ok=True)
        (root / CONFIG_NAME).write_text(json.dumps(self.config.to_json(), indent=2) + "\n", encoding="utf-8")
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(root / SAFETENSORS_NAME), metadata={"format": "pt"})
        return root


def _grid(shape: object, n: int) -> tuple[int, int]:
    """The ``(rows, columns)`` of a grid of ``n`` codes: ``shape`` checked, or the square one when None."""
    if shape is None:
        side = math.isqrt(n)
        if n == 0 or side * side != n:
            raise InputError(f"{n} codes are not a square grid", hint="pass shape=(h, w) with h * w == N")
        return side, side
    if (
        not isinstance(shape, tuple | list)
        or len(shape) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in shape)
    ):
        raise InputError(f"shape={shape!r}: give two integers >= 1 (rows, columns of the code grid)")
    h, w = shape
    if h * w != n:
        raise InputError(f"shape={shape!r} holds {h * w} codes, not {n}", hint="pass shape=(h, w) with h * w == N")
    return h, w


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A flat ``{name: tensor}`` from a safetensors or a torch pickle file (read with ``weights_only=True``)."""
    try:
        if path.suffix == ".safetensors":
            state: object = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError, SafetensorError) as exc:
        raise ModelLoadError(f"cannot read weights {path}: {exc}", hint="download the file again") from exc
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ModelLoadError(
            f"{path} is not a flat state dict of tensors",
            hint="save model.state_dict() itself, not a training checkpoint",
        )
    return state


def _check_state_dict(model: Magvit, state: dict[str, torch.Tensor], *, source: str) -> dict[str, torch.Tensor]:
    """``state`` with the quantiser tables filled in, after checking every key and shape against ``model``."""
    expected = model.state_dict()
    state = dict(state)
    embedding, power_vals = lfq_tables(model.config.z_channels)
    for key, table in zip(_DERIVED, (embedding, power_vals), strict=True):
        given = state.get(key)
        # A different table would be a different bit order, which every code downstream relies on.
        if given is not None and (given.shape != table.shape or not torch.equal(given.to(table.dtype), table)):
            raise ModelLoadError(
                f"{source}: {key} differs from the MSB-first ±1 table of a {model.config.z_channels}-bit quantiser",
                hint="this is not a Show-o MAGVIT-v2 checkpoint; check z_channels in config.json",
            )
        state[key] = table  # the canonical dtype (float32 table, int64 powers) whatever the file stored
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            k = wrong[0]
            parts.append(
                f"{len(wrong)} of another shape "
                f"(e.g. {k}: file {tuple(state[k].shape)}, model {tuple(expected[k].shape)})"
            )
        raise ModelLoadError(
            f"{source} does not match the MAGVIT-v2 architecture of its config.json: {'; '.join(parts)}",
            hint="use a showlab/magvitv2 state dict with Show-o's parameter names and make config.json describe it",
        )
    return state
