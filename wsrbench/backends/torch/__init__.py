"""The torch backend: the parallel prox algorithms as batched torch tensor ops (CPU or CUDA).

Pipeline, for all rows of a (n, d) tensor at once and on the tensor's own device:
``torch.sort(stable=True)`` along dim 1, centre each row at its median element (float64), find
the partition with the chosen algorithm (``imminent_collisions`` or ``search_collisions``, each
in its own module), then ``_common.finish``: block values from float64 sums of the original data
plus closed-form shift sums, L1, rho, un-sort with ``scatter_``. Runs under ``torch.no_grad()``;
a tensor comes back as a tensor of the same device and dtype. The only data that leave the device
are the per-row ``rounds``/``clusters`` counters (one transfer at the end) and the host syncs each
algorithm documents (``HOST_SYNCS``).

``pava`` is sequential per row, so it is not written in tensor ops: CPU tensors run the Numba CPU
kernel (backend ``numba``, or the NumPy reference without Numba) on the tensor's own memory
(``tensor.numpy()`` is a zero-copy view, and the result is wrapped back without a copy); CUDA
tensors run the numba-cuda batched kernel (one thread per row) through
``__cuda_array_interface__``, also zero-copy.
"""
from __future__ import annotations

import numpy as np
import torch

from ...core.contract import RowsResult
from . import hull_bridges, imminent_collisions, search_collisions
from ._common import finish, finish_blocks, pool_ties

#: This backend's algorithms: partitioners on batches of sorted rows, except pava (see above).
ALGORITHMS = {
    "search_collisions": search_collisions.partition,
    "imminent_collisions": imminent_collisions.partition,
    "hull_bridges": hull_bridges.partition,
    "pava": None,  # sequential: another backend's kernel on the tensor's memory (_pava_rows)
}

# Host synchronisations of one prox_rows call, besides the input check (one: the finiteness test,
# wsrbench.core.checks) and the final copy of rounds/clusters to the host (one).
HOST_SYNCS = {
    "imminent_collisions": "one per merge round plus one for the round that finds no violation",
    "search_collisions": "none (every level runs its worst-case number of search steps)",
    "hull_bridges": "none (every level runs its worst-case number of bridge steps)",
    "pava": "CPU: none (host memory); CUDA: those of the numba_cuda backend",
}


def prox_rows(X: torch.Tensor, lam: float, *, l1: float, rho: float, algorithm: str,
              labels: bool = False) -> RowsResult:
    """Backend contract (``wsrbench.core.contract.ProxRows``); see ``_prox_rows``. Runs under
    ``torch.no_grad()`` only when X requires grad (otherwise no op records a graph, and the
    context costs ~10 us a call, which matters for small rows)."""
    if X.requires_grad:
        with torch.no_grad():
            return _prox_rows(X, lam, l1=l1, rho=rho, algorithm=algorithm, labels=labels)
    return _prox_rows(X, lam, l1=l1, rho=rho, algorithm=algorithm, labels=labels)


def _prox_rows(X: torch.Tensor, lam: float, *, l1: float, rho: float, algorithm: str,
               labels: bool = False) -> RowsResult:
    """Backend contract on a 2-D float32/float64 tensor (any device).

    ``counters["partition_syncs"]``: host synchronisations inside the partition step. ``labels``:
    the block of every sorted position scattered back by the sort order (on the device, no sync).
    """
    if algorithm == "pava":
        return _pava_rows(X, lam, l1=l1, rho=rho, labels=labels)
    partition = ALGORITHMS[algorithm]
    n, d = X.shape
    if n == 0 or d == 0:
        z = np.zeros(n, dtype=np.int64)
        L = torch.zeros(X.shape, dtype=torch.int64, device=X.device) if labels else None
        return RowsResult(X.clone(), z, z.copy(), [{} for _ in range(n)], z.copy(),
                          {"partition_syncs": 0}, L)
    # Any sort will do: equal entries always end in one block (y = x + v strictly decreases along
    # a run of ties, or is constant when lam = 0, and both merge), so the result does not depend
    # on their order; the unstable sort is the faster one
    # (docs/design.md#the-torch-backends-imminent_collisions-and-the-papers-torch-code).
    vals, order = torch.sort(X, dim=1)
    # The prox commutes with translation; working around the median keeps every sum small.
    # float32 -> float64 is exact; a copy for float64 too: vals stay as given (ties, block values)
    xs = vals.to(torch.float64, copy=True)
    center = xs[:, d // 2:d // 2 + 1].clone()  # (n, 1), taken before the rows move
    xs.sub_(center)
    depth = None
    if d == 1:
        is_start = torch.ones(n, 1, dtype=torch.bool, device=X.device)
        rounds = torch.zeros(n, dtype=torch.int64, device=X.device)
        depth = torch.zeros(n, dtype=torch.int64, device=X.device)  # no partition: depth 0
        syncs = 0
    else:
        is_start, rounds, syncs, *more = partition(xs, lam)
        depth = more[0] if more else None  # the algorithm counts its depth on the device
    L = None
    if lam == 0.0 or not isinstance(is_start, imminent_collisions.Blocks):
        # Equal values share one block, decided on the data (docs/design.md#ties); a block list
        # (imminent_collisions) never splits a run: each round merges every violating pair at
        # once, and the pairs inside a run violate in the first round.
        is_start = pool_ties(vals, _dense_starts(is_start, n, d), lam)
    if isinstance(is_start, imminent_collisions.Blocks):  # the partition as a block list
        blocks = is_start
        W = finish_blocks(X, order, center, blocks, lam, l1, rho)
        clusters = blocks.clusters
        if labels:  # global block id per sorted position, less the row's first block id
            size = (blocks.bounds[1:] - blocks.bounds[:-1]).to(torch.int64)
            gid = torch.repeat_interleave(torch.arange(size.numel(), device=X.device), size,
                                          output_size=n * d).reshape(n, d)
            L = torch.empty((n, d), dtype=torch.int64, device=X.device)
            L.scatter_(1, order, gid - gid[:, :1])
    else:
        W = finish(X, order, xs, center, is_start, lam, l1, rho, vals)
        clusters = is_start.sum(dim=1)
        if labels:  # block of sorted position k = block starts up to k, minus one
            L = torch.empty((n, d), dtype=torch.int64, device=X.device)
            L.scatter_(1, order, torch.cumsum(is_start, dim=1) - 1)
    if isinstance(rounds, np.ndarray):  # counted on the host already: no copy, no sync
        return RowsResult(W, rounds, clusters, [{} for _ in range(n)], depth,
                          {"partition_syncs": syncs}, L)
    rows = [rounds, clusters] + ([depth] if depth is not None else [])
    counts = torch.stack(rows).cpu().numpy().astype(np.int64)  # the one copy back
    return RowsResult(W, counts[0].copy(), counts[1].copy(), [{} for _ in range(n)],
                      counts[2].copy() if depth is not None else None,
                      {"partition_syncs": syncs}, L)


def _dense_starts(is_start, n: int, d: int) -> torch.Tensor:
    """An (n, d) bool start mask from a partition given as a mask or a block list."""
    if not isinstance(is_start, imminent_collisions.Blocks):
        return is_start
    mask = torch.zeros(n * d, dtype=torch.bool, device=is_start.bounds.device)
    mask[is_start.bounds[:-1].to(torch.int64)] = True
    return mask.reshape(n, d)


def _pava_rows(X: torch.Tensor, lam: float, *, l1: float, rho: float, labels: bool = False):
    """pava on another backend's kernel, sharing the tensor's memory (see the module docstring)."""
    from ...core import registry

    if X.device.type == "cpu":
        name = "numba" if registry.get_backend("numba").unavailable_reason() is None else "numpy"
        mod = registry.get_backend(name).load()
        res = mod.prox_rows(X.detach().numpy(), lam, l1=l1, rho=rho, algorithm="pava",
                            labels=labels)
        return res._replace(W=torch.from_numpy(res.W),
                            labels=None if res.labels is None else torch.from_numpy(res.labels))
    if X.device.type == "cuda":
        mod = registry.get_backend("numba_cuda").load()  # RuntimeError saying why if unusable
        res = mod.prox_rows(X.detach(), lam, l1=l1, rho=rho, algorithm="pava", labels=labels)
        return res if res.labels is None else res._replace(
            labels=torch.as_tensor(res.labels, device=X.device))
    raise TypeError(f"pava on the torch backend takes CPU or CUDA tensors, got device {X.device}")


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def from_numpy(a: np.ndarray) -> torch.Tensor:
    """A copy of ``a`` as a tensor on the default device (CUDA when present, so that the generic
    tests exercise the GPU path on a GPU machine)."""
    return torch.tensor(np.asarray(a), device=_default_device())


def to_numpy(a: torch.Tensor) -> np.ndarray:
    return a.detach().cpu().numpy()
