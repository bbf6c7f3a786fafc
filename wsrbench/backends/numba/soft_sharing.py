"""Soft weight sharing, Numba CPU kernels (formulas of ``wsrbench.backends.numpy.soft_sharing``).

One pass per weight over the K components: log-joint terms, their max, logsumexp; everything in
float64. Sums over the weights (penalty, mixture gradients) are reduced per chunk of weights and then
across chunks, so no two threads write the same accumulator.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


@njit(cache=True)
def _joint(wi, log_pi, mu, sigma, log_sigma, joint):
    """Fill joint[j] = log pi_j + log N(wi; mu_j, sigma_j^2); return logsumexp_j joint[j]."""
    m = -np.inf
    for j in range(mu.shape[0]):
        dz = (wi - mu[j]) / sigma[j]
        joint[j] = log_pi[j] - 0.5 * dz * dz - log_sigma[j] - LOG_SQRT_2PI
        if joint[j] > m:
            m = joint[j]
    if m == -np.inf:
        # Every density underflowed past the float range ((w - mu)^2 / sigma^2 overflows): the
        # log-likelihood is -inf, so the penalty is +inf, not NaN
        # (docs/design.md#the-other-operators-over-the-whole-range).
        return m
    acc = 0.0
    for j in range(mu.shape[0]):
        acc += math.exp(joint[j] - m)
    return m + math.log(acc)


@njit(parallel=True, cache=True)
def _penalty(w, log_pi, mu, sigma, n_chunks):
    n, k = w.shape[0], mu.shape[0]
    log_sigma = np.log(sigma)
    partial = np.zeros(n_chunks)
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        joint = np.empty(k)
        acc = 0.0
        for i in range(c * step, min(n, (c + 1) * step)):
            acc += _joint(w[i], log_pi, mu, sigma, log_sigma, joint)
        partial[c] = acc
    return -partial.sum()


@njit(parallel=True, cache=True)
def _grad(w, log_pi, mu, sigma, n_chunks, gw):
    n, k = w.shape[0], mu.shape[0]
    log_sigma = np.log(sigma)
    inv_pi = np.exp(-log_pi)
    parts = np.zeros((n_chunks, 3, k))  # d/dpi, d/dmu, d/dsigma per chunk
    step = (n + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        joint = np.empty(k)
        for i in range(c * step, min(n, (c + 1) * step)):
            wi = w[i]
            lse = _joint(wi, log_pi, mu, sigma, log_sigma, joint)
            if lse == -np.inf:  # every density underflowed: the host takes the limits
                gw[i] = np.nan
                continue
            g = 0.0
            for j in range(k):
                dz = (wi - mu[j]) / sigma[j]
                r = math.exp(joint[j] - lse)
                if r == 0.0:  # adds nothing (dz * dz may be inf: not 0 * inf)
                    if log_pi[j] == -np.inf:
                        parts[c, 0, j] -= math.exp(-0.5 * dz * dz - log_sigma[j] - LOG_SQRT_2PI
                                                   - lse)
                    continue
                g += r * dz / sigma[j]
                # N_ij / p(w_i) = r_ij / pi_j; where pi_j = 0 (r_ij = 0) from log N directly
                if log_pi[j] > -np.inf:
                    parts[c, 0, j] -= r * inv_pi[j]
                else:
                    parts[c, 0, j] -= math.exp(-0.5 * dz * dz - log_sigma[j] - LOG_SQRT_2PI - lse)
                parts[c, 1, j] -= r * dz / sigma[j]
                parts[c, 2, j] += r * (1.0 - dz * dz) / sigma[j]
            gw[i] = g
    out = np.zeros((3, k))
    for c in range(n_chunks):
        out += parts[c]
    return out


@njit(parallel=True, cache=True)
def _quantize(w, log_pi, mu, sigma, q, idx):
    k = mu.shape[0]
    log_sigma = np.log(sigma)
    for i in prange(w.shape[0]):
        joint = np.empty(k)
        _joint(w[i], log_pi, mu, sigma, log_sigma, joint)
        best = 0
        for j in range(1, k):
            if joint[j] > joint[best]:  # strict: the first maximum wins, like np.argmax
                best = j
        idx[i] = best
        q[i] = mu[best]


def _params(pi, mu, sigma):
    with np.errstate(divide="ignore"):
        log_pi = np.log(pi.astype(np.float64))
    return log_pi, mu.astype(np.float64), sigma.astype(np.float64)


def _chunks(n):
    return max(1, min(numba.get_num_threads(), n))


# The kernels take float64 weights (the arithmetic is float64 anyway): one compiled signature
# instead of one per input dtype keeps the JIT cost of a cold cache down.

def soft_sharing_penalty(w, pi, mu, sigma):
    w64 = w.astype(np.float64, copy=False)
    return np.float64(_penalty(w64, *_params(pi, mu, sigma), _chunks(w.shape[0])))


def soft_sharing_grad(w, pi, mu, sigma):
    gw = np.empty(w.shape[0])
    w64 = w.astype(np.float64, copy=False)
    g = _grad(w64, *_params(pi, mu, sigma), _chunks(w.shape[0]), gw)
    far = np.flatnonzero(np.isnan(gw))  # weights the kernel left to the reference's limits
    if far.size:
        from ...core.numerics import far_grad
        gw[far], gpi, gmu, gsig = far_grad(w64[far], *(a.astype(np.float64) for a in (pi, mu, sigma)))
        g[0] += gpi
        g[1] += gmu
        g[2] += gsig
    with np.errstate(over="ignore"):
        return gw.astype(w.dtype, copy=False), g[0].copy(), g[1].copy(), g[2].copy()


def quantize(w, pi, mu, sigma):
    q = np.empty(w.shape[0])
    idx = np.empty(w.shape[0], dtype=np.int64)
    _quantize(w.astype(np.float64, copy=False), *_params(pi, mu, sigma), q, idx)
    return q.astype(w.dtype, copy=False), idx
