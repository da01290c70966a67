"""The turn machine on the tiny tokenizer: random tokens under its masks always give a parseable, ordered answer."""

from pathlib import Path

import pytest
import torch

from regionreasoner.core.protocol import parse_action
from regionreasoner.policies.base import TurnConstraint
from regionreasoner.policies.constraints import GrammarCache, GrammarMachine, TurnMachine


@pytest.fixture(scope="module")
def tokenizer(tiny_qwen25: Path) -> object:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_qwen25)


@pytest.fixture(scope="module")
def cache(tokenizer: object) -> GrammarCache:
    return GrammarCache(tokenizer, 1024)


def sample_turn(machine: TurnMachine, cache: GrammarCache, tokenizer: object, seed: int) -> str:
    import xgrammar as xgr

    gen = torch.Generator().manual_seed(seed)
    bitmask = cache.new_bitmask()
    ids: list[int] = []
    while not machine.done:
        logits = torch.randn(1, 1024, generator=gen)
        machine.fill_bitmask(bitmask)
        xgr.apply_token_bitmask_inplace(logits, bitmask)
        token = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=gen))
        assert machine.accept_token(token)
        ids.append(token)
        assert len(ids) < 5000
    return str(tokenizer.decode(ids, skip_special_tokens=False))  # type: ignore[attr-defined]


@pytest.mark.parametrize("bounds", [(840, 840), (1000, 1000), (644, 420)])
def test_random_tokens_always_give_valid_ordered_answers(
    bounds: tuple[int, int], cache: GrammarCache, tokenizer: object
) -> None:
    spec = TurnConstraint(bounds=bounds, char_limits={"scene": 40, "focus": 30, "think": 50}, max_objects=4)
    for seed in range(25):
        text = sample_turn(TurnMachine(spec, cache, tokenizer), cache, tokenizer, seed)
        parsed = parse_action(text, bounds=bounds, expect_focus=True)
        assert parsed.ok and parsed.problems == [], (text, parsed.problems)
        assert 1 <= len(parsed.objects) <= 4
        for obj in parsed.objects:
            x1, y1, x2, y2 = obj.box
            assert 0 <= x1 < x2 <= bounds[0] and 0 <= y1 < y2 <= bounds[1]
            assert obj.point is not None and x1 <= obj.point[0] <= x2 and y1 <= obj.point[1] <= y2
        for tag, limit in (("scene", 40), ("focus", 30), ("think", 50)):
            body = getattr(parsed.sections, tag)
            assert body is not None and len(body) <= limit + 8  # the last token may carry a few characters


def test_sections_without_focus_and_one_object(cache: GrammarCache, tokenizer: object) -> None:
    spec = TurnConstraint(sections=("think", "answer"), bounds=(100, 100), max_objects=1, char_limits={"think": 20})
    text = sample_turn(TurnMachine(spec, cache, tokenizer), cache, tokenizer, 7)
    assert text.startswith("<think>") and text.count("bbox_2d") == 1 and "<scene>" not in text


def test_accept_text_replays_a_prefix_and_rejects_off_grammar_text(cache: GrammarCache, tokenizer: object) -> None:
    spec = TurnConstraint(bounds=(840, 840), char_limits={"scene": 40, "focus": 30, "think": 50})
    full = sample_turn(TurnMachine(spec, cache, tokenizer), cache, tokenizer, 3)
    replay = TurnMachine(spec, cache, tokenizer)
    assert replay.accept_text(full) and replay.done
    bad = TurnMachine(spec, cache, tokenizer)
    assert not bad.accept_text("<think>")  # scene must come first
    ordered = TurnMachine(spec, cache, tokenizer)
    head = "<scene>a</scene>\n<focus>b</focus>\n<think>c</think>\n<answer>["
    assert ordered.accept_text(head + '{"bbox_2d": [500,10,')
    assert not ordered.accept_text("499")  # x2 must exceed x1


def test_grammar_machine_with_json_schema(cache: GrammarCache, tokenizer: object) -> None:
    schema = (
        '{"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 9}}, "required": ["n"]}'
    )
    machine = GrammarMachine(cache.json_schema(schema))
    assert machine.accept_text('{"n": 7}') and machine.done  # xgrammar's compact layout: ': ' and ', '
    assert not GrammarMachine(cache.json_schema(schema)).accept_text('{"n": 12}')


def test_close_mask_allows_only_tokens_starting_with_lt(cache: GrammarCache, tokenizer: object) -> None:
    mask = cache.close_mask()
    allowed = [i for i in range(1024) if (int(mask[i // 32]) >> (i % 32)) & 1]
    assert allowed and all(cache.info.decoded_vocab[i].startswith(b"<") for i in allowed)
    starts = [i for i, t in enumerate(cache.info.decoded_vocab) if t.startswith(b"<")]
    assert allowed == starts
