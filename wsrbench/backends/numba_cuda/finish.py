"""Kernels shared by every prox algorithm of the numba-cuda backend: centring, block values,
L1, rho and the scatter back to the original order (``wsrbench.core.sorted_space`` on the device).

Kernels index the flattened (rows, d) space (one thread per element, or per chunk of elements for
the scans' level-0 kernels), so row boundaries fall inside thread blocks and rows of any length
share the launch.

Block sums (``segscan.Scan`` then ``values_down``): a work-efficient segmented scan (O(n d)
bytes, 2 log_32(n d) launches, deterministic) whose level-0 kernel computes each block's value at
its last element and writes it straight into the output through the sort order; the elements of
blocks that run past their chunk get it from ``values_tail``
(docs/design.md#the-pipelines-own-floor). Sums are of the
original (centred) data, local to each block, so their rounding grows with the block, not with the
position in the row (docs/design.md#numerics-and-range), and no float atomics make results depend on thread
timing. Labels (``block_labels``): the same scan counting block starts per row.
"""
from __future__ import annotations

from numba import cuda

from .launch import grid
from .numerics import shift_sum, shift_unit
from .segscan import Scan, carry_in, combine


@cuda.jit(cache=True)
def fill1(A, value):
    t = cuda.grid(1)
    if t < A.shape[0]:
        A[t] = value


@cuda.jit(cache=True)
def fill2(A, value):
    t = cuda.grid(1)
    if t < A.shape[0] * A.shape[1]:
        r = t // A.shape[1]
        A[r, t - r * A.shape[1]] = value


def full(shape, value, dtype, cost):
    """A new device array of ``shape`` filled with ``value`` on the device (no host copy)."""
    out = cost.empty(shape, dtype=dtype)
    if out.size:
        cost(fill1 if out.ndim == 1 else fill2, grid(out.size))(out, value)
    return out


@cuda.jit(cache=True)
def row_centers(keys, center):
    """center[r] = float64(the row's median element keys[r, d // 2]) (float32 -> float64 is
    exact): the sorted rows are read as xs = float64(key) - center (``centred``)."""
    r = cuda.grid(1)
    n, d = keys.shape
    if r < n:
        center[r] = float(keys[r, d // 2])


@cuda.jit(device=True, inline=True)
def centred(keys, center, r, k):
    """xs[r, k], the sorted row centred at its median, from the keys: one conversion and one
    subtraction, the same bits wherever it is computed, so no kernel needs an array of xs
    (docs/design.md#the-pipelines-own-floor)."""
    return float(keys[r, k]) - center[r]


@cuda.jit(cache=True)
def pool_ties(is_start, keys, lam):
    """sorted_space.pool_ties: no block starts inside a run of equal keys, and at lam = 0 the
    blocks are exactly those runs (docs/design.md#ties)."""
    t = cuda.grid(1)
    n, d = keys.shape
    if t < n * d:
        r = t // d
        col = t - r * d
        if col > 0:
            if keys[r, col] == keys[r, col - 1]:
                is_start[r, col] = 0
            elif lam == 0.0:
                is_start[r, col] = 1


@cuda.jit(device=True, inline=True)
def block_value(xsum, a, b, d, c, lam, l1, rho, first, last):
    """The prox value of the block [a, b) with x-sum ``xsum`` (+ L1, rho), ``c`` its row's centre,
    ``first`` and ``last`` its smallest and largest x.

    Mirrors sorted_space.finish: centroid = sum/size, value = centroid + shift_sum/size, both
    moved back by the row's centre (a block of equal values t: centroid t, value t +
    shift_sum/size); soft-threshold by l1; rho moves (1 - rho) of the way from the
    centroid to the value, except that blocks L1 set to zero stay exactly zero.
    """
    size = float(b - a)
    shift = shift_sum(a, b, d, shift_unit(lam, d)) / size
    if first == last:
        centroid = first
        value = first if shift == 0.0 else first + shift  # -0.0 + 0.0 is +0.0
    else:
        centroid = xsum / size
        value = centroid + shift
        centroid += c
        value += c
    if l1 > 0.0:
        sgn = 1.0 if value > 0.0 else (-1.0 if value < 0.0 else 0.0)
        value = sgn * max(abs(value) - l1, 0.0)
    if rho > 0.0:
        if not (value == 0.0 and l1 > 0.0) and value != centroid:
            value = centroid + (1.0 - rho) * (value - centroid)
    return value


@cuda.jit(cache=True)
def values_down(is_start, keys, order, chunk, PS, PA, has_parent, center, lam, l1, rho, W, tail,
                clusters):
    """Level 0 of the block-sum scan (segscan.py), fused with the un-sort: at the last element
    of each block its value, written through ``order`` into W for the block's elements in this
    chunk; a block that began in an earlier chunk also leaves its value in ``tail`` at the chunk
    where it began (earlier chunks' elements are ``values_tail``'s). One more cluster per block."""
    t = cuda.grid(1)
    n, d = keys.shape
    lo = t * chunk
    if lo >= n * d:
        return
    s, a = carry_in(PS, PA, has_parent, t)
    for k in range(lo, min(lo + chunk, n * d)):
        r = k // d
        col = k - r * d
        s, a = combine(s, a, centred(keys, center, r, col), col == 0 or is_start[r, col] != 0, col)
        if col + 1 == d or is_start[r, col + 1]:
            v = block_value(s, a, col + 1, d, center[r], lam, l1, rho, float(keys[r, a]),
                            float(keys[r, col]))
            cuda.atomic.add(clusters, r, 1)
            first = r * d + a
            if first < lo:  # the block crosses the chunk's left edge (one such block per chunk)
                tail[first // chunk] = v
            for j in range(max(first, lo) - r * d, col + 1):
                W[r, order[r, j]] = v


@cuda.jit(cache=True)
def values_tail(is_start, order, chunk, PA, has_parent, tail, W):
    """The un-sort of the blocks that go on past their chunk: chunk t writes its last run (from
    its last block start, or all of it) with the value the block's last chunk left in ``tail``
    at the chunk where the block began."""
    t = cuda.grid(1)
    n, d = order.shape
    lo = t * chunk
    hi = min(lo + chunk, n * d)
    if lo >= n * d or hi == n * d:
        return
    r = hi // d
    if hi - r * d == 0 or is_start[r, hi - r * d]:
        return  # the next chunk starts a block: every block of this chunk ended in it
    k = hi - 1
    while k > lo and not (k - r * d == 0 or is_start[r, k - r * d]):
        k -= 1
    if not (k - r * d == 0 or is_start[r, k - r * d]):  # no start here: the carried block's
        k = r * d + PA[t] if has_parent else lo
    v = tail[k // chunk]
    for j in range(max(k, lo) - r * d, hi - r * d):
        W[r, order[r, j]] = v


def finish(is_start, keys, order, center, lam, l1, rho, W, clusters, cost):
    """Fill W (original order, W's dtype) from the partition; count blocks into clusters:
    the block sums' scan over the centred keys, whose level-0 kernel writes the block values
    through ``order`` (values_down), then the blocks that span chunks (values_tail);
    docs/design.md#the-pipelines-own-floor."""
    n, d = keys.shape
    if d > 1:
        cost(pool_ties, grid(n * d))(is_start, keys, lam)
    scan = Scan(n, d, cost)
    scan.up(is_start, is_start, is_start, keys, 0, center=center)
    threads = scan.threads(n, d)
    tail = cost.empty(max(threads, 1), "float64")  # one value per chunk: where a block began
    # Every element's order entry and output are touched once, by one of the two kernels: the
    # first is charged them in full (its threads loop over whole chunks), the second its walk
    # back over is_start (at most one pass) on top of one entry per thread and array.
    cost(values_down, grid(threads), full=True, loop=scan.chunk)(
        is_start, keys, order, scan.chunk, scan.carry_sum, scan.carry_head, scan.has_parent, center,
        lam, l1, rho, W, tail, clusters)
    cost(values_tail, grid(threads), loop=scan.chunk)(
        is_start, order, scan.chunk, scan.carry_head, scan.has_parent, tail, W)
    cost.add(bytes=n * d)


@cuda.jit(cache=True)
def labels_down(is_start, order, chunk, PS, PA, has_parent, L):
    """Level 0 of the per-row count of block starts: L[r, order[r, k]] = the block of sorted
    position k (blocks numbered in increasing value)."""
    t = cuda.grid(1)
    n, d = order.shape
    lo = t * chunk
    if lo >= n * d:
        return
    c, a = carry_in(PS, PA, has_parent, t)
    for k in range(lo, min(lo + chunk, n * d)):
        r = k // d
        col = k - r * d
        # counts < 2^53: exact in float64; only column 0 restarts (one segment per row)
        c, a = combine(c, a, 1.0 if is_start[r, col] else 0.0, col == 0, col)
        L[r, order[r, col]] = int(c) - 1


def block_labels(is_start, order, cost):
    """(n, d) int64 labels in the original order: a per-row scan counting block starts (labels
    are a training step's metrics, docs/design.md#cluster-labels: O(n d) bytes, O(log d) launches)."""
    n, d = order.shape
    scan = Scan(n, d, cost)
    scan.up(is_start, is_start, is_start, is_start, 0, 0)
    L = cost.empty((n, d), "int64")
    cost(labels_down, grid(scan.threads(n, d)), full=True, loop=scan.chunk)(
        is_start, order, scan.chunk, scan.carry_sum, scan.carry_head, scan.has_parent, L)
    return L


@cuda.jit(cache=True)
def mark_starts(starts, cnt, is_start):
    """is_start[r, starts[r, j]] = 1 for the first cnt[r, 0] entries of each row: the cluster
    starts that search_collisions and hull_bridges keep packed at the left of a row."""
    t = cuda.grid(1)
    n, d = starts.shape
    if t >= n * d:
        return
    r = t // d
    j = t - r * d
    if j < cnt[r, 0]:
        is_start[r, starts[r, j]] = 1
