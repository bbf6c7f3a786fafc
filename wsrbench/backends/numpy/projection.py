"""Projections onto parameter-sharing constraints, NumPy reference (docs/design.md section 5.1).

Both operations take flat (1-D, contiguous) float32/float64 arrays already validated by
``wsrbench.projection``; sums are accumulated in float64 and the result is rounded once to w's dtype.
"""
from __future__ import annotations

import numpy as np


def project_ties(w: np.ndarray, inverse: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Replace every weight by the mean of its group.

    inverse: int64 labels in 0..k-1 (one per weight); counts: float64 group sizes (all >= 1).
    The group sum is a float64 bincount of the original weights, so each mean is within
    (size - 1) eps64 (relative to the sum of magnitudes) of the exact mean before the final rounding.
    """
    sums = np.bincount(inverse, weights=w, minlength=counts.shape[0])  # float64 accumulation
    return (sums / counts)[inverse].astype(w.dtype, copy=False)


def project_affine(w: np.ndarray, V: np.ndarray, b: np.ndarray) -> np.ndarray:
    """P(w) = w - V (V^T w - b): the orthogonal projection onto {w : A w = c}.

    With A = U S V^T (thin SVD, the r numerically nonzero singular values), V (n x r) spans the row
    space of A and b = S^-1 U^T c; V^T P(w) = b then says A P(w) = U U^T c = c for consistent c,
    and w - P(w) = V z lies in the row space, orthogonal to null(A). b = 0 projects a gradient.
    """
    w64 = w.astype(np.float64, copy=False)
    z = V.T @ w64 - b
    return (w64 - V @ z).astype(w.dtype, copy=False)
