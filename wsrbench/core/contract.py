"""The backend contract, written down as ``typing.Protocol``s
(docs/design.md#the-backend-contract-and-the-registry).

A backend is a module under ``wsrbench.backends`` that the registry imports lazily. It provides

- ``ALGORITHMS``: its table of prox algorithms, name -> implementation (the registry entry lists the
  same names, without importing the module; a conformance test checks that they agree);
- ``prox_rows`` (:class:`ProxRows`): the prox of every row of a 2-D array of its own kind;
- ``from_numpy`` / ``to_numpy``: its array kind to and from NumPy, so that the registry-parametrised
  tests and benchmarks can feed it;
- optionally the capabilities of ``registry.CAPABILITIES`` (:class:`WarmStart`,
  :class:`ProxVector`), declared in its registry entry;
- optionally the operations of ``registry.OPERATIONS`` (projections, gates, soft sharing) with the
  signatures of :class:`ProjectionOps`, :class:`GateOps` and :class:`SoftSharingOps`.

Input checking is not a backend's job: ``wsrbench.core.checks`` has checked and converted the input
(finite float32/float64, at most 2-D) before ``prox_rows`` is called. Counters are returned, never
kept in module globals: per row in ``RowsResult.stats``, per call in ``RowsResult.counters``.

The NumPy reference backend splits each algorithm further: a :class:`Partitioner` finds the
clusters of one sorted, centred row, and the backend does the rest (``wsrbench.core.sorted_space``).
"""
from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np


class RowsResult(NamedTuple):
    """What ``prox_rows`` returns for an (n, d) input.

    Attributes
    ----------
    W : array
        The prox of every row: X's shape, dtype and array kind (and device).
    rounds : ndarray of int64, shape (n,)
        The algorithm's own count of rounds or steps per row (docs/design.md#the-algorithms).
    clusters : ndarray of int64, shape (n,)
        Blocks of the isotonic fit per row (before L1).
    stats : list of dict
        Per row, algorithm-specific counters (possibly empty dicts).
    depth : ndarray of int64, shape (n,), or None
        Parallel depth per row, where the backend counts it.
    counters : dict
        Per call, cost counters (GPU backends: host synchronisations, ...); may be empty.
    labels : array of int64, or None
        With ``prox_rows(..., labels=True)``: X's shape and kind, the block of the canonical
        partition of every weight, numbered 0, 1, ... in increasing value per row
        (docs/design.md#cluster-labels); None unless asked.
    """

    W: Any
    rounds: np.ndarray
    clusters: np.ndarray
    stats: list
    depth: np.ndarray | None = None
    counters: dict = {}
    labels: Any = None


@runtime_checkable
class ProxRows(Protocol):
    def __call__(self, X: Any, lam: float, *, l1: float, rho: float,
                 algorithm: str, labels: bool = False) -> RowsResult:
        """Prox of every row of the 2-D float32/float64 array X (the backend's kind); with
        ``labels`` also ``RowsResult.labels``."""


class Partitioner(Protocol):
    def __call__(self, xs: np.ndarray, lam: float) -> tuple[np.ndarray, int, dict]:
        """(starts, rounds, stats) of the fit of y_k = xs_k + v_k; xs sorted, centred, float64.

        starts: int64 start index of every cluster (starts[0] == 0, increasing); rounds: the
        algorithm's rounds or steps; stats: a dict of counters.
        """


@runtime_checkable
class ProxBackend(Protocol):
    """What the registry needs of a backend module."""

    ALGORITHMS: dict

    def prox_rows(self, X: Any, lam: float, *, l1: float, rho: float,
                  algorithm: str, labels: bool = False) -> RowsResult: ...

    def from_numpy(self, a: np.ndarray) -> Any: ...

    def to_numpy(self, a: Any) -> np.ndarray: ...


class ProjectionOps(Protocol):
    """``project_ties(w, inverse, counts)``: each weight to its group mean (inverse: group index
    per weight, counts: group sizes); ``project_affine(w, V, b)``: w - V (V^T w - b)."""

    def project_ties(self, w: Any, inverse: Any, counts: Any) -> Any: ...

    def project_affine(self, w: Any, V: Any, b: Any) -> Any: ...


class GateOps(Protocol):
    """Hard Concrete gates (docs/design.md#hard-concrete-gates), elementwise."""

    def hard_concrete(self, log_alpha: Any, u: Any, beta: float, gamma: float,
                      zeta: float) -> Any: ...

    def hard_concrete_gate(self, log_alpha: Any, gamma: float, zeta: float) -> Any: ...

    def hard_concrete_prob(self, log_alpha: Any, scale: float, offset: float) -> Any: ...


class SoftSharingOps(Protocol):
    """Gaussian-mixture soft sharing (docs/design.md#soft-weight-sharing)."""

    def soft_sharing_penalty(self, w: Any, pi: Any, mu: Any, sigma: Any) -> float: ...

    def soft_sharing_grad(self, w: Any, pi: Any, mu: Any, sigma: Any) -> Any: ...

    def quantize(self, w: Any, pi: Any, mu: Any, sigma: Any) -> Any: ...


#: Operation name -> the Protocol whose method it is (registry.OPERATIONS is checked against it).
OPERATION_PROTOCOLS = {
    "project_ties": ProjectionOps, "project_affine": ProjectionOps,
    "hard_concrete": GateOps, "hard_concrete_gate": GateOps, "hard_concrete_prob": GateOps,
    "soft_sharing_penalty": SoftSharingOps, "soft_sharing_grad": SoftSharingOps,
    "quantize": SoftSharingOps,
}


class ArrayPrimitives(Protocol):
    """What core needs of the backend that owns an array kind other than NumPy's and torch's (the
    CUDA backend, named by its registry entry's ``array_primitives``): zero-copy views, casts and the
    range check, each computed on the device."""

    def device_array(self, x: Any) -> Any: ...  # x as the backend's device array, zero-copy
    def same_kind(self, like: Any, W: Any) -> Any: ...  # W in the array type of ``like``
    def converted(self, dev: Any, dtype: np.dtype) -> Any: ...  # a copy cast to dtype
    def contiguous(self, dev: Any) -> Any: ...  # a C-contiguous copy (itself if it is one)

    def first_outside(self, x: Any, low: float, high: float, low_open: bool,
                      high_open: bool) -> int: ...  # flat index of the first entry outside, or -1


@runtime_checkable
class ProxVector(Protocol):
    """Optional capability "prox_vector": the prox of one NumPy vector with the checks fused into
    the kernel, for the fixed per-call cost of small vectors (``wsrbench.core.solve.solve_vector``).

    ``prox_vector(x, lam, l1, rho, algorithm)`` gets a 1-D float32/float64 NumPy array of native
    byte order that nothing has checked yet, and lam, l1, rho already checked. It returns the
    answer (a new array; x untouched), exactly what ``prox_rows`` gives for ``x[None]``, or None
    to decline: then the general path answers, checks and error messages included. It must
    decline every input the general path would reject or scale (a NaN or Inf entry, one beyond
    ``numerics.safe_bound``), and may decline anything else.
    """

    def prox_vector(self, x: np.ndarray, lam: float, l1: float, rho: float,
                    algorithm: str) -> np.ndarray | None: ...


@runtime_checkable
class WarmStart(Protocol):
    """Optional capability "warm_start" (``wsrbench.core.warm_start.ProxState``): the pava prox of
    NumPy rows with the previous call's sort order as a hint.

    ``prepare_rows(X)`` returns X in the layout ``warm_prox_rows`` reads (C-contiguous, X's float
    dtype). ``warm_prox_rows(X, lam, l1, rho, recs, flags, have_hint, budget, work, L)`` returns
    ``(RowsResult, moves, work)``: ``recs`` (n, 2d) uint64 holds the sort records of the last
    call (the hint when ``have_hint``) and is overwritten with this call's; ``flags`` (n, d)
    uint8 marks where the last call's blocks start in that order (flags[i, 0] = 0: none kept)
    and is overwritten likewise; ``moves[i]`` is the work row i's hint left (insertion moves, or values
    sorted inside spread clusters; -1 where the hint was dropped: more than ``budget`` moves per
    element); ``work`` is scratch kept between calls (None at first); ``L`` (n, d) int64 receives
    the labels, or is (n, 0) when none are asked. ``out``: a C-contiguous array of X's shape and
    dtype to write the answer into (X itself included: every kernel reads all of a row before it
    writes any of its answer), or None for a new one.
    """

    def prepare_rows(self, X: np.ndarray) -> np.ndarray: ...

    def warm_prox_rows(self, X: np.ndarray, lam: float, l1: float, rho: float, recs: np.ndarray,
                       flags: np.ndarray, have_hint: bool, budget: float, work: Any, L: np.ndarray,
                       out: np.ndarray | None = None) -> tuple[RowsResult, np.ndarray, Any]: ...
