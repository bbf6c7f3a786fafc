"""End collisions: resolve clusters left to right, each by one scan of cumulative means.

In the cumulative sum diagram (k, y_0 + ... + y_{k-1}) the non-decreasing fit is the slope of the
greatest convex minorant. From the first unresolved index a, that minorant's next vertex is the
b > a minimising the slope, i.e. the mean of y over [a, b): that whole block is the final cluster
(taking the largest b among equal means keeps clusters maximal). Jump to b and repeat.

One prefix scan per cluster: O(d) depth per cluster, O(d^2) work when every element is its own
cluster (the ``worst_end_collisions`` family).
"""
from __future__ import annotations

import numpy as np

from ...core import depth as dp
from ...core.numerics import block_means


def partition(xs: np.ndarray, lam: float):
    d = xs.shape[0]
    starts = []
    a = depth = 0
    while a < d:
        depth += dp.end_cluster(d - a)
        b = np.arange(a + 1, d + 1)
        means = block_means(np.cumsum(xs[a:]), a, b, d, lam)  # sums start at a: local rounding
        last_min = means.shape[0] - 1 - int(np.argmin(means[::-1]))
        starts.append(a)
        a += last_min + 1
    return np.asarray(starts, dtype=np.int64), len(starts), {"depth": depth}
