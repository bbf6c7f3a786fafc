"""Search collisions: bottom-up merging of resolved halves, every pair of a level in lockstep.

Level by level (halves of size 1, 2, 4, ...), each pair of neighbouring segments L = [lo, mid) and
R = [mid, hi) is already resolved (its clusters are the isotonic fit of that segment alone). The fit
of L+R keeps every cluster of L left of some cluster start a, every cluster of R right of some
cluster end b, and merges [a, b) into one cluster: at most one cluster crosses the midpoint.

In the cumulative sum diagram, [a, b) is the bridge between the convex minorants of L and of R.
For a candidate left end a (a cluster start of L, or mid itself), let

    T(a) = min_{mid < b <= hi} mean(y[a:b])          (an argmin of cumulative means over R)
    in(a) = mean of the L-cluster that ends at a      (-inf for the first start of L)

P(a): in(a) < T(a) holds for every candidate up to the true left end and fails after it (the minorant
is convex), so the left end is found by binary search over L's cluster starts, all pairs of a level
searching at once. The right end is the largest argmin b of T(a*). If a* = mid the pair needs no
merge (b is then the end of R's first cluster, already a cluster boundary).

rounds counts lockstep steps: per level, the binary-search steps plus the final argmin. That is
O(log^2 d) steps, each a data-parallel O(d) sweep whose own depth is O(log d) (the argmin reduction):
O(log^3 d) depth, counted in stats["depth"] by ``wsrbench.core.depth.search_level``
(docs/design.md#parallel-depth).
"""
from __future__ import annotations

import numpy as np

from ...core import depth as dp
from ...core.numerics import shift_sum


def partition(xs: np.ndarray, lam: float):
    d = xs.shape[0]
    is_start = np.ones(d, dtype=bool)
    rounds = depth = 0
    half = 1
    while half < d:
        lo = np.arange(0, d - half, 2 * half, dtype=np.int64)  # pairs that have a right half
        mid = lo + half
        hi = np.minimum(lo + 2 * half, d)
        pairs = np.arange(lo.shape[0])
        offs = np.arange(half, dtype=np.int64)

        # Sums of x over [a, b) within a pair are anchored at mid: running sums from mid to the
        # right (over R) and from mid to the left (over L), so a sum over [a, b) with
        # a <= mid <= b adds only the data inside [a, b). A prefix sum from lo would carry an
        # outlier at lo (the row's minimum, 1/eps away from the rest) into every sum of the pair
        # and drown the small values (docs/design.md#search_collisions).
        padded = np.concatenate([xs, np.zeros(2 * half)])
        vals = padded[lo[:, None] + np.arange(2 * half)[None, :]]
        run = np.zeros((lo.shape[0], 2 * half + 1))  # run[:, j]: signed sum from mid to lo + j
        np.cumsum(vals[:, half:], axis=1, out=run[:, half + 1:])
        run[:, :half] = -np.cumsum(vals[:, half - 1::-1], axis=1)[:, ::-1]

        def mean_y(a, b):  # mean of y over [a, b); a is (pairs,) or (pairs, 1), b broadcasts
            rows, base = pairs.reshape(a.shape), lo.reshape(a.shape)
            xsum = run[rows, b - base] - run[rows, a - base]
            return (xsum + shift_sum(a, b, d, lam)) / (b - a)

        # Cluster starts of each left half, packed to the left, then mid as the last candidate.
        left = lo[:, None] + offs[None, :]
        flags = is_start[left]
        n_left = flags.sum(axis=1)
        packed = np.take_along_axis(left, np.argsort(~flags, axis=1, kind="stable"), axis=1)
        cand = np.concatenate([packed, mid[:, None]], axis=1)
        cand[pairs, n_left] = mid

        # Right ends b in (mid, hi]; positions beyond hi are masked out.
        right = mid[:, None] + 1 + offs[None, :]
        valid = right <= hi[:, None]
        right = np.minimum(right, hi[:, None])

        def cumulative_means(a):
            m = mean_y(a[:, None], right)
            m[~valid] = np.inf
            return m

        # Largest candidate index i in [0, n_left] with P true; P(0) holds by definition.
        i_lo = np.zeros_like(n_left)
        i_hi = n_left.copy()
        steps = 0
        while np.any(i_lo < i_hi):
            steps += 1
            i_mid = (i_lo + i_hi + 1) // 2
            active = i_lo < i_hi
            probe = np.where(active, i_mid, 1)  # inactive pairs compute a harmless dummy
            a = cand[pairs, probe]
            into = mean_y(cand[pairs, probe - 1], a)
            ok = into < cumulative_means(a).min(axis=1)
            i_lo = np.where(active & ok, i_mid, i_lo)
            i_hi = np.where(active & ~ok, i_mid - 1, i_hi)
            rounds += 1

        a_star = cand[pairs, i_lo]
        m = cumulative_means(a_star)
        last_argmin = half - 1 - np.argmin(m[:, ::-1], axis=1)
        b_star = right[pairs, last_argmin]
        rounds += 1

        # Everything strictly inside (a*, b*) stops being a cluster start.
        mark = np.zeros(d + 1, dtype=np.int64)
        np.add.at(mark, a_star + 1, 1)
        np.add.at(mark, b_star, -1)
        is_start &= np.cumsum(mark[:d]) == 0
        depth += dp.search_level(half, lo.shape[0], steps)
        half *= 2
    return np.flatnonzero(is_start).astype(np.int64), rounds, {"depth": depth}
