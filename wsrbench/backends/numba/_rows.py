"""The rows driver of every algorithm: rows of a 2-D input in parallel, a chunk of rows per thread.

Each algorithm module has one kernel signature,

    prox_row(x, w, lam, l1, rho, rec, spare, hist, scratch, stats, lab) -> (clusters, rounds)

with ``scratch = row_scratch(d)`` (a tuple of the arrays that algorithm needs besides the records)
and ``stats`` its int64 row of per-row statistics (``STATS_WIDTH`` of them). The driver below is
written once and instantiated per algorithm by ``rows_driver``
(docs/design.md#the-numba-rows-driver-and-the-disk-cache).

Why a copy of one function and not a driver that takes the kernel as an argument or a closure:
numba caches a function on disk (``cache=True``) per file, name and first line, and keys a
closure's entry by its pickled cells. A dispatcher argument is not cached at all, and a
dispatcher in a closure cell pickles with a per-process id, so every process would compile the
driver again. ``rows_driver`` instead builds a plain function from the template's code object,
with a name of its own per algorithm (its own cache file beside this one) and the algorithm's
kernels as its globals; its only closure cell is a digest of this package's sources, so an edit
to a kernel's file (which numba does not see from here) recompiles the driver instead of loading
a stale one.

``renamed`` serves the kernels with a serial and a parallel form too: one Python function whose
pair loop is a ``prange`` (a plain range where numba compiles without ``parallel=True``), compiled
under two names, since two compilations of one function would share one cache entry.
"""
from __future__ import annotations

import hashlib
import pathlib
import types

import numpy as np
from numba import njit, prange

from ._core import chunk_bounds
from .sort import HIST_SIZE


def _template(sources):
    def prox_rows(X, W, lam, l1, rho, rounds, clusters, stats, work, L):
        sources  # noqa: B018  (the cache key's closure cell: see the module docstring)
        n, d = X.shape
        nchunks = work.shape[0]  # one chunk of rows per thread, each with its own workspace row
        for c in prange(nchunks):
            lo, hi = chunk_bounds(n, nchunks, c)
            rec = work[c][: 2 * d]  # work[c] first: a C-contiguous row (work[c, :n] types as "A")
            spare = work[c][2 * d: 4 * d]
            hist = np.empty(HIST_SIZE, dtype=np.int64)
            scratch = row_scratch(d)  # noqa: F821  (a global of each instance)
            for i in range(lo, hi):
                clusters[i], rounds[i] = prox_row(  # noqa: F821  (a global of each instance)
                    X[i], W[i], lam, l1, rho, rec, spare, hist, scratch, stats[i], L[i])

    return prox_rows


def _sources_digest() -> str:
    h = hashlib.sha256()
    for path in sorted(pathlib.Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


_DIGEST = _sources_digest()


def renamed(func, name: str, scope: dict | None = None):
    """A copy of the plain function func under another name (so numba gives it a cache entry of
    its own), with other globals if scope is given."""
    code = func.__code__.replace(co_name=name, co_qualname=name)
    copy = types.FunctionType(code, func.__globals__ if scope is None else scope, name,
                              func.__defaults__, func.__closure__)
    copy.__doc__ = func.__doc__
    return copy


def rows_driver(module_name: str, prox_row, row_scratch):
    """``prox_rows(X, W, lam, l1, rho, rounds, clusters, stats, work, L)`` for one algorithm
    module: row i of X into W[i], its clusters and rounds into clusters[i], rounds[i], its
    statistics into stats[i], labels into L[i] (L is (n, 0) when not asked); work holds one
    uint64 row of 4 d words per chunk (the number of chunks is work.shape[0])."""
    scope = {"__name__": module_name, "np": np, "prange": prange, "chunk_bounds": chunk_bounds,
             "HIST_SIZE": HIST_SIZE, "prox_row": prox_row, "row_scratch": row_scratch}
    name = "prox_rows_" + module_name.rsplit(".", 1)[-1]
    return njit(cache=True, parallel=True)(renamed(_template(_DIGEST), name, scope))
