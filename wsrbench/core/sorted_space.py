"""The prox in sorted coordinates: shifts, block sums, and turning a partition into weights.

Sort x ascending (rank k = 0..d-1). With shifts v_k = lam (d-1-2k)/(d-1) and y_k = x_(k) + v_k, the
sorted prox is the non-decreasing least-squares fit of y (docs/design.md#the-operator). Every fit of
that kind is
piecewise constant: a partition of 0..d-1 into consecutive blocks, each block at the mean of its y.
The algorithms differ only in how they find the partition; they all share this module for the rest.

Precision: the shifts have closed-form sums (``wsrbench.core.numerics.shift_sum``,
docs/design.md#numerics-and-range), so block values are computed as mean(x over block) + lam
(d-a-b)/(d-1). The shift part
is then exact to a few ulps of itself (in particular exactly 0 for the whole vector, so a
collapsing lam of 1e30 still returns mean(x)), instead of carrying rounding from d large
per-element shifts. The x part is summed per block, in float64, from the original data, never as
an average of averages, and never as a difference of global prefix sums (whose rounding grows with
the position, not with the block).
"""
from __future__ import annotations

import numpy as np

from .numerics import add_exact_zero, block_outputs, shift_sum, soft_threshold  # noqa: F401 (re-exported)


def tie_starts(xo: np.ndarray) -> np.ndarray:
    """First ranks of the runs of equal values of the sorted row ``xo``: the partition at lam = 0."""
    return np.flatnonzero(np.r_[True, xo[1:] != xo[:-1]])


def pool_ties(xo: np.ndarray, starts: np.ndarray, lam: float) -> np.ndarray:
    """The partition with no block boundary inside a run of equal values (docs/design.md#ties).

    ``xo`` is the sorted row as given (not centred: centring can make distinct values equal).
    Equal inputs have equal prox values (docs/design.md#order-preservation-ties), so the canonical
    partition never separates them; a boundary there can only come from a rounded tie of two
    block means, and removing it keeps every block inside one final block. At lam = 0 the fit is
    x itself: the partition is exactly the runs of equal values, whatever the rounded means say.
    """
    if lam == 0.0:
        return tie_starts(xo)
    inner = starts[1:]
    return starts[np.r_[True, xo[inner] != xo[inner - 1]]]


def block_values(xs: np.ndarray, starts: np.ndarray, lam: float, center: float = 0.0,
                 xo: np.ndarray | None = None):
    """Per block: (centroid of x, prox value, size) for the partition given by ``starts``.

    ``xs`` is the sorted row translated by -center; centroid and value are returned untranslated.
    With ``xo`` (the untranslated sorted row), a block of equal values t gets centroid t and value
    t + shift_sum / size, computed from t itself: exactly t at lam = 0, whatever the magnitude of t
    next to the centre (docs/design.md#ties).
    """
    d = xs.shape[0]
    ends = np.append(starts[1:], d)
    sizes = ends - starts
    centroid = np.add.reduceat(xs.astype(np.float64, copy=False), starts) / sizes
    shift = shift_sum(starts, ends, d, lam) / sizes
    value = centroid + shift
    centroid, value = centroid + center, value + center
    if xo is not None:
        first = xo[starts]
        tied = first == xo[ends - 1]
        centroid = np.where(tied, first, centroid)
        value = np.where(tied, add_exact_zero(first, shift), value)
    return centroid, value, sizes


def finish(xs: np.ndarray, starts: np.ndarray, lam: float, l1: float, rho: float,
           center: float = 0.0, xo: np.ndarray | None = None) -> np.ndarray:
    """Sorted weights from a partition: block prox values, then L1 and the rho interpolation.

    prox_{lam R + l1 |.|_1} = soft_threshold_{l1}(prox_{lam R}) (tested against a brute-force
    solve). With rho, each block moves (1 - rho) of the way from its x-centroid to that value;
    blocks that L1 sets to zero stay exactly zero. ``xs`` may have been translated by -center
    (the prox commutes with translation); L1 acts on the untranslated values ``xo`` (see
    ``block_values``).
    """
    if xs.shape[0] == 0:
        return np.zeros(0)
    if lam == 0.0 and l1 == 0.0 and xo is not None:
        # x itself, element by element: -0.0 and 0.0 are one run of equal values, but each
        # keeps its own sign (docs/design.md#ties)
        return xo.astype(np.float64)
    centroid, value, sizes = block_values(xs, starts, lam, center, xo)
    return np.repeat(block_outputs(centroid, value, l1, rho), sizes)
