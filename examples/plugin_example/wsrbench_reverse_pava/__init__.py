"""Pool-adjacent-violators scanning from the right: an example wsrbench plugin.

The non-decreasing fit of y is also the non-increasing fit of y read backwards, so PAVA can push
elements from the right end: a new block (on the left of the stack top) is pooled with its right
neighbour while its mean is >= the neighbour's. Same O(d) work as ``pava``, different order of
pooling; the answer is the same unique fit.

Cluster means use the closed-form shift sum over [a, b), lam (b-a)(d-a-b)/(d-1), and per-block sums
of the sorted, centred x (docs/design.md#the-algorithms), as the built-in partitioners do.
"""
from __future__ import annotations

import numpy as np

from wsrbench.core.plugins import Plugin
from wsrbench.core.registry import Algorithm


def partition(xs: np.ndarray, lam: float):
    """(starts, rounds, stats) of the non-decreasing fit of y_k = xs_k + lam (d-1-2k)/(d-1)."""
    d = xs.shape[0]
    c = lam / (d - 1) if d > 1 else 0.0

    def mean(xsum, a, b):
        return (xsum + c * ((b - a) * (d - a - b))) / (b - a)

    ends, sums = [], []  # stack of blocks from the right: block i covers [start_i, ends[i])
    starts = []
    merges = 0
    for k in range(d - 1, -1, -1):
        starts.append(k)
        ends.append(k + 1)
        sums.append(float(xs[k]))
        while (len(starts) > 1
               and mean(sums[-1], starts[-1], ends[-1]) >= mean(sums[-2], starts[-2], ends[-2])):
            s = sums.pop()
            a = starts.pop()
            ends.pop()
            sums[-1] += s
            starts[-1] = a
            merges += 1
    return np.asarray(starts[::-1], dtype=np.int64), d + merges, {"merges": merges}


ALGORITHM = Algorithm(
    "reverse_pava", "pool-adjacent-violators scanning right to left (example plugin)",
    work="O(d log d)", depth="sequential", worst_case=None)


def plugin() -> Plugin:
    """The entry point: wsrbench calls this once and registers what it returns."""
    return Plugin(ALGORITHM, backend="numpy", partition=partition)
