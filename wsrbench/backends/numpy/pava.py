"""Pool-adjacent-violators with a stack: the sequential O(d) fit after the sort.

Push each element as a block; while the block below the top has mean >= the top's mean (a
violator), pool the two. A block carries the sum of its x (pooling adds sums of original data); its
mean of y adds the closed-form shift sum, so no average of averages is ever formed.
"""
from __future__ import annotations

import numpy as np

from ...core.numerics import block_mean_scalar, shift_unit


def partition(xs: np.ndarray, lam: float):
    """Return (starts, rounds, stats) for sorted x.

    rounds counts sequential steps: d pushes plus one per pooling; each is O(1) and depends on
    the previous one, so the depth is the same count (docs/design.md#parallel-depth). stats records the
    deepest stack and the longest chain of poolings caused by a single push (the back-merge
    length).
    """
    d = xs.shape[0]
    c = shift_unit(lam, d)

    def mean(xsum, a, b):  # mean of y over [a, b)
        return block_mean_scalar(xsum, a, b, d, c)

    starts, sums = [], []  # the stack: block i covers [starts[i], starts[i+1]) (top: up to k+1)
    merges = deepest = longest = 0
    for k, xk in enumerate(xs.tolist()):
        starts.append(k)
        sums.append(xk)
        end = k + 1
        chain = 0
        while len(starts) > 1:
            a, b = starts[-2], starts[-1]
            if mean(sums[-2], a, b) >= mean(sums[-1], b, end):
                top = sums.pop()
                sums[-1] += top
                starts.pop()
                chain += 1
            else:
                break
        merges += chain
        longest = max(longest, chain)
        deepest = max(deepest, len(starts))
    stats = {"merges": merges, "max_stack": deepest, "longest_backmerge": longest,
             "depth": d + merges}
    return np.asarray(starts, dtype=np.int64), d + merges, stats
