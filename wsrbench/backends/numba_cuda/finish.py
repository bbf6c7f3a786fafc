"""Kernels shared by every prox algorithm of the numba-cuda backend: centring, block values,
L1, rho and the scatter back to the original order (``wsrbench.sorted_space`` on the device).

All kernels take one thread per element of the flattened (rows, d) space, so row boundaries fall
inside thread blocks and rows of any length share the launch.

Block sums (``segscan.block_sums``): a work-efficient segmented scan (O(n d) bytes,
2 log_32(n d) launches, deterministic): after it, S[r, k] = sum of xs over [start of k's block, k]
and A[r, k] = start of k's block. Sums are of the original (centred) data, local to each block, so
their rounding grows with the block, not with the position in the row (docs/design.md section 3),
and no float atomics make results depend on thread timing.
"""
from __future__ import annotations

from numba import cuda

from .launch import grid
from .numerics import shift_sum, shift_unit
from .segscan import block_sums


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


@cuda.jit(cache=True)
def block_values(is_start, S, A, center, lam, l1, rho, val, clusters):
    """At the last element of each block: its prox value (+ L1, rho) into val[r, block start].

    Mirrors sorted_space.finish: centroid = sum/size, value = centroid + shift_sum/size, both
    moved back by the row's centre; soft-threshold by l1; rho moves (1 - rho) of the way from the
    centroid to the value, except that blocks L1 set to zero stay exactly zero.
    """
    t = cuda.grid(1)
    n, d = S.shape
    if t >= n * d:
        return
    r = t // d
    k = t - r * d
    if k + 1 < d and not is_start[r, k + 1]:
        return
    a = A[r, k]
    b = k + 1
    size = float(b - a)
    centroid = S[r, k] / size
    value = centroid + shift_sum(a, b, d, shift_unit(lam, d)) / size
    c = center[r]
    centroid += c
    value += c
    if l1 > 0.0:
        sgn = 1.0 if value > 0.0 else (-1.0 if value < 0.0 else 0.0)
        value = sgn * max(abs(value) - l1, 0.0)
    if rho > 0.0:
        if not (value == 0.0 and l1 > 0.0):
            value = centroid + (1.0 - rho) * (value - centroid)
    val[r, a] = value
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


def finish(is_start, xs, order, center, lam, l1, rho, W, clusters, cost):
    """Fill W (original order, W's dtype) from the partition; count blocks into clusters."""
    n, d = xs.shape
    g = grid(n * d)
    S, A = block_sums(is_start, xs, cost)
    val = cost.empty((n, d), "float64")
    cost(block_values, g)(is_start, S, A, center, lam, l1, rho, val, clusters)
    cost(scatter, g)(order, A, val, W)


@cuda.jit(cache=True)
def block_labels(is_start, order, L):
    """L[r, order[r, k]] = the block of sorted position k (blocks numbered in increasing value).

    One thread per row, a sequential count of block starts: labels are asked for rarely (a
    training step's metrics, docs/design.md 11.2), so an O(d)-depth pass costs less than code."""
    r = cuda.grid(1)
    n, d = order.shape
    if r >= n:
        return
    c = -1
    for k in range(d):
        if is_start[r, k]:
            c += 1
        L[r, order[r, k]] = c


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
