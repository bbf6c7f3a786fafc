"""Imminent collisions as CUDA kernels (numba-cuda), all rows of a batch in one launch per step.

Same algorithm as ``wsrbench.backends.numpy.imminent_collisions``: each round every maximal run
of neighbouring blocks with value_i >= value_{i+1} merges, until the values strictly increase.

Device state, dense (rows, d), valid at block starts only: ``is_start``, ``bsum`` (float64 sum of
the block's x, from the original data), ``bend`` (one past its last element) and ``bprev``
(start of the previous block), the links in int32 below 2^31 columns (``link_type``). The first round
reads the singletons from the sorted keys (``mark_first``; ``finish.centred``) and its merge writes
the state (``merge_first``, the scan's level-0 kernel over them; or ``init_blocks`` then the walk
when few blocks merge); a row already increasing never builds it
(docs/design.md#the-pipelines-own-floor). A round is:

* ``mark_keep`` (one thread per element): a block start s survives unless the previous block's
  mean >= its own mean; each violation bumps a device counter and records the round in the
  row's ``rounds`` (atomic max: a row that merges in round t merged in every round before, so
  its count is the last such t). The host reads the counter (the round's one sync): no new
  violation ends the loop, and v, the number of new violations, bounds every merging run.
  Each violation also counts into its row's slot of the round (viol[round % 2, r]); thread
  (r, 0) of the next round closes row r's previous round, adding depth.imminent_round over the
  row's blocks (``close_round``), and ``close_last_round`` the last one: each row's depth as
  the reference counts it, without a launch per round.
* the merge of each run of non-surviving blocks into the surviving block on its left, by one of
  two equivalent kernels chosen from v:

  - v <= WALK_MAX: ``merge_runs``, each surviving start walks its run (at most v blocks), adding
    their sums in order and relinking the list: one launch, depth <= v + 1;
  - v > WALK_MAX: a segmented scan over the dense state (``segscan.Scan``, then
    ``merge_down``): the segments are the runs, headed by the surviving starts, the values the
    block sums at starts (0 elsewhere). 2 R + 1 launches (R = ceil(log_CHUNK(n d)) - 1) and
    O(n d) bytes, whatever v and the run lengths (a large lam merges a whole row in round one:
    the walk would take d steps; the pointer jumping this replaces moved O(n d log v) bytes).

  Both add the run's block sums of original data (sums, never averages); the scan adds them in
  chunks and carries, so its last bits may differ from the reference's left-to-right order
  (|error| <= (R + 1) CHUNK eps64 sum|x| over the block,
  docs/design.md#imminent_collisions-in-olog-d-depth-per-round).

Host synchronisation: one per round (max-over-rows(rounds) + 1 per call). The call's counts
(launches, syncs, bytes, the per-round depth) go into its ``Cost``
(docs/design.md#cost-counted-without-a-gpu).
"""
from __future__ import annotations

from numba import cuda

from .finish import centred, full
from .launch import grid
from .numerics import block_mean, shift_unit
from .numerics import depth as _dev_depth
from .segscan import Scan, carry_in, combine

WALK_MAX = 8  # runs up to this many merging blocks are walked by one thread (one launch)
imminent_round = _dev_depth.imminent_round  # a kernel can call a function, not a namespace's


def link_type(d: int) -> str:
    """The type of the block links ``bend`` and ``bprev``: int32 while columns fit (they are two
    of the five dense arrays every round reads, docs/design.md#the-pipelines-own-floor)."""
    return "int32" if d < 2 ** 31 else "int64"


@cuda.jit(cache=True)
def init_blocks(keys, center, is_start, bsum, bend, bprev):
    """The block state of the singletons (before a first merge walked by ``merge_runs``)."""
    t = cuda.grid(1)
    n, d = keys.shape
    if t >= n * d:
        return
    r = t // d
    k = t - r * d
    is_start[r, k] = 1
    bsum[r, k] = centred(keys, center, r, k)
    bend[r, k] = k + 1
    bprev[r, k] = k - 1


@cuda.jit(device=True, inline=True)
def violation(counter, viol, rounds, q, r, round_no):
    """Count one violation: the round's total (read by the host), the row's count for its depth,
    the row's last merging round."""
    cuda.atomic.add(counter, 0, 1)
    cuda.atomic.add(viol, (q, r), 1)
    cuda.atomic.max(rounds, r, round_no)


@cuda.jit(cache=True)
def mark_first(keys, center, keep, counter, rounds, lam, viol):
    """The first round on the singletons, read from the keys (no block state yet): rank s survives
    unless mean(y[s-1]) >= mean(y[s]), with the reference's float64 operations."""
    t = cuda.grid(1)
    n, d = keys.shape
    if t >= n * d:
        return
    r = t // d
    s = t - r * d
    keep[r, s] = 1
    if s == 0:
        return
    c = shift_unit(lam, d)
    if (block_mean(centred(keys, center, r, s - 1), s - 1, s, d, c)
            >= block_mean(centred(keys, center, r, s), s, s + 1, d, c)):
        keep[r, s] = 0
        violation(counter, viol, rounds, 1, r, 1)


@cuda.jit(device=True, inline=True)
def close_round(viol, merged, depth, done, r, q, d):
    """Row r's depth for the round whose violations are viol[q, r] (depth.imminent_round over
    its d - merged[r] blocks; the row's last round is its first without a violation, and a row
    down to one block has no more rounds, as in the reference), then clear that slot for the
    round after next."""
    if not done[r]:
        v = viol[q, r]
        if d - merged[r] > 1:
            depth[r] += imminent_round(d - merged[r], v > 0)
        merged[r] += v
        if v == 0:
            done[r] = 1
    viol[q, r] = 0


@cuda.jit(cache=True)
def mark_keep(is_start, bsum, bend, bprev, keep, counter, rounds, round_no, lam, viol, merged,
              depth, done):
    t = cuda.grid(1)
    n, d = is_start.shape
    if t >= n * d:
        return
    r = t // d
    s = t - r * d
    if not is_start[r, s]:
        return
    keep[r, s] = 1
    q = round_no % 2  # the current round's violation counters; the previous round's are complete
    if s == 0:
        if round_no > 1:
            close_round(viol, merged, depth, done, r, 1 - q, d)
        return
    p = int(bprev[r, s])  # int(): the index arithmetic below in int64 (the links may be int32)
    # The same float64 operations as the reference's block_means, so decisions agree exactly.
    c = shift_unit(lam, d)
    if block_mean(bsum[r, p], p, s, d, c) >= block_mean(bsum[r, s], s, int(bend[r, s]), d, c):
        keep[r, s] = 0
        violation(counter, viol, rounds, q, r, round_no)


@cuda.jit(cache=True)
def close_last_round(viol, merged, depth, done, q, d):
    """The depth of every row's last round (the loop's final mark_keep found no violation)."""
    r = cuda.grid(1)
    if r < depth.shape[0]:
        close_round(viol, merged, depth, done, r, q, d)


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
    e = int(bend[r, h])
    if e >= d or keep[r, e]:
        return  # nothing merges into h in the current round
    acc = bsum[r, h]
    while e < d and not keep[r, e]:
        acc += bsum[r, e]
        is_start[r, e] = 0
        e = int(bend[r, e])
    bsum[r, h] = acc
    bend[r, h] = e
    if e < d:
        bprev[r, e] = h


@cuda.jit(cache=True)
def merge_down(is_start, keep, bsum, bend, chunk, PS, PA, has_parent, bsum2, bend2, bprev):
    """Level 0 of the run-merging scan (segscan.py): the segments are runs, headed by surviving
    starts; the last block of each run writes the run's sum and end at its head (into the second
    buffers, so no thread reads what another writes) and links the next survivor back to it;
    merged starts stop being starts."""
    t = cuda.grid(1)
    n, d = is_start.shape
    lo = t * chunk
    if lo >= n * d:
        return
    s, a = carry_in(PS, PA, has_parent, t)
    for k in range(lo, min(lo + chunk, n * d)):
        r = k // d
        col = k - r * d
        if not is_start[r, col]:
            continue
        head = col == 0 or keep[r, col] != 0
        s, a = combine(s, a, bsum[r, col], head, col)
        if not head:
            is_start[r, col] = 0
        e = int(bend[r, col])
        if e >= d or keep[r, e]:
            bsum2[r, a] = s
            bend2[r, a] = e
            if e < d:
                bprev[r, e] = a


@cuda.jit(cache=True)
def merge_first(keep, keys, center, chunk, PS, PA, has_parent, is_start, bsum, bend, bprev):
    """merge_down for the first round, from the singletons (the centred keys): writes the whole block
    state (every element's is_start, and at each run's head its sum, end and back link)."""
    t = cuda.grid(1)
    n, d = keys.shape
    lo = t * chunk
    if lo >= n * d:
        return
    s, a = carry_in(PS, PA, has_parent, t)
    for k in range(lo, min(lo + chunk, n * d)):
        r = k // d
        col = k - r * d
        head = col == 0 or keep[r, col] != 0
        s, a = combine(s, a, centred(keys, center, r, col), head, col)
        is_start[r, col] = 1 if head else 0
        e = col + 1
        if e >= d or keep[r, e]:
            bsum[r, a] = s
            bend[r, a] = e
            if e < d:
                bprev[r, e] = a


def partition(keys, center, lam: float, cost):
    """(is_start int8 (n, d), rounds int64 (n,), host syncs, {"depth": (n,)}) for sorted rows
    read centred at ``center`` (``finish.centred``); the depth is
    wsrbench.core.depth.imminent_round summed over each row's rounds, as the reference counts it.

    ``cost`` counts launches, syncs and bytes; ``cost.round_depth`` is set to the largest
    critical path of one round (launches plus the walk's serial steps).
    """
    n, d = keys.shape
    g = grid(n * d)
    keep = cost.empty((n, d), "int8")
    rounds = full(n, 0, "int64", cost)
    counter = full(1, 0, "int64", cost)
    # per row, zeroed in one launch: violations of the last two rounds, blocks merged so far,
    # depth, finished
    rowstate = full((5, n), 0, "int64", cost)
    viol, rowmerged, depth, done = rowstate[0:2], rowstate[2], rowstate[3], rowstate[4]
    # The first round reads the singletons from the keys: the block state is written by its merge, if any.
    start = cost.depth
    cost(mark_first, g)(keys, center, keep, counter, rounds, lam, viol)
    merged = int(cost.to_host(counter)[0])
    syncs, round_no = 1, 1
    if merged == 0:  # already increasing: every rank is its own block
        cost.round_depth = max(cost.round_depth, cost.depth - start)
        cost(close_last_round, grid(n))(viol, rowmerged, depth, done, 1, d)
        return full((n, d), 1, "int8", cost), rounds, syncs, {"depth": depth}
    is_start = cost.empty((n, d), "int8")
    bsum = cost.empty((n, d), "float64")
    bend = cost.empty((n, d), link_type(d))
    bprev = cost.empty((n, d), link_type(d))
    scan = None  # the run-merging scan's levels, allocated by the first round that needs them
    if merged <= WALK_MAX:  # few runs: the state of the singletons, then the walk
        cost(init_blocks, g)(keys, center, is_start, bsum, bend, bprev)
        cost(merge_runs, g, serial=merged)(is_start, bsum, bend, bprev, keep)
    else:  # the scan over the singletons writes the state itself
        scan = Scan(n, d, cost)
        scan.up(keep, keep, keep, keys, 0, center=center)
        cost(merge_first, grid(scan.threads(n, d)), full=True, loop=scan.chunk)(
            keep, keys, center, scan.chunk, scan.carry_sum, scan.carry_head, scan.has_parent,
            is_start, bsum, bend, bprev)
    cost.round_depth = max(cost.round_depth, cost.depth - start)
    bsum2 = bend2 = None
    while True:
        round_no += 1
        before = cost.depth
        cost(mark_keep, g)(is_start, bsum, bend, bprev, keep, counter, rounds, round_no, lam,
                           viol, rowmerged, depth, done)
        total = int(cost.to_host(counter)[0])  # the stopping test: one host sync per round
        syncs += 1
        if total == merged:
            cost(close_last_round, grid(n))(viol, rowmerged, depth, done, round_no % 2, d)
            break
        v = total - merged
        merged = total
        if v <= WALK_MAX:
            cost(merge_runs, g, serial=v)(is_start, bsum, bend, bprev, keep)
        else:
            if scan is None:
                scan = Scan(n, d, cost)
            if bsum2 is None:
                bsum2, bend2 = cost.empty((n, d), "float64"), cost.empty((n, d), link_type(d))
            scan.up(is_start, keep, is_start, bsum, 1)
            cost(merge_down, grid(scan.threads(n, d)), full=True, loop=scan.chunk)(
                is_start, keep, bsum, bend, scan.chunk, scan.carry_sum, scan.carry_head,
                scan.has_parent, bsum2, bend2, bprev)
            bsum, bsum2, bend, bend2 = bsum2, bsum, bend2, bend
        cost.round_depth = max(cost.round_depth, cost.depth - before)
    return is_start, rounds, syncs, {"depth": depth}
