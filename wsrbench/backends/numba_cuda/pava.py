"""Batched pool-adjacent-violators on the GPU: one thread per row, for many short rows.

Each thread runs the reference's stack algorithm (``wsrbench.backends.numpy.pava``, same float64
formulas) on its own row, with its stack in global scratch memory (starts and x-sums, d entries
per row). Sequential within a row, O(d) per thread: the point is throughput on batches such as
4096 x 512, not long single rows. No host synchronisation. The sorted keys are read as centred
float64 where they are pushed (``finish.centred``, docs/design.md#the-pipelines-own-floor).
"""
from __future__ import annotations

from numba import cuda

from .finish import centred, fill2
from .launch import grid
from .numerics import block_mean, shift_unit


@cuda.jit(cache=True)
def pava_rows(keys, center, lam, st_start, st_sum, is_start, rounds, merges, max_stack, longest):
    r = cuda.grid(1)
    n, d = keys.shape
    if r >= n:
        return
    c = shift_unit(lam, d)
    top = 0  # stack size; block i covers [st_start[i], st_start[i + 1]) (top: up to k + 1)
    n_merges = 0
    deepest = 0
    longest_chain = 0
    for k in range(d):
        st_start[r, top] = k
        st_sum[r, top] = centred(keys, center, r, k)
        top += 1
        end = k + 1
        chain = 0
        while top > 1:
            a = st_start[r, top - 2]
            b = st_start[r, top - 1]
            m_left = block_mean(st_sum[r, top - 2], a, b, d, c)
            m_top = block_mean(st_sum[r, top - 1], b, end, d, c)
            if m_left >= m_top:
                st_sum[r, top - 2] += st_sum[r, top - 1]
                top -= 1
                chain += 1
            else:
                break
        n_merges += chain
        longest_chain = max(longest_chain, chain)
        deepest = max(deepest, top)
    for i in range(top):
        is_start[r, st_start[r, i]] = 1
    rounds[r] = d + n_merges
    merges[r] = n_merges
    max_stack[r] = deepest
    longest[r] = longest_chain


def partition(keys, center, lam: float, cost):
    """(is_start int8 (n, d), rounds (n,), host syncs, stats arrays) for sorted rows ``keys``
    centred at ``center`` (``finish.row_centers``); no host sync. ``cost`` counts the launches
    (``cost.Cost``)."""
    n, d = keys.shape
    is_start = cost.empty((n, d), "int8")
    cost(fill2, grid(n * d))(is_start, 0)
    st_start = cost.empty((n, d), "int64")
    st_sum = cost.empty((n, d), "float64")
    rounds, merges, max_stack, longest = (cost.empty(n, "int64") for _ in range(4))
    # one thread walks a row: 2d - 1 dependent steps at most (d pushes, <= d - 1 merges)
    cost(pava_rows, grid(n), full=True, serial=2 * d - 1)(
        keys, center, lam, st_start, st_sum, is_start, rounds, merges, max_stack, longest)
    return is_start, rounds, 0, {"merges": merges, "max_stack": max_stack,
                                 "longest_backmerge": longest}
