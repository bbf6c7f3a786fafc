"""Search collisions: bottom-up merging of resolved halves (see the NumPy reference's docstring).

Same partition, rounds and clusters as wsrbench/backends/numpy/search_collisions.py. Level by
level (halves of 1, 2, 4, ... elements), each pair L = [lo, mid), R = [mid, hi) of resolved
segments has at most one cluster crossing mid, [a*, b*): a* is the largest candidate (a cluster
start of L, or mid) with

    in(a) < T(a) = min_{mid < b <= hi} mean(y[a:b]),   in(a) = mean of the L-cluster ending at a,

found by binary search, and b* is the largest argmin of T(a*). Sums over [a, b) come from prefix
sums local to the pair (rounding grows with the pair's size, not the position), means add the
closed-form shift sum. rounds: per level, the lockstep binary-search steps (the most any pair
needs) plus one for the final argmin, as in the reference.

Parallelism: the pairs of a level are independent, so a single long row resolves them with
``prange`` (``partition_parallel``, for d >= PARALLEL_MIN_D). Measured on a 2-core machine
(shared with other jobs, so the second core was often busy; /tmp timings, serial/parallel):
0.79x at d = 4096 and 0.97x at 16384 (per-level thread launches, 2 log2 d of them, cost more than
the work), 1.36x at 1e5, but only 0.97x at 1e6, where the top levels hold one or two pairs whose
binary searches (O(d log d) each) stay serial. Rows of a 2-D input run in parallel over rows with
the serial ``partition`` instead (no nested parallel regions, which the workqueue threading layer
does not support).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import _depth
from ._core import finish_blocks, sorted_centred_row
from ._rows import renamed, rows_driver
from .numerics import block_mean, shift_unit

PARALLEL_MIN_D = 1 << 15


@njit(cache=True, inline="always")
def _mean(loc, base, lo, a, b, d, lam):
    # mean of y over [a, b): the pair's running sums from mid (stored from base)
    xsum = loc[base + b - lo] - loc[base + a - lo]
    return block_mean(xsum, a, b, d, shift_unit(lam, d))


@njit(cache=True, inline="always")
def _min_mean(loc, base, lo, a, mid, hi, d, lam):
    # T(a) and its largest argmin over b in (mid, hi]
    best = np.inf
    best_b = mid + 1
    for b in range(mid + 1, hi + 1):
        m = _mean(loc, base, lo, a, b, d, lam)
        if m <= best:
            best = m
            best_b = b
    return best, best_b


@njit(cache=True, inline="always")
def _pack_starts(is_start, lo, hi, out, at):
    """Write the k in [lo, hi) with is_start[k] to out[at:], in order; return how many."""
    n = 0
    for k in range(lo, hi):
        if is_start[k]:
            out[at + n] = k
            n += 1
    return n


@njit(cache=True)
def _resolve_pair(xs, lam, d, half, p, is_start, cand, loc, steps):
    lo = p * 2 * half
    mid = lo + half
    hi = min(lo + 2 * half, d)
    base = lo + p  # pair p owns loc[lo + p : hi + p + 1]
    # signed running sums anchored at mid, as the reference: a sum over [a, b) with
    # a <= mid <= b adds only the data inside it (an outlier at lo stays out)
    s = 0.0
    loc[base + half] = 0.0
    for t in range(half, hi - lo):
        s += xs[lo + t]
        loc[base + t + 1] = s
    s = 0.0
    for t in range(half - 1, -1, -1):
        s += xs[lo + t]
        loc[base + t] = -s
    # candidates: cluster starts of L, then mid; stored in cand[lo : lo + n_left + 1]
    n_left = _pack_starts(is_start, lo, mid, cand, lo)
    cand[lo + n_left] = mid
    i_lo = 0
    i_hi = n_left
    nsteps = 0
    while i_lo < i_hi:
        i_mid = (i_lo + i_hi + 1) // 2
        a = cand[lo + i_mid]
        into = _mean(loc, base, lo, cand[lo + i_mid - 1], a, d, lam)
        t_a, _ = _min_mean(loc, base, lo, a, mid, hi, d, lam)
        if into < t_a:
            i_lo = i_mid
        else:
            i_hi = i_mid - 1
        nsteps += 1
    a_star = cand[lo + i_lo]
    _, b_star = _min_mean(loc, base, lo, a_star, mid, hi, d, lam)
    for k in range(a_star + 1, b_star):
        is_start[k] = False
    steps[p] = nsteps


def partition(xs, lam, starts, is_start, cand, loc, steps):
    """Cluster starts into starts[:nblk]; returns (nblk, rounds, depth). ``partition_parallel``
    resolves the pairs of each level in parallel (one long row): the same code compiled with
    parallel=True, where the prange is one."""
    d = xs.shape[0]
    is_start[:d] = True
    rounds = 0
    depth = 0
    half = 1
    while half < d:
        npairs = (d - half + 2 * half - 1) // (2 * half)  # pairs that have a right half
        for p in prange(npairs):  # a range in the serial compilation
            _resolve_pair(xs, lam, d, half, p, is_start, cand, loc, steps)
        level_steps = steps[:npairs].max()
        rounds += level_steps + 1
        depth += _depth.search_level(half, npairs, level_steps)
        half *= 2
    return _pack_starts(is_start, 0, d, starts, 0), rounds, depth


partition_parallel = njit(cache=True, parallel=True)(renamed(partition, "partition_parallel"))
partition = njit(cache=True)(partition)


STATS_WIDTH = 1  # the reference's depth


@njit(cache=True)
def row_scratch(d):
    """xs (the centred sorted values), is_start, cand, loc, steps."""
    return (np.empty(d, dtype=np.float64), np.empty(d, dtype=np.bool_),
            np.empty(d, dtype=np.int64), np.empty(2 * d + 2, dtype=np.float64),
            np.zeros(d // 2 + 1, dtype=np.int64))


@njit(cache=True)
def prox_row(x, w, lam, l1, rho, rec, spare, hist, scratch, stats, lab):
    """Prox of one row x into w (the interface: _rows.py); stats[0]: the depth."""
    d = x.shape[0]
    if d == 0:
        return 0, 0
    xs, is_start, cand, loc, steps = scratch
    center = sorted_centred_row(x, rec, spare, xs, hist)
    nblk, rounds, depth = partition(xs, lam, spare[d: 2 * d], is_start, cand, loc, steps)
    stats[0] = depth
    nblk = finish_blocks(x, d, lam, l1, rho, center, rec, spare, xs, nblk, w, lab)
    return nblk, rounds


prox_rows = rows_driver(__name__, prox_row, row_scratch)


def long_partition(xs, lam, starts, scratch, stats):
    """``partition_parallel`` in the interface of ``_core.prox_long_row``."""
    nblk, rounds, stats[0] = partition_parallel(xs, lam, starts, *scratch[1:])
    return nblk, rounds
