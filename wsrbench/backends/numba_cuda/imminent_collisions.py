"""Imminent collisions as CUDA kernels (numba-cuda), all rows of a batch in one launch per step.

Same algorithm as ``wsrbench.backends.numpy.imminent_collisions``: each round every maximal run
of neighbouring blocks with value_i >= value_{i+1} merges, until the values strictly increase.

Device state, dense (rows, d), valid at block starts only: ``is_start``, ``bsum`` (float64 sum of
the block's x, from the original data), ``bend`` (one past its last element) and ``bprev``
(start of the previous block). A round is two kernels, one thread per element:

* ``mark_keep``: a block start s survives unless the previous block's mean >= its own mean; each
  violation bumps a device counter and records the round in the row's ``rounds`` (atomic max:
  a row that merges in round t merged in every round before, so its count is the last such t).
* ``merge_runs``: each surviving start walks its run of non-surviving successors, adding their
  sums in order (the order of the reference's ``np.add.reduceat``) and relinking the list.

Host synchronisation: one per round, the read of the violation counter between the two kernels
(the stopping test); a call makes max-over-rows(rounds) + 1 of them. Depth per round is
O(longest merging run): 2 on the cascade that makes this algorithm take d - 1 rounds, but up to a
whole row when a large lam collapses it in round one (a pointer-jumping merge would make that
O(log d); not done, and the benchmark shows the cost).
"""
from __future__ import annotations

from numba import cuda

from .finish import full
from .launch import grid
from .numerics import block_mean, shift_unit


@cuda.jit(cache=True)
def init_blocks(xs, is_start, bsum, bend, bprev):
    t = cuda.grid(1)
    n, d = xs.shape
    if t >= n * d:
        return
    r = t // d
    k = t - r * d
    is_start[r, k] = 1
    bsum[r, k] = xs[r, k]
    bend[r, k] = k + 1
    bprev[r, k] = k - 1


@cuda.jit(cache=True)
def mark_keep(is_start, bsum, bend, bprev, keep, counter, rounds, round_no, lam):
    t = cuda.grid(1)
    n, d = is_start.shape
    if t >= n * d:
        return
    r = t // d
    s = t - r * d
    if not is_start[r, s]:
        return
    keep[r, s] = 1
    if s == 0:
        return
    p = bprev[r, s]
    # The same float64 operations as the reference's block_means, so decisions agree exactly.
    c = shift_unit(lam, d)
    if block_mean(bsum[r, p], p, s, d, c) >= block_mean(bsum[r, s], s, bend[r, s], d, c):
        keep[r, s] = 0
        cuda.atomic.add(counter, 0, 1)
        cuda.atomic.max(rounds, r, round_no)


@cuda.jit(cache=True)
def merge_runs(is_start, bsum, bend, bprev, keep):
    t = cuda.grid(1)
    n, d = is_start.shape
    if t >= n * d:
        return
    r = t // d
    h = t - r * d
    if not is_start[r, h] or not keep[r, h]:
        return
    e = bend[r, h]
    if e >= d or keep[r, e]:
        return  # nothing merges into h this round
    acc = bsum[r, h]
    while e < d and not keep[r, e]:
        acc += bsum[r, e]
        is_start[r, e] = 0
        e = bend[r, e]
    bsum[r, h] = acc
    bend[r, h] = e
    if e < d:
        bprev[r, e] = h


def partition(xs, lam: float):
    """(is_start int8 (n, d), rounds int64 (n,), host syncs, {stat: device array (n,)}) for sorted,
    centred float64 rows (the partitioner contract of this backend, see __init__)."""
    n, d = xs.shape
    g = grid(n * d)
    is_start = cuda.device_array((n, d), "int8")
    bsum = cuda.device_array((n, d), "float64")
    bend = cuda.device_array((n, d), "int64")
    bprev = cuda.device_array((n, d), "int64")
    keep = cuda.device_array((n, d), "int8")
    init_blocks[g](xs, is_start, bsum, bend, bprev)
    rounds = full(n, 0, "int64")
    counter = full(1, 0, "int64")
    merged, round_no, syncs = 0, 0, 0
    while True:
        round_no += 1
        mark_keep[g](is_start, bsum, bend, bprev, keep, counter, rounds, round_no, lam)
        total = int(counter.copy_to_host()[0])  # the stopping test: one host sync per round
        syncs += 1
        if total == merged:
            break
        merged = total
        merge_runs[g](is_start, bsum, bend, bprev, keep)
    return is_start, rounds, syncs, {}
