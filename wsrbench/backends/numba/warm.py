"""Warm start: sort a row adaptively along the order of the previous call (see wsrbench.core.warm_start).

The hint is the previous call's sort records (rec[2k+1] = index of the k-th smallest previous x).
``hinted_sort`` gathers the new values in that order and insertion-sorts them in place: cost
O(d + I) for I inversions left by the hint, against the radix sort's 8 (float64) or 4 (float32)
full passes. Insertion pays only while I/d is small (measured on a 2-core machine: with an exact hint it
costs 0.25x the float64 radix sort and about 0.5x the float32 one; at 2.3 moves per element it is
even with the float64 sort), so the sort runs under a budget of ``moves_per_element`` moves per
element processed so far (plus MOVES_SLACK for a local burst); past it the hint is dropped and the
row is radix-sorted from scratch. Before starting, ``estimate_moves`` samples the disorder at
1024 spots and skips the hint when it is already over budget there, so a hint that is poor only
in the middle of the row does not waste half an insertion sort; a useless hint (a fresh random x)
is caught by either check at a cost of about 1% of the sort.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ...core.contract import RowsResult
from ._core import chunk_bounds, finish_scatter, rec_value
from .pava import pava_stack
from .sort import HIST_SIZE, bits_f64, f64_bits, sort_records

MOVES_SLACK = 4096
GATHER_CHUNK = 2048
SAMPLES = 1024  # positions probed by estimate_moves
WINDOW = 64  # how far back each probe looks


@njit(cache=True)
def estimate_moves(x, rec, nsamp, limit):
    """Estimated insertion moves per element of x in the hint order held in rec's index slots.

    At nsamp evenly spaced positions k, counts the elements among the WINDOW before k (in hint
    order) that are larger than the one at k: the moves insertion would make for it, as far as
    that window sees (an underestimate only when the hint is far off, which then shows anyway).
    Returns as soon as the estimate must exceed ``limit`` (a useless hint is rejected after a
    few dozen probes). Costs at most nsamp * (WINDOW + 1) gathers (the caller keeps that under
    d/8), and stops the budgeted sort from wasting work on a hint that is poor only in the middle
    of the row.
    """
    d = x.shape[0]
    total = 0
    for s in range(nsamp):
        k = WINDOW + ((d - WINDOW) * s) // nsamp
        v = x[np.int64(rec[2 * k + 1])]
        for j in range(k - WINDOW, k):
            if x[np.int64(rec[2 * j + 1])] > v:
                total += 1
        if total > limit * nsamp:
            break
    return total / nsamp


@njit(cache=True)
def hinted_sort(x, rec, moves_per_element):
    """Insertion-sort x along the hint order held in rec's index slots, in place.

    Works in chunks of GATHER_CHUNK elements: first gather the chunk's values (independent loads,
    so the CPU overlaps their cache misses; inside the insertion loop every mispredicted exit
    would serialise them), then insert them one by one. Returns the number of moves (the
    inversions of x in hint order), or -1 when the budget was exceeded (rec is then garbage and
    the caller sorts from scratch; a useless hint is caught within the first chunk or two).
    """
    d = x.shape[0]
    moves = 0
    slack = min(MOVES_SLACK, d // 16 + 64)  # small rows: a burst is a larger share of the work
    for c0 in range(0, d, GATHER_CHUNK):
        c1 = min(d, c0 + GATHER_CHUNK)
        for k in range(c0, c1):
            rec[2 * k] = f64_bits(np.float64(x[np.int64(rec[2 * k + 1])]))
        for k in range(c0, c1):
            vb = rec[2 * k]
            v = bits_f64(vb)
            i = rec[2 * k + 1]
            j = k
            while j > 0 and bits_f64(rec[2 * j - 2]) > v:
                j -= 1
            for t in range(k, j, -1):  # shift the larger ones up by one record
                rec[2 * t] = rec[2 * t - 2]
                rec[2 * t + 1] = rec[2 * t - 1]
            rec[2 * j] = vb
            rec[2 * j + 1] = i
            moves += k - j
            # checked per element: a random order runs ~k/2 moves per element and is caught
            # after about sqrt(4 slack) elements
            if moves > moves_per_element * (k + 1) + slack:
                return -1
    return moves


@njit(cache=True)
def warm_row(x, w, lam, l1, rho, rec, spare, hist, have_hint, moves_per_element, lab):
    """Prox of one row using (and then updating) the hint in rec.

    Returns (nblk, merges, max_stack, longest_backmerge, moves): moves = -1 when the row was
    sorted from scratch (no hint, or the hint was over budget).
    """
    d = x.shape[0]
    if d == 0:
        return 0, 0, 0, 0, -1
    moves = -1
    if have_hint:
        nsamp = min(SAMPLES, d // (8 * WINDOW))
        if nsamp >= 8 and estimate_moves(x, rec, nsamp, moves_per_element) > moves_per_element:
            have_hint = False  # the sampled disorder is over budget: do not even start
    if have_hint:
        moves = hinted_sort(x, rec, moves_per_element)
    if moves < 0:
        sort_records(x, rec, spare, hist)
    center = rec_value(rec, d // 2)
    sums = spare[:d].view(np.float64)
    starts = spare[d: 2 * d]
    # pava_stack only reads rec: its index slots stay the next hint
    nblk, merges, deepest, longest = pava_stack(rec, d, lam, center, sums, starts)
    nblk = finish_scatter(x, rec, sums, starts, nblk, d, lam, l1, rho, center, w, lab)
    return nblk, merges, deepest, longest, moves


@njit(cache=True, parallel=True)
def warm_rows(X, W, lam, l1, rho, recs, work, have_hint, moves_per_element,
              rounds, clusters, merges, max_stack, longest, moves, L):
    """Rows in parallel (chunks of rows per thread); recs[i] is row i's hint, updated in place."""
    n, d = X.shape
    nchunks = work.shape[0]
    for c in prange(nchunks):
        lo, hi = chunk_bounds(n, nchunks, c)
        spare = work[c][: 2 * d]
        hist = np.empty(HIST_SIZE, dtype=np.int64)
        for i in range(lo, hi):
            nb, mg, dp, lg, mv = warm_row(X[i], W[i], lam, l1, rho, recs[i], spare, hist,
                                          have_hint, moves_per_element, L[i])
            clusters[i] = nb
            rounds[i] = d + mg if d > 1 else 0
            merges[i] = mg
            max_stack[i] = dp
            longest[i] = lg
            moves[i] = mv


def run(X, lam, l1, rho, recs, have_hint, moves_per_element, scratch, L):
    """Python driver for wsrbench.core.warm_start.ProxState (X prepared 2-D, recs (n, 2d) uint64).

    ``scratch``: the caller's uint64 scratch from the previous call (2 words per element and
    thread), or None; it is reused when large enough. L: int64 (n, d) labels out, or (n, 0) when
    not asked. Returns (RowsResult, moves, scratch).
    """
    n, d = X.shape
    W = np.empty_like(X)
    if n == 1 and d:  # serial, and lean: at small d the Python overhead is a visible share
        work = scratch
        if work is None or work.shape[1] < 2 * d:
            work = np.empty((1, 2 * d), dtype=np.uint64)
        nb, mg, dp, lg, mv = warm_row(X[0], W[0], lam, l1, rho, recs[0], work[0, : 2 * d],
                                      np.empty(HIST_SIZE, dtype=np.int64), have_hint,
                                      moves_per_element, L[0])
        st = ({"merges": mg, "max_stack": dp, "longest_backmerge": lg, "hint_moves": mv}
              if d > 1 else {"hint_moves": mv})
        return (RowsResult(W, np.array([d + mg if d > 1 else 0]), np.array([nb]), [st]),
                np.array([mv]), work)
    import numba

    rounds = np.zeros(n, dtype=np.int64)
    clusters = np.zeros(n, dtype=np.int64)
    merges = np.zeros(n, dtype=np.int64)
    max_stack = np.zeros(n, dtype=np.int64)
    longest = np.zeros(n, dtype=np.int64)
    moves = np.full(n, -1, dtype=np.int64)
    work = scratch
    if n and d:
        nchunks = min(n, numba.get_num_threads())
        if work is None or work.shape[0] < nchunks or work.shape[1] < 2 * d:
            work = np.empty((nchunks, 2 * d), dtype=np.uint64)
        warm_rows(X, W, lam, l1, rho, recs, work[:nchunks], have_hint, moves_per_element,
                  rounds, clusters, merges, max_stack, longest, moves, L)
    stats = [{"merges": int(m), "max_stack": int(s), "longest_backmerge": int(g),
              "hint_moves": int(v)} if d > 1 else {"hint_moves": int(v)}
             for m, s, g, v in zip(merges.tolist(), max_stack.tolist(), longest.tolist(),
                                   moves.tolist())]
    return RowsResult(W, rounds, clusters, stats), moves, work
