"""Kernels of the tests' own (imported only where the numba_cuda backend is available)."""
from __future__ import annotations

from numba import cuda

from wsrbench.backends.numba_cuda.segscan import carry_in, combine


@cuda.jit
def sums_down(heads, X, chunk, PS, PA, has_parent, S, A):
    """A level-0 consumer of ``segscan.Scan`` that writes the scan itself: S[r, k] = sum of X
    over [head of k, k] and A[r, k] = that head (column 0 and where ``heads`` is set)."""
    t = cuda.grid(1)
    n, d = X.shape
    lo = t * chunk
    if lo >= n * d:
        return
    s, a = carry_in(PS, PA, has_parent, t)
    for k in range(lo, min(lo + chunk, n * d)):
        r = k // d
        col = k - r * d
        s, a = combine(s, a, X[r, col], col == 0 or heads[r, col] != 0, col)
        S[r, col] = s
        A[r, col] = a
