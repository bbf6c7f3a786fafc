"""The numba-cuda backend: the prox as CUDA kernels written with numba-cuda.

Pipeline for all rows of a (n, d) device array, without a host round trip of the data:
``sort.sort_rows`` (stable, per row), ``finish.center_rows`` (float64, centred at the median
element), the partition kernels of the chosen algorithm (``imminent_collisions``,
``search_collisions``, ``pava``: one module each, so each kernel is found by its name), then
``finish.finish`` (block values from float64 sums of the original data, L1, rho, un-sort).
Only the per-row ``rounds``/``clusters`` counters come back to the host, in one copy at the end.

Accepted input: numba device arrays, torch CUDA tensors, and any object exposing
``__cuda_array_interface__`` (used zero-copy; ``device.py`` has the primitives, including the
simulator's array type). Output: a numba device array, or a torch tensor on the same device for
torch input (zero-copy wrap of our result). For other foreign kinds (CuPy, ...) the result is a
numba device array, which itself exposes ``__cuda_array_interface__`` and so converts zero-copy
(``cupy.asarray(w)``).

Each partitioner ``partition(xs, lam) -> (is_start, rounds, syncs, stats)`` returns device arrays
of cluster starts (int8 (n, d)) and rounds (int64 (n,)), the host synchronisations it made, and a
dict of per-row counters as device arrays (possibly empty).

Host synchronisations per call (``HOST_SYNCS``): one for the input check (the finiteness test,
``wsrbench.checks``), the algorithm's own (``RowsResult.counters["partition_syncs"]``; imminent:
one per round + 1; search, pava: none) and one for the final rounds/clusters copy.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ...contract import RowsResult
from . import finish as _finish
from . import hull_bridges, imminent_collisions, pava, search_collisions
from .device import SIMULATOR, device_array, is_torch, same_kind, wrap_sim
from .launch import grid
from .sort import sort_rows

#: This backend's algorithms: partitioners on batches of sorted rows (module docstring).
ALGORITHMS = {
    "search_collisions": search_collisions.partition,
    "imminent_collisions": imminent_collisions.partition,
    "pava": pava.partition,
    "hull_bridges": hull_bridges.partition,
}

HOST_SYNCS = {
    "imminent_collisions": "one per merge round plus one for the round that finds no violation",
    "search_collisions": "none (every level runs its worst-case number of search steps)",
    "pava": "none",
    "hull_bridges": "none (a thread per pair runs its bridge search to the end)",
}


def prox_rows(X, lam: float, *, l1: float, rho: float, algorithm: str,
              labels: bool = False) -> RowsResult:
    """Backend contract (``wsrbench.contract.ProxRows``) on a 2-D float32/float64 CUDA array.

    ``labels``: ``finish.block_labels`` on the device (no extra host sync)."""
    partition = ALGORITHMS[algorithm]
    like = X
    X = device_array(X)
    n, d = X.shape
    W = cuda.device_array((n, d), dtype=X.dtype)
    if n == 0 or d == 0:
        z = np.zeros(n, dtype=np.int64)
        L = same_kind(like, cuda.device_array((n, d), "int64")) if labels else None
        return RowsResult(same_kind(like, W), z, z.copy(), [{} for _ in range(n)], None,
                          {"partition_syncs": 0}, L)
    g = grid(n * d)
    keys, order = sort_rows(X)
    xs = cuda.device_array((n, d), "float64")
    center = cuda.device_array(n, "float64")
    _finish.center_rows[g](keys, xs, center)
    if d == 1:
        is_start = _finish.full((n, 1), 1, "int8")
        rounds = _finish.full(n, 0, "int64")
        syncs, extra = 0, {}
    else:
        is_start, rounds, syncs, extra = partition(xs, lam)
    clusters = _finish.full(n, 0, "int64")
    _finish.finish(is_start, xs, order, center, lam, l1, rho, W, clusters)
    # The one transfer back: every counter in a single copy.
    k = 2 + len(extra)
    counts = cuda.device_array((k, n), "int64")
    more = tuple(extra.values()) if extra else ()
    more += (rounds,) * (3 - len(more))  # padding arguments: rows >= k are never written
    _stack_rows[grid(k * n)](rounds, clusters, *more, counts)
    host = counts.copy_to_host()
    stats = [{name: int(host[2 + i, r]) for i, name in enumerate(extra)} for r in range(n)]
    if algorithm == "pava":
        for r in range(n):  # pava's depth is its sequential steps (docs/design.md section 13.4)
            if d > 1:
                stats[r]["depth"] = int(host[0, r])
    # The depth where this algorithm's kernels count it (all but imminent_collisions); 0 for d = 1.
    depth = None
    if d == 1 or all("depth" in st for st in stats):
        depth = np.array([st.get("depth", 0) for st in stats], dtype=np.int64)
    L = None
    if labels:
        L = cuda.device_array((n, d), "int64")
        _finish.block_labels[grid(n)](is_start, order, L)
        L = same_kind(like, L)
    return RowsResult(same_kind(like, W), host[0].copy(), host[1].copy(), stats, depth,
                      {"partition_syncs": syncs}, L)


@cuda.jit(cache=True)
def _stack_rows(a, b, c, e, f, out):
    t = cuda.grid(1)
    k, n = out.shape
    if t >= k * n:
        return
    i = t // n
    r = t - i * n
    if i == 0:
        out[i, r] = a[r]
    elif i == 1:
        out[i, r] = b[r]
    elif i == 2:
        out[i, r] = c[r]
    elif i == 3:
        out[i, r] = e[r]
    else:
        out[i, r] = f[r]


def from_numpy(a: np.ndarray):
    """A device copy of ``a`` (``cuda.to_device``); under the simulator a SimDeviceArray."""
    if isinstance(a, (str, bytes)):  # the simulator would store it as a 0-d string array
        raise TypeError(f"a device array cannot hold a {type(a).__name__}")
    a = np.asarray(a)
    if not (a.flags.c_contiguous or a.flags.f_contiguous):
        a = np.ascontiguousarray(a)
    dev = cuda.to_device(a)
    return wrap_sim(dev) if SIMULATOR else dev


def to_numpy(a) -> np.ndarray:
    if is_torch(a):
        return a.detach().cpu().numpy()
    return device_array(a).copy_to_host()
