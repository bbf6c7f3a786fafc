"""End collisions: from the first unresolved index a, the prefix of smallest mean is a cluster.

Same partition, rounds (= clusters) and clusters as wsrbench/backends/numpy/end_collisions.py: the
running sum from a is a sequential float64 sum of the centred x (the reference's np.cumsum), the
mean adds the closed-form shift sum, and the largest b among equal minimal means is taken (maximal
clusters). O(d) per cluster, Theta(d^2) on ``worst_end_collisions``.

No prange inside a row: the scan is a running sum whose parallel form (a two-level prefix sum)
changes the rounding order against the reference and, on 2 cores, saves at most half of a scan
that memory bandwidth already bounds. Rows of a 2-D input run in parallel.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import _depth
from ._core import block_sums, centred_values, chunk_bounds, finish_scatter, rec_value
from .numerics import block_mean, shift_unit
from .sort import HIST_SIZE, sort_records


@njit(cache=True)
def partition(xs, lam, starts):
    """Cluster starts in starts[:nblk]; returns nblk (also the number of rounds)."""
    d = xs.shape[0]
    c = shift_unit(lam, d)
    a = 0
    nblk = 0
    depth = 0
    while a < d:
        depth += _depth.end_cluster(d - a)
        s = 0.0
        best = np.inf
        best_b = a + 1
        for b in range(a + 1, d + 1):
            s += xs[b - 1]
            m = block_mean(s, a, b, d, c)
            if m <= best:
                best = m
                best_b = b
        starts[nblk] = a
        nblk += 1
        a = best_b
    return nblk, depth


@njit(cache=True)
def prox_row(x, w, lam, l1, rho, rec, spare, xs, hist, lab):
    d = x.shape[0]
    if d == 0:
        return 0, 0, 0
    sort_records(x, rec, spare, hist)
    center = rec_value(rec, d // 2)
    centred_values(rec, d, center, xs)
    sums = spare[:d].view(np.float64)
    starts = spare[d: 2 * d]
    if d == 1:
        starts[0] = 0
        nblk, rounds, depth = 1, 0, 0
    else:
        nblk, depth = partition(xs, lam, starts)
        rounds = nblk
    block_sums(xs, starts, nblk, d, sums)
    finish_scatter(rec, sums, starts, nblk, d, lam, l1, rho, center, w, lab)
    return nblk, rounds, depth


@njit(cache=True, parallel=True)
def prox_rows(X, W, lam, l1, rho, rounds, clusters, depth, work, L):
    n, d = X.shape
    nchunks = work.shape[0]  # one chunk of rows per thread, each with its own workspace row
    for c in prange(nchunks):
        lo, hi = chunk_bounds(n, nchunks, c)
        rec = work[c][: 2 * d]  # work[c] first: a C-contiguous row (work[c, :n] types as "A")
        spare = work[c][2 * d: 4 * d]
        xs = np.empty(d, dtype=np.float64)
        hist = np.empty(HIST_SIZE, dtype=np.int64)
        for i in range(lo, hi):
            nb, r, dep = prox_row(X[i], W[i], lam, l1, rho, rec, spare, xs, hist, L[i])
            clusters[i] = nb
            rounds[i] = r
            depth[i] = dep
