"""Kernels shared by every prox algorithm of the numba-cuda backend: centring, block values,
L1, rho and the scatter back to the original order (``wsrbench.sorted_space`` on the device).

Kernels index the flattened (rows, d) space (one thread per element, or per chunk of elements for
the scans' level-0 kernels), so row boundaries fall inside thread blocks and rows of any length
share the launch.

Block sums (``segscan.Scan`` then ``values_down``): a work-efficient segmented scan (O(n d)
bytes, 2 log_32(n d) launches, deterministic) whose level-0 kernel writes, for every element, the
start of its block (A), and at each block's last element the block's value. Sums are of the
original (centred) data, local to each block, so their rounding grows with the block, not with the
position in the row (docs/design.md section 3), and no float atomics make results depend on thread
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
def center_rows(keys, xs, center):
    """xs = float64(sorted row) - float64(its median element keys[r, d // 2])."""
    t = cuda.grid(1)
    n, d = keys.shape
    if t >= n * d:
        return
    r = t // d
    k = t - r * d
    c = float(keys[r, d // 2])  # float32 -> float64 is exact
    xs[r, k] = float(keys[r, k]) - c
    if k == 0:
        center[r] = c


@cuda.jit(device=True, inline=True)
def block_value(xsum, a, b, d, c, lam, l1, rho):
    """The prox value of the block [a, b) with x-sum ``xsum`` (+ L1, rho), ``c`` its row's centre.

    Mirrors sorted_space.finish: centroid = sum/size, value = centroid + shift_sum/size, both
    moved back by the row's centre; soft-threshold by l1; rho moves (1 - rho) of the way from the
    centroid to the value, except that blocks L1 set to zero stay exactly zero.
    """
    size = float(b - a)
    centroid = xsum / size
    value = centroid + shift_sum(a, b, d, shift_unit(lam, d)) / size
    centroid += c
    value += c
    if l1 > 0.0:
        sgn = 1.0 if value > 0.0 else (-1.0 if value < 0.0 else 0.0)
        value = sgn * max(abs(value) - l1, 0.0)
    if rho > 0.0:
        if not (value == 0.0 and l1 > 0.0):
            value = centroid + (1.0 - rho) * (value - centroid)
    return value


@cuda.jit(cache=True)
def values_down(is_start, xs, chunk, PS, PA, has_parent, center, lam, l1, rho, A, val, clusters):
    """Level 0 of the block-sum scan (segscan.py): A[r, k] = start of k's block; at the last
    element of each block, its value into val[r, block start] and one more cluster for the row."""
    t = cuda.grid(1)
    n, d = xs.shape
    lo = t * chunk
    if lo >= n * d:
        return
    s, a = carry_in(PS, PA, has_parent, t)
    for k in range(lo, min(lo + chunk, n * d)):
        r = k // d
        col = k - r * d
        s, a = combine(s, a, xs[r, col], col == 0 or is_start[r, col] != 0, col)
        A[r, col] = a
        if col + 1 == d or is_start[r, col + 1]:
            val[r, a] = block_value(s, a, col + 1, d, center[r], lam, l1, rho)
            cuda.atomic.add(clusters, r, 1)


@cuda.jit(cache=True)
def scatter(order, A, val, W):
    """W[r, order[r, k]] = value of k's block (cast to W's dtype): un-sort."""
    t = cuda.grid(1)
    n, d = A.shape
    if t >= n * d:
        return
    r = t // d
    k = t - r * d
    W[r, order[r, k]] = val[r, A[r, k]]


def block_start_type(d: int) -> str:
    """The type of the per-element block starts: int32 while columns fit (half the traffic of
    int64 in values_down and scatter, docs/design.md 14.7)."""
    return "int32" if d < 2 ** 31 else "int64"


def finish(is_start, xs, order, center, lam, l1, rho, W, clusters, cost):
    """Fill W (original order, W's dtype) from the partition; count blocks into clusters:
    the block sums' scan, whose level-0 kernel writes the block values, then the un-sort."""
    n, d = xs.shape
    scan = Scan(n, d, cost)
    scan.up(is_start, is_start, is_start, xs, 0)
    A = cost.empty((n, d), block_start_type(d))
    val = cost.empty((n, d), "float64")
    cost(values_down, grid(scan.threads(n, d)), full=True, loop=scan.chunk)(
        is_start, xs, scan.chunk, scan.carry_sum, scan.carry_head, scan.has_parent, center, lam,
        l1, rho, A, val, clusters)
    cost(scatter, grid(n * d))(order, A, val, W)


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
    are a training step's metrics, docs/design.md 11.2: O(n d) bytes, O(log d) launches)."""
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
