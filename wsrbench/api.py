"""Public entry points for the weight-sharing prox and penalty."""
from __future__ import annotations

from typing import Any

import numpy as np

from .core.checks import as_float_array, as_rows
from .core.solve import ProxInfo, result_and_info, solve, solve_vector

__all__ = ["prox", "prox_info", "penalty", "ProxInfo", "result_and_info"]


def prox_info(x: Any, lam: float, *, l1: float = 0.0, rho: float = 0.0, algorithm: str = "auto",
              backend: str = "auto", labels: bool = False) -> tuple[Any, ProxInfo]:
    """Like :func:`prox`, and also return a :class:`ProxInfo` ``(w, info)``.

    labels=True also fills ``info.labels`` (the cluster of every weight; see :class:`ProxInfo`).
    """
    arr, res, alg, name = solve(x, lam, l1, rho, algorithm, backend, labels)
    return result_and_info(arr, res, alg, name)


def prox(x: Any, lam: float, *, l1: float = 0.0, rho: float = 0.0, algorithm: str = "auto",
         backend: str = "auto") -> Any:
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
    w = solve_vector(x, lam, l1, rho, algorithm, backend)
    if w is not None:
        return w
    arr, res, _, _ = solve(x, lam, l1, rho, algorithm, backend, False)
    return res.W.reshape(arr.shape) if arr.ndim == 1 else res.W


def penalty(x: Any) -> Any:
    r"""R(x) = 1/(d-1) sum_{i<j} |x_i - x_j| in O(d log d); per row for 2-D input (0 when d <= 1).

    With x sorted, sum_{i<j}|x_i - x_j| = sum_{k=1}^{d-1} k (d-k) (x_(k) - x_(k-1)): a sum of
    non-negative terms (no cancellation), accumulated in float64. Each row is summed as x 2^-e
    (2^(e-1) <= max|x| < 2^e, an exact power-of-two scaling) and the result multiplied by 2^e: the
    gaps stay below 2 and the weighted sum below d^2 / 2, so R is finite whenever the true R is
    (docs/design.md#the-other-operators-over-the-whole-range); ordinary rows get the same bits as
    an unscaled sum. Returns x's float dtype: a scalar for 1-D input, one value per row for 2-D
    input (inf where the true R exceeds the dtype's range).
    """
    arr = as_float_array(x, "x")
    X = as_rows(arr)
    n, d = X.shape
    out = np.zeros(n)
    if d > 1:
        xs = np.sort(X, axis=1).astype(np.float64)
        _, e = np.frexp(np.abs(xs).max(axis=1))
        gaps = np.diff(np.ldexp(xs, -e[:, None]), axis=1)
        k = np.arange(1, d, dtype=np.float64)
        with np.errstate(over="ignore"):
            out = np.ldexp(gaps @ (k * (d - k)) / (d - 1), e)
    with np.errstate(over="ignore"):
        out = out.astype(arr.dtype)
    return out[0] if arr.ndim == 1 else out
