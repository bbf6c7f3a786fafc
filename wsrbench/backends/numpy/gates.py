"""Hard Concrete gates, NumPy reference (docs/design.md#hard-concrete-gates).

Inputs are flat float32/float64 arrays validated by ``wsrbench.ops.gates``; every formula is evaluated in
float64 and rounded once to the result dtype (np.result_type of the array inputs).
"""
from __future__ import annotations

import numpy as np


def sigmoid(t: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-t)) without overflow and with full relative accuracy in both tails.

    For t < 0 the form exp(t) / (1 + exp(t)) keeps tiny probabilities (1e-30) accurate, which
    1 - sigmoid(-t) or the tanh form would round to 0.
    """
    e = np.exp(-np.abs(t))
    return np.where(t >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def hard_concrete(log_alpha, u, beta: float, gamma: float, zeta: float) -> np.ndarray:
    """z = clip(sigmoid((log u - log(1 - u) + log_alpha) / beta) (zeta - gamma) + gamma, 0, 1)."""
    dtype = np.result_type(log_alpha, u)
    u64 = u.astype(np.float64, copy=False)
    t = (np.log(u64) - np.log1p(-u64) + log_alpha.astype(np.float64, copy=False)) / beta
    z = sigmoid(t) * (zeta - gamma) + gamma
    return np.clip(z, 0.0, 1.0).astype(dtype, copy=False)


def hard_concrete_gate(log_alpha, gamma: float, zeta: float) -> np.ndarray:
    """Test-time gate clip(sigmoid(log_alpha) (zeta - gamma) + gamma, 0, 1)."""
    z = sigmoid(log_alpha.astype(np.float64, copy=False)) * (zeta - gamma) + gamma
    return np.clip(z, 0.0, 1.0).astype(log_alpha.dtype, copy=False)


def hard_concrete_prob(log_alpha, scale: float, offset: float) -> np.ndarray:
    """sigmoid(scale * log_alpha + offset): P(z != 0), P(z = 0) and P(z = 1) are all of this form."""
    t = scale * log_alpha.astype(np.float64, copy=False) + offset
    return sigmoid(t).astype(log_alpha.dtype, copy=False)
