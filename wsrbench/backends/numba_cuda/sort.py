"""Stable per-row sort kernels: ``sort_rows(X, cost) -> (keys, order)`` on the device.

All methods are stable (equal keys keep their column order, like ``np.argsort(kind="stable")``;
-0.0 and 0.0 are equal keys):

* ``rank``: one thread per element counts the elements of its row that must precede it and
  writes itself to that rank. O(d) per thread, one launch: for short rows.
* ``radix``: segmented LSD radix sort, 8-bit digits, rows batched
  (docs/design.md#the-sort-rank-radix-torch-where-bitonic-would-win). The keys'
  bits are mapped to an order-preserving unsigned integer (negative: all bits flipped; positive:
  sign bit set), so float32 takes 4 passes and float64 8, each pass a stable counting sort of
  one digit in four launches: ``radix_count`` (one thread per tile of about sqrt(d) elements of
  a row, walking it in order: each element's rank among the equal digits before it in the tile,
  and the tile's digit histogram), ``radix_scan_tiles`` (one thread per row and digit:
  exclusive scan of the counts over the tiles), ``radix_scan_digits`` (one thread per row:
  exclusive scan of the 256 digit totals) and ``radix_scatter`` (each element to digit offset +
  tile offset + local rank). O(d) work and 4 launches per digit: 4 x 4 + 2 launches for float32
  whatever d is. No shared memory and no block barrier (the simulator runs those ~1000x slower);
  the price is a serial walk of ~sqrt(d) + 512 steps per pass (``serial_steps``), which the cost
  model charges. On a GPU with torch, ``auto`` prefers torch.sort (CUB's onesweep radix sort).
* ``bitonic``: a global-memory bitonic network on (key, column) pairs, rows padded with +inf to a
  power of two L: O(L log^2 L) work and log2(L)(log2(L)+1)/2 + 1 launches (+ 1 that drops the
  padding when L > d). Kept as an option and
  for cross-checks; the cost model (``wsrbench.bench.gpu_model``) finds no size at which it beats rank
  sort below the crossover and radix above it
  (docs/design.md#the-sort-rank-radix-torch-where-bitonic-would-win).
* ``torch``: zero-copy ``torch.sort(stable=True)`` through ``__cuda_array_interface__`` (CUB's
  segmented radix sort), its output made row-major like the other sorts'; real GPU with torch
  only.

``SORT`` selects: "auto" (rank sort for d <= RANK_SORT_MAX_D; above it torch.sort when torch can
see the GPU, else radix), or a method by name.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, int64

from .launch import SIMULATOR, grid

SORT = "auto"
RANK_SORT_MAX_D = 64
# Smallest radix tile (elements counted by one thread); small in the simulator so that tests
# cross tile boundaries.
GPU_RADIX_MIN_TILE = 64
RADIX_MIN_TILE = 4 if SIMULATOR else GPU_RADIX_MIN_TILE
RADIX_BUCKETS = 256


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



def _bitonic(X, cost):
    n, d = X.shape
    L = 1 << max(0, (d - 1).bit_length())
    K = cost.empty((n, L), dtype=X.dtype)
    idx = cost.empty((n, L), dtype="int64")
    g = grid(n * L)
    cost(bitonic_init, g)(X, K, idx)
    k = 2
    while k <= L:
        j = k // 2
        while j >= 1:
            cost(bitonic_stage, g)(K, idx, k, j)
            j //= 2
        k *= 2
    if L == d:
        return K, idx
    # Row-major (n, d) like every other sort's output, so that the kernels after the sort are
    # compiled for one layout of the keys and order (signatures.py), not for padded views too.
    keys = cost.empty((n, d), dtype=X.dtype)
    order = cost.empty((n, d), dtype="int64")
    cost(bitonic_unpad, grid(n * d))(K, idx, keys, order)
    return keys, order


@cuda.jit(cache=True)
def bitonic_unpad(K, idx, keys, order):
    """The first d columns of the padded network's rows."""
    t = cuda.grid(1)
    n, d = keys.shape
    if t < n * d:
        r = t // d
        k = t - r * d
        keys[r, k] = K[r, k]
        order[r, k] = idx[r, k]


# ------------------------------------------------------------------------------ radix sort

@cuda.jit(device=True, inline=True)
def radix_digit(u, shift, nbits):
    """Digit ``(key >> shift) & 255`` of the order-preserving integer of float bits u.

    Order-preserving map: negative floats (sign bit set) flip every bit, so their digits are
    255 - digit; non-negative floats set the sign bit, which only changes the top digit.
    Computed on int64 (a uint64 -> int64 cast keeps the bits; & 255 masks the sign extension).
    """
    v = int64(u)
    d0 = (v >> shift) & 255
    if (v >> (nbits - 1)) & 1:
        return 255 - d0
    if shift == nbits - 8:
        return d0 | 128
    return d0


@cuda.jit(cache=True)
def radix_init(X, K, idx):
    """K (contiguous) <- X with -0.0 made +0.0 (equal keys must have equal bits); idx <- column."""
    t = cuda.grid(1)
    n, d = X.shape
    if t >= n * d:
        return
    r = t // d
    k = t - r * d
    v = X[r, k]
    if v == 0:
        v = 0.0
    K[r, k] = v
    idx[r, k] = k


@cuda.jit(cache=True)
def radix_count(U, shift, nbits, tile, lrank, hist):
    """One thread per (row, tile of ``tile`` elements), walking its tile in order: each
    element's rank among the equal digits before it in the tile (stable by construction) and
    the tile's digit histogram hist[r, digit, tile index]."""
    t = cuda.grid(1)
    n, B, T = hist.shape
    if t >= n * T:
        return
    r = t // T
    j = t - r * T
    d = U.shape[1]
    for b in range(B):
        hist[r, b, j] = 0
    for k in range(j * tile, min(d, (j + 1) * tile)):
        dg = radix_digit(U[r, k], shift, nbits)
        c = hist[r, dg, j]
        lrank[r, k] = c
        hist[r, dg, j] = c + 1


@cuda.jit(cache=True)
def radix_scan_tiles(hist, tot):
    """One thread per (row, digit): hist[r, dg, :] <- its exclusive scan over the tiles;
    tot[r, dg] <- the digit's count in the row."""
    t = cuda.grid(1)
    n, B, T = hist.shape
    if t >= n * B:
        return
    r = t // B
    dg = t - r * B
    carry = 0
    for j in range(T):
        c = hist[r, dg, j]
        hist[r, dg, j] = carry
        carry += c
    tot[r, dg] = carry


@cuda.jit(cache=True)
def radix_scan_digits(tot):
    """One thread per row: tot[r, :] <- its exclusive scan over the 256 digits."""
    r = cuda.grid(1)
    if r >= tot.shape[0]:
        return
    carry = 0
    for dg in range(tot.shape[1]):
        c = tot[r, dg]
        tot[r, dg] = carry
        carry += c


@cuda.jit(cache=True)
def radix_scatter(U, idx, lrank, hist, tot, shift, nbits, tile, U2, idx2):
    t = cuda.grid(1)
    n, d = U.shape
    if t >= n * d:
        return
    r = t // d
    k = t - r * d
    u = U[r, k]
    dg = radix_digit(u, shift, nbits)
    dest = tot[r, dg] + hist[r, dg, k // tile] + lrank[r, k]
    U2[r, dest] = u
    idx2[r, dest] = idx[r, k]


@cuda.jit(cache=True)
def radix_gather(X, idx, keys):
    t = cuda.grid(1)
    n, d = X.shape
    if t >= n * d:
        return
    r = t // d
    k = t - r * d
    keys[r, k] = X[r, idx[r, k]]


def radix_tile(d: int) -> int:
    """Elements per counting thread: about sqrt(d) (a power of two, >= RADIX_MIN_TILE), which
    balances the two serial walks of a pass (a tile, and the T = d / tile tiles of a digit)."""
    return max(RADIX_MIN_TILE, 1 << ((max(d, 1).bit_length() + 1) // 2))


def _radix(X, cost):
    n, d = X.shape
    item = np.dtype(X.dtype).itemsize
    nbits = 8 * item
    tile = radix_tile(d)
    T = (d + tile - 1) // tile
    g = grid(n * d)
    K = cost.empty((n, d), dtype=X.dtype)
    idx = cost.empty((n, d), dtype="int64")
    cost(radix_init, g)(X, K, idx)
    ukind = np.uint32 if item == 4 else np.uint64
    U = K.view(ukind)
    U2 = cost.empty((n, d), dtype=ukind)
    idx2 = cost.empty((n, d), dtype="int64")
    lrank = cost.empty((n, d), dtype="int32")
    hist = cost.empty((n, RADIX_BUCKETS, T), dtype="int32")
    tot = cost.empty((n, RADIX_BUCKETS), dtype="int32")
    for shift in range(0, nbits, 8):
        cost(radix_count, grid(n * T), full=True, serial=RADIX_BUCKETS + tile)(
            U, shift, nbits, tile, lrank, hist)
        cost(radix_scan_tiles, grid(n * RADIX_BUCKETS), full=True, serial=T)(hist, tot)
        cost(radix_scan_digits, grid(n), full=True, serial=RADIX_BUCKETS)(tot)
        cost(radix_scatter, g)(U, idx, lrank, hist, tot, shift, nbits, tile, U2, idx2)
        U, U2, idx, idx2 = U2, U, idx2, idx
    keys = cost.empty((n, d), dtype=X.dtype)
    cost(radix_gather, g)(X, idx, keys)
    return keys, idx


def _torch_sort(X):
    import torch  # only on a real GPU: the simulator has no CUDA tensors

    vals, idx = torch.sort(torch.as_tensor(X, device="cuda"), dim=1, stable=True)
    # Row-major, like our own sorts' output, so that every kernel after the sort is compiled for
    # one layout of the keys and order (signatures.py): a no-op unless torch kept the strides of
    # an input that was not row-major, which then costs one copy (not counted by the model).
    return cuda.as_cuda_array(vals.contiguous()), cuda.as_cuda_array(idx.contiguous())


def torch_sort_available() -> bool:
    """torch with a visible CUDA device (never under the simulator)."""
    if SIMULATOR:
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def choose(d: int, method: str | None = None) -> str:
    """The sort method ``sort_rows`` uses for rows of length d."""
    method = method or SORT
    if method != "auto":
        return method
    if d <= RANK_SORT_MAX_D:
        return "rank"
    return "torch" if torch_sort_available() else "radix"


def sort_rows(X, cost, method: str | None = None):
    """Stable sort of every row of the 2-D device array X: (sorted keys, int64 column order).

    ``cost``: the call's ``Cost`` counter (every launch goes through it). torch.sort's own
    kernels are estimated as CUB's onesweep radix sort: one histogram launch plus one per 8-bit
    digit, each digit pass reading and writing (key, int64 index) pairs.
    """
    n, d = X.shape
    method = choose(d, method)
    if method == "rank":
        keys = cost.empty((n, d), dtype=X.dtype)
        order = cost.empty((n, d), dtype="int64")
        cost(rank_sort, grid(n * d), full=True, serial=d)(X, keys, order)
        return keys, order
    if method == "radix":
        return _radix(X, cost)
    if method == "bitonic":
        return _bitonic(X, cost)
    if method == "torch":
        item = np.dtype(X.dtype).itemsize
        cost.add(launches=item + 1, depth=item + 1, bytes=n * d * 2 * (item + 8) * item)
        if cost.dry:
            return cost.empty((n, d), X.dtype), cost.empty((n, d), "int64")
        return _torch_sort(X)
    raise ValueError(f"unknown sort method {method!r}; choose auto, rank, radix, bitonic or torch")
