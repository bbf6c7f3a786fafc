"""Projections onto parameter-sharing constraints, NumPy reference
(docs/design.md#ties-affine-constraints-reparameterization).

Both operations take flat (1-D, contiguous) float32/float64 arrays already validated by
``wsrbench.ops.projection``; sums are accumulated in float64 and the result is rounded once to w's dtype.
"""
from __future__ import annotations

import numpy as np

#: Group sums that overflow are redone by binade: the weights with |w| >= TIE_SPLIT are summed as
#: w 2^-64 (a sum of n < 2^63 such terms is below max|w| / 2, so it cannot overflow, and w 2^-64
#: >= 2^-964 is normal, so the scaling is exact), the others unscaled (n < 2^63 terms below
#: 2^-900 cannot overflow, and none loses a bit to the subnormal range); the mean is
#: (hi / n) 2^64 + lo / n. Only groups whose plain float64 sum is not finite take this path
#: (docs/design.md#the-other-operators-over-the-whole-range).
TIE_SCALE = 2.0 ** -64
TIE_SPLIT = 2.0 ** -900


def project_ties(w: np.ndarray, inverse: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Replace every weight by the mean of its group.

    inverse: int64 labels in 0..k-1 (one per weight); counts: float64 group sizes (all >= 1).
    The group sum is a float64 bincount of the original weights, so each mean is within
    (size - 1) eps64 (relative to the sum of magnitudes) of the exact mean before the final rounding.
    """
    sums = np.bincount(inverse, weights=w, minlength=counts.shape[0])  # float64 accumulation
    means = sums / counts
    bad = ~np.isfinite(means)
    # float64 sums beyond the range (finite w): redo them scaled,
    # docs/design.md#the-other-operators-over-the-whole-range
    if bad.any():
        w64 = w.astype(np.float64)
        high = np.abs(w64) >= TIE_SPLIT
        hi = np.bincount(inverse, weights=np.where(high, w64 * TIE_SCALE, 0.0),
                         minlength=counts.shape[0])
        lo = np.bincount(inverse, weights=np.where(high, 0.0, w64), minlength=counts.shape[0])
        means[bad] = (hi[bad] / counts[bad]) / TIE_SCALE + lo[bad] / counts[bad]
    return means[inverse].astype(w.dtype, copy=False)


def project_affine(w: np.ndarray, V: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(w) = w - V (V^T w - b): the orthogonal projection onto {w : A w = c}.

    With A = U S V^T (thin SVD, the r numerically nonzero singular values), V (n x r) spans the row
    space of A and b = S^-1 U^T c; V^T P(w) = b then says A P(w) = U U^T c = c for consistent c,
    and w - P(w) = V z lies in the row space, orthogonal to null(A). b = 0 projects a gradient.
    """
    w64 = w.astype(np.float64, copy=False)
    z = V.T @ w64 - b
    return (w64 - V @ z).astype(w.dtype, copy=False)
