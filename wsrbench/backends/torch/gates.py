"""Hard Concrete gates for torch tensors (CPU or CUDA), differentiable with respect to log_alpha.

Evaluated in the tensors' own (promoted) dtype so that training stays on the fast path; the formulas
are those of ``wsrbench.backends.numpy.gates``. torch.sigmoid is accurate in both tails, and
log1p(-u) keeps log(1 - u) accurate for u near 0.
"""
from __future__ import annotations

import torch


def hard_concrete(log_alpha, u, beta: float, gamma: float, zeta: float):
    t = (torch.log(u) - torch.log1p(-u) + log_alpha) / beta
    return torch.clamp(torch.sigmoid(t) * (zeta - gamma) + gamma, 0.0, 1.0)


def hard_concrete_gate(log_alpha, gamma: float, zeta: float):
    return torch.clamp(torch.sigmoid(log_alpha) * (zeta - gamma) + gamma, 0.0, 1.0)


def hard_concrete_prob(log_alpha, scale: float, offset: float):
    return torch.sigmoid(scale * log_alpha + offset)
