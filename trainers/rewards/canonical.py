"""An exact reader of the canonical answer form, ``[{"bbox_2d": [i, i, i, i], "point_2d": [i, i]}, ...]``.

Most answers a policy writes are this form, integers only, with or without one space after ``:`` and ``,``.  For
long answers, a regular expression and ``np.fromstring`` read it faster than ``json.loads`` and the type checks
and array building after it.  The reader accepts only strings that ``json.loads`` reads as a non-empty list of
such objects (keys in this order, each once), and gives exactly the integers ``json.loads`` gives; on anything
else it returns None and the caller takes the general path.  tests/trainers/test_rewards_speed.py checks it
against ``json.loads`` on random inputs.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["canonical_values"]

_INT = r"-?(?:0|[1-9][0-9]{0,6})"
r"""A JSON integer (no leading zeros, no ``+``, no fraction or exponent) of at most 7 ASCII digits (``\d`` would
take other scripts' digits too, which JSON refuses).  WHY 7 digits: every such value is below 10**7 < 2**24 in
size, the range in which the pair rewards are exact (``matching.LIMIT``)."""
_OBJECT = r'\{{"bbox_2d": ?\[{i}, ?{i}, ?{i}, ?{i}\], ?"point_2d": ?\[{i}, ?{i}\]\}}'
_ALL = re.compile(r"\[{o}(?:, ?{o})*\]".format(o=_OBJECT.format(i=_INT)))
_DROP = str.maketrans("", "", "[]{}")


def canonical_values(content: str) -> Any:
    """The objects' ``x1, y1, x2, y2, px, py`` of a canonical answer as an (n, 6) int64 numpy array, or None.

    WHY ``np.fromstring`` is exact here: once the whole string matches, deleting the two keys and the brackets
    leaves only the integers, separated by ``,`` (and optional spaces), which it reads as ``int`` reads them.
    """
    if _ALL.fullmatch(content) is None:
        return None
    import numpy as np

    numbers = content.replace('"bbox_2d":', "").replace('"point_2d":', "").translate(_DROP)
    return np.fromstring(numbers, dtype=np.int64, sep=",").reshape(-1, 6)
