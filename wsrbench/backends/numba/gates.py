"""Hard Concrete gates, Numba CPU kernels: elementwise prange loops evaluated in float64.

Formulas and numerics as in ``wsrbench.backends.numpy.gates`` (the tail-accurate sigmoid, log1p).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _sigmoid(t):
    if t >= 0.0:
        return 1.0 / (1.0 + math.exp(-t))
    e = math.exp(t)
    return e / (1.0 + e)


@njit(cache=True, inline="always")
def _clip01(z):
    return min(1.0, max(0.0, z))


@njit(parallel=True, cache=True)
def _sample(la, u, beta, gamma, zeta, out):
    for i in prange(la.shape[0]):
        ui = np.float64(u[i])
        t = (math.log(ui) - math.log1p(-ui) + np.float64(la[i])) / beta
        out[i] = _clip01(_sigmoid(t) * (zeta - gamma) + gamma)


@njit(parallel=True, cache=True)
def _gate(la, gamma, zeta, out):
    for i in prange(la.shape[0]):
        out[i] = _clip01(_sigmoid(np.float64(la[i])) * (zeta - gamma) + gamma)


@njit(parallel=True, cache=True)
def _prob(la, scale, offset, out):
    for i in prange(la.shape[0]):
        out[i] = _sigmoid(scale * np.float64(la[i]) + offset)


def hard_concrete(log_alpha, u, beta: float, gamma: float, zeta: float):
    out = np.empty(log_alpha.shape[0], dtype=np.result_type(log_alpha, u))
    _sample(log_alpha, u, beta, gamma, zeta, out)
    return out


def hard_concrete_gate(log_alpha, gamma: float, zeta: float):
    out = np.empty_like(log_alpha)
    _gate(log_alpha, gamma, zeta, out)
    return out


def hard_concrete_prob(log_alpha, scale: float, offset: float):
    out = np.empty_like(log_alpha)
    _prob(log_alpha, scale, offset, out)
    return out
