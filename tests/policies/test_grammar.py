import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regionreasoner.core.errors import ConfigError
from regionreasoner.policies.base import TurnConstraint
from regionreasoner.policies.grammar import int_range, segment_grammar, turn_grammar


def ebnf_to_regex(expr: str) -> str:
    """Translate the small EBNF subset int_range emits (quoted digits, [a-b], |, parentheses) to a regex."""
    out = re.sub(r'"(\d+)"', r"\1", expr)
    return out.replace(" ", "")


@pytest.mark.parametrize("hi", [0, 1, 9, 10, 99, 100, 840, 1000, 1004, 3584])
def test_int_range_matches_exactly_lo_to_hi(hi: int) -> None:
    for lo in sorted({lo for lo in (0, 1, hi // 3, hi // 2, max(0, hi - 1), hi) if lo <= hi}):
        pattern = re.compile(ebnf_to_regex(int_range(lo, hi)))
        accepted = {n for n in range(0, hi + 200) if pattern.fullmatch(str(n))}
        assert accepted == set(range(lo, hi + 1)), (lo, hi)
        assert not pattern.fullmatch("0" + str(max(lo, 1)))  # no leading zeros
        assert not pattern.fullmatch("-1")


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 5000), st.integers(0, 5000), st.integers(0, 6000))
def test_int_range_property(a: int, b: int, n: int) -> None:
    lo, hi = min(a, b), max(a, b)
    assert bool(re.fullmatch(ebnf_to_regex(int_range(lo, hi)), str(n))) == (lo <= n <= hi)


def test_int_range_rejects_bad_bounds() -> None:
    with pytest.raises(ConfigError):
        int_range(5, 4)
    with pytest.raises(ConfigError):
        int_range(-1, 4)


def test_grammars_compile_with_xgrammar() -> None:
    import xgrammar as xgr

    c = TurnConstraint(bounds=(840, 630), max_objects=3)
    grammars = [
        turn_grammar(c),
        turn_grammar(c, start=2, leading_separator=True),
        segment_grammar("section", c, tag="scene", first=True),
        segment_grammar("answer_head", c),
        segment_grammar("box_head", c),
        segment_grammar("x2", c, lows=(12,)),
        segment_grammar("y2", c, lows=(5,)),
        segment_grammar("px", c, lows=(12, 40)),
        segment_grammar("py", c, lows=(5, 9), last=True),
    ]
    for g in grammars:
        xgr.Grammar.from_ebnf(g)
    with pytest.raises(ConfigError):
        segment_grammar("nope", c)


def test_constraint_validation() -> None:
    with pytest.raises(ConfigError, match="last section"):
        TurnConstraint(sections=("scene", "think"))
    with pytest.raises(ConfigError, match="unknown"):
        TurnConstraint(sections=("scene", "poem", "answer"))
    with pytest.raises(ConfigError, match="bounds"):
        TurnConstraint(bounds=(0, 10))
    with pytest.raises(ConfigError, match="char_limits"):
        TurnConstraint(char_limits={"scene": 0, "focus": 1, "think": 1})
