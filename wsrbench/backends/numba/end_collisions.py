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
from numba import njit

from . import _depth
from ._core import centred_scratch as row_scratch
from ._core import finish_blocks, sorted_centred_row
from ._rows import rows_driver
from .numerics import block_mean, shift_unit


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


STATS_WIDTH = 1  # the reference's depth


@njit(cache=True)
def prox_row(x, w, lam, l1, rho, rec, spare, hist, scratch, stats, lab):
    """Prox of one row x into w (docs of the interface: _rows.py); stats[0]: the depth."""
    d = x.shape[0]
    if d == 0:
        return 0, 0
    xs = scratch[0]
    center = sorted_centred_row(x, rec, spare, xs, hist)
    starts = spare[d: 2 * d]
    if d == 1:
        starts[0] = 0
        nblk, rounds, depth = 1, 0, 0
    else:
        nblk, depth = partition(xs, lam, starts)
        rounds = nblk
    nblk = finish_blocks(x, d, lam, l1, rho, center, rec, spare, xs, nblk, w, lab)
    stats[0] = depth
    return nblk, rounds


prox_rows = rows_driver(__name__, prox_row, row_scratch)
