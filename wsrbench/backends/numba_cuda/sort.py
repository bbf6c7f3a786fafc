"""Stable per-row sort kernels: ``sort_rows(X) -> (keys, order)`` on the device.

Two kernels, both stable (equal keys keep their column order, like ``np.argsort(kind="stable")``):

* ``rank_sort``: one thread per element counts the elements of its row that must precede it
  (smaller, or equal and to the left) and writes itself to that rank. O(d) per thread, O(d^2)
  work per row, one launch: the right tool for short rows (and for the simulator, where every
  thread costs ~1 ms of Python).
* ``bitonic``: a global-memory bitonic network on (key, column) pairs, rows padded with +inf to a
  power of two L. O(L log^2 L) work, log2(L)(log2(L)+1)/2 launches, no host sync. Comparing the
  pair (key, column) lexicographically makes the network stable.

``SORT`` selects: "auto" (rank sort for d <= RANK_SORT_MAX_D, else bitonic), "rank", "bitonic",
or "torch" (zero-copy ``torch.sort(stable=True)`` through ``__cuda_array_interface__``, i.e. CUB's
segmented radix sort: O(d) work, so it should win at large d; real GPU only). The default stays
on our own kernels because only they can be tested without a GPU; scripts/gpu_speed.py measures
both on a GPU so the choice can be revisited with numbers.
"""
from __future__ import annotations

import math

from numba import cuda

from .launch import grid

SORT = "auto"
RANK_SORT_MAX_D = 64


@cuda.jit(cache=True)
def rank_sort(X, keys, order):
    t = cuda.grid(1)
    n, d = X.shape
    if t >= n * d:
        return
    r = t // d
    i = t - r * d
    xi = X[r, i]
    rank = 0
    for j in range(d):
        xj = X[r, j]
        if xj < xi or (xj == xi and j < i):
            rank += 1
    keys[r, rank] = xi
    order[r, rank] = i


@cuda.jit(cache=True)
def bitonic_init(X, K, idx):
    t = cuda.grid(1)
    n, d = X.shape
    L = K.shape[1]
    if t >= n * L:
        return
    r = t // L
    k = t - r * L
    if k < d:
        K[r, k] = X[r, k]
    else:
        K[r, k] = math.inf  # padding sorts last: (inf, k >= d) follows every (finite x, col < d)
    idx[r, k] = k


@cuda.jit(cache=True)
def bitonic_stage(K, idx, k, j):
    """One compare-exchange stage of the network: partner p ^ j, direction from bit k of p."""
    t = cuda.grid(1)
    n, L = K.shape
    if t >= n * L:
        return
    r = t // L
    p = t - r * L
    q = p ^ j
    if q <= p:
        return
    ascending = (p & k) == 0
    kp, kq = K[r, p], K[r, q]
    ip, iq = idx[r, p], idx[r, q]
    greater = kp > kq or (kp == kq and ip > iq)
    if greater == ascending:
        K[r, p], K[r, q] = kq, kp
        idx[r, p], idx[r, q] = iq, ip


def _bitonic(X):
    n, d = X.shape
    L = 1 << max(0, (d - 1).bit_length())
    K = cuda.device_array((n, L), dtype=X.dtype)
    idx = cuda.device_array((n, L), dtype="int64")
    g = grid(n * L)
    bitonic_init[g](X, K, idx)
    k = 2
    while k <= L:
        j = k // 2
        while j >= 1:
            bitonic_stage[g](K, idx, k, j)
            j //= 2
        k *= 2
    return K[:, :d], idx[:, :d]


def _torch_sort(X):
    import torch  # only on a real GPU: the simulator has no CUDA tensors

    vals, idx = torch.sort(torch.as_tensor(X, device="cuda"), dim=1, stable=True)
    return cuda.as_cuda_array(vals), cuda.as_cuda_array(idx)


def sort_rows(X, method: str | None = None):
    """Stable sort of every row of the 2-D device array X: (sorted keys, int64 column order)."""
    method = method or SORT
    n, d = X.shape
    if method == "auto":
        method = "rank" if d <= RANK_SORT_MAX_D else "bitonic"
    if method == "rank":
        keys = cuda.device_array((n, d), dtype=X.dtype)
        order = cuda.device_array((n, d), dtype="int64")
        rank_sort[grid(n * d)](X, keys, order)
        return keys, order
    if method == "bitonic":
        return _bitonic(X)
    if method == "torch":
        return _torch_sort(X)
    raise ValueError(f"unknown sort method {method!r}; choose auto, rank, bitonic or torch")
