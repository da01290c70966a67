"""The pair rewards on numpy: plain-int answers of many objects, many float pairs, and the reference's reading.

:func:`dense_accuracy` scores a decoded answer of plain ints against all-int truth (:func:`int_rewards`, exact
integer tests); :func:`dense_rewards` computes the pair rewards of plain rows in float64 as Python does;
:func:`reward_matrix` computes them as the reference does, on whatever numpy makes of odd values.  Importing this
module does not load numpy.
"""

from __future__ import annotations

from itertools import chain
from operator import itemgetter
from typing import Any

from regionreasoner.core.answer import DEFAULT_MAX_OBJECTS as MAX_OBJECTS
from regionreasoner.trainers.rewards.matching import IOU_THRESHOLD, L1_THRESHOLD, LIMIT, POINT_THRESHOLD, Row

__all__ = [
    "SMALL_INT",
    "dense_accuracy",
    "dense_rewards",
    "dense_values_accuracy",
    "int_columns",
    "int_rewards",
    "matrix_total",
    "reward_matrix",
]

_LIST = {list}
_FOUR = {4}
_TWO = {2}
_BOX = itemgetter("bbox_2d")
_POINT = itemgetter("point_2d")

SMALL_INT = 1 << 12
"""Values of at most this size: :func:`int_rewards` may compute in int32 (every product stays below 2**31)."""


def int_columns(rows: list[Row], dtype: Any) -> Any:
    """What :func:`int_rewards` reads of all-int truth rows, of ``dtype``.

    ``(x1, y1, x2, y2)`` as an (m, 4, 1) array, ``(x2 + 1, y2 + 1)`` and ``(px, py)`` as (m, 2, 1), areas (m, 1).
    """
    import numpy as np

    t = np.array(rows, dtype=dtype)[:, :, None]
    return t[:, 0:4].copy(), t[:, 2:4] + 1, t[:, 5:7].copy(), t[:, 4].copy()


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

    g, g_end, g_point, g_area = truth
    start = columns[0:2]
    end = columns[2:4] + 1  # x2 + 1, y2 + 1
    side = np.minimum(end, g_end)
    side -= np.maximum(start, g[:, 0:2])
    np.maximum(side, 0, out=side)
    inter = side[:, 0] * side[:, 1]
    hit = inter > 0
    inter *= 3
    end -= start
    hit &= inter > end[0] * end[1] + g_area
    matrix = hit.view(np.int8)
    diff = columns[0:4] - g
    np.abs(diff, out=diff)
    matrix += np.add.reduce(diff, axis=1, dtype=diff.dtype) < 40
    diff = columns[4:6] - g_point
    diff *= diff
    x1, y1, x2, y2, px, py = columns
    hit = np.add.reduce(diff, axis=1, dtype=diff.dtype) < 900
    hit &= (x1 <= px) & (px <= x2) & (y1 <= py) & (py <= y2)
    matrix += hit
    return matrix


def dense_rewards(preds: list[Row], truth_columns: Any) -> Any:
    """The (n, m) int matrix of :func:`pair_rewards`, on numpy in float64 (``truth_columns``: (7, m) float64).

    WHY it equals :func:`pair_rewards`: the rows hold ints and floats of at most 2**24 in size, so float64 holds
    every int, and every int result (sums, and products below 2**51) exactly; where Python rounds (an operation on
    a float, the IoU division, the ``/ 4``, the square root) numpy makes the same correctly rounded operation on the
    same values, in the same order.  A zero intersection gives IoU 0 or NaN (zero union): no hit, as the Python test
    ``iw > 0 and ih > 0`` gives.
    """
    import numpy as np

    p = np.array(preds, dtype=np.float64)
    x1, y1, x2, y2, area, px, py = (p[:, k : k + 1] for k in range(7))
    gx1, gy1, gx2, gy2, garea, qx, qy = truth_columns
    inter = np.maximum(np.minimum(x2, gx2) - np.maximum(x1, gx1) + 1, 0) * np.maximum(
        np.minimum(y2, gy2) - np.maximum(y1, gy1) + 1, 0
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        matrix = (inter / (area + garea - inter) > IOU_THRESHOLD).astype(np.int64)
    matrix += (np.abs(x1 - gx1) + np.abs(y1 - gy1) + np.abs(x2 - gx2) + np.abs(y2 - gy2)) / 4 < L1_THRESHOLD
    dx, dy = px - qx, py - qy
    in_box = (x1 <= px) & (px <= x2) & (y1 <= py) & (py <= y2)
    matrix += (np.sqrt(dx * dx + dy * dy) < POINT_THRESHOLD) & in_box
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


def _int_truth(rows: list[Row], cache: dict[str, Any], small: bool) -> Any:
    """:func:`int_columns` of all-int truth rows (else None), cached in the truth's ``cache``."""
    key = "int32" if small else "int64"
    if key not in cache:
        import numpy as np

        ok = all(type(v) is int for row in rows for v in row)
        if ok and small:
            ok = all(-SMALL_INT <= v <= SMALL_INT for row in rows for v in (*row[:4], *row[5:]))
        cache[key] = int_columns(rows, np.int32 if small else np.int64) if ok else None
    return cache[key]


def dense_accuracy(data: list[Any], content: str, rows: list[Row], cache: dict[str, Any]) -> float | None:
    """The accuracy of a decoded answer of plain ints against truth ``rows`` of ints, on numpy; else None.

    ``content``: the answer's text; ``cache``: the truth's.  Equal to ``accuracy._accuracy_of`` for such answers.

    WHY only the first 120 objects' values are read: the reference reads every object's ``bbox_2d`` and
    ``point_2d`` (a missing key fails) but puts only the first 120 in arrays; past them, a box or point only needs
    to be a list of 4 or 2 for the format credit.  Booleans (``true``/``false`` anywhere in the text)
    are left to the general path: numpy reads them as 0/1 in an int array, but an array of booleans alone fails.
    """
    if "e" in content and ("true" in content or "false" in content):  # WHY "e": one fast scan, usually enough
        return None
    try:
        boxes = list(map(_BOX, data))
        points = list(map(_POINT, data))
        if set(map(len, boxes)) != _FOUR or set(map(len, points)) != _TWO:
            return None
    except (TypeError, KeyError):  # an item that is not a dict or lacks a key, a box or point without a length
        return None
    n = len(boxes)
    k = min(n, MAX_OBJECTS)
    if n > k:
        if set(map(type, boxes[k:])) != _LIST or set(map(type, points[k:])) != _LIST:
            return None
        boxes, points = boxes[:k], points[:k]
    import numpy as np

    try:  # WHY: members that are all ints make int64 (nested lists, nulls, strings, huge ints or floats do not)
        values = np.array([*chain.from_iterable(boxes), *chain.from_iterable(points)])
    except (ValueError, TypeError, OverflowError):
        return None
    if values.dtype != np.int64 or values.shape != (6 * k,):
        return None
    low, high = int(values.min()), int(values.max())
    if low < -LIMIT or high > LIMIT:
        return None
    small = low >= -SMALL_INT and high <= SMALL_INT
    truth_columns = _int_truth(rows, cache, small)
    if truth_columns is None:
        return None
    columns = np.empty((6, k), dtype=np.int32 if small else np.int64)  # WHY C order: fast broadcasting rows
    columns[:4] = values[: 4 * k].reshape(k, 4).T
    columns[4:] = values[4 * k :].reshape(k, 2).T
    matrix = int_rewards(columns, truth_columns)
    return matrix_total(matrix) / max(k, matrix.shape[0])


def dense_values_accuracy(values: Any, rows: list[Row], cache: dict[str, Any]) -> float | None:
    """:func:`dense_accuracy` of an answer read by ``canonical.canonical_values``; None for truth not all ints.

    ``values``: the (n, 6) int64 array of ``x1, y1, x2, y2, px, py``, every value below 2**24 in size.
    """
    import numpy as np

    k = min(len(values), MAX_OBJECTS)
    values = values[:k]
    small = int(values.min()) >= -SMALL_INT and int(values.max()) <= SMALL_INT
    truth_columns = _int_truth(rows, cache, small)
    if truth_columns is None:
        return None
    columns = np.empty((6, k), dtype=np.int32 if small else np.int64)  # WHY C order: fast broadcasting rows
    columns[:] = values.T
    matrix = int_rewards(columns, truth_columns)
    return matrix_total(matrix) / max(k, matrix.shape[0])
