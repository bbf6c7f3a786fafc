"""Projections onto parameter-sharing constraints for torch tensors (CPU or CUDA), autograd-friendly.

Same contract as ``wsrbench.backends.numpy.projection``: flat float32/float64 w, constants already on
w's device. Sums run in float64 (index_add_ / matmul), the result is rounded once to w's dtype, and
every op is differentiable, so the projections can sit inside a parametrisation.
"""
from __future__ import annotations

import torch


def project_ties(w: torch.Tensor, inverse: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Group means: float64 group sums by index_add_, divided by the sizes, gathered back."""
    w64 = w.to(torch.float64)
    sums = torch.zeros(counts.shape[0], dtype=torch.float64, device=w.device)
    means = sums.index_add(0, inverse, w64) / counts
    if w.dtype == torch.float64:
        # Sums of float64 weights may overflow: also sum them by binade (never overflows, no bit
        # lost, numpy/projection.py) and take that where the plain mean is not finite;
        # torch.where keeps it free of host syncs
        # (docs/design.md#the-other-operators-over-the-whole-range). float32 weights cannot overflow
        # a float64 sum.
        high = w64.abs() >= 2.0 ** -900
        zero = torch.zeros_like(w64)
        hi = torch.zeros_like(sums).index_add(0, inverse, torch.where(high, w64 * 2.0 ** -64, zero))
        lo = torch.zeros_like(sums).index_add(0, inverse, torch.where(high, zero, w64))
        means = torch.where(torch.isfinite(means), means,
                            (hi / counts) * 2.0 ** 64 + lo / counts)
    return means[inverse].to(w.dtype)


def project_affine(w: torch.Tensor, V: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """P(w) = w - V (V^T w - b) (see the NumPy reference for the derivation), in float64."""
    w64 = w.to(torch.float64)
    z = V.T @ w64 - b
    return (w64 - V @ z).to(w.dtype)
