"""Projections onto parameter-sharing constraints, NumPy reference
(docs/design.md#ties-affine-constraints-reparameterization).

Both operations take flat (1-D, contiguous) float32/float64 arrays already validated by
``wsrbench.ops.projection``; sums are accumulated in float64 and the result is rounded once to w's dtype.
"""
from __future__ import annotations

import numpy as np

#: Group sums that overflow are redone on w 2^-64: a sum of n < 2^63 terms of w 2^-64 is below
#: max|w| / 2, so it cannot overflow; the mean is then multiplied back by 2^64 (exact). Only
#: groups whose plain float64 sum is not finite take this path (their mean is above 2^1023 / n).
TIE_SCALE = 2.0 ** -64


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
        scaled = np.bincount(inverse, weights=w * TIE_SCALE, minlength=counts.shape[0])
        means[bad] = (scaled[bad] / counts[bad]) / TIE_SCALE
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
