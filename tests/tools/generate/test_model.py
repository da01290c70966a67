"""The NeoBabel module: config, Gemma-2 wiring (eager, soft-caps), released checkpoint layouts, strict loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from regionreasoner.core.errors import ConfigError, ModelLoadError
from regionreasoner.tools.generate.model import GEMMA2_2B_IT, NeoBabel, NeoBabelConfig
from regionreasoner.tools.generate.prompting import attention_mask, build_t2i_batch

T, K, N = 40, 16, 16  # text vocabulary, codebook, codes per image (4x4)


@pytest.fixture(scope="module")
def model() -> NeoBabel:
    torch.manual_seed(0)
    return NeoBabel(NeoBabelConfig.tiny(T, codebook_size=K, num_vq_tokens=N, num_layers=1)).eval()


def _batch(model: NeoBabel) -> tuple[torch.Tensor, torch.Tensor]:
    layout = model.layout
    image = torch.randint(0, K, (2, N), generator=torch.Generator().manual_seed(1)) + layout.image_offset
    image[:, ::3] = layout.mask_id
    ids = build_t2i_batch([[2, 5, 6, 7], []], image, layout, max_seq_length=8)
    return ids, attention_mask(ids, layout.pad_id, layout.soi_id, layout.eoi_id, dtype=model.dtype)


def test_config_checks_name_the_fix() -> None:
    with pytest.raises(ConfigError, match="vocab_size=67"):
        NeoBabelConfig(vocab_size=66, llm_vocab_size=T, codebook_size=K)
    with pytest.raises(ConfigError, match="vocab_size - 1"):
        NeoBabelConfig(vocab_size=67, llm_vocab_size=T, codebook_size=K, mask_token_id=3)
    with pytest.raises(ConfigError):
        NeoBabelConfig(vocab_size=67, llm_vocab_size=T, codebook_size=K, num_new_special_tokens=9)
    released = NeoBabelConfig(vocab_size=264203, llm_vocab_size=256000, llm_model_path="google/gemma-2-2b-it")
    assert released.mask_token_id == 264202
    # A released config.json round-trips, with keys our class does not know kept verbatim.
    data = {**released.to_dict(), "_diffusers_version": "0.30.1", "w_clip_vit": False}
    again = NeoBabelConfig.from_dict(data)
    assert again.extra == {"_class_name": "NeoBabel", "_diffusers_version": "0.30.1", "w_clip_vit": False}
    assert again.to_dict() == data
    with pytest.raises(ModelLoadError):
        NeoBabelConfig.from_dict({"vocab_size": "many", "llm_vocab_size": T})


def test_gemma_config_sources(tmp_path: Path) -> None:
    released = NeoBabelConfig(vocab_size=264203, llm_vocab_size=256000, llm_model_path="google/gemma-2-2b-it")
    llm = released.gemma_config()  # the embedded copy: no hub access
    assert (llm.hidden_size, llm.num_hidden_layers, llm.head_dim, llm.vocab_size) == (2304, 26, 256, 264203)
    assert (llm.attn_logit_softcapping, llm.final_logit_softcapping) == (50.0, 30.0)
    assert llm._attn_implementation == "eager"
    (tmp_path / "gemma").mkdir()
    (tmp_path / "gemma" / "config.json").write_text(json.dumps({**GEMMA2_2B_IT, "num_hidden_layers": 3}))
    local = NeoBabelConfig(vocab_size=264203, llm_vocab_size=256000, llm_model_path="gemma")
    assert local.gemma_config(base_dir=tmp_path).num_hidden_layers == 3  # relative to the checkpoint folder
    with pytest.raises(ModelLoadError, match="llm_model_path"):
        NeoBabelConfig(vocab_size=67, llm_vocab_size=T, codebook_size=K).gemma_config()


def test_gemma_wiring_and_image_logits(model: NeoBabel) -> None:
    assert model.neobabel.config._attn_implementation == "eager"  # soft-capping holds only there
    assert model.neobabel.config.vocab_size == T + 10 + K + 1
    assert model.neobabel.lm_head.weight is model.neobabel.model.embed_tokens.weight  # tied, as Gemma-2
    keys = list(model.state_dict())
    assert all(k.startswith(("neobabel.model.", "neobabel.lm_head.")) for k in keys)
    ids, mask = _batch(model)
    with torch.no_grad():
        full = model(ids, mask)
        codes = model.image_logits(ids, mask, N)
    assert full.shape == (2, ids.shape[1], T + 10 + K + 1)
    assert full.abs().max() <= 30.0  # final logit soft-cap
    off = model.layout.image_offset
    torch.testing.assert_close(codes, full[:, -(N + 1) : -1, off:-1], rtol=1e-5, atol=1e-5)


def test_text_rows_do_not_see_the_image(model: NeoBabel) -> None:
    ids, mask = _batch(model)
    other = ids.clone()
    other[:, -(N + 1) : -1] = model.layout.image_offset  # a different image, same text
    with torch.no_grad():
        a, b = model(ids, mask), model(other, mask)
    text = ids.shape[1] - N - 2
    torch.testing.assert_close(a[:, :text], b[:, :text])  # text KV is image-independent (§1.4)
    assert not torch.allclose(a[:, -(N + 1) : -1], b[:, -(N + 1) : -1])


@pytest.mark.parametrize(
    ("layout", "weights"),
    [
        ("safetensors", "pytorch_model.safetensors"),
        ("bin", "pytorch_model.bin"),
        ("unwrapped", "unwrapped_model/pytorch_model.bin"),
    ],
)
def test_released_layouts_reload_strictly(model: NeoBabel, tmp_path: Path, layout: str, weights: str) -> None:
    path = model.save_pretrained(tmp_path, layout=layout)  # type: ignore[arg-type]
    assert path == tmp_path / weights and (tmp_path / "config.json").is_file()
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["_class_name"] == "NeoBabel" and config["mask_token_id"] == T + 10 + K
    for key in ("vocab_size", "llm_vocab_size", "llm_model_path", "codebook_size", "num_vq_tokens"):
        assert key in config
    if layout != "safetensors":
        state = torch.load(path, weights_only=True)
        assert "neobabel.lm_head.weight" in state and "neobabel.model.norm.weight" in state
    again = NeoBabel.from_pretrained(tmp_path)
    for (k, v), (k2, v2) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2), k
    assert again.neobabel.lm_head.weight is again.neobabel.model.embed_tokens.weight
    ids, mask = _batch(model)
    with torch.no_grad():
        assert torch.equal(model(ids, mask), again(ids, mask))


def test_module_prefix_and_model_safetensors(model: NeoBabel, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    (tmp_path / "config.json").write_text(json.dumps(model.config.to_dict()))
    state = {f"module.{k}": v.clone() for k, v in model.state_dict().items() if "lm_head" not in k}
    save_file(state, str(tmp_path / "model.safetensors"))
    again = NeoBabel.from_pretrained(tmp_path)
    assert torch.equal(again.neobabel.lm_head.weight, model.neobabel.lm_head.weight)


def test_unwrapped_folder_without_config(model: NeoBabel, tmp_path: Path) -> None:
    (tmp_path / "unwrapped_model").mkdir()
    torch.save(model.state_dict(), tmp_path / "unwrapped_model" / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="config"):
        NeoBabel.from_pretrained(tmp_path)
    again = NeoBabel.from_pretrained(tmp_path, config=model.config)  # as the eval scripts: config from YAML
    assert torch.equal(again.neobabel.model.norm.weight, model.neobabel.model.norm.weight)


def test_strict_loading_names_the_problem(model: NeoBabel, tmp_path: Path) -> None:
    model.save_pretrained(tmp_path, layout="bin")
    state = torch.load(tmp_path / "pytorch_model.bin", weights_only=True)
    state.pop("neobabel.model.norm.weight")
    state["neobabel.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match=r"1 missing .*norm.*1 unexpected"):
        NeoBabel.from_pretrained(tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"not a pickle")
    with pytest.raises(ModelLoadError, match="cannot read weights"):
        NeoBabel.from_pretrained(tmp_path)
    (tmp_path / "pytorch_model.bin").unlink()
    with pytest.raises(ModelLoadError, match="no weights"):
        NeoBabel.from_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="no NeoBabel checkpoint folder"):
        NeoBabel.from_pretrained(tmp_path / "missing")
    with pytest.raises(ConfigError):
        model.save_pretrained(tmp_path, layout="zip")  # type: ignore[arg-type]


def test_sharded_index_loads(model: NeoBabel, tmp_path: Path) -> None:
    state = model.state_dict()
    names = list(state)
    half = len(names) // 2
    shards = {"pytorch_model-00001-of-00002.bin": names[:half], "pytorch_model-00002-of-00002.bin": names[half:]}
    for file, keys in shards.items():
        torch.save({k: state[k] for k in keys}, tmp_path / file)
    weight_map = {k: f for f, keys in shards.items() for k in keys}
    (tmp_path / "diffusion_pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (tmp_path / "config.json").write_text(json.dumps(model.config.to_dict()))
    again = NeoBabel.from_pretrained(tmp_path)
    assert torch.equal(again.neobabel.model.embed_tokens.weight, model.neobabel.model.embed_tokens.weight)


def test_generator_folder_layouts_and_errors(tiny_generator_path: Path, tmp_path: Path) -> None:
    import shutil

    from regionreasoner.tools.generate.generator import Generator, build_tiny_generator

    folder = build_tiny_generator(tmp_path / "gen", layout="unwrapped")
    assert (folder / "unwrapped_model" / "pytorch_model.bin").is_file()
    assert json.loads((folder / "generator.json").read_text())["format"] == "neobabel-generator"
    shutil.move(folder / "vq", tmp_path / "elsewhere")
    lazy = Generator(folder, device="cpu")  # construction reads generator.json only
    with pytest.raises(ModelLoadError, match="vq_path"):
        lazy.load()
    gen = Generator.from_pretrained(folder, vq_path=tmp_path / "elsewhere", device="cpu")
    assert gen.grid == 8 and gen.load()[3].mask_id == gen.load()[0].config.vocab_size - 1
    (folder / "generator.json").write_text(json.dumps({"format": "neobabel-generator", "steps": 3}))
    with pytest.raises(ModelLoadError, match="unknown keys"):
        Generator(folder)
    (folder / "generator.json").write_text(json.dumps({"timesteps": 0}))
    with pytest.raises(ModelLoadError, match="timesteps"):
        Generator(folder)
    with pytest.raises(ModelLoadError, match="no generator folder"):
        Generator(tmp_path / "missing")
    # A tokenizer that does not belong to the model is refused with both sizes named.
    other = tmp_path / "tok"
    from regionreasoner.tools.generate.prompting import tiny_gemma_tokenizer

    tiny_gemma_tokenizer(vocab_size=400).save_pretrained(other)
    with pytest.raises(ModelLoadError, match="text tokens"):
        Generator.from_pretrained(tiny_generator_path, tokenizer_path=other, device="cpu")
