"""Imminent collisions as CUDA kernels (numba-cuda), all rows of a batch in one launch per step.

Same algorithm as ``wsrbench.backends.numpy.imminent_collisions``: each round every maximal run
of neighbouring blocks with value_i >= value_{i+1} merges, until the values strictly increase.

Device state, dense (rows, d), valid at block starts only: ``is_start``, ``bsum`` (float64 sum of
the block's x, from the original data), ``bend`` (one past its last element) and ``bprev``
(start of the previous block). A round is:

* ``mark_keep`` (one thread per element): a block start s survives unless the previous block's
  mean >= its own mean; each violation bumps a device counter and records the round in the
  row's ``rounds`` (atomic max: a row that merges in round t merged in every round before, so
  its count is the last such t). The host reads the counter (the round's one sync): no new
  violation ends the loop, and v, the number of new violations, bounds every merging run.
* the merge of each run of non-surviving blocks into the surviving block on its left, by one of
  two equivalent kernels chosen from v:

  - v <= WALK_MAX: ``merge_runs``, each surviving start walks its run (at most v blocks), adding
    their sums in order and relinking the list: one launch, depth <= v + 1;
  - v > WALK_MAX: pointer jumping (Wyllie's list ranking): ``jump_init`` links every block
    start to its successor when that one merges, then v.bit_length() = ceil(log2(v + 1))
    launches of ``jump_step`` (each start adds its link's partial sum and takes its link's link,
    double buffered so a step reads only the previous step's values), then ``jump_finish``
    writes each surviving block's sum and end. Depth O(log v) <= O(log d) per round, whatever
    the run lengths (a large lam merges a whole row in round one: the walk would take d steps).

  Both add the run's block sums of original data (sums, never averages); the jump adds them in
  a tree order, so its last bits may differ from the reference's left-to-right order
  (|error| <= ceil(log2 v) eps64 sum|x| over the block, docs/design.md 14.2).

Host synchronisation: one per round (max-over-rows(rounds) + 1 per call). The call's counts
(launches, syncs, bytes, the per-round depth) go into its ``Cost`` (docs/design.md 14.4).
"""
from __future__ import annotations

from numba import cuda

from .finish import full
from .launch import grid
from .numerics import block_mean, shift_unit

WALK_MAX = 8  # runs up to this many merging blocks are walked by one thread (one launch)


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


@cuda.jit(cache=True)
def jump_init(is_start, bsum, bend, keep, acc, link, endp):
    """acc = own sum, endp = own end, link = next start if it merges this round, else -1."""
    t = cuda.grid(1)
    n, d = is_start.shape
    if t >= n * d:
        return
    r = t // d
    s = t - r * d
    if not is_start[r, s]:
        return
    e = bend[r, s]
    acc[r, s] = bsum[r, s]
    endp[r, s] = e
    link[r, s] = e if e < d and not keep[r, e] else -1


@cuda.jit(cache=True)
def jump_step(is_start, acc, link, endp, acc2, link2, endp2):
    """One pointer-jumping step: absorb the linked start's partial run (sum, end, link)."""
    t = cuda.grid(1)
    n, d = is_start.shape
    if t >= n * d:
        return
    r = t // d
    s = t - r * d
    if not is_start[r, s]:
        return
    e = link[r, s]
    if e >= 0:
        acc2[r, s] = acc[r, s] + acc[r, e]
        endp2[r, s] = endp[r, e]
        link2[r, s] = link[r, e]
    else:
        acc2[r, s] = acc[r, s]
        endp2[r, s] = endp[r, s]
        link2[r, s] = -1


@cuda.jit(cache=True)
def jump_finish(is_start, keep, acc, endp, bsum, bend, bprev):
    t = cuda.grid(1)
    n, d = is_start.shape
    if t >= n * d:
        return
    r = t // d
    s = t - r * d
    if not is_start[r, s]:
        return
    if not keep[r, s]:
        is_start[r, s] = 0  # merged into the surviving block on its left
        return
    e = endp[r, s]
    if e == bend[r, s]:
        return  # nothing merged into s
    bsum[r, s] = acc[r, s]
    bend[r, s] = e
    if e < d:
        bprev[r, e] = s


def partition(xs, lam: float, cost):
    """(is_start int8 (n, d), rounds int64 (n,), host syncs, {}) for sorted, centred float64 rows
    (the partitioner contract of this backend, see __init__).

    ``cost`` counts launches, syncs and bytes; ``cost.round_depth`` is set to the largest
    critical path of one round (launches plus the walk's serial steps).
    """
    n, d = xs.shape
    g = grid(n * d)
    is_start = cost.empty((n, d), "int8")
    bsum = cost.empty((n, d), "float64")
    bend = cost.empty((n, d), "int64")
    bprev = cost.empty((n, d), "int64")
    keep = cost.empty((n, d), "int8")
    cost(init_blocks, g)(xs, is_start, bsum, bend, bprev)
    rounds = full(n, 0, "int64", cost)
    counter = full(1, 0, "int64", cost)
    merged, round_no, syncs = 0, 0, 0
    scratch = None
    while True:
        round_no += 1
        before = cost.depth
        cost(mark_keep, g)(is_start, bsum, bend, bprev, keep, counter, rounds, round_no, lam)
        total = int(cost.to_host(counter)[0])  # the stopping test: one host sync per round
        syncs += 1
        if total == merged:
            break
        v = total - merged
        merged = total
        if v <= WALK_MAX:
            cost(merge_runs, g, serial=v)(is_start, bsum, bend, bprev, keep)
        else:
            if scratch is None:
                scratch = [cost.empty((n, d), dt)
                           for dt in ("float64", "int64", "int64") * 2]
            acc, link, endp, acc2, link2, endp2 = scratch
            cost(jump_init, g)(is_start, bsum, bend, keep, acc, link, endp)
            for _ in range(v.bit_length()):
                cost(jump_step, g)(is_start, acc, link, endp, acc2, link2, endp2)
                acc, link, endp, acc2, link2, endp2 = acc2, link2, endp2, acc, link, endp
            cost(jump_finish, g)(is_start, keep, acc, endp, bsum, bend, bprev)
        cost.round_depth = max(cost.round_depth, cost.depth - before)
    return is_start, rounds, syncs, {}
