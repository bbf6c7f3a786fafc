"""Kernels of the tests' own (imported only where the numba_cuda backend is available)."""
from __future__ import annotations

from numba import cuda


@cuda.jit
def sums_down(heads, X, chunk, PS, PA, has_parent, S, A):
    """A level-0 consumer of ``segscan.Scan`` that writes the scan itself: S[r, k] = sum of X
    over [head of k, k] and A[r, k] = that head (column 0 and where ``heads`` is set)."""
    t = cuda.grid(1)
    n, d = X.shape
    lo = t * chunk
    if lo >= n * d:
        return
    s = PS[t] if has_parent else 0.0
    a = PA[t] if has_parent else -1
    for k in range(lo, min(lo + chunk, n * d)):
        r = k // d
        col = k - r * d
        if col == 0 or heads[r, col]:
            s = X[r, col]
            a = col
        else:
            s += X[r, col]
        S[r, col] = s
        A[r, col] = a
