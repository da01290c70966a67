"""Token-level constrained decoding of a turn with xgrammar: a chain of small grammars.

:class:`TurnMachine` walks a :class:`~regionreasoner.policies.base.TurnConstraint` segment by segment
(:func:`~regionreasoner.policies.grammar.segment_grammar`): each free-text section, the answer head, then for each
answer object the box head, x2, y2, the point's x and y.  Because a segment's integer bounds are computed from the
numbers already generated, corners come out ordered with a positive area (``x1 < x2``, ``y1 < y2``) and the point
inside its box,
which one static grammar cannot express.  Segments end on literal text, so a token can never straddle two of them:
the machine's state after any token is unambiguous, and a turn produced in pieces (one node per section) is
constrained exactly like a turn produced in one call.

xgrammar is imported lazily; :class:`GrammarCache` compiles each distinct segment grammar once per tokenizer.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from cachetools import LRUCache

from regionreasoner.core.errors import DependencyMissingError
from regionreasoner.policies.base import TurnConstraint
from regionreasoner.policies.grammar import TOOL_CALL_OPEN, segment_grammar

__all__ = ["GrammarCache", "GrammarMachine", "TokenConstraint", "TurnMachine"]

_INT = re.compile(r"\d+")


def _xgrammar() -> Any:
    try:
        import xgrammar
    except ImportError as exc:  # pragma: no cover - xgrammar is a core dependency
        raise DependencyMissingError("xgrammar is needed for constrained decoding: pip install xgrammar") from exc
    return xgrammar


class TokenConstraint(Protocol):
    """What a decode loop needs from a constraint."""

    done: bool

    def fill_bitmask(self, bitmask: Any, row: int = 0) -> None:
        """Write the allowed next tokens into row ``row`` of an xgrammar bitmask."""

    def accept_token(self, token_id: int) -> bool:
        """Advance by one token; False when it is not allowed."""

    def accept_text(self, text: str) -> bool:
        """Advance by text; False at the first character that is not allowed."""


class GrammarCache:
    """Compiled grammars for one tokenizer, keyed by EBNF text (least recently used dropped beyond ``size``).

    ``vocab_size`` is the model's logits width (it may exceed the tokenizer's length).  Not locked: each policy
    calls it under its own lock.  The chain's number segments depend on the numbers already generated (one grammar
    per lower bound), so a frame of ``W x H`` has up to a few times ``W + H`` distinct segments; ``size`` bounds them.
    """

    def __init__(self, tokenizer: Any, vocab_size: int, *, size: int = 4096, threads: int = 2) -> None:
        xgr = _xgrammar()
        self.info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size)
        self.vocab_size = vocab_size
        self._compiler = xgr.GrammarCompiler(self.info, max_threads=threads, cache_enabled=False)
        self._compiled: LRUCache[str, Any] = LRUCache(maxsize=size)
        self._close_mask: Any = None
        self.compiles = 0

    def compiled(self, ebnf: str) -> Any:
        """The compiled grammar of ``ebnf``."""
        grammar = self._compiled.get(ebnf)
        if grammar is None:
            grammar = self._compiled[ebnf] = self._compiler.compile_grammar(ebnf)
            self.compiles += 1
        return grammar

    def json_schema(self, schema: str) -> Any:
        """The compiled grammar of a JSON schema (compact JSON, no free whitespace)."""
        key = "json-schema:" + schema
        grammar = self._compiled.get(key)
        if grammar is None:
            grammar = self._compiled[key] = self._compiler.compile_json_schema(schema, any_whitespace=False)
            self.compiles += 1
        return grammar

    def matcher(self, ebnf: str) -> Any:
        """A fresh matcher that terminates when the grammar is complete (no stop token needed)."""
        return _xgrammar().GrammarMatcher(self.compiled(ebnf), terminate_without_stop_token=True)

    def close_mask(self) -> Any:
        """A one-row bitmask allowing only tokens whose text starts with ``<`` (used to end a long section)."""
        if self._close_mask is None:
            import numpy as np
            import torch

            allowed = np.zeros(self.bitmask_width * 32, dtype=bool)
            for i, token in enumerate(self.info.decoded_vocab):
                if token.startswith(b"<"):
                    allowed[i] = True
            words = np.packbits(allowed.reshape(-1, 32)[:, ::-1], axis=1, bitorder="big").view(">u4")[:, 0]
            self._close_mask = torch.from_numpy(words.astype(np.uint32).view(np.int32).copy())
        return self._close_mask

    @property
    def bitmask_width(self) -> int:
        """int32 words per row of a token bitmask."""
        return (self.vocab_size + 31) // 32

    def new_bitmask(self, rows: int = 1) -> Any:
        """An all-allowed token bitmask tensor for ``rows`` sequences."""
        return _xgrammar().allocate_token_bitmask(rows, self.vocab_size)


class TurnMachine:
    """The state of one constrained turn: which segment is open and the numbers of the current answer object.

    Why a chain and not one grammar: ``x1 < x2`` relates two numbers, which a context-free grammar can only express
    with one rule per value pair.  Instead the machine opens one small grammar per segment and, when a segment is
    complete, computes the next one's integer bounds from the numbers just generated.

    The invariant that makes the chain sound: every segment ends on literal text and its matcher terminates there
    (``terminate_without_stop_token``), so the mask never allows a token that would run past a segment's end.  Every
    token therefore belongs to exactly one segment and the machine's state after any token is unambiguous.  The
    price is that the model cannot use a token spanning two segments (``</scene>`` and the newline after it in one
    token); it writes the boundary as two tokens.  The engine backends serve one segment per request with the same
    grammars, which is why all backends produce the same language (and, greedily, the same tokens).
    """

    def __init__(
        self, spec: TurnConstraint, cache: GrammarCache, tokenizer: Any, *, bounded_sections: bool = False
    ) -> None:
        self.spec = spec
        self.bounded_sections = bounded_sections
        """Section limits in the grammar (engines driven one segment per request) instead of by mask."""
        self._cache = cache
        self._tokenizer = tokenizer
        self._section = 0
        self._phase = "section"
        self._objects = 0
        self._tool_calls = 0
        self._think_used = 0
        """Free-text characters of the open think section in its stretches before the current one."""
        self._values: dict[str, int] = {}
        self._text = ""
        self.done = False
        self.ebnf = ""
        """The grammar of the open segment (what an engine driven one segment per request is given)."""
        self._matcher = self._open()

    # -- segment bookkeeping ------------------------------------------------------------------------------------
    def _open(self) -> Any:
        """Open the grammar of the current phase (its bounds from the numbers so far) and return its matcher."""
        c, v = self.spec, self._values
        tag = c.sections[self._section]
        first = self._section == 0
        match self._phase:
            case "section" if tag == "answer":
                self._phase = "answer_head"
                ebnf = segment_grammar("answer_head", c, first=first)
            case "section":
                ebnf = segment_grammar(
                    "section", c, tag=tag, first=first, bounded=self.bounded_sections, calls_left=self._calls_left()
                )
            case "tool_call" | "tool_response":
                ebnf = segment_grammar(self._phase, c)
            case "think_more":
                left = self._think_left() if self.bounded_sections else None
                ebnf = segment_grammar(
                    "think_more", c, calls_left=self._calls_left(), lows=() if left is None else (left,)
                )
            case "box_head":
                ebnf = segment_grammar("box_head", c)
            # The ordering lives here: x2 > x1 and y2 > y1 (a box of positive area; box_head keeps x1 <= W - 1 so
            # that x2 always has a value left), the point within its box.  Without ``ordered`` only the frame bounds.
            case "x2":
                ebnf = segment_grammar("x2", c, lows=(v["x1"] + 1,) if c.ordered else (0,))
            case "y2":
                ebnf = segment_grammar("y2", c, lows=(v["y1"] + 1,) if c.ordered else (0,))
            case "px":
                lo, hi = (v["x1"], v["x2"]) if c.ordered else (0, c.bounds[0])
                ebnf = segment_grammar("px", c, lows=(lo, hi))
            case "py":
                # With ``last`` the grammar only allows "]</answer>" after this object: max_objects is reached.
                lo, hi = (v["y1"], v["y2"]) if c.ordered else (0, c.bounds[1])
                ebnf = segment_grammar("py", c, lows=(lo, hi), last=self._objects + 1 >= c.max_objects)
            case other:  # pragma: no cover - phases are internal
                raise AssertionError(other)
        self._text = ""
        self.ebnf = ebnf
        return self._cache.matcher(ebnf)

    def _close(self) -> None:
        """The open segment is complete: read its numbers, move to the next phase and open its grammar."""
        text = self._text
        nums = [int(n) for n in _INT.findall(text)]
        match self._phase:
            case "section" | "think_more" if text.endswith(TOOL_CALL_OPEN):
                # A think piece ended in "<tool_call>": the call's JSON comes next, then the agent's response.
                self._think_used += self._stretch_chars(text)
                self._phase = "tool_call"
                self._tool_calls += 1
            case "section" | "think_more":
                self._section += 1
                self._phase = "section"
                self._think_used = 0
            case "tool_call":
                self._phase = "tool_response"
            case "tool_response":
                self._phase = "think_more"
            case "answer_head":
                self._phase = "box_head"
            case "box_head":
                # The text is '{"bbox_2d": [x1,y1,' (the ", " between objects ended the previous segment); the
                # numbers after the last "[" are x1 and y1 ("bbox_2d" has a digit of its own).
                x1, y1 = (int(n) for n in _INT.findall(text.rsplit("[", 1)[1]))
                self._values = {"x1": x1, "y1": y1}
                self._phase = "x2"
            case "x2":
                self._values["x2"] = nums[0]
                self._phase = "y2"
            case "y2":
                self._values["y2"] = nums[0]
                self._phase = "px"
            case "px":
                self._phase = "py"
            case "py":
                self._objects += 1
                if text.endswith("</answer>"):  # the segment chose "]</answer>" over ", ": the turn is complete
                    self.done = True
                    self.ebnf = ""
                    return
                self._phase = "box_head"
        self._matcher = self._open()

    # -- the interface used by decode loops ---------------------------------------------------------------------
    def fill_bitmask(self, bitmask: Any, row: int = 0) -> None:
        """Write the allowed next tokens into row ``row`` of an xgrammar bitmask (all disallowed once done)."""
        if self.done:
            bitmask[row].zero_()
            return
        self._matcher.fill_next_token_bitmask(bitmask, row)
        if self._phase in ("section", "think_more") and not self.bounded_sections and self._must_close():
            # The section's limit is enforced by mask, not grammar (a bounded repetition compiles for seconds
            # against a large vocabulary).  Free text excludes "<", so among the allowed tokens those starting
            # with "<" are exactly the ones that begin the closing tag: keep only them.
            closing = bitmask[row] & self._cache.close_mask()
            if bool(closing.any()):  # empty inside a multi-byte character: finish the character, close after it
                bitmask[row] = closing

    @property
    def awaiting_tool_response(self) -> bool:
        """True right after a complete ``</tool_call>``: the text that comes next is the agent's tool response."""
        return self._phase == "tool_response" and self._text == ""

    def _stretch_chars(self, text: str) -> int:
        """Free-text characters of a think stretch ``text`` that ended in ``<tool_call>``."""
        body = text.removesuffix(TOOL_CALL_OPEN)
        if self._phase == "section":
            body = body.partition("<think>")[2]
        return len(body)

    def _think_left(self) -> int:
        """Free-text characters the open think section may still write (its limit minus earlier stretches)."""
        return max(0, self.spec.limit("think") - self._think_used)

    def _calls_left(self) -> bool:
        """True when the open think text may still end in a tool call (the turn's budget is not spent)."""
        spec = self.spec
        return bool(spec.tools) and spec.sections[self._section] == "think" and self._tool_calls < spec.max_tool_calls

    def _free_text(self) -> str | None:
        """The open stretch's free text (None before its opening tag or once its closing tag has begun)."""
        if self._phase == "think_more":
            body = self._text  # a stretch after a tool response has no opening tag
        else:
            _, opened, body = self._text.partition(">")
            if not opened:
                return None
        return None if "<" in body else body

    def _must_close(self) -> bool:
        """True when the open section's free text has reached its limit and its closing tag has not begun.

        A think section's limit covers all its stretches (before, between and after tool calls) together.
        """
        body = self._free_text()
        limit = self.spec.limit(self.spec.sections[self._section])
        return body is not None and len(body) + self._think_used >= limit

    def accept_token(self, token_id: int) -> bool:
        """Advance by one generated token; False (state unchanged) when the grammar does not allow it."""
        if self.done or not self._matcher.accept_token(token_id):
            return False
        # Numbers are parsed from this text; they are ASCII, so decoding token by token is exact for them.
        self._text += self._tokenizer.decode([token_id], skip_special_tokens=False)
        if self._matcher.is_terminated():
            self._close()
        return True

    def accept_text(self, text: str) -> bool:
        """Advance by text written without tokens (a prefix from elsewhere); False at the first disallowed char."""
        # One character at a time: a segment can end inside the text, and the rest belongs to the next segment's
        # grammar, so termination is checked after every character.
        for ch in text:
            if self.done or not self._matcher.accept_string(ch):
                return False
            self._text += ch
            if self._matcher.is_terminated():
                self._close()
        return True


class GrammarMachine:
    """A single grammar (raw EBNF or a JSON schema) as a :class:`TokenConstraint`."""

    def __init__(self, compiled: Any) -> None:
        self._matcher = _xgrammar().GrammarMatcher(compiled, terminate_without_stop_token=True)
        self.done = False

    def fill_bitmask(self, bitmask: Any, row: int = 0) -> None:
        """Write the allowed next tokens into row ``row`` (all disallowed once done)."""
        if self.done:
            bitmask[row].zero_()
        else:
            self._matcher.fill_next_token_bitmask(bitmask, row)

    def accept_token(self, token_id: int) -> bool:
        """Advance by one token."""
        if self.done or not self._matcher.accept_token(token_id):
            return False
        self.done = bool(self._matcher.is_terminated())
        return True

    def accept_text(self, text: str) -> bool:
        """Advance by text."""
        if text and (self.done or not self._matcher.accept_string(text)):
            return False
        self.done = bool(self._matcher.is_terminated())
        return True
