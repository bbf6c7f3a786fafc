"""The numba-cuda backend: the prox as CUDA kernels written with numba-cuda.

Pipeline for all rows of a (n, d) device array, without a host round trip of the data:
``sort.sort_rows`` (stable, per row), ``finish.row_centers`` (each row's median element; every
later kernel reads the sorted rows as float64 centred at it, ``finish.centred``, where it needs an
element: no array of the centred rows is written), the partition kernels of the chosen algorithm
(``hull_bridges``, ``imminent_collisions``, ``search_collisions``, ``pava``: one module each, so
each kernel is found by its name), then
``finish.finish`` (block values from float64 sums of the original data, L1, rho, un-sort).
Only the per-row ``rounds``/``clusters`` counters come back to the host, in one copy at the end.

Accepted input: numba device arrays, torch CUDA tensors, and any object exposing
``__cuda_array_interface__`` (used zero-copy; ``device.py`` has the primitives, including the
simulator's array type). Output: a numba device array, or a torch tensor on the same device for
torch input (zero-copy wrap of our result). For other foreign kinds (CuPy, ...) the result is a
numba device array, which itself exposes ``__cuda_array_interface__`` and so converts zero-copy
(``cupy.asarray(w)``).

Each partitioner ``partition(keys, center, lam, cost) -> (is_start, rounds, syncs, stats)``
(``keys``: the sorted rows; ``center``: float64 (n,), read through ``finish.centred``) returns
device arrays of cluster starts (int8 (n, d)) and rounds
(int64 (n,)), the host synchronisations it made, and a dict of per-row counters as device arrays
(possibly empty).

Each partitioner takes the call's ``cost.Cost`` as its last argument: every launch and
device-to-host copy of a ``prox_rows`` call goes through it, and its totals are the call's
``RowsResult.counters`` (docs/design.md#cost-counted-without-a-gpu): ``launches``, ``syncs``, ``d2h_copies``,
``d2h_bytes``, ``bytes`` (modelled global-memory traffic), ``serial_steps``, ``shared_steps``,
``depth``, ``round_depth``, and ``partition_syncs``.

Host synchronisations per call (``HOST_SYNCS``): one for the input check (the finiteness test,
``wsrbench.core.checks``; not in ``counters``, see ``validation_cost``), the algorithm's own
(``counters["partition_syncs"]``; imminent: one per round + 1; search, pava: none) and one for
the final rounds/clusters copy.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ...core.contract import RowsResult
from . import finish as _finish
from . import hull_bridges, imminent_collisions, pava, search_collisions
from .cost import Cost
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


def validation_cost(n: int, d: int, itemsize: int) -> dict:
    """What the input check (``device.first_outside``) adds to a call on contiguous float input:
    one kernel reading every entry once and the one-int copy back (one host sync)."""
    return {"launches": 1, "syncs": 1, "d2h_copies": 1, "d2h_bytes": 8,
            "bytes": n * d * itemsize + 8, "depth": 1}


def prox_rows(X, lam: float, *, l1: float, rho: float, algorithm: str,
              labels: bool = False) -> RowsResult:
    """Backend contract (``wsrbench.core.contract.ProxRows``) on a 2-D float32/float64 CUDA array.

    ``counters``: the call's cost (module docstring); ``stats``: the algorithm's per-row
    counters; ``labels``: ``finish.block_labels`` on the device (no extra host sync).
    """
    like = X
    X = device_array(X.detach() if is_torch(X) else X)  # a tensor requiring grad has no CAI
    n, d = X.shape
    cost = Cost()
    W = cuda.device_array((n, d), dtype=X.dtype)
    if n == 0 or d == 0:
        z = np.zeros(n, dtype=np.int64)
        L = same_kind(like, cuda.device_array((n, d), "int64")) if labels else None
        return RowsResult(same_kind(like, W), z, z.copy(), [{} for _ in range(n)], None,
                          dict(cost.as_dict(), partition_syncs=0), L)
    rounds, clusters, stats, syncs, L, depth = _pipeline(X, W, lam, l1, rho, algorithm, cost,
                                                         labels=labels)
    return RowsResult(same_kind(like, W), rounds, clusters, stats, depth,
                      dict(cost.as_dict(), partition_syncs=syncs),
                      same_kind(like, L) if labels else None)


def _pipeline(X, W, lam, l1, rho, algorithm, cost, sort_method=None, labels=False):
    """Sort, centre, partition, finish into W: (rounds, clusters, stats, partition syncs, L,
    depth). Every kernel reads the sorted rows as centred float64 on the fly (``finish.centred``,
    docs/design.md#the-pipelines-own-floor)."""
    n, d = X.shape
    keys, order = sort_rows(X, cost, sort_method)
    center = cost.empty(n, "float64")
    cost(_finish.row_centers, grid(n))(keys, center)
    if d == 1:
        is_start = _finish.full((n, 1), 1, "int8", cost)
        rounds = _finish.full(n, 0, "int64", cost)
        syncs, extra = 0, {}
    elif algorithm is None:  # no partition (one block per row): the pipeline's own cost, 14.7
        is_start, rounds = cost.empty((n, d), "int8"), cost.empty(n, "int64")
        cost(_no_partition, grid(n * d))(is_start, rounds)
        syncs, extra = 0, {}
    else:
        is_start, rounds, syncs, extra = ALGORITHMS[algorithm](keys, center, lam, cost)
    clusters = _finish.full(n, 0, "int64", cost)
    _finish.finish(is_start, keys, order, center, lam, l1, rho, W, clusters, cost)
    if lam == 0.0 and l1 == 0.0:
        # x itself: -0.0 and 0.0 share a run but keep their own signs (docs/design.md#ties)
        W.copy_to_device(X)
    # The one transfer back: every counter in a single copy.
    k = 2 + len(extra)
    counts = cost.empty((k, n), "int64")
    more = tuple(extra.values()) if extra else ()
    more += (rounds,) * (3 - len(more))  # padding arguments: rows >= k are never written
    cost(_stack_rows, grid(k * n))(rounds, clusters, *more, counts)
    host = cost.to_host(counts)
    stats = [{name: int(host[2 + i, r]) for i, name in enumerate(extra)} for r in range(n)]
    if algorithm == "pava":
        for r in range(n):  # pava's depth is its sequential steps (docs/design.md#parallel-depth)
            if d > 1:
                stats[r]["depth"] = int(host[0, r])
    # The depth where this algorithm's kernels count it (all but imminent_collisions); 0 for d = 1.
    depth = None
    if d == 1 or all("depth" in st for st in stats):
        depth = np.array([st.get("depth", 0) for st in stats], dtype=np.int64)
    L = None
    if labels:
        L = _finish.block_labels(is_start, order, cost)
    return host[0].copy(), host[1].copy(), stats, syncs, L, depth


def count_call(n: int, d: int, dtype, lam: float, algorithm: str | None, *, violations=(),
               sort_method: str | None = None, validation: bool = True) -> dict:
    """The counters of a prox call on an (n, d) array, from a dry run (nothing launched).

    algorithm=None counts the pipeline without a partition (the check, sort, centring, block
    values, un-sort and the counters' copy, every row one block): what every algorithm pays
    besides its own kernels (docs/design.md#the-pipelines-own-floor).

    violations: for imminent_collisions, the new violations of each round (all rows together),
    e.g. from ``wsrbench.bench.gpu_model.imminent_violations``; the other algorithms' host code does
    not depend on the data. validation: add ``validation_cost`` (the input check).
    """
    from .cost import Phantom

    cost = Cost(dry=True, script=violations)
    X, W = Phantom((n, d), dtype), Phantom((n, d), dtype)
    _, _, _, syncs, _, _ = _pipeline(X, W, lam, 0.0, 0.0, algorithm, cost, sort_method)
    out = dict(cost.as_dict(), partition_syncs=syncs)
    if validation:
        for k, v in validation_cost(n, d, np.dtype(dtype).itemsize).items():
            out[k] += v
    return out


@cuda.jit(cache=True)
def _no_partition(is_start, rounds):
    """What the floor of 14.7 has instead of a partition: every row one block, no rounds, in the
    one launch that the cheapest partition (hull_bridges on a row of one tile) also takes."""
    t = cuda.grid(1)
    n, d = is_start.shape
    if t >= n * d:
        return
    r = t // d
    k = t - r * d
    is_start[r, k] = 0
    if k == 0:
        rounds[r] = 0


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
