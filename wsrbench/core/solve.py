"""One prox call end to end: check the arguments, choose the backend, solve the rows in range, and
describe what was done (:class:`ProxInfo`). ``wsrbench.api`` and ``wsrbench.core.warm_start`` share it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import registry
from .checks import FLOAT_DTYPES, as_prox_rows, check_scalar
from .contract import RowsResult
from .numerics import prox_rows_in_range


@dataclass
class ProxInfo:
    """What a prox call did.

    rounds: parallel rounds (imminent/search collisions), clusters resolved one scan each
        (end_collisions) or sequential push+pool steps (pava). An int for 1-D input, an int64
        array with one entry per row for 2-D input.
    clusters: number of blocks of the isotonic fit (before L1), same shape convention.
    stats: per-row dicts of algorithm-specific counters (pava: merges, max_stack,
        longest_backmerge).
    depth: parallel depth of the partition (dependent steps with unlimited processors, counted
        by one rule for every algorithm: docs/design.md#parallel-depth); same shape convention;
        None where the backend does not count it.
    counters: per-call cost counters of the backend (GPU backends: host synchronisations, ...).
    labels: with ``labels=True``, one int64 per weight (x's shape and array kind): the cluster
        of the partition that weight belongs to, numbered 0, 1, ... in increasing value (per row
        for 2-D input). Taken from the partition, not from the output values, so clusters that
        L1 sets to zero, or that rho or rounding leave equal, keep distinct labels; weights with
        equal labels always have equal outputs. None unless asked (docs/design.md#cluster-labels).
    """
    rounds: int | np.ndarray
    clusters: int | np.ndarray
    algorithm: str
    backend: str
    stats: list = field(default_factory=list)
    depth: int | np.ndarray | None = None
    counters: dict = field(default_factory=dict)
    labels: object = None


def check_params(lam: Any, l1: Any, rho: Any) -> tuple[float, float, float]:
    return (check_scalar(lam, "lam"), check_scalar(l1, "l1"),
            check_scalar(rho, "rho", low=0.0, high=1.0))


def solve(x: Any, lam: Any, l1: Any, rho: Any, algorithm: str, backend: str,
          labels: bool) -> tuple[Any, RowsResult, str, str]:
    """(checked input, RowsResult, algorithm, backend name): what prox and prox_info share."""
    lam, l1, rho = check_params(lam, l1, rho)
    be, alg = registry.resolve(backend, algorithm, x)
    mod = be.load()
    arr, X, in_range = as_prox_rows(x, "x")
    # Beyond numerics.safe_bound the rows are solved scaled by powers of two
    # (docs/design.md#a-proven-safe-range-power-of-two-scaling-beyond-it).
    res = prox_rows_in_range(mod, X, lam, l1=l1, rho=rho, algorithm=alg, in_range=in_range,
                             labels=labels)
    return arr, res, alg, be.name


def solve_vector(x: Any, lam: Any, l1: Any, rho: Any, algorithm: str,
                 backend: str) -> np.ndarray | None:
    """The prox of a plain 1-D float32/float64 NumPy vector by its backend's "prox_vector"
    (checks fused into the kernel: a small vector's fixed cost, docs/design.md#fixed-per-call-cost),
    or None where that backend has none or declines: then :func:`solve` answers."""
    if type(x) is not np.ndarray or x.ndim != 1 or x.dtype not in FLOAT_DTYPES:
        return None
    lam, l1, rho = check_params(lam, l1, rho)
    be, alg = registry.resolve(backend, algorithm, x)
    kernel = registry.vector_kernel(be, alg)
    return None if kernel is None else kernel(x, lam, l1, rho, alg)


def result_and_info(arr: Any, res: RowsResult, algorithm: str,
                    backend: str) -> tuple[Any, ProxInfo]:
    """(w in arr's shape, ProxInfo) from a backend's RowsResult."""
    depth = res.depth
    labels = getattr(res, "labels", None)
    if arr.ndim == 1:
        depth1 = None if depth is None else int(depth[0])
        info = ProxInfo(int(res.rounds[0]), int(res.clusters[0]), algorithm, backend, res.stats,
                        depth1, dict(res.counters),
                        None if labels is None else labels.reshape(arr.shape))
        return res.W.reshape(arr.shape), info
    return res.W, ProxInfo(res.rounds, res.clusters, algorithm, backend, res.stats, depth,
                           dict(res.counters), labels)
