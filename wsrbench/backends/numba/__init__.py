"""Numba CPU backend: nopython kernels, a radix argsort, rows in parallel.

Imported only on first use (wsrbench.core.registry loads it lazily); functions compile on their first
call (``cache=True`` keeps the machine code on disk, so later processes load it instead).

Pipeline of one row (all jitted; see the modules):
  sort.py     LSD radix argsort on order-preserving integer keys of the float bits; its records
              carry the sorted values themselves, so no gather x[order] follows.
  pava.py     PAVA fused with the decode of the records; stack in the sort's scratch.
  imminent_collisions.py, search_collisions.py, end_collisions.py: the parallel-round algorithms
              of docs/design.md#the-algorithms (same partitions, rounds and clusters as the NumPy reference).
  _core.py    block values (closed-form shifts, L1, rho) scattered to the original positions.
Rows of a 2-D input run in parallel over threads (``prange`` over chunks of rows).

Warm start (training calls the prox on nearly the same vector every step): see
``wsrbench.core.warm_start.ProxState`` and ``warm.py``.
"""
from __future__ import annotations

import mmap
import os
import struct
import threading
from collections.abc import Callable
from types import ModuleType
from typing import NamedTuple

import numba
import numpy as np

# libgomp (numba's OpenMP threading layer) spins idle workers for a while after each parallel
# region; on a 2-core machine they take the core the caller's next (serial) call needs. PASSIVE
# makes them sleep. Read once, when numba first loads the OpenMP layer; a user's setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ...core.contract import RowsResult
from ...core.numerics import safe_bound
from . import end_collisions, hull_bridges, imminent_collisions, pava, search_collisions, sort, warm
from ._core import prox_long_row

MAX_D = (1 << 32) - 1  # indices travel as 32-bit fields in the float32 sort records


def prepare_rows(X: np.ndarray) -> np.ndarray:
    """A C-contiguous, writeable view/copy of X (numba types read-only arrays separately; one
    specialisation per dtype keeps compile time down). The kernels never write into it."""
    if X.shape[1] > MAX_D:
        raise ValueError(f"x has {X.shape[1]} elements per row; the numba backend handles at most "
                         f"{MAX_D}")
    if not X.flags.c_contiguous or not X.flags.writeable:
        X = np.array(X, order="C", copy=True)
    return X


# Scratch for the sort records and the partition: 4 words (uint64) per element and thread.
# Fresh memory costs a page fault per page on first touch, which on a VM is a large part of a
# prox call (about 7 ms for the 32 MB of one d = 1e6 row, against a 15-20 ms sort), so a
# workspace of up to WORKSPACE_KEEP_WORDS words is kept between calls and reused. A larger one
# (docs/design.md#numba-cpu) is an anonymous mapping that each call hands back to the kernel with
# MADV_FREE: the kernel takes its pages when it needs memory, and until then the next call
# writes them again without a fault (320 MB for d = 1e7: 70 ms to 1.5 s of faults when fresh,
# 20 ms to write again). Where madvise has no MADV_FREE (Windows), a larger workspace is
# allocated per call and dropped. NumPy allocates the kept one, so large buffers get transparent
# huge pages (fewer faults) where the kernel offers them; the mapping asks for them itself.
WORDS_PER_ELEMENT = 4
WORKSPACE_KEEP_WORDS = 1 << 23  # 64 MiB (rows up to d = 2e6): a library must not hold more unasked
_workspace = np.empty((0, 0), dtype=np.uint64)
_workspace_lock = threading.Lock()
_hist = np.empty(sort.HIST_SIZE, dtype=np.int64)  # used with the shared workspace (under its lock)
# where an anonymous mapping can be handed back lazily (not Windows)
_LAZY_FREE = getattr(mmap, "MADV_FREE", None) if hasattr(mmap, "MAP_ANONYMOUS") else None
_big: mmap.mmap | None = None  # the large workspace's mapping, under _big_lock
_big_lock = threading.Lock()


def _take_big(words: int):
    """The large workspace's mapping, at least ``words`` uint64 long (the caller holds _big_lock)."""
    global _big
    nbytes = 8 * words
    if _big is None or len(_big) < nbytes:
        _drop_big()
        huge = 1 << 21  # whole huge pages
        _big = mmap.mmap(-1, -(-nbytes // huge) * huge,
                         flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        if hasattr(mmap, "MADV_HUGEPAGE"):
            _big.madvise(mmap.MADV_HUGEPAGE)
    return _big


def _drop_big() -> None:
    global _big
    if _big is not None:
        _big.close()  # no array views of it outlive a call
        _big = None


def _take_workspace(nchunks: int, d: int):
    """A (nchunks, 4 d) uint64 scratch array and how to give it back: "shared" (the kept one,
    under _workspace_lock), "big" (the lazily freed mapping, under _big_lock) or "" (its own)."""
    global _workspace
    need = WORDS_PER_ELEMENT * max(d, 1)
    if nchunks * need > WORKSPACE_KEEP_WORDS:
        if _LAZY_FREE is not None and _big_lock.acquire(blocking=False):
            try:
                buf = _take_big(nchunks * need)
            except BaseException:
                _big_lock.release()
                raise
            return np.frombuffer(buf, np.uint64, nchunks * need).reshape(nchunks, need), "big"
        return np.empty((nchunks, need), dtype=np.uint64), ""  # too big to keep, or in use
    if not _workspace_lock.acquire(blocking=False):
        return np.empty((nchunks, need), dtype=np.uint64), ""  # in use
    if _workspace.shape[0] < nchunks or _workspace.shape[1] < need:
        rows, cols = max(nchunks, _workspace.shape[0]), max(need, _workspace.shape[1])
        if rows * cols > WORKSPACE_KEEP_WORDS:
            rows, cols = nchunks, need
        _workspace = np.empty((rows, cols), dtype=np.uint64)
    return _workspace[:nchunks], "shared"


def _give_back(how: str) -> None:
    if how == "shared":
        _workspace_lock.release()
    elif how == "big":
        try:
            if _big is not None:
                _big.madvise(_LAZY_FREE)
        finally:
            _big_lock.release()


def release_workspace() -> None:
    """Free the scratch kept between calls (it is rebuilt on the next call), the large workspace's
    mapping included."""
    global _workspace
    with _workspace_lock:
        _workspace = np.empty((0, 0), dtype=np.uint64)
    with _big_lock:
        _drop_big()


def prox_rows(X, lam, *, l1, rho, algorithm, labels=False) -> RowsResult:
    """Backend contract (``wsrbench.core.contract.ProxRows``) on a 2-D float32/float64 NumPy array."""
    X = prepare_rows(X)
    n, d = X.shape
    W = np.empty_like(X)
    # Labels travel as an (n, d) int64 array, or (n, 0) when not asked: one compiled signature,
    # and the kernels skip the label scatter on an empty row.
    L = np.zeros((n, d if labels else 0), dtype=np.int64)
    res = _prox_rows(X, W, L, lam, l1, rho, algorithm)
    return res._replace(labels=L) if labels else res


def _prox_rows(X, W, L, lam, l1, rho, algorithm) -> RowsResult:
    n, d = X.shape
    rounds = np.zeros(n, dtype=np.int64)
    clusters = np.zeros(n, dtype=np.int64)
    lam, l1, rho = float(lam), float(l1), float(rho)
    if n == 0 or d == 0:
        return RowsResult(W, rounds, clusters, [{} for _ in range(n)])  # as the reference
    try:
        alg = ALGORITHMS[algorithm]
    except KeyError:
        raise ValueError(f"numba backend has no algorithm {algorithm!r}; it has "
                         f"{list(ALGORITHMS)}") from None
    module = alg.module
    stats = np.zeros((n, module.STATS_WIDTH), dtype=np.int64)
    # One row: the serial kernels, called directly. No parallel region: launching one for a
    # single chunk gains nothing, and OpenMP's spinning workers cost the caller's core time.
    nchunks = 1 if n == 1 else min(n, numba.get_num_threads())
    work, how = _take_workspace(nchunks, d)
    try:
        if n == 1 and d >= getattr(module, "PARALLEL_MIN_D", MAX_D + 1):
            # one long row: the pairs of each level in parallel
            clusters[0], rounds[0] = prox_long_row(module.long_partition, X[0], W[0], lam, l1,
                                                   rho, work, module.row_scratch(d), stats[0],
                                                   L[0])
        elif n == 1:
            hist = _hist if how == "shared" else np.empty(sort.HIST_SIZE, dtype=np.int64)
            clusters[0], rounds[0] = module.prox_row(
                X[0], W[0], lam, l1, rho, work[0, : 2 * d], work[0, 2 * d: 4 * d], hist,
                module.row_scratch(d), stats[0], L[0])
        else:
            module.prox_rows(X, W, lam, l1, rho, rounds, clusters, stats, work, L)
    finally:
        del work  # no view of the mapping outlives the call
        _give_back(how)
    # Every algorithm counts the reference's depth in stats["depth"]
    # (docs/design.md#parallel-depth); a row without a partition (d = 1) has depth 0.
    row_stats = [alg.describe(d, s) for s in stats]
    depth = np.array([st.get("depth", 0) for st in row_stats], dtype=np.int64)
    return RowsResult(W, rounds, clusters, row_stats, depth)


# ---------------------------------------------------------------------------------------------
# The algorithm table: per algorithm, its module (the kernel interface of _rows.py) and what its
# int64 row of statistics means, as the per-row stats dict of the contract.

class _Algorithm(NamedTuple):
    module: ModuleType
    describe: Callable[[int, np.ndarray], dict]


def _pava_stats(d, s) -> dict:
    # d = 1: no partition at all, as the reference; the depth is its sequential steps,
    # d pushes + the merges (= rounds)
    merges, deepest, longest = (int(v) for v in s)
    return ({"merges": merges, "max_stack": deepest, "longest_backmerge": longest,
             "depth": d + merges} if d > 1 else {})


def _depth_stats(d, s) -> dict:
    return {"depth": int(s[0])}


def _hull_stats(d, s) -> dict:
    return {"depth": hull_bridges.depth_of(d, s)}


#: This backend's algorithms (the registry lists the same names; the first is the default).
ALGORITHMS = {
    "pava": _Algorithm(pava, _pava_stats),
    "imminent_collisions": _Algorithm(imminent_collisions, _depth_stats),
    "search_collisions": _Algorithm(search_collisions, _depth_stats),
    "end_collisions": _Algorithm(end_collisions, _depth_stats),
    "hull_bridges": _Algorithm(hull_bridges, _hull_stats),
}


# float32 entries are always within numerics.safe_bound (>= 2^954 for d <= MAX_D): only the finite
# ones pass, the magnitude bits of the largest finite float32
_F32_LIMIT = 0x7F7FFFFF


def prox_vector(x, lam, l1, rho, algorithm):
    """Capability "prox_vector" (``contract.ProxVector``): the pava prox of a 1-D vector in one
    jitted call whose first pass is the input check (docs/design.md#fixed-per-call-cost); None,
    for the general path, for another algorithm, an input that check rejects (NaN, Inf, beyond
    the safe bound) or a layout prepare_rows would copy."""
    d = x.shape[0]
    if algorithm != "pava" or d == 0 or d > MAX_D or not x.flags.c_contiguous \
            or not x.flags.writeable:
        return None
    bound = safe_bound(d)
    if lam > bound or l1 > bound:
        return None
    limit = _F32_LIMIT if x.dtype == np.float32 else \
        struct.unpack("<Q", struct.pack("<d", bound))[0]
    w = np.empty_like(x)
    work, how = _take_workspace(1, d)
    try:
        hist = _hist if how == "shared" else np.empty(sort.HIST_SIZE, dtype=np.int64)
        done = pava.prox_vector(x, w, lam, l1, rho, work[0], hist, np.uint64(limit))
    finally:
        del work  # no view of the mapping outlives the call
        _give_back(how)
    return w if done else None


def warm_prox_rows(X, lam, l1, rho, recs, flags, have_hint, moves_per_element, scratch, L,
                   out=None):
    """The prox of X sorted along a hint (``wsrbench.core.warm_start.ProxState``; see ``warm.run``);
    L: int64 labels out, (n, d), or (n, 0) when not asked; out: the answer's array, or None."""
    return warm.run(prepare_rows(X), float(lam), float(l1), float(rho), recs, flags, have_hint,
                    moves_per_element, scratch, L, out)


def from_numpy(a: np.ndarray) -> np.ndarray:
    return a


def to_numpy(a: np.ndarray) -> np.ndarray:
    return np.asarray(a)
