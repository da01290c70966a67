"""Pair rewards and the one-to-one matching behind the accuracy reward, for objects of plain numbers.

A pair (prediction, truth) earns ``[IoU > 0.5] + [mean |corner difference| < 10 px] + [point distance < 30 px
and the predicted point inside its own predicted box]``; the accuracy is the best one-to-one (Hungarian) sum.
Objects are :data:`Row` tuples ``(x1, y1, x2, y2, area, px, py)`` of ints and floats of at most 2**24 in size
(``accuracy._rows`` checks that), so every sum and product below is exact in Python and float64 alike.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, TypeAlias

__all__ = [
    "SMALL_INT",
    "Row",
    "best_matching",
    "best_total",
    "int_columns",
    "int_rewards",
    "matrix_total",
    "pair_rewards",
    "reward_matrix",
]

Row: TypeAlias = tuple[float, float, float, float, float, float, float]
"""One object: ``(x1, y1, x2, y2, area, px, py)``, area with the ``+1`` convention."""

IOU_THRESHOLD = 0.5
L1_THRESHOLD = 10.0
POINT_THRESHOLD = 30.0

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


SMALL_INT = 1 << 12
"""Values of at most this size: :func:`int_rewards` may compute in int32 (every product stays below 2**31)."""


def int_columns(rows: list[Row], dtype: Any) -> Any:
    """What :func:`int_rewards` reads of all-int truth rows: ``(x1, y1, x2 + 1, y2 + 1, px, py)`` as (m, 6, 1) and
    the areas as (m, 1), of ``dtype``."""
    import numpy as np

    t = np.array(rows, dtype=dtype)
    t[:, 2:4] += 1
    return t[:, [0, 1, 2, 3, 5, 6], None].copy(), t[:, 4:5].copy()


def int_rewards(columns: Any, truth: Any) -> Any:
    """The (m, n) int8 matrix of :func:`pair_rewards` (truth by prediction), on numpy.

    ``columns``: the predictions' ``x1, y1, x2, y2, px, py`` as a (6, n) int array of values of at most 2**24 in
    size (int32 only for values of at most :data:`SMALL_INT`), ``truth`` from :func:`int_columns` (same dtype).

    WHY the integer tests equal the float ones: with inter > 0 both boxes have a positive size, so the union is
    positive and ``inter / union > 0.5`` is ``3 * inter > area + garea`` (the union is below 2**51, so the correctly
    rounded quotient is above 0.5 exactly when the fraction is); the L1 mean is below 10 exactly when the integer sum
    is below 40, and ``sqrt(s) < 30`` exactly when the integer ``s`` is below 900 (the square root is correctly
    rounded and ``sqrt(900)`` is 30).  Every product fits the dtype.  WHY truth by prediction: numpy broadcasts an
    (m, 1) column against an (n,) row fastest when the long axis is the inner one.
    """
    import numpy as np

    g, garea = truth
    c = columns.copy()
    c[2:4] += 1  # x2 + 1, y2 + 1
    side = np.minimum(c[2:4], g[:, 2:4])
    side -= np.maximum(c[0:2], g[:, 0:2])
    np.maximum(side, 0, out=side)
    inter = side[:, 0] * side[:, 1]
    hit = inter > 0
    inter *= 3
    size = c[2:4] - c[0:2]
    hit &= inter > size[0] * size[1] + garea
    matrix = hit.view(np.int8)
    diff = c[0:4] - g[:, 0:4]
    np.abs(diff, out=diff)
    matrix += np.add.reduce(diff, axis=1, dtype=diff.dtype) < 40
    diff = c[4:6] - g[:, 4:6]
    diff *= diff
    x1, y1, x2p, y2p, px, py = c
    hit = np.add.reduce(diff, axis=1, dtype=diff.dtype) < 900
    hit &= (x1 <= px) & (px < x2p) & (y1 <= py) & (py < y2p)
    matrix += hit
    return matrix


def matrix_total(matrix: Any) -> int:
    """The Hungarian optimum of a non-negative integer numpy reward matrix.

    The sum of the row maxima bounds every matching; when each row with a non-zero maximum can take it in a column
    of its own (the first maximum of each row, all distinct), that bound is the optimum (zero pairs fill the rest
    of the assignment), and likewise for columns.  Else scipy matches the sub-matrix of non-zero rows and columns.
    """
    import numpy as np

    rowmax = matrix.max(axis=1)
    rows = np.flatnonzero(rowmax)
    if not rows.size:
        return 0
    sub = matrix[rows]
    if len(set(sub.argmax(axis=1).tolist())) == rows.size:
        return int(rowmax.sum())
    colmax = matrix.max(axis=0)
    cols = np.flatnonzero(colmax)
    sub = sub[:, cols]
    if len(set(sub.argmax(axis=0).tolist())) == cols.size:
        return int(colmax.sum())
    from scipy.optimize import linear_sum_assignment

    ri, ci = linear_sum_assignment(sub, maximize=True)
    return int(sub[ri, ci].sum())


def _split4(a: Any) -> list[Any]:
    """``np.split(a, 4, axis=1)``: the same views, without its generic machinery; the same errors (ValueError)."""
    if a.ndim < 2 or a.shape[1] % 4:
        raise ValueError("array split does not result in an equal division")
    w = a.shape[1] // 4
    return [a[:, :w], a[:, w : 2 * w], a[:, 2 * w : 3 * w], a[:, 3 * w :]]


def reward_matrix(
    boxes: list[Any], points: list[Any], truth_boxes: list[Any], truth_points: list[Any]
) -> list[tuple[int, int, int]] | None:
    """The non-zero 0..3 pair rewards, computed on numpy arrays as the reference computes them; None on any error.

    Booleans, null, strings, huge integers, non-finite numbers and ragged or nested lists behave as numpy makes
    them behave (int64 wrap-around, object arrays, broadcasting), so these inputs score as in the reference.
    """
    import numpy as np

    try:
        with np.errstate(all="ignore"):
            pb, pp, gb, gp = np.array(boxes), np.array(points), np.array(truth_boxes), np.array(truth_points)
            px1, py1, px2, py2 = _split4(pb)
            gx1, gy1, gx2, gy2 = (c.T for c in _split4(gb))
            inter = np.maximum(0, np.minimum(px2, gx2) - np.maximum(px1, gx1) + 1) * np.maximum(
                0, np.minimum(py2, gy2) - np.maximum(py1, gy1) + 1
            )
            union = (px2 - px1 + 1) * (py2 - py1 + 1) + ((gx2 - gx1 + 1) * (gy2 - gy1 + 1)) - inter
            iou_hit = (inter / union) > IOU_THRESHOLD
            l1_hit = np.mean(np.abs(pb[:, None, :] - gb[None, :, :]), axis=2) < L1_THRESHOLD
            dist = np.sqrt(np.sum((pp[:, None, :] - gp[None, :, :]) ** 2, axis=2))
            in_box = (pp[:, 0] >= pb[:, 0]) & (pp[:, 0] <= pb[:, 2]) & (pp[:, 1] >= pb[:, 1]) & (pp[:, 1] <= pb[:, 3])
            point_hit = (dist < POINT_THRESHOLD) & in_box[:, None]
            matrix = iou_hit.astype(np.int64) + l1_hit.astype(np.int64) + point_hit.astype(np.int64)
    except Exception:  # WHY: the reference scores any numpy error on model output as 0
        return None
    if matrix.ndim != 2 or not matrix.size:  # scipy's assignment refuses anything else
        return None
    rows, cols = matrix.nonzero()
    return list(zip(rows.tolist(), cols.tolist(), matrix[rows, cols].tolist(), strict=True))


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
                r = _reward(pred, gt)
                if r > best:
                    if r == 3:
                        return 3
                    best = r
        return best
    return best_matching(pair_rewards(preds, truth))


def _reward(pred: Row, gt: Row) -> int:
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
