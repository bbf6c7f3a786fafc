"""Hull bridges: the lower convex hull of the cumulative-sum diagram, merged bottom-up by bridges.

With y the shifted sorted vector and P_k = (k, y_0 + ... + y_{k-1}) for k = 0..d, the isotonic fit is
the slope of the greatest convex minorant of the P_k: its blocks are the edges of their lower convex
hull (docs/design.md#hull_bridges). Level by level (halves of size 1, 2, 4, ...), each pair of neighbouring
segments L = [lo, mid) and R = [mid, hi) already has the lower hull of its points; the hull of L+R is
a prefix of L's hull, one bridge (the common lower tangent), and a suffix of R's hull. The bridge is
found by ``wsrbench.core.bridge.bridge``: a simultaneous binary search, at most
floor(log2 a) + floor(log2 b) steps for hulls of a and b vertices. So O(log d) levels of O(log d)
steps: O(log^2 d) depth, O(d log d) work, and no data-dependent number of levels.

A segment [lo, hi) stores its hull's vertices without the last point P_hi (always a vertex, and the
first vertex of the segment to its right); for the whole vector these are exactly the block starts.

Numerics (docs/design.md#hull_bridges-precision): within a pair, coordinates are local to the split,
x = k - mid and
S = the sum of y from mid to k (negated to the left of mid): float64 sums of the original centred
data local to each half (``combine``: one sweep per level, a fixed binary-tree order of additions),
plus the closed-form shift sums. Every turn test is a comparison of slopes (differences over
differences) inside ``bridge_step``.

rounds counts lockstep bridge steps: per level, the largest step bound over its pairs.
"""
from __future__ import annotations

import numpy as np

from ...core import depth as dp
from ...core.bridge import bridge, junction_is_bridge
from ...core.numerics import shift_sum


def local_point(F, G, k, mid, d, lam):
    """(x, S) of point k local to the split mid: x = k - mid and S = sum of y over [mid, k) right
    of mid, minus the sum of y over [k, mid) left of it.

    F and G hold the x sums local to the current segments (see ``combine``): F[k-1] is the sum
    over [mid, k) and G[k] the sum over [k, mid); the shift sums are closed-form.
    """
    if k > mid:
        return float(k - mid), F[k - 1] + float(shift_sum(mid, k, d, lam))
    if k == mid:
        return 0.0, 0.0
    return float(k - mid), -(G[k] + float(shift_sum(k, mid, d, lam)))


def combine(F, G, half):
    """Sums local to segments of 2 half from those local to segments of half.

    F[k]: sum of x from the start of k's segment to k; G[k]: from k to the end of its segment.
    Joining two halves adds the left half's total to F in the right half and the right half's
    total to G in the left half: one sweep per level, and a fixed order of additions (a binary
    tree) that every backend repeats exactly (docs/design.md#hull_bridges-precision).
    """
    d = F.shape[0]
    k = np.arange(d)
    mid = (k // (2 * half)) * (2 * half) + half
    paired = mid < d
    right = paired & (k >= mid)
    left = paired & (k < mid)
    F2, G2 = F.copy(), G.copy()
    F2[right] = F[mid[right] - 1] + F[right]
    G2[left] = G[left] + G[mid[left]]
    return F2, G2


def merge(F, G, lam, lo, mid, hi, hull_l, hull_r):
    """Stored hull of [lo, hi) from those of [lo, mid) and [mid, hi); also the bridge's steps."""
    d = F.shape[0]
    left = np.append(hull_l, mid)  # P_mid goes with the left hull only: the hulls are separated
    right = np.append(hull_r[1:], hi)
    a, b = left.shape[0], right.shape[0]
    # Already convex at the junction (the common case): the bridge is (P_mid, first right vertex).
    l0, l1 = (local_point(F, G, k, mid, d, lam) for k in (left[max(a - 2, 0)], mid))
    r0, r1 = (local_point(F, G, k, mid, d, lam) for k in (right[0], right[min(1, b - 1)]))
    if junction_is_bridge(a > 1, *l0, *l1, *r0, b > 1, *r1):
        i, j, steps = a - 1, 0, 0
    else:
        kl, sl = zip(*(local_point(F, G, k, mid, d, lam) for k in left))
        kr, sr = zip(*(local_point(F, G, k, mid, d, lam) for k in right))
        i, j, steps = bridge(kl, sl, kr, sr)
    # The hull of the union is left[:i+1] + right[j:]; drop its last point P_hi to store it.
    return np.concatenate([left[:i + 1], hull_r[j + 1:]]), steps


def partition(xs: np.ndarray, lam: float):
    d = xs.shape[0]
    hulls = [np.array([k], dtype=np.int64) for k in range(d)]  # segment [k, k+1): vertex P_k
    F, G = xs.astype(np.float64, copy=True), xs.astype(np.float64, copy=True)
    rounds = depth = 0
    half = 1
    while half < d:
        merged, bound = [], 0
        for p in range(0, len(hulls) - 1, 2):
            lo = p * half
            bound = max(bound, dp.bridge_bound(hulls[p].shape[0] + 1, hulls[p + 1].shape[0]))
            hull, _ = merge(F, G, lam, lo, lo + half, min(lo + 2 * half, d), hulls[p], hulls[p + 1])
            merged.append(hull)
        npairs = len(merged)
        if len(hulls) % 2:
            merged.append(hulls[-1])  # the last segment has no partner at this level
        hulls = merged
        F, G = combine(F, G, half)
        rounds += bound
        depth += dp.hull_level(half, npairs, bound)
        half *= 2
    return hulls[0], rounds, {"depth": depth}
