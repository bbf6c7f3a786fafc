"""Hull bridges: lower hulls of the cumulative sums merged bottom-up by bridges (see the NumPy
reference, wsrbench/backends/numpy/hull_bridges.py, and docs/design.md#hull_bridges).

Same partition, rounds and depth as the reference: the sums local to each half are joined per
level in the reference's order (``combine``), the shift sums are the same expression, and the
bridge search is ``wsrbench.core.bridge.bridge_step`` itself, compiled. A segment [lo, hi) keeps its
hull's vertices (without P_hi) in hull[lo : lo + count]; a merge writes the right suffix over
the left's tail, in place (the destination never passes the source), so a pair touches only its
own [lo, hi).

Per level each pair costs O(its hull vertices) (joining the local sums where they are read) plus
O(log h) bridge steps: O(d log d) work
in all, against O(d) for pava; that, and log2 d passes over the row instead of one, is what the
parallel algorithm pays on a CPU (measured in
docs/design.md#what-the-parallel-algorithm-pays-on-a-cpu). A single long row runs the pairs
of a level with ``prange``; rows of a 2-D input run in parallel over rows instead.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ...core.bridge import bridge_step as _bridge_step_py
from ...core.bridge import junction_is_bridge as _junction_py
from . import _depth
from ._core import finish_blocks, sorted_centred_row
from ._rows import renamed, rows_driver
from .numerics import shift_sum, shift_unit

# One long row: the prange version, even on one thread, where it measured 20-40% faster than the
# serial loop (d = 1e4 ... 1e6, NUMBA_NUM_THREADS=1; the outlined loop body compiles better).
PARALLEL_MIN_D = 1 << 12
MAX_LEVELS = 64

bridge_step = njit(cache=True, inline="always")(_bridge_step_py)
junction_is_bridge = njit(cache=True, inline="always")(_junction_py)


@njit(cache=True, inline="always")
def _left_vertex(hull, lo, mid, cnt_l, t):
    return hull[lo + t] if t < cnt_l else mid


@njit(cache=True, inline="always")
def _right_vertex(hull, mid, hi, cnt_r, t):
    return hull[mid + 1 + t] if t < cnt_r - 1 else hi


@njit(cache=True, inline="always")
def _s_at(F, G, k, mid, d, c):
    """S local to mid at point k (the reference's local_point): half-local x sums + shift sums;
    c = shift_unit(lam, d)."""
    if k > mid:
        return F[k - 1] + shift_sum(mid, k, d, c)
    if k == mid:
        return 0.0
    return -(G[k] + shift_sum(k, mid, d, c))


@njit(cache=True)
def _merge_pair(c, d, lo, mid, hi, hull, count, F, G):
    """Merge the hulls of [lo, mid) and [mid, hi) in place, then join the pair's local sums
    (the reference's combine); returns the new vertex count."""
    cnt_l = count[lo]
    cnt_r = count[mid]
    a = cnt_l + 1
    b = cnt_r
    r0 = _right_vertex(hull, mid, hi, cnt_r, 0)
    split = 0.5 * (0.0 + np.float64(r0 - mid))
    il, ih, jl, jh = 0, a - 1, 0, b - 1
    k0 = _left_vertex(hull, lo, mid, cnt_l, max(a - 2, 0))
    q2 = _right_vertex(hull, mid, hi, cnt_r, min(1, b - 1))
    if junction_is_bridge(a > 1, np.float64(k0 - mid), _s_at(F, G, k0, mid, d, c), 0.0, 0.0,
                          np.float64(r0 - mid), _s_at(F, G, r0, mid, d, c), b > 1,
                          np.float64(q2 - mid), _s_at(F, G, q2, mid, d, c)):
        il, ih, jl, jh = a - 1, a - 1, 0, 0  # already convex at the junction
    while il < ih or jl < jh:
        i = (il + ih) // 2
        j = (jl + jh) // 2
        k0 = _left_vertex(hull, lo, mid, cnt_l, max(i - 1, 0))
        k1 = _left_vertex(hull, lo, mid, cnt_l, i)
        k2 = _left_vertex(hull, lo, mid, cnt_l, min(i + 1, a - 1))
        q0 = _right_vertex(hull, mid, hi, cnt_r, max(j - 1, 0))
        q1 = _right_vertex(hull, mid, hi, cnt_r, j)
        q2 = _right_vertex(hull, mid, hi, cnt_r, min(j + 1, b - 1))
        il, ih, jl, jh = bridge_step(
            il, ih, jl, jh,
            np.float64(k0 - mid), _s_at(F, G, k0, mid, d, c),
            np.float64(k1 - mid), _s_at(F, G, k1, mid, d, c),
            np.float64(k2 - mid), _s_at(F, G, k2, mid, d, c),
            np.float64(q0 - mid), _s_at(F, G, q0, mid, d, c),
            np.float64(q1 - mid), _s_at(F, G, q1, mid, d, c),
            np.float64(q2 - mid), _s_at(F, G, q2, mid, d, c),
            split)
    i, j = il, jl
    if i == cnt_l:
        hull[lo + cnt_l] = mid  # P_mid stays (then j == 0 and the right hull follows whole)
    n = i + 1
    for t in range(j + 1, cnt_r):
        hull[lo + n] = hull[mid + t]
        n += 1
    # Join the half sums (the reference's combine), but only where they will be read again: F at
    # v - 1 for the right vertices v and at hi - 1 (the segment's end), G at the left vertices.
    # A vertex that leaves a hull never comes back, and each kept entry gets the reference's
    # additions in the reference's order, so the values read are bit for bit the reference's.
    left_total = F[mid - 1]
    right_total = G[mid]
    for t in range(n):
        v = hull[lo + t]
        if v > mid:
            F[v - 1] = left_total + F[v - 1]
        elif v < mid:
            G[v] = G[v] + right_total
    F[hi - 1] = left_total + F[hi - 1]
    return n


def partition(xs, lam, starts, hull, count, F, G, bounds):
    """Block starts into starts[:nblk], per-level step bounds into bounds; returns
    (nblk, rounds, levels). ``partition_parallel`` merges the pairs of each level in parallel
    (one long row): the same code compiled with parallel=True, where the prange is one."""
    d = xs.shape[0]
    for k in range(d):
        hull[k] = k
        count[k] = 1
        F[k] = xs[k]
        G[k] = xs[k]
    c = shift_unit(lam, d)
    rounds = 0
    level = 0
    half = 1
    while half < d:
        npairs = (d - half + 2 * half - 1) // (2 * half)  # pairs that have a right half
        b = 0
        for p in range(npairs):
            lo = p * 2 * half
            b = max(b, _depth.bridge_bound(count[lo] + 1, count[lo + half]))
        for p in prange(npairs):  # a range in the serial compilation
            lo = p * 2 * half
            count[lo] = _merge_pair(c, d, lo, lo + half, min(lo + 2 * half, d), hull, count,
                                    F, G)
        bounds[level] = b
        rounds += b
        level += 1
        half *= 2
    for k in range(count[0]):
        starts[k] = hull[k]
    return count[0], rounds, level


partition_parallel = njit(cache=True, parallel=True)(renamed(partition, "partition_parallel"))
partition = njit(cache=True)(partition)


STATS_WIDTH = MAX_LEVELS  # per level: the step bound (zero-initialised; depth_of reads it)


@njit(cache=True)
def row_scratch(d):
    """xs (the centred sorted values), hull, count, F, G."""
    return (np.empty(d, dtype=np.float64), np.empty(d, dtype=np.int64),
            np.empty(d, dtype=np.int64), np.empty(d, dtype=np.float64),
            np.empty(d, dtype=np.float64))


@njit(cache=True)
def prox_row(x, w, lam, l1, rho, rec, spare, hist, scratch, stats, lab):
    """Prox of one row x into w (the interface: _rows.py); stats: the step bound per level."""
    d = x.shape[0]
    if d == 0:
        return 0, 0
    xs, hull, count, F, G = scratch
    center = sorted_centred_row(x, rec, spare, xs, hist)
    nblk, rounds, _ = partition(xs, lam, spare[d: 2 * d], hull, count, F, G, stats)
    nblk = finish_blocks(x, d, lam, l1, rho, center, rec, spare, xs, nblk, w, lab)
    return nblk, rounds


prox_rows = rows_driver(__name__, prox_row, row_scratch)


def long_partition(xs, lam, starts, scratch, stats):
    """``partition_parallel`` in the interface of ``_core.prox_long_row``."""
    nblk, rounds, _ = partition_parallel(xs, lam, starts, *scratch[1:], stats)
    return nblk, rounds


def depth_of(d, bounds_row):
    """The reference's depth (wsrbench.core.depth.hull_level summed over levels) from the step bounds."""
    from ...core.depth import hull_level

    total, half, level = 0, 1, 0
    while half < d:
        npairs = (d - half + 2 * half - 1) // (2 * half)
        total += hull_level(half, npairs, int(bounds_row[level]))
        level += 1
        half *= 2
    return total

