"""Soft weight sharing (Gaussian mixture prior over the weights), NumPy reference
(docs/design.md#soft-weight-sharing).

With log-joint terms l_ij = log pi_j + log N(w_i; mu_j, sigma_j^2) and L_i = logsumexp_j l_ij:
    penalty  = -sum_i L_i
    r_ij     = exp(l_ij - L_i)                     (responsibilities, rows sum to 1)
    d/dw_i   =  sum_j r_ij (w_i - mu_j) / sigma_j^2
    d/dmu_j  = -sum_i r_ij (w_i - mu_j) / sigma_j^2
    d/dsig_j =  sum_i r_ij (1 - (w_i - mu_j)^2 / sigma_j^2) / sigma_j
    d/dpi_j  = -sum_i N(w_i; mu_j, sigma_j^2) / p(w_i) = -sum_i exp(l_ij - log pi_j - L_i)
(the pi-partials treat pi as free coordinates; exact also where pi_j = 0). Everything is float64;
rows are processed in chunks so memory stays O(chunk * K).
"""
from __future__ import annotations

import numpy as np

from ...core.numerics import far_rows

LOG_SQRT_2PI = 0.5 * np.log(2.0 * np.pi)
CHUNK = 1 << 15


def _log_parts(w, pi, mu, sigma):
    """(log N_ij, log-joint l_ij, L_i) for one chunk of weights, all float64."""
    with np.errstate(divide="ignore"):
        log_pi = np.log(pi)  # -inf where pi_j = 0: that component simply drops out
    dz = (w[:, None] - mu[None, :]) / sigma[None, :]
    with np.errstate(over="ignore"):  # dz^2 beyond the range: log N = -inf, handled below
        log_n = -0.5 * dz * dz - np.log(sigma)[None, :] - LOG_SQRT_2PI
    joint = log_n + log_pi[None, :]
    m = joint.max(axis=1, keepdims=True)
    # m is -inf only where every (w - mu)^2 / sigma^2 overflowed: the log-likelihood is -inf and
    # the penalty +inf, not the NaN of -inf - -inf (docs/design.md#the-other-operators-over-the-whole-range).
    gone = np.isneginf(m[:, 0])
    m = np.where(gone[:, None], 0.0, m)
    with np.errstate(invalid="ignore", divide="ignore"):  # rows replaced by the where
        lse = np.where(gone, -np.inf, m[:, 0] + np.log(np.exp(joint - m).sum(axis=1)))
    return dz, log_n, joint, lse


def _params(pi, mu, sigma):
    return (pi.astype(np.float64, copy=False), mu.astype(np.float64, copy=False),
            sigma.astype(np.float64, copy=False))


def soft_sharing_penalty(w, pi, mu, sigma) -> float:
    pi, mu, sigma = _params(pi, mu, sigma)
    total = 0.0
    for s in range(0, w.shape[0], CHUNK):
        _, _, _, lse = _log_parts(w[s:s + CHUNK].astype(np.float64), pi, mu, sigma)
        total += float(np.sum(lse))
    return np.float64(-total)


def soft_sharing_grad(w, pi, mu, sigma):
    """(d/dw in w's dtype, d/dpi, d/dmu, d/dsigma in float64) of soft_sharing_penalty.

    Rows where every density underflows past the range take the limits of :func:`far_rows`; a
    component with r_ij = 0 adds nothing (not 0 * inf)."""
    pi, mu, sigma = _params(pi, mu, sigma)
    gw = np.empty(w.shape[0], dtype=np.float64)
    gpi = np.zeros(pi.shape[0])
    gmu = np.zeros(pi.shape[0])
    gsig = np.zeros(pi.shape[0])
    for s in range(0, w.shape[0], CHUNK):
        wc = w[s:s + CHUNK].astype(np.float64)
        dz, log_n, joint, lse = _log_parts(wc, pi, mu, sigma)
        gone = np.isneginf(lse)
        with np.errstate(invalid="ignore", over="ignore"):
            r = np.exp(joint - np.where(gone, 0.0, lse)[:, None])
            ratio = np.exp(log_n - np.where(gone, 0.0, lse)[:, None])
            g = dz / sigma[None, :]
        if gone.any():
            r[gone], ratio[gone], g[gone] = far_rows(wc[gone], pi, mu, sigma)
        with np.errstate(invalid="ignore", over="ignore"):
            rdz = np.where(r > 0, r * g, 0.0)
            rsig = np.where(r > 0, r * (1.0 - dz * dz), 0.0)
        gw[s:s + CHUNK] = rdz.sum(axis=1)
        gmu -= rdz.sum(axis=0)
        gsig += rsig.sum(axis=0) / sigma
        gpi -= ratio.sum(axis=0)
    with np.errstate(over="ignore"):
        return gw.astype(w.dtype, copy=False), gpi, gmu, gsig


def quantize(w, pi, mu, sigma):
    """(each weight replaced by mu of its most responsible component, that component's index)."""
    pi, mu, sigma = _params(pi, mu, sigma)
    idx = np.empty(w.shape[0], dtype=np.int64)
    for s in range(0, w.shape[0], CHUNK):
        _, _, joint, _ = _log_parts(w[s:s + CHUNK].astype(np.float64), pi, mu, sigma)
        idx[s:s + CHUNK] = np.argmax(joint, axis=1)  # first maximum on exact ties
    return mu[idx].astype(w.dtype, copy=False), idx
