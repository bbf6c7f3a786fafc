"""Projections onto parameter-sharing constraints, numba-cuda kernels
(docs/design.md#ties-affine-constraints-reparameterization).

Same contract as ``wsrbench.backends.numpy.projection`` with device arrays. Ties: float64 group sums
by atomic adds (one per weight), then a gather of sum / count per weight. Affine: V^T w by one block
per column (tree reduction in shared memory, float64), then w - V z with one thread per weight.
Atomic float64 adds run in whatever order the hardware picks, so group sums can differ from the
NumPy reference in the last bits (within (size - 1) eps64 of the sum of magnitudes).
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64

from .launch import REDUCE_THREADS, THREADS, blocks
from .numerics import mul_rn


@cuda.jit
def _zero(a):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, a.shape[0], stride):
        a[i] = 0.0


@cuda.jit
def _group_sums(w, inverse, sums, scaled, small):
    # Also the sums by binade, which cannot overflow and lose no bit (numpy/projection.py,
    # docs/design.md#the-other-operators-over-the-whole-range): w 2^-64 for |w| >= 2^-900, w
    # below; used only for groups whose plain sum is not finite.
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, w.shape[0], stride):
        wi = float64(w[i])
        cuda.atomic.add(sums, inverse[i], wi)
        if abs(wi) >= 1.1830521861667747e-271:  # 2^-900
            cuda.atomic.add(scaled, inverse[i], wi * 5.421010862427522e-20)  # 2^-64
        else:
            cuda.atomic.add(small, inverse[i], wi)


@cuda.jit
def _gather_means(inverse, sums, scaled, small, counts, out):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, out.shape[0], stride):
        g = inverse[i]
        m = sums[g] / counts[g]
        if not math.isfinite(m):
            # 2^64; the product rounded on its own (exact anyway), so no FMA reaches the PTX
            m = mul_rn(scaled[g] / counts[g], 1.8446744073709552e19) + small[g] / counts[g]
        out[i] = m


def project_ties(w, inverse, counts):
    n = w.shape[0]
    out = cuda.device_array(n, dtype=w.dtype)
    if n == 0:
        return out
    k = counts.shape[0]
    sums = cuda.device_array(k, dtype=np.float64)
    scaled = cuda.device_array(k, dtype=np.float64)
    small = cuda.device_array(k, dtype=np.float64)
    for acc in (sums, scaled, small):
        _zero[blocks(k), THREADS](acc)
    _group_sums[blocks(n), THREADS](w, inverse, sums, scaled, small)
    _gather_means[blocks(n), THREADS](inverse, sums, scaled, small, counts, out)
    return out


@cuda.jit
def _columns_dot(w, V, b, z):
    # Block j computes z[j] = sum_i V[i, j] w[i] - b[j]: strided partial sums, then a tree.
    j = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    buf = cuda.shared.array(REDUCE_THREADS, float64)
    acc = 0.0
    for i in range(tid, w.shape[0], cuda.blockDim.x):
        acc += V[i, j] * float64(w[i])
    buf[tid] = acc
    cuda.syncthreads()
    s = REDUCE_THREADS // 2
    while s > 0:
        if tid < s:
            buf[tid] += buf[tid + s]
        cuda.syncthreads()
        s //= 2
    if tid == 0:
        z[j] = buf[0] - b[j]


@cuda.jit
def _minus_Vz(w, V, z, out):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, w.shape[0], stride):
        acc = float64(w[i])
        for j in range(z.shape[0]):
            acc -= V[i, j] * z[j]
        out[i] = acc


def project_affine(w, V, b):
    n, r = V.shape
    out = cuda.device_array(n, dtype=w.dtype)
    if n == 0:
        return out
    z = cuda.device_array(r, dtype=np.float64)
    if r:
        _columns_dot[r, REDUCE_THREADS](w, V, b, z)
    _minus_Vz[blocks(n), THREADS](w, V, z, out)
    return out
