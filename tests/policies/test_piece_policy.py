"""PiecePolicy: one scripted piece per request, refusing requests out of step with the script."""

from __future__ import annotations

import pytest

from regionreasoner.core.errors import ConfigError, PolicyError
from regionreasoner.policies.base import PolicyRequest
from regionreasoner.policies.scripted import PiecePolicy


def _request(prefix: str) -> PolicyRequest:
    return PolicyRequest(messages=(), assistant_prefix=prefix)


def test_pieces_are_served_in_order_and_out_of_step_prefixes_fail() -> None:
    policy = PiecePolicy([["<think> a <tool_call>{}</tool_call>", " b", " c"], ["d"]])
    first = policy.complete(_request(""))
    assert first.text == "<think> a <tool_call>{}</tool_call>"
    # The agent appended a tool response after the piece: the next piece follows it.
    assert policy.complete(_request(first.text + "\n<tool_response>ok</tool_response>")).text == " b"
    with pytest.raises(PolicyError, match="does not end with the piece served last"):
        policy.complete(_request("<think> something else"))
    assert policy.complete(_request("")).text == "d" and len(policy.requests) == 4
    with pytest.raises(PolicyError, match="no piece left"):
        policy.complete(_request("d"))


def test_a_flat_list_is_refused() -> None:
    with pytest.raises(ConfigError, match="list of pieces"):
        PiecePolicy(["<scene> a </scene>"])
