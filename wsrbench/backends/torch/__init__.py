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

from . import imminent_collisions, search_collisions
from ._common import finish

PARTITIONERS = {
    "imminent_collisions": imminent_collisions.partition,
    "search_collisions": search_collisions.partition,
}

# Host synchronisations of one prox_rows call, besides input validation (one: the finiteness test)
# and the final copy of rounds/clusters to the host (one).
HOST_SYNCS = {
    "imminent_collisions": "one per merge round plus one for the round that finds no violation",
    "search_collisions": "none (every level runs its worst-case number of search steps)",
    "pava": "CPU: none (host memory); CUDA: those of the numba_cuda backend",
}

# Host syncs of the last prox_rows call inside the partition step (tests read it).
last_partition_syncs = 0


@torch.no_grad()
def prox_rows(X: torch.Tensor, lam: float, *, l1: float, rho: float, algorithm: str):
    """Backend contract on a 2-D float32/float64 tensor (any device); see wsrbench.registry."""
    global last_partition_syncs
    if algorithm == "pava":
        return _pava_rows(X, lam, l1=l1, rho=rho)
    partition = PARTITIONERS[algorithm]
    n, d = X.shape
    if n == 0 or d == 0:
        z = np.zeros(n, dtype=np.int64)
        return X.clone(), z, z.copy(), [{} for _ in range(n)]
    xs, order = torch.sort(X, dim=1, stable=True)
    xs = xs.to(torch.float64)
    # The prox commutes with translation; working around the median keeps every sum small.
    center = xs[:, d // 2].clone()
    xs = xs - center[:, None]
    if d == 1:
        is_start = torch.ones(n, 1, dtype=torch.bool, device=X.device)
        rounds = torch.zeros(n, dtype=torch.int64, device=X.device)
        last_partition_syncs = 0
    else:
        is_start, rounds, last_partition_syncs = partition(xs, lam)
    W = finish(X, order, xs, center, is_start, lam, l1, rho)
    counts = torch.stack([rounds, is_start.sum(dim=1)]).cpu().numpy().astype(np.int64)
    return W, counts[0].copy(), counts[1].copy(), [{} for _ in range(n)]


def _pava_rows(X: torch.Tensor, lam: float, *, l1: float, rho: float):
    """pava on another backend's kernel, sharing the tensor's memory (see the module docstring)."""
    from ... import registry

    if X.device.type == "cpu":
        name = "numba" if registry.get_backend("numba").unavailable_reason() is None else "numpy"
        mod = registry.get_backend(name).load()
        W, rounds, clusters, stats = mod.prox_rows(X.detach().numpy(), lam, l1=l1, rho=rho,
                                                   algorithm="pava")
        return torch.from_numpy(W), rounds, clusters, stats
    if X.device.type == "cuda":
        mod = registry.get_backend("numba_cuda").load()  # RuntimeError saying why if unusable
        return mod.prox_rows(X.detach(), lam, l1=l1, rho=rho, algorithm="pava")
    raise TypeError(f"pava on the torch backend takes CPU or CUDA tensors, got device {X.device}")


_INT_DTYPES = (torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def as_rows(x):
    """Validate a tensor like ``_validate.as_float_array`` (same messages) -> (arr, 2-D view)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch tensor for backend 'torch', got {type(x).__name__}")
    if x.dtype in (torch.float32, torch.float64):
        arr = x
    elif x.dtype in _INT_DTYPES or (not x.dtype.is_floating_point and not x.dtype.is_complex
                                    and str(x.dtype).startswith("torch.uint")):
        arr = x.to(torch.float64)
    elif x.dtype.is_floating_point:
        raise TypeError(f"x has dtype {x.dtype}; only float32 and float64 are supported "
                        f"(cast with x.to(torch.float32) or torch.float64)")
    else:
        raise TypeError(f"x must be a real numeric array, got dtype {x.dtype} "
                        f"(convert it with x.to(torch.float64))")
    if arr.ndim > 2:
        raise ValueError(f"x must be at most 2-D, got shape {tuple(arr.shape)}; "
                         f"reshape it to (n_rows, d) so that each row is one vector")
    if arr.ndim == 0:
        raise ValueError("x must be 1-D or 2-D, got a scalar; wrap it as [x]")
    finite = torch.isfinite(arr)
    if arr.numel() and not bool(finite.all()):  # one host sync
        where = tuple(int(i) for i in torch.nonzero(~finite)[0])
        kind = "NaN" if bool(torch.isnan(arr[where])) else "Inf"
        raise ValueError(f"x contains {kind} at index {where if len(where) != 1 else where[0]}; "
                         f"every entry must be finite")
    return arr, (arr.reshape(1, -1) if arr.ndim == 1 else arr)


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def from_numpy(a: np.ndarray) -> torch.Tensor:
    """A copy of ``a`` as a tensor on the default device (CUDA when present, so that the generic
    tests exercise the GPU path on a GPU machine)."""
    return torch.tensor(np.asarray(a), device=_default_device())


def to_numpy(a: torch.Tensor) -> np.ndarray:
    return a.detach().cpu().numpy()
