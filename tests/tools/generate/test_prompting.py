"""NeoBabel's vocabulary layout, t2i sequences and attention mask, against the reference's rules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from regionreasoner.core.errors import ConfigError, InputError
from regionreasoner.tools.generate.prompting import (
    NEW_TOKENS,
    VocabLayout,
    attention_mask,
    build_t2i_batch,
    encode_prompts,
    prepare_tokenizer,
    t2i_text_part,
    tiny_gemma_tokenizer,
)


def test_released_ids() -> None:
    # neobabel.md §1.2: Gemma-2 (256000 tokens) + MAGVIT-v2 (8192 codes).
    layout = VocabLayout(text_vocab_size=256000, codebook_size=8192)
    assert layout.pad_id == 256000
    assert (layout.soi_id, layout.eoi_id, layout.t2i_id) == (256001, 256002, 256005)
    assert [layout.token_id(t) for t in NEW_TOKENS] == list(range(256001, 256010))
    assert layout.image_offset == 256010
    assert layout.mask_id == 264202
    assert layout.vocab_size == 264203
    with pytest.raises(InputError):
        layout.token_id("<|nope|>")
    with pytest.raises(ConfigError):
        VocabLayout(text_vocab_size=10, codebook_size=1)


def test_tokenizer_layout_is_idempotent(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tok = tiny_gemma_tokenizer()
    base = len(tok)
    assert tok("")["input_ids"] == [2]  # Gemma-like: <bos> prepended, <eos> 1
    layout = prepare_tokenizer(tok, 64)
    assert layout.text_vocab_size == base and layout.image_offset == len(tok) == base + 10
    assert (layout.bos_id, layout.eos_id, layout.mask_id) == (2, 1, base + 10 + 64)
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert prepare_tokenizer(again, 64) == layout  # tokens already present keep their ids


def test_misplaced_tokens_are_refused() -> None:
    tok = tiny_gemma_tokenizer()
    tok.add_tokens(["<|soi|>"])  # added before [PAD]: every later id would be shifted
    with pytest.raises(ConfigError, match="gemma-2-2b-it"):
        prepare_tokenizer(tok, 64)


def test_text_part_padding_truncation_and_null_prompt() -> None:
    layout = VocabLayout(text_vocab_size=100, codebook_size=8)
    pad, t2i, bos, eos = layout.pad_id, layout.t2i_id, 2, 1
    assert t2i_text_part([bos, 5, 6], layout, 8) == [pad] * 4 + [t2i, bos, 5, 6, eos]
    assert t2i_text_part([5, 6], layout, 8) == [pad] * 4 + [t2i, bos, 5, 6, eos]  # <bos> added when missing
    assert t2i_text_part([], layout, 8) == [pad] * 6 + [t2i, bos, eos]  # the unconditional prompt
    long = t2i_text_part([bos, *range(10, 30)], layout, 8)
    assert long == [t2i, bos, 10, 11, 12, 13, 14, 15, eos] and len(long) == 9
    with pytest.raises(ConfigError):
        t2i_text_part([], layout, 2)


def test_released_sequence_lengths() -> None:
    layout = VocabLayout(text_vocab_size=256000, codebook_size=8192)
    image = torch.full((2, 1024), layout.mask_id)
    ids = build_t2i_batch([[2, 9, 9], []], image, layout, max_seq_length=512)
    assert ids.shape == (2, 1539)
    assert (ids[:, 513] == layout.soi_id).all() and (ids[:, 1538] == layout.eoi_id).all()
    assert (ids[:, -1025:-1] == layout.mask_id).all()
    assert ids[1, :513].tolist() == [layout.pad_id] * 510 + [layout.t2i_id, 2, 1]
    with pytest.raises(InputError):
        build_t2i_batch([[2]], torch.full((1, 4), 5), layout, 8)  # a text id in the image slice
    with pytest.raises(InputError):
        build_t2i_batch([[2], [2]], torch.full((1, 4), layout.mask_id), layout, 8)


def test_encode_prompts_refuses_a_bare_string() -> None:
    tok = tiny_gemma_tokenizer()
    assert encode_prompts(tok, ["a red ball"])[0][0] == 2
    with pytest.raises(InputError):
        encode_prompts(tok, "a red ball")
    with pytest.raises(InputError):
        encode_prompts(tok, [])


def _expected_mask(row: list[int], pad: int, soi: int, eoi: int, rm_pad_in_image: bool) -> list[list[bool]]:
    """The reference rule, one (i, j) at a time (create_attention_mask_predict_next)."""
    n = len(row)
    image, inside = [False] * n, False
    for i, t in enumerate(row):
        if t == soi:
            inside = True
        image[i] = inside or t == eoi
        if t == eoi:
            inside = False
    pads = [i for i, t in enumerate(row) if t == pad]
    last_pad = pads[-1] if pads else -1
    out = []
    for i in range(n):
        line = []
        for j in range(n):
            if image[i]:
                ok = not (rm_pad_in_image and row[j] == pad)
            else:
                ok = j <= i and not (rm_pad_in_image and i > last_pad and j <= last_pad)
            line.append(ok)
        out.append(line)
    return out


@pytest.mark.parametrize("rm_pad_in_image", [True, False])
def test_attention_mask_matches_the_reference_rule(rm_pad_in_image: bool) -> None:
    pad, soi, eoi, t2i = 50, 51, 52, 55
    rows = [
        [pad, pad, pad, t2i, 2, 7, 1, soi, 60, 61, 62, eoi],  # cond, 3 pads
        [pad, pad, pad, pad, pad, t2i, 2, 1, soi, 60, 61, eoi],  # uncond, 5 pads
        [t2i, 2, 7, 8, 9, 1, soi, 60, 61, eoi, 3, 4],  # no pad, text after the image
        [pad, t2i, 2, 1, soi, 60, pad, 61, eoi, 3, pad, 5],  # pads inside the image and after it
    ]
    ids = torch.tensor(rows)
    additive = attention_mask(ids, pad, soi, eoi, rm_pad_in_image=rm_pad_in_image)
    assert additive.shape == (4, 1, 12, 12) and additive.dtype == torch.float32
    allowed = additive[:, 0] == 0
    assert set(additive.unique().tolist()) <= {0.0, torch.finfo(torch.float32).min}
    for b, row in enumerate(rows):
        expected = torch.tensor(_expected_mask(row, pad, soi, eoi, rm_pad_in_image))
        assert torch.equal(allowed[b], expected), f"row {b}"
    assert allowed.any(dim=-1).all()  # every row attends somewhere: no NaN softmax


def test_attention_mask_dtype_and_shape_checks() -> None:
    ids = torch.tensor([[50, 55, 2, 1, 51, 60, 52]])
    bf16 = attention_mask(ids, 50, 51, 52, dtype=torch.bfloat16)
    assert bf16.dtype == torch.bfloat16 and bf16.min() == torch.finfo(torch.bfloat16).min
    with pytest.raises(InputError):
        attention_mask(ids[0], 50, 51, 52)


def test_package_import_loads_no_torch() -> None:
    code = (
        "import sys\n"
        "import regionreasoner.tools.generate as g\n"
        "import regionreasoner.tools.generate.prompting, regionreasoner.tools.generate.sampler\n"
        "import regionreasoner.tools.generate.inpaint, regionreasoner.tools.generate.generator\n"
        "heavy = sorted(m for m in ('torch', 'transformers') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert {'Generator', 'NeoBabel', 'sample_codes', 'attention_mask'} <= set(g.__all__)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
