"""Imminent collisions: each round merges every maximal run of blocks with non-increasing means.

Same partition, rounds and clusters as wsrbench/backends/numpy/imminent_collisions.py. One round
is a single in-place pass over the blocks: the means of a round are those of its starting blocks,
and a block's mean is computed from its (unmodified) sum before the run containing it is written
back at a position <= its own. Block sums are float64 sums of the original centred x; means add
the closed-form shift sum lam (b-a)(d-a-b)/(d-1), as the reference does.

No prange inside a row: a round is O(blocks) of cheap sequential work whose parallel form needs a
flag pass, a prefix scan and a compaction (3 passes instead of 1), and on 2 cores that costs more
than it saves; the worst case (Theta(d) rounds) is a depth problem that threads do not fix.
Rows of a 2-D input run in parallel.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from . import _depth
from ._core import centred_scratch as row_scratch
from ._core import finish_scatter, sorted_centred_row
from ._rows import rows_driver
from .numerics import block_mean, shift_unit


@njit(cache=True)
def partition(xs, lam, sums, starts):
    """Blocks (starts[j], sums[j]) for j < nblk of the isotonic fit of y = xs + shifts.

    Returns (nblk, rounds, depth).
    """
    d = xs.shape[0]
    for k in range(d):
        sums[k] = xs[k]
        starts[k] = k
    nblk = d
    rounds = 0
    depth = 0
    c = shift_unit(lam, d)
    while nblk > 1:
        nblk_round = nblk
        a = np.int64(starts[0])
        b = np.int64(starts[1])
        m_prev = block_mean(sums[0], a, b, d, c)
        run_start = starts[0]
        run_sum = sums[0]
        j = 0
        merged = False
        for i in range(1, nblk):
            a = np.int64(starts[i])
            b = np.int64(starts[i + 1]) if i + 1 < nblk else d
            s = sums[i]
            m = block_mean(s, a, b, d, c)
            if m_prev >= m:  # about to collide: merge (momentum, i.e. the x sum, is conserved)
                run_sum += s
                merged = True
            else:
                starts[j] = run_start
                sums[j] = run_sum
                j += 1
                run_start = starts[i]
                run_sum = s
            m_prev = m
        starts[j] = run_start
        sums[j] = run_sum
        nblk = j + 1
        depth += _depth.imminent_round(nblk_round, merged)
        if not merged:
            break
        rounds += 1
    return nblk, rounds, depth


STATS_WIDTH = 1  # the reference's depth


@njit(cache=True)
def prox_row(x, w, lam, l1, rho, rec, spare, hist, scratch, stats, lab):
    """Prox of one row x into w (docs of the interface: _rows.py); stats[0]: the depth."""
    d = x.shape[0]
    if d == 0:
        return 0, 0
    xs = scratch[0]
    center = sorted_centred_row(x, rec, spare, xs, hist)
    sums = spare[:d].view(np.float64)
    starts = spare[d: 2 * d]
    nblk, rounds, depth = partition(xs, lam, sums, starts)
    nblk = finish_scatter(x, rec, sums, starts, nblk, d, lam, l1, rho, center, w, lab)
    stats[0] = depth
    return nblk, rounds


prox_rows = rows_driver(__name__, prox_row, row_scratch)
