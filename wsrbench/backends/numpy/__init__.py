"""The NumPy reference backend: readable, exact, and the yardstick for every other backend.

Pipeline for one row (docs/design.md#numpy-the-reference): stable argsort, centre at the median, a
partition into clusters by the chosen algorithm, block values from sums of the original data, L1 and rho,
un-sort. The algorithms live one per module and only find the partition, so each can be read on its
own next to docs/design.md#the-algorithms.
"""
from __future__ import annotations

import numpy as np

from ...core.contract import RowsResult
from ...core.sorted_space import finish, pool_ties
from . import end_collisions, hull_bridges, imminent_collisions, pava, search_collisions

#: This backend's algorithms: each a partitioner (``wsrbench.core.contract.Partitioner``).
ALGORITHMS = {
    "pava": pava.partition,
    "end_collisions": end_collisions.partition,
    "imminent_collisions": imminent_collisions.partition,
    "search_collisions": search_collisions.partition,
    "hull_bridges": hull_bridges.partition,
}


def prox_row(x: np.ndarray, lam: float, l1: float, rho: float, partition, labels=None):
    """Prox of one 1-D row; returns (w in float64, rounds, clusters, stats).

    labels (optional int64 (d,) out): the block of each x_i, blocks numbered in increasing value.
    """
    d = x.shape[0]
    if d == 0:
        return np.zeros(0), 0, 0, {}
    order = np.argsort(x, kind="stable")
    xo = x[order].astype(np.float64)
    # The prox commutes with translation; working around the median keeps every sum small.
    center = xo[d // 2]
    xs = xo - center
    if d == 1:
        starts, rounds, stats = np.zeros(1, dtype=np.int64), 0, {}
    else:
        starts, rounds, stats = partition(xs, lam)
        # Equal values share one block, decided on the data, not on rounded means.
        starts = pool_ties(xo, starts, lam)
    w = np.empty(d)
    w[order] = finish(xs, starts, lam, l1, rho, center, xo)
    if labels is not None:
        labels[order] = np.repeat(np.arange(starts.shape[0]), np.diff(starts, append=d))
    return w, rounds, starts.shape[0], stats


def prox_rows(X: np.ndarray, lam: float, *, l1: float, rho: float, algorithm: str,
              labels: bool = False) -> RowsResult:
    """Backend contract (``wsrbench.core.contract.ProxRows``): every row of X, one at a time."""
    partition = ALGORITHMS[algorithm]
    n = X.shape[0]
    W = np.empty(X.shape, dtype=X.dtype)
    rounds = np.zeros(n, dtype=np.int64)
    clusters = np.zeros(n, dtype=np.int64)
    stats = []
    L = np.zeros(X.shape, dtype=np.int64) if labels else None
    for i in range(n):
        w, rounds[i], clusters[i], st = prox_row(X[i], lam, l1, rho, partition,
                                                 None if L is None else L[i])
        W[i] = w
        stats.append(st)
    # Every partitioner counts its parallel depth in stats["depth"] (docs/design.md#parallel-depth);
    # a row without a partition (d <= 1) has depth 0.
    depth = np.array([st.get("depth", 0) for st in stats], dtype=np.int64)
    return RowsResult(W, rounds, clusters, stats, depth, labels=L)


def from_numpy(a: np.ndarray) -> np.ndarray:
    return a


def to_numpy(a: np.ndarray) -> np.ndarray:
    return np.asarray(a)
