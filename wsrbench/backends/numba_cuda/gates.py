"""Hard Concrete gates, numba-cuda kernels: one thread per gate (grid-stride), float64 math.

Formulas and numerics as in ``wsrbench.backends.numpy.gates`` (tail-accurate sigmoid, log1p).
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda, float64

from .launch import THREADS, blocks


@cuda.jit(device=True, inline=True)  # not inline: numba-cuda would ask the driver for the CC
def _sigmoid(t):
    if t >= 0.0:
        return 1.0 / (1.0 + math.exp(-t))
    e = math.exp(t)
    return e / (1.0 + e)


@cuda.jit(device=True, inline=True)  # not inline: numba-cuda would ask the driver for the CC
def _clip01(z):
    return min(1.0, max(0.0, z))


@cuda.jit
def _sample(la, u, beta, gamma, zeta, out):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, la.shape[0], stride):
        ui = float64(u[i])
        t = (math.log(ui) - math.log1p(-ui) + float64(la[i])) / beta
        out[i] = _clip01(_sigmoid(t) * (zeta - gamma) + gamma)


@cuda.jit
def _gate(la, gamma, zeta, out):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, la.shape[0], stride):
        out[i] = _clip01(_sigmoid(float64(la[i])) * (zeta - gamma) + gamma)


@cuda.jit
def _prob(la, scale, offset, out):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, la.shape[0], stride):
        out[i] = _sigmoid(scale * float64(la[i]) + offset)


def _elementwise(kernel, log_alpha, dtype, *params):
    """out[i] = kernel's formula of log_alpha[i] (and the other arrays/scalars in params)."""
    n = log_alpha.shape[0]
    out = cuda.device_array(n, dtype=dtype)
    if n:
        kernel[blocks(n), THREADS](log_alpha, *params, out)
    return out


def hard_concrete(log_alpha, u, beta: float, gamma: float, zeta: float):
    return _elementwise(_sample, log_alpha, np.result_type(log_alpha.dtype, u.dtype), u,
                        float(beta), float(gamma), float(zeta))


def hard_concrete_gate(log_alpha, gamma: float, zeta: float):
    return _elementwise(_gate, log_alpha, log_alpha.dtype, float(gamma), float(zeta))


def hard_concrete_prob(log_alpha, scale: float, offset: float):
    return _elementwise(_prob, log_alpha, log_alpha.dtype, float(scale), float(offset))
