"""Soft weight sharing for torch tensors: penalty (autograd), closed-form gradient, quantizer.

Formulas as in ``wsrbench.backends.numpy.soft_sharing``. The penalty is computed in float64
(torch.logsumexp over the components) and returned in w's dtype, differentiable with respect to w
and to any mixture tensor that requires grad. Where pi_j = 0 the log-weight is -inf and the
component drops out; the masked log keeps autograd free of 0 * inf = NaN (its pi_j-partial there is
0, one-sided). :func:`soft_sharing_grad` returns the exact closed forms, also at pi_j = 0.
"""
from __future__ import annotations

import math

import torch

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _log_parts(w, pi, mu, sigma):
    w64, pi64, mu64, sig64 = (t.to(torch.float64) for t in (w, pi, mu, sigma))
    pos = pi64 > 0
    log_pi = torch.where(pos, torch.log(torch.where(pos, pi64, torch.ones_like(pi64))),
                         torch.full_like(pi64, -math.inf))
    dz = (w64[:, None] - mu64[None, :]) / sig64[None, :]
    log_n = -0.5 * dz * dz - torch.log(sig64)[None, :] - LOG_SQRT_2PI
    joint = log_n + log_pi[None, :]
    return dz, sig64, log_n, joint, torch.logsumexp(joint, dim=1)


def soft_sharing_penalty(w, pi, mu, sigma):
    """-sum_i logsumexp_j (log pi_j + log N(w_i; mu_j, sigma_j^2)) as a 0-d tensor of w's dtype."""
    return (-_log_parts(w, pi, mu, sigma)[4].sum()).to(w.dtype)


@torch.no_grad()
def soft_sharing_grad(w, pi, mu, sigma):
    """Closed-form partials (w's dtype for d/dw, the mixture dtypes for the rest)."""
    dz, sig64, log_n, joint, lse = _log_parts(w, pi, mu, sigma)
    gone = torch.isneginf(lse)
    lse0 = torch.where(gone, torch.zeros_like(lse), lse)[:, None]
    r = torch.exp(joint - lse0)
    live = r > 0  # a component with r_ij = 0 adds nothing (dz * dz may be inf: not 0 * inf)
    zero = torch.zeros_like(r)
    rdz = torch.where(live, r * dz / sig64[None, :], zero)
    gw = rdz.sum(dim=1)
    gmu = -rdz.sum(dim=0)
    gsig = torch.where(live, r * (1.0 - dz * dz), zero).sum(dim=0) / sig64
    gpi = -torch.where(gone[:, None], zero, torch.exp(log_n - lse0)).sum(dim=0)
    if bool(gone.any()):  # every density underflowed (rare): the reference's limits, on the host
        from ...core.numerics import far_grad
        idx = torch.nonzero(gone).reshape(-1)
        host = [t.detach().cpu().to(torch.float64).numpy() for t in (w[idx], pi, mu, sigma)]
        fw, fpi, fmu, fsig = (torch.from_numpy(a).to(gw.device) for a in far_grad(*host))
        gw = gw.index_copy(0, idx, fw)
        gpi, gmu, gsig = gpi + fpi, gmu + fmu, gsig + fsig
    return gw.to(w.dtype), gpi.to(pi.dtype), gmu.to(mu.dtype), gsig.to(sigma.dtype)


@torch.no_grad()
def quantize(w, pi, mu, sigma):
    joint = _log_parts(w, pi, mu, sigma)[3]
    idx = torch.argmax(joint, dim=1)  # first maximum on exact ties, like NumPy
    return mu.to(torch.float64)[idx].to(w.dtype), idx
