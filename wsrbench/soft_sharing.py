r"""Soft weight sharing: a Gaussian mixture prior over the weights (DESIGN.md 2.5).

.. math::
    \Omega(w) = -\sum_i \log \sum_j \pi_j\, \mathcal N(w_i;\ \mu_j, \sigma_j^2),

evaluated with logsumexp over the components (no underflow for weights far from every mean),
float64 throughout. ``soft_sharing_grad`` returns the partials with respect to w, pi, mu and sigma
(pi as free coordinates: project or reparameterise it, e.g. through a softmax, to stay on the
simplex); ``quantize`` replaces each weight by the mean of its most responsible component
(argmax_j pi_j N(w_i; mu_j, sigma_j^2), the first one on exact ties).

w may have any shape (all entries share the prior); pi, mu, sigma are 1-D of one length K >= 1,
with sigma > 0, pi >= 0 and sum(pi) = 1 up to 4 K eps of pi's dtype (each entry carries a few
rounding errors and so does their sum). Mixture parameters of another array kind are moved to w's.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import arrays, checks, numerics, registry


class SoftSharingGrad(NamedTuple):
    w: object
    pi: object
    mu: object
    sigma: object


def _mixture(w, pi, mu, sigma):
    w = checks.as_float(w, "w")
    out = []
    for name, p in (("pi", pi), ("mu", mu), ("sigma", sigma)):
        if arrays.array_kind(p) != arrays.array_kind(w):
            p = arrays.like(np.asarray(arrays.to_host(p)), w)
        p = checks.as_float(p, name, max_ndim=1)
        if p.ndim != 1 or p.shape[0] == 0:
            raise ValueError(f"{name} must be a non-empty 1-D array (one entry per mixture "
                             f"component), got shape {tuple(p.shape)}")
        out.append(p)
    pi, mu, sigma = out
    checks.check_same_shape(pi, "pi", mu, "mu")
    checks.check_same_shape(pi, "pi", sigma, "sigma")
    checks.check_range(sigma, "sigma", 0.0, np.inf, what="> 0 (standard deviations)")
    checks.check_range(pi, "pi", 0.0, 1.0, low_open=False, high_open=False,
                       what="in [0, 1] (mixture weights)")
    k = int(pi.shape[0])
    total = float(arrays.to_host(pi).astype(np.float64).sum())
    tol = 4.0 * k * numerics.eps(arrays.dtype_of(pi))
    if abs(total - 1.0) > tol:
        raise ValueError(f"pi must sum to 1 (mixture weights), got sum {total!r} "
                         f"(|sum - 1| = {abs(total - 1.0):.3g} > tolerance {tol:.3g}); "
                         f"normalise it, e.g. pi / pi.sum()")
    return w, pi, mu, sigma


def soft_sharing_penalty(w, pi, mu, sigma, *, backend="auto"):
    """-sum_i log sum_j pi_j N(w_i; mu_j, sigma_j^2).

    NumPy input: a float64 scalar. torch input: a 0-d tensor of w's dtype that autograd
    differentiates with respect to w and any mixture tensor that requires grad.
    """
    w, pi, mu, sigma = _mixture(w, pi, mu, sigma)
    fn, _ = registry.operation("soft_sharing_penalty", backend, w)
    return fn(arrays.flat(w), pi, mu, sigma)


def soft_sharing_grad(w, pi, mu, sigma, *, backend="auto") -> SoftSharingGrad:
    """Partials of :func:`soft_sharing_penalty`: ``(w, pi, mu, sigma)`` fields.

    The w-gradient has w's shape and dtype; the others are float64 (NumPy) or the mixture
    parameters' dtype (torch), one entry per component. With r_ij the responsibilities:
    d/dw_i = sum_j r_ij (w_i - mu_j)/sigma_j^2, d/dmu_j = -sum_i r_ij (w_i - mu_j)/sigma_j^2,
    d/dsigma_j = sum_i r_ij (1 - (w_i - mu_j)^2/sigma_j^2)/sigma_j, d/dpi_j = -sum_i N_ij / p(w_i).
    """
    w, pi, mu, sigma = _mixture(w, pi, mu, sigma)
    fn, _ = registry.operation("soft_sharing_grad", backend, w)
    gw, gpi, gmu, gsig = fn(arrays.flat(w), pi, mu, sigma)
    return SoftSharingGrad(arrays.match_kind(gw.reshape(tuple(w.shape)), w), gpi, gmu, gsig)


def quantize(w, pi, mu, sigma, *, return_index=False, backend="auto"):
    """Each weight replaced by mu_j of its most responsible component (w's shape, dtype, kind).

    return_index=True also returns the component index per weight (int64, w's shape and kind).
    """
    w, pi, mu, sigma = _mixture(w, pi, mu, sigma)
    fn, _ = registry.operation("quantize", backend, w)
    q, idx = fn(arrays.flat(w), pi, mu, sigma)
    q = arrays.match_kind(q.reshape(tuple(w.shape)), w)
    return (q, arrays.match_kind(idx.reshape(tuple(w.shape)), w)) if return_index else q
