"""Pair rewards and the one-to-one matching behind the accuracy reward, for objects of plain numbers.

A pair (prediction, truth) earns ``[IoU > 0.5] + [mean |corner difference| < 10 px] + [point distance < 30 px
and the predicted point inside its own predicted box]``; the accuracy is the best one-to-one (Hungarian) sum.
Objects are :data:`Row` tuples ``(x1, y1, x2, y2, area, px, py)`` of ints and floats of at most 2**24 in size
(``accuracy._rows`` checks that), so every sum and product below is exact in Python and float64 alike.
"""

from __future__ import annotations

import itertools
import math
from typing import TypeAlias

__all__ = ["LIMIT", "Row", "best_matching", "best_total", "pair_reward", "pair_rewards"]

Row: TypeAlias = tuple[float, float, float, float, float, float, float]
"""One object: ``(x1, y1, x2, y2, area, px, py)``, area with the ``+1`` convention."""

IOU_THRESHOLD = 0.5
L1_THRESHOLD = 10.0
POINT_THRESHOLD = 30.0

LIMIT = 1 << 24
"""|coordinate| up to this: every sum and product of the pair rewards is exact in int64 and float64 alike."""

_SMALL = 16  # a block of at most this many pairs is matched by enumeration


def pair_rewards(preds: list[Row], truth: list[Row]) -> list[tuple[int, int, int]]:
    """The non-zero 0..3 rewards ``(pred index, truth index, reward)`` of the (prediction, truth) pairs.

    The IoU is :func:`regionreasoner.core.geometry.iou` with ``inclusive=True`` written out: a positive
    intersection implies two boxes of positive size in the ``+1`` convention, where both agree with the reference
    (tests/trainers/test_rewards.py checks it), and no intersection is no hit in both.
    """
    edges = []
    for i, (x1, y1, x2, y2, area, px, py) in enumerate(preds):
        in_box = x1 <= px <= x2 and y1 <= py <= y2
        for j, (gx1, gy1, gx2, gy2, garea, qx, qy) in enumerate(truth):
            r = 0
            iw = (x2 if x2 < gx2 else gx2) - (x1 if x1 > gx1 else gx1) + 1
            if iw > 0:
                ih = (y2 if y2 < gy2 else gy2) - (y1 if y1 > gy1 else gy1) + 1
                if ih > 0:
                    inter = iw * ih
                    if inter / (area + garea - inter) > IOU_THRESHOLD:
                        r = 1
            if (abs(x1 - gx1) + abs(y1 - gy1) + abs(x2 - gx2) + abs(y2 - gy2)) / 4 < L1_THRESHOLD:
                r += 1
            if in_box:
                dx, dy = px - qx, py - qy
                if math.sqrt(dx * dx + dy * dy) < POINT_THRESHOLD:
                    r += 1
            if r:
                edges.append((i, j, r))
    return edges


def _brute_force(rewards: list[list[int]]) -> int:
    """The best one-to-one matching of a small dense reward matrix, by enumeration."""
    m, n = len(rewards), len(rewards[0])
    if m == 1 or n == 1:
        return max(max(row) for row in rewards)
    if m <= n:
        return max(sum(rewards[i][j] for i, j in enumerate(cols)) for cols in itertools.permutations(range(n), m))
    return max(sum(rewards[i][j] for j, i in enumerate(rows)) for rows in itertools.permutations(range(m), n))


def best_matching(edges: list[tuple[int, int, int]]) -> int:
    """The Hungarian optimum of a non-negative integer reward matrix given by its non-zero ``(row, col, reward)``.

    The optimum of the full assignment equals the best matching of the non-zero entries (zero pairs fill the
    rest), and blocks of entries that share no row or column are independent: each block is solved alone, by
    enumeration when small and by scipy's ``linear_sum_assignment`` otherwise.
    """
    if len(edges) <= 1:
        return edges[0][2] if edges else 0
    if len({i for i, _, _ in edges}) == len(edges) == len({j for _, j, _ in edges}):
        return sum(r for _, _, r in edges)  # WHY: no two entries share a row or a column: take them all
    parent: dict[tuple[int, int], tuple[int, int]] = {}

    def root(x: tuple[int, int]) -> tuple[int, int]:
        while (up := parent.setdefault(x, x)) != x:
            parent[x] = parent[up]
            x = up
        return x

    for i, j, _ in edges:
        parent[root((0, i))] = root((1, j))
    blocks: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for edge in edges:
        blocks.setdefault(root((0, edge[0])), []).append(edge)
    total = 0
    for block in blocks.values():
        rows = sorted({i for i, _, _ in block})
        cols = sorted({j for _, j, _ in block})
        if len(rows) == 1 or len(cols) == 1:
            total += max(r for _, _, r in block)
            continue
        r_at, c_at = {v: k for k, v in enumerate(rows)}, {v: k for k, v in enumerate(cols)}
        dense = [[0] * len(cols) for _ in rows]
        for i, j, r in block:
            dense[r_at[i]][c_at[j]] = r
        if len(rows) * len(cols) <= _SMALL:
            total += _brute_force(dense)
        else:
            from scipy.optimize import linear_sum_assignment

            ri, ci = linear_sum_assignment(dense, maximize=True)
            total += sum(dense[a][b] for a, b in zip(ri.tolist(), ci.tolist(), strict=True))
    return total


def best_total(preds: list[Row], truth: list[Row]) -> int:
    """The best one-to-one sum of pair rewards."""
    if len(truth) == 1 or len(preds) == 1:  # WHY: one row or one column: the best single pair is the optimum
        best = 0
        for pred in preds:
            for gt in truth:
                r = pair_reward(pred, gt)
                if r > best:
                    if r == 3:
                        return 3
                    best = r
        return best
    return best_matching(pair_rewards(preds, truth))


def pair_reward(pred: Row, gt: Row) -> int:
    """The 0..3 reward of one pair: :func:`pair_rewards` for one prediction and one truth."""
    x1, y1, x2, y2, area, px, py = pred
    gx1, gy1, gx2, gy2, garea, qx, qy = gt
    r = 0
    iw = (x2 if x2 < gx2 else gx2) - (x1 if x1 > gx1 else gx1) + 1
    if iw > 0:
        ih = (y2 if y2 < gy2 else gy2) - (y1 if y1 > gy1 else gy1) + 1
        if ih > 0:
            inter = iw * ih
            if inter / (area + garea - inter) > IOU_THRESHOLD:
                r = 1
    if (abs(x1 - gx1) + abs(y1 - gy1) + abs(x2 - gx2) + abs(y2 - gy2)) / 4 < L1_THRESHOLD:
        r += 1
    if x1 <= px <= x2 and y1 <= py <= y2:
        dx, dy = px - qx, py - qy
        if math.sqrt(dx * dx + dy * dy) < POINT_THRESHOLD:
            r += 1
    return r
