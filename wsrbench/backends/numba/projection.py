"""Projections onto parameter-sharing constraints, Numba CPU kernels (nopython, cached).

Same contract and arithmetic as ``wsrbench.backends.numpy.projection``: flat float32/float64 w,
float64 accumulation, one rounding to w's dtype at the end. Parallel loops run over chunks of the
weights, each with its own float64 partial sums, so no two threads write the same accumulator.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange


@njit(cache=True)
def _tie_means(w, inverse, counts, out):
    # One pass of float64 group sums (sequential: scattered adds into k accumulators), one gather.
    sums = np.zeros(counts.shape[0])
    for i in range(w.shape[0]):
        sums[inverse[i]] += w[i]
    redo = False
    for g in range(counts.shape[0]):
        sums[g] /= counts[g]
        redo = redo or not np.isfinite(sums[g])
    if redo:  # a group sum overflowed: redo those groups by binade (numpy/projection.py)
        scaled = np.zeros(counts.shape[0])
        small = np.zeros(counts.shape[0])
        for i in range(w.shape[0]):
            if not np.isfinite(sums[inverse[i]]):
                wi = np.float64(w[i])
                if abs(wi) >= 1.1830521861667747e-271:  # 2^-900
                    scaled[inverse[i]] += wi * 5.421010862427522e-20  # 2^-64
                else:
                    small[inverse[i]] += wi
        for g in range(counts.shape[0]):
            if not np.isfinite(sums[g]):
                sums[g] = ((scaled[g] / counts[g]) * 1.8446744073709552e19  # 2^64
                           + small[g] / counts[g])
    for i in range(w.shape[0]):
        out[i] = sums[inverse[i]]


def project_ties(w: np.ndarray, inverse: np.ndarray, counts: np.ndarray) -> np.ndarray:
    out = np.empty_like(w)
    _tie_means(w, inverse, counts, out)
    return out


@njit(parallel=True, cache=True)
def _affine(w, V, b, n_chunks, out):
    n, r = V.shape
    # z = V^T w - b: row-major sweeps over V, each chunk of rows into its own partial sum.
    partial = np.zeros((n_chunks, r))
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        for i in range(c * step, min(n, (c + 1) * step)):
            wi = np.float64(w[i])
            for j in range(r):
                partial[c, j] += V[i, j] * wi
    z = np.empty(r)
    for j in range(r):
        acc = 0.0
        for c in range(n_chunks):
            acc += partial[c, j]
        z[j] = acc - b[j]
    # out = w - V z, one row of V per weight.
    for i in prange(n):
        acc = np.float64(w[i])
        for j in range(r):
            acc -= V[i, j] * z[j]
        out[i] = acc


def project_affine(w: np.ndarray, V: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty_like(w)
    _affine(w, V, b, max(1, min(numba.get_num_threads(), w.shape[0])), out)
    return out
