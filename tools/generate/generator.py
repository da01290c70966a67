"""Text-to-image, inpainting and extrapolation with NeoBabel + MAGVIT-v2, from one folder.

A generator folder::

    generator.json          {"format": "neobabel-generator", "resolution": 512, "timesteps": 50, ...}
    config.json             NeoBabel's config (released keys), weights in a released layout beside it:
    pytorch_model.safetensors | model.safetensors | pytorch_model.bin | unwrapped_model/pytorch_model.bin
    tokenizer.json, tokenizer_config.json, ...    the Gemma-2 tokenizer (or in tokenizer/); NeoBabel's ten
                                                  tokens are added on load when missing
    vq/ (or magvit/)        the MAGVIT-v2 folder (config.json + pytorch_model.safetensors)

``generator.json`` holds the sampling defaults (:class:`GeneratorDefaults`); every key is optional.  ``vq_path=``
and ``tokenizer_path=`` point elsewhere (e.g. a downloaded ``showlab/magvitv2``).  Weights load on first use.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from regionreasoner.core.errors import ConfigError, GeometryError, InputError, ModelLoadError
from regionreasoner.tools.generate.prompting import VocabLayout, encode_prompts, prepare_tokenizer
from regionreasoner.tools.generate.sampler import SamplerSettings, SamplerStep

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from regionreasoner.tools.generate.magvit import Magvit
    from regionreasoner.tools.generate.model import NeoBabel

__all__ = ["GENERATOR_JSON", "UNTRAINED_MARKER", "Generator", "GeneratorDefaults", "build_tiny_generator"]

logger = logging.getLogger(__name__)

GENERATOR_JSON = "generator.json"
FORMAT = "neobabel-generator"
UNTRAINED_MARKER = "regionreasoner_tiny.json"
"""File a tiny random generator carries (same name as the other tiny checkpoints): its weights are untrained."""
_VQ_FOLDERS = ("vq", "magvit")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


@dataclass(kw_only=True)
class GeneratorDefaults:
    """generator.json: resolution and per-task sampling defaults (released values for 512²; neobabel.md §2.2)."""

    resolution: int = 512
    """Square side in pixels the model was trained at; (resolution / VQ stride)² must equal ``num_vq_tokens``."""
    max_seq_length: int = 512
    """Text tokens before padding (the text part is max_seq_length + 1 long); 512 in every released stage but PT-1."""
    timesteps: int = 50
    """Text-to-image steps (50 at 512², 12 at 256²)."""
    guidance_scale: float = 5.0
    """Text-to-image CFG weight w."""
    temperature: float = 1.0
    """Initial Gumbel temperature of the confidence."""
    schedule: str = "cosine"
    """Mask schedule (cosine, linear, pow<p>, sigmoid)."""
    code_temperature: float = 1.0
    """Temperature of the code draw (1 = the release's multinomial, 0 = argmax; ``SamplerSettings``)."""
    inpaint_timesteps: int = 25
    """Inpainting steps (the release's editing demo)."""
    inpaint_guidance_scale: float = 1.5
    """Inpainting CFG weight."""
    inpaint_context: float = 0.0
    """Inpainting window: 0 = the largest square around the mask (the release); c > 0 = a square c times the mask
    box's longer side, so that a small region spans the cells a model trained at a small resolution draws into."""
    inpaint_cover: float = 0.0
    """Which codes are regenerated: 0 = the reference's bicubic rule; c in (0, 1] = cells the mask covers at least c
    (1 = wholly inside), so a shape drawn into them is not cut by the mask pasted back (``images.mask_to_grid``)."""
    inpaint_cell: bool = False
    """True for a model that draws one shape per code cell: the window puts the mask box on one cell
    (:func:`~.inpaint.cell_window`; ``inpaint_context`` is then unused) and cells are chosen by ``inpaint_cover``."""
    extrapolate_timesteps: int = 50
    """Extrapolation steps per direction."""
    extrapolate_guidance_scale: float = 7.0
    """Extrapolation CFG weight."""

    def __post_init__(self) -> None:
        if isinstance(self.resolution, bool) or not isinstance(self.resolution, int) or self.resolution < 1:
            raise ConfigError(f"resolution={self.resolution!r}: use the trained side in pixels (256 or 512)")
        for steps, w in ((self.timesteps, self.guidance_scale), (self.inpaint_timesteps, self.inpaint_guidance_scale)):
            SamplerSettings(
                timesteps=steps,
                guidance_scale=w,
                temperature=self.temperature,
                schedule=self.schedule,
                code_temperature=self.code_temperature,
            )
        if isinstance(self.inpaint_context, bool) or not isinstance(self.inpaint_context, (int, float)):
            raise ConfigError(f"inpaint_context={self.inpaint_context!r}: use a number")
        if isinstance(self.inpaint_cover, bool) or not isinstance(self.inpaint_cover, (int, float)):
            raise ConfigError(f"inpaint_cover={self.inpaint_cover!r}: use a number in [0, 1]")
        if not 0 <= self.inpaint_cover <= 1:
            raise ConfigError(f"inpaint_cover={self.inpaint_cover}: use 0 (reference rule) or a share in (0, 1]")
        if not isinstance(self.inpaint_cell, bool):
            raise ConfigError(f"inpaint_cell={self.inpaint_cell!r}: use true or false")
        if self.inpaint_context < 0 or 0 < self.inpaint_context < 1:
            raise ConfigError(f"inpaint_context={self.inpaint_context}: use 0 (largest window) or a factor >= 1")
        SamplerSettings(timesteps=self.extrapolate_timesteps, guidance_scale=self.extrapolate_guidance_scale)

    @classmethod
    def read(cls, path: Path) -> GeneratorDefaults:
        """Parse generator.json; unknown keys or bad values raise :class:`ModelLoadError`."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelLoadError(f"cannot read {path}: {exc}", hint=f"write a JSON object ({FORMAT})") from exc
        if not isinstance(data, dict) or data.get("format", FORMAT) != FORMAT:
            raise ModelLoadError(f"{path} is not a {FORMAT} file", hint=f'write {{"format": "{FORMAT}", ...}}')
        values = {k: v for k, v in data.items() if k not in ("format", "version")}
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ModelLoadError(f"{path}: unknown keys {unknown}", hint=f"known: {[f.name for f in fields(cls)]}")
        try:
            return cls(**values)
        except (ConfigError, TypeError) as exc:
            raise ModelLoadError(f"{path}: {exc}", hint="fix the value or delete the key (default)") from exc

    def write(self, path: Path) -> None:
        """Write generator.json (format tag first)."""
        path.write_text(json.dumps({"format": FORMAT, "version": 1, **asdict(self)}, indent=2) + "\n", "utf-8")


def _pick_device(device: str | torch.device | None, dtype: torch.dtype | None) -> tuple[torch.device, torch.dtype]:
    import torch

    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return dev, dtype or (torch.bfloat16 if dev.type == "cuda" else torch.float32)


class Generator:
    """NeoBabel text-to-image generator and inpainter over a generator folder (layout: module docstring).

    ``device`` None picks CUDA when available; ``dtype`` None is bfloat16 on CUDA, float32 on CPU (the tokenizer
    always runs in float32).  Construction only checks the folder; weights load on first use or :meth:`load`.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        vq_path: str | Path | None = None,
        tokenizer_path: str | Path | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        from regionreasoner.tools.generate.shipped import resolve_generator

        self.path = resolve_generator(path)  # "world": the shipped generator
        if not self.path.is_dir():
            raise ModelLoadError(
                f"no generator folder at {self.path}", hint="see regionreasoner.tools.generate.generator"
            )
        meta = self.path / GENERATOR_JSON
        self.defaults = GeneratorDefaults.read(meta) if meta.is_file() else GeneratorDefaults()
        found = next((self.path / n for n in _VQ_FOLDERS if (self.path / n).is_dir()), None)
        self.vq_path = Path(vq_path) if vq_path is not None else found
        self.tokenizer_path = Path(tokenizer_path) if tokenizer_path is not None else self._find_tokenizer()
        self._device, self._dtype = device, dtype
        self._lock = threading.Lock()
        self._loaded: tuple[NeoBabel, Magvit, Any, VocabLayout] | None = None

    def _find_tokenizer(self) -> Path:
        for folder in (self.path / "tokenizer", self.path):
            if any((folder / n).is_file() for n in _TOKENIZER_FILES):
                return folder
        return self.path

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs: Any) -> Generator:
        """``Generator(path, **kwargs)`` with weights loaded now (kwargs: vq_path, tokenizer_path, device, dtype)."""
        gen = cls(path, **kwargs)
        gen.load()
        return gen

    def load(self) -> tuple[NeoBabel, Magvit, Any, VocabLayout]:
        """Load model, tokenizer and VQ once (thread-safe); checks that their sizes agree."""
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load()
            return self._loaded

    def _load(self) -> tuple[NeoBabel, Magvit, Any, VocabLayout]:
        from transformers import AutoTokenizer

        from regionreasoner.tools.generate.magvit import Magvit
        from regionreasoner.tools.generate.model import NeoBabel

        device, dtype = _pick_device(self._device, self._dtype)
        model = NeoBabel.from_pretrained(self.path, device=device, dtype=dtype)
        if self.vq_path is None or not self.vq_path.is_dir():
            raise ModelLoadError(
                f"no MAGVIT-v2 folder at {self.path}/vq or {self.path}/magvit",
                hint="download showlab/magvitv2 into <generator>/vq, or pass vq_path=",
            )
        vq = Magvit.from_pretrained(self.vq_path, device=device)
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_path, padding_side="left")
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"no text tokenizer at {self.tokenizer_path}: {exc}",
                hint="save the google/gemma-2-2b-it tokenizer into <generator>/tokenizer, or pass tokenizer_path=",
            ) from exc
        layout = prepare_tokenizer(tokenizer, model.config.codebook_size)
        cfg, side = model.config, self.defaults.resolution // vq.stride
        problems = []
        if layout.text_vocab_size != cfg.llm_vocab_size:
            problems.append(f"tokenizer has {layout.text_vocab_size} text tokens, config {cfg.llm_vocab_size}")
        if vq.codebook_size != cfg.codebook_size:
            problems.append(f"VQ has {vq.codebook_size} codes, config {cfg.codebook_size}")
        if side * side != cfg.num_vq_tokens or side * vq.stride != self.defaults.resolution:
            problems.append(
                f"{self.defaults.resolution}² gives {side}² codes, config num_vq_tokens {cfg.num_vq_tokens}"
            )
        if problems:
            raise ModelLoadError(f"{self.path}: {'; '.join(problems)}", hint="use the parts the model was trained with")
        logger.info("generator %s on %s (%s), %d² px, %d codes", self.path, device, dtype, side * vq.stride, side**2)
        return model, vq.eval(), tokenizer, layout

    @property
    def grid(self) -> int:
        """Code grid side G (resolution / VQ stride)."""
        return self.defaults.resolution // self.load()[1].stride

    def _settings(
        self, steps: int | None, guidance: float | None, temperature: float | None, task: str
    ) -> SamplerSettings:
        d = self.defaults
        base = {"t2i": (d.timesteps, d.guidance_scale), "inpaint": (d.inpaint_timesteps, d.inpaint_guidance_scale)}
        base["extrapolate"] = (d.extrapolate_timesteps, d.extrapolate_guidance_scale)
        t, w = base[task]
        return SamplerSettings(
            timesteps=t if steps is None else steps,
            guidance_scale=w if guidance is None else guidance,
            temperature=d.temperature if temperature is None else temperature,
            schedule=d.schedule,
            code_temperature=d.code_temperature,
        )

    def _rng(self, seed: int | None, device: torch.device) -> torch.Generator:
        import torch

        if seed is None:
            seed = secrets.randbits(63)
            logger.info("sampling with seed %d", seed)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise InputError(f"seed={seed!r}", hint="pass an integer >= 0, or None for a random one")
        return torch.Generator(device=device).manual_seed(seed)

    def generate(
        self,
        prompts: Sequence[str],
        *,
        seed: int | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        temperature: float | None = None,
        batch_size: int | None = None,
        progress: bool = False,
        callback: Callable[[SamplerStep], None] | None = None,
    ) -> list[Image.Image]:
        """One RGB image (resolution², PIL) per prompt.  The same seed (and batch_size) gives the same images.

        ``steps``/``guidance``/``temperature`` default to generator.json; ``batch_size`` None runs all prompts as
        one batch (cond + uncond = 2B sequences per forward); one seeded stream serves all batches in order.
        """
        import torch

        from regionreasoner.tools.generate.images import postprocess_images
        from regionreasoner.tools.generate.sampler import generate_codes

        model, vq, tokenizer, layout = self.load()
        text_ids = encode_prompts(tokenizer, prompts)
        settings = self._settings(steps, guidance, temperature, "t2i")
        settings.progress = progress
        rng = self._rng(seed, model.device)
        size = batch_size or len(text_ids)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"batch_size={batch_size!r}: set it to an integer >= 1, or None for one batch")
        images: list[Image.Image] = []
        n = model.config.num_vq_tokens
        with torch.inference_mode():
            for start in range(0, len(text_ids), size):
                chunk = text_ids[start : start + size]
                tokens = torch.full((len(chunk), n), layout.mask_id, dtype=torch.long, device=model.device)
                codes = generate_codes(
                    model,
                    chunk,
                    tokens,
                    layout=layout,
                    max_seq_length=self.defaults.max_seq_length,
                    settings=settings,
                    generator=rng,
                    callback=callback,
                )
                images += postprocess_images(vq.decode_code(codes.clamp(0, layout.codebook_size - 1)))
        return images

    def inpaint(
        self,
        image: Image.Image,
        mask: npt.NDArray[np.bool_],
        prompt: str,
        *,
        seed: int | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        temperature: float | None = None,
        callback: Callable[[SamplerStep], None] | None = None,
    ) -> Image.Image:
        """``image`` (RGB, W x H) with the ``mask`` (bool H x W, True = repaint) region redrawn after ``prompt``.

        Returns an image of the same size; every pixel outside ``mask`` is the input's.  The model sees the
        square window around the mask (:func:`~.inpaint.crop_box`, ``inpaint_context``) at its resolution.
        """
        import torch
        from PIL import Image as PILImage

        from regionreasoner.tools.generate.images import (
            mask_to_grid,
            postprocess_image,
            preprocess_image,
            preprocess_mask,
        )
        from regionreasoner.tools.generate.inpaint import cell_window, crop_box, crop_padded, inpaint_codes, paste_back

        if not isinstance(image, PILImage.Image):
            raise InputError(f"image is a {type(image).__name__}", hint="pass a PIL image (load_image(...).image)")
        array = np.asarray(mask)
        if array.dtype != np.bool_ or array.shape != (image.height, image.width):
            raise GeometryError(
                f"mask {array.dtype} {array.shape} for a {image.width}x{image.height} image",
                hint="pass a bool (H, W) array of the image's size",
            )
        model, vq, tokenizer, layout = self.load()
        res = self.defaults.resolution
        side = res // vq.stride
        if self.defaults.inpaint_cell:
            box = cell_window(image.size, array, side)
            window = crop_padded(image, box)
            x0, y0, x1, y1 = box
            inside = np.zeros((y1 - y0, x1 - x0), dtype=bool)  # the mask in the window's frame (it may overhang)
            a0, b0 = max(x0, 0), max(y0, 0)
            a1, b1 = min(x1, image.width), min(y1, image.height)
            inside[b0 - y0 : b1 - y0, a0 - x0 : a1 - x0] = array[b0:b1, a0:a1]
        else:
            box = crop_box(image.size, array, context=self.defaults.inpaint_context)
            window = image.convert("RGB").crop(box)
            x0, y0, x1, y1 = box
            inside = array[y0:y1, x0:x1]
        small = preprocess_mask(inside, res)
        # no cell chosen: inpaint_codes raises InputError, naming the fix
        regenerate = torch.from_numpy(mask_to_grid(small, (side, side), cover=self.defaults.inpaint_cover))
        settings = self._settings(steps, guidance, temperature, "inpaint")
        with torch.inference_mode():
            codes = vq.get_code(preprocess_image(window, res)[None])
            new = inpaint_codes(
                model,
                encode_prompts(tokenizer, [prompt]),
                codes.to(model.device),
                regenerate,
                layout=layout,
                max_seq_length=self.defaults.max_seq_length,
                settings=settings,
                generator=self._rng(seed, model.device),
                callback=callback,
            )
            decoded = postprocess_image(vq.decode_code(new))
        return paste_back(image, decoded, array, box)

    def extrapolate(
        self,
        image: Image.Image,
        directions: Sequence[str],
        prompts: Sequence[str],
        *,
        offset: int = 0,
        seed: int | None = None,
        steps: int | None = None,
        guidance: float | None = None,
    ) -> Image.Image:
        """``image`` (centre-cropped to the resolution) grown by ``G//2 + offset`` codes per direction.

        One prompt per direction (or one for all); directions chain along one axis.  The output is decoded from
        the whole, non-square code grid (the kept part is re-decoded, as in the release).
        """
        import torch

        from regionreasoner.tools.generate.images import postprocess_image, preprocess_image
        from regionreasoner.tools.generate.inpaint import extrapolate_codes

        if isinstance(directions, str) or isinstance(prompts, str):
            raise InputError("directions and prompts are sequences", hint='pass ["left"] and ["a beach"]')
        texts = list(prompts) * len(directions) if len(prompts) == 1 else list(prompts)
        model, vq, tokenizer, layout = self.load()
        side = self.defaults.resolution // vq.stride
        with torch.inference_mode():
            codes = vq.get_code(preprocess_image(image, self.defaults.resolution)[None]).to(model.device)
            grid = extrapolate_codes(
                model,
                encode_prompts(tokenizer, texts),
                codes.reshape(1, side, side),
                directions,
                offset=offset,
                layout=layout,
                max_seq_length=self.defaults.max_seq_length,
                settings=self._settings(steps, guidance, None, "extrapolate"),
                generator=self._rng(seed, model.device),
            )
            h, w = grid.shape[1:]
            return postprocess_image(vq.decode_code(grid.reshape(1, -1), shape=(h, w)))


def build_tiny_generator(folder: str | Path, *, seed: int = 0, layout: str = "safetensors") -> Path:
    """Write a tiny random generator folder (no download) and return it: 32² images, 8x8 = 64 codes of 6 bits.

    Tiny Gemma-2 (hidden 64, 2 layers, soft-caps on), tiny MAGVIT-v2 (stride 4), the offline Gemma-shaped
    tokenizer, generator.json with short settings (max_seq_length 32, 8 steps).  The same ``seed`` gives the same
    weights.  ``layout`` is the NeoBabel weights layout (safetensors, bin, unwrapped).  Built in about a second.
    """
    import torch

    from regionreasoner.tools.generate.magvit import Magvit, MagvitConfig
    from regionreasoner.tools.generate.model import NeoBabel, NeoBabelConfig
    from regionreasoner.tools.generate.prompting import tiny_gemma_tokenizer

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = tiny_gemma_tokenizer()
    vq_config = MagvitConfig.tiny(z_channels=6)
    side = vq_config.resolution // vq_config.stride
    torch.manual_seed(seed)
    vq = Magvit(vq_config)
    model = NeoBabel(NeoBabelConfig.tiny(len(tokenizer), codebook_size=vq_config.codebook_size, num_vq_tokens=side**2))
    model.save_pretrained(out, layout=layout)  # type: ignore[arg-type]
    vq.save_pretrained(out / "vq")
    tokenizer.save_pretrained(out)
    GeneratorDefaults(
        resolution=vq_config.resolution,
        max_seq_length=32,
        timesteps=8,
        inpaint_timesteps=8,
        extrapolate_timesteps=8,
    ).write(out / GENERATOR_JSON)
    (out / UNTRAINED_MARKER).write_text(json.dumps({"seed": seed, "kind": "tiny-neobabel"}) + "\n", "utf-8")
    return out
