"""Tool calls inside <think> under the turn grammar: well-formed calls of configured tools, bounded, replayable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from regionreasoner.core.errors import ConfigError
from regionreasoner.core.protocol import parse_action, parse_tool_call
from regionreasoner.policies.base import ToolSpec, TurnConstraint
from regionreasoner.policies.constraints import GrammarCache, TurnMachine
from regionreasoner.policies.grammar import TOOL_RESPONSE_CLOSE, TOOL_RESPONSE_OPEN, tool_call_grammar

DETECT = ToolSpec.of(
    "detect",
    {
        "type": "object",
        "properties": {"phrases": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3}},
        "required": ["phrases"],
        "additionalProperties": False,
    },
)
ZOOM = ToolSpec.of(
    "zoom",
    {
        "type": "object",
        "properties": {"bbox_2d": {"type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 4}},
        "required": ["bbox_2d"],
        "additionalProperties": False,
    },
)


@pytest.fixture(scope="module")
def tokenizer(tiny_qwen25: Path) -> object:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_qwen25)


@pytest.fixture(scope="module")
def cache(tokenizer: object) -> GrammarCache:
    return GrammarCache(tokenizer, 1024)


def _spec(calls: int = 2) -> TurnConstraint:
    return TurnConstraint(
        sections=("scene", "think", "answer"),
        bounds=(100, 100),
        max_objects=2,
        char_limits={"scene": 12, "think": 12},
        tools=(DETECT, ZOOM),
        max_tool_calls=calls,
    )


def _sample(machine: TurnMachine, cache: GrammarCache, tokenizer: object, seed: int) -> tuple[str, list[str]]:
    """Random tokens under the machine's masks; after each call the agent's response is appended as text."""
    import xgrammar as xgr

    gen = torch.Generator().manual_seed(seed)
    bitmask = cache.new_bitmask()
    text, calls, steps = "", [], 0
    while not machine.done:
        if machine.awaiting_tool_response:
            calls.append(text[text.rindex("<tool_call>") :])
            response = f"{TOOL_RESPONSE_OPEN}ok {len(calls)}{TOOL_RESPONSE_CLOSE}"
            assert machine.accept_text(response)
            text += response
            continue
        logits = torch.randn(1, 1024, generator=gen)
        machine.fill_bitmask(bitmask)
        xgr.apply_token_bitmask_inplace(logits, bitmask)
        token = int(torch.multinomial(torch.softmax(logits, -1), 1, generator=gen))
        assert machine.accept_token(token)
        text += str(tokenizer.decode([token], skip_special_tokens=False))  # type: ignore[attr-defined]
        steps += 1
        assert steps < 6000
    return text, calls


def test_random_tokens_give_well_formed_calls_of_configured_tools(cache: GrammarCache, tokenizer: object) -> None:
    seen_calls = 0
    for seed in range(30):
        text, calls = _sample(TurnMachine(_spec(), cache, tokenizer), cache, tokenizer, seed)
        assert len(calls) <= 2
        parsed = parse_action(text, bounds=(100, 100), expect_focus=False, required=("scene", "think"))
        assert parsed.ok, (text, parsed.problems)
        for raw in calls:
            call = parse_tool_call(raw.removeprefix("<tool_call>").removesuffix("</tool_call>"))
            assert call.name in ("detect", "zoom")
            if call.name == "detect":
                assert 1 <= len(call.arguments["phrases"]) <= 3
                assert all(isinstance(p, str) for p in call.arguments["phrases"])
            else:
                box = call.arguments["bbox_2d"]
                assert len(box) == 4 and all(isinstance(v, int) for v in box)
        # The think limit (12 characters) covers the free text of all its stretches, calls and responses aside.
        think = parsed.sections.think or ""
        free = re.sub(r"<tool_call>.*?</tool_call>\s*<tool_response>.*?</tool_response>\s*", "", think, flags=re.S)
        assert len(free) <= 12 + 8, think  # the last token of a stretch may carry a few characters
        seen_calls += len(calls)
    assert seen_calls >= 3  # the walk does call tools (else this test would check nothing about them)


def test_the_call_budget_closes_think(cache: GrammarCache, tokenizer: object) -> None:
    machine = TurnMachine(_spec(calls=1), cache, tokenizer)
    call = '<tool_call>{"name": "detect", "arguments": {"phrases": ["a dog"]}}</tool_call>'
    assert machine.accept_text("<scene>a park</scene>\n<think>look " + call)
    assert machine.awaiting_tool_response
    assert machine.accept_text(f"{TOOL_RESPONSE_OPEN}1 object{TOOL_RESPONSE_CLOSE}")
    # The budget is spent: the think text can only close, not call again.
    assert not TurnMachine(_spec(calls=1), cache, tokenizer).accept_text(
        "<scene>a park</scene>\n<think>look " + call + f"{TOOL_RESPONSE_OPEN}x{TOOL_RESPONSE_CLOSE} more <tool_call>"
    )
    assert machine.accept_text(' so the dog </think>\n<answer>[{"bbox_2d": [1,2,30,40], "point_2d": [5,6]}]</answer>')
    assert machine.done


@pytest.mark.parametrize(
    "bad",
    [
        '<tool_call>{"name": "segment", "arguments": {}}',  # not a configured tool
        '<tool_call>{"name": "zoom", "arguments": {"bbox_2d": [1, 2, 3]}}',  # three numbers, not four
        '<tool_call>{"name": "zoom", "arguments": {"bbox_2d": ["a", 2, 3, 4]}}',  # a string where an int goes
        '<tool_call>{"name": "detect", "arguments": {"phrases": ["x"], "extra": 1}}',  # an argument not declared
        '<tool_call>{"name": "detect", "arguments": 5}',  # arguments not an object
        '<tool_call>{"name": "detect"}',  # no arguments
    ],
)
def test_calls_the_schemas_forbid_are_off_grammar(cache: GrammarCache, tokenizer: object, bad: str) -> None:
    machine = TurnMachine(_spec(), cache, tokenizer)
    assert machine.accept_text("<scene>a park</scene>\n<think>look ")
    assert not machine.accept_text(bad + "</tool_call>")


def test_scene_cannot_call_and_responses_cannot_hold_tags(cache: GrammarCache, tokenizer: object) -> None:
    assert not TurnMachine(_spec(), cache, tokenizer).accept_text("<scene>a <tool_call>")
    machine = TurnMachine(_spec(), cache, tokenizer)
    assert machine.accept_text(
        '<scene>a</scene>\n<think>b <tool_call>{"name": "zoom", "arguments": {"bbox_2d": [1, 2, 3, 4]}}'
    )
    assert machine.accept_text("</tool_call>")
    assert not machine.accept_text(f"{TOOL_RESPONSE_OPEN}<answer>{TOOL_RESPONSE_CLOSE}")


def test_tool_grammar_rules_are_renamed_apart_and_specs_are_checked() -> None:
    ebnf = tool_call_grammar((DETECT, ZOOM))
    assert ebnf.startswith('root ::= tc_root "</tool_call>"') and ebnf.count("\nroot ::=") == 0
    assert '"\\"name\\""' in ebnf  # literals are left alone by the renaming
    assert json.loads(DETECT.schema)["required"] == ["phrases"]
    with pytest.raises(ConfigError, match="needs tools"):
        TurnConstraint(max_tool_calls=1)


def test_engines_get_the_think_limit_left_after_a_call_in_the_grammar(cache: GrammarCache, tokenizer: object) -> None:
    call = '<tool_call>{"name": "detect", "arguments": {"phrases": ["a"]}}</tool_call>'
    head = f"<scene>a park</scene>\n<think>look here {call}{TOOL_RESPONSE_OPEN}ok{TOOL_RESPONSE_CLOSE}"
    # "look here " is 10 of the 12 think characters: two are left after the response.
    machine = TurnMachine(_spec(), cache, tokenizer, bounded_sections=True)
    assert machine.accept_text(head) and "{0,2}" in machine.ebnf
    assert machine.accept_text("ok</think>")
    over = TurnMachine(_spec(), cache, tokenizer, bounded_sections=True)
    assert over.accept_text(head) and not over.accept_text("okay</think>")
