"""Public entry points for the weight-sharing prox and penalty."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .core import registry
from .core.checks import as_float_array, as_prox_rows, as_rows, check_scalar
from .core.numerics import prox_rows_in_range


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


def _check_params(lam, l1, rho):
    return (check_scalar(lam, "lam"), check_scalar(l1, "l1"),
            check_scalar(rho, "rho", low=0.0, high=1.0))


def prox_info(x, lam, *, l1=0.0, rho=0.0, algorithm="auto", backend="auto", labels=False):
    """Like :func:`prox`, and also return a :class:`ProxInfo` ``(w, info)``.

    labels=True also fills ``info.labels`` (the cluster of every weight; see :class:`ProxInfo`).
    """
    arr, res, alg, name = _solve(x, lam, l1, rho, algorithm, backend, labels)
    return result_and_info(arr, res, alg, name)


def _solve(x, lam, l1, rho, algorithm, backend, labels):
    """(checked input, RowsResult, algorithm, backend name): what prox and prox_info share."""
    lam, l1, rho = _check_params(lam, l1, rho)
    be, alg = registry.resolve(backend, algorithm, x)
    mod = be.load()
    arr, X, in_range = as_prox_rows(x, "x")
    # Beyond numerics.safe_bound the rows are solved scaled by powers of two
    # (docs/design.md#a-proven-safe-range-power-of-two-scaling-beyond-it).
    res = prox_rows_in_range(mod, X, lam, l1=l1, rho=rho, algorithm=alg, in_range=in_range,
                             labels=labels)
    return arr, res, alg, be.name


def result_and_info(arr, res, algorithm: str, backend: str):
    """(w in arr's shape, ProxInfo) from a backend's RowsResult."""
    depth = res.depth
    labels = getattr(res, "labels", None)
    if arr.ndim == 1:
        if depth is not None:
            depth = int(depth[0])
        info = ProxInfo(int(res.rounds[0]), int(res.clusters[0]), algorithm, backend, res.stats,
                        depth, dict(res.counters),
                        None if labels is None else labels.reshape(arr.shape))
        return res.W.reshape(arr.shape), info
    return res.W, ProxInfo(res.rounds, res.clusters, algorithm, backend, res.stats, depth,
                           dict(res.counters), labels)


def prox(x, lam, *, l1=0.0, rho=0.0, algorithm="auto", backend="auto"):
    r"""Proximal map of weight-sharing regularization (plus optional L1), row by row.

    .. math::
        \operatorname{prox}(x) = \arg\min_w \tfrac12\|w - x\|^2 + \lambda R(w) + \mu\|w\|_1,
        \qquad R(w) = \frac{1}{d-1}\sum_{i<j} |w_i - w_j|

    Parameters
    ----------
    x : array_like, 1-D (one vector) or 2-D (each row an independent vector)
        float32 stays float32, float64 stays float64, integers become float64. Never modified.
    lam : float >= 0
        Weight of R. 0 returns x; a large lam collapses each row to its mean.
    l1 : float >= 0
        mu, weight of an added L1 term: the result is soft_threshold_mu(prox_{lam R}(x)).
    rho : float in [0, 1]
        Training variant: each cluster moves (1 - rho) of the way from its centroid in x to its
        prox value (rho = 1 only merges). Which weights merge is always decided by the full lam.
    algorithm : "auto" or a name from :func:`wsrbench.list_algorithms`
        "auto" is the backend's default (``pava`` on the CPU backends).
    backend : "auto" or a name from :func:`wsrbench.list_backends`
        "auto" picks by array kind: NumPy input goes to ``numba`` when installed, else ``numpy``.

    Returns
    -------
    w : array of x's shape, dtype and kind.
    """
    # No ProxInfo: prox returns no counters (a few us of a small call,
    # docs/design.md#the-torch-backends-imminent_collisions-and-the-papers-torch-code).
    arr, res, _, _ = _solve(x, lam, l1, rho, algorithm, backend, False)
    return res.W.reshape(arr.shape) if arr.ndim == 1 else res.W


def penalty(x):
    r"""R(x) = 1/(d-1) sum_{i<j} |x_i - x_j| in O(d log d); per row for 2-D input (0 when d <= 1).

    With x sorted, sum_{i<j}|x_i - x_j| = sum_{k=1}^{d-1} k (d-k) (x_(k) - x_(k-1)): a sum of
    non-negative terms (no cancellation), accumulated in float64. Returns x's float dtype: a scalar
    for 1-D input, one value per row for 2-D input.
    """
    arr = as_float_array(x, "x")
    X = as_rows(arr)
    n, d = X.shape
    out = np.zeros(n)
    if d > 1:
        gaps = np.diff(np.sort(X, axis=1).astype(np.float64), axis=1)
        k = np.arange(1, d, dtype=np.float64)
        out = gaps @ (k * (d - k)) / (d - 1)
    out = out.astype(arr.dtype)
    return out[0] if arr.ndim == 1 else out
