r"""Soft weight sharing: a Gaussian mixture prior over the weights (docs/design.md#soft-weight-sharing).

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

from ..core import arrays, checks, numerics, registry


class SoftSharingGrad(NamedTuple):
    """The partial derivatives of the soft-sharing penalty (:func:`soft_sharing_grad`)."""

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
    r"""Negative log-likelihood of the weights under a Gaussian mixture prior.

    .. math::
        \Omega(w) = -\sum_i \log \sum_j \pi_j\, \mathcal N(w_i;\ \mu_j, \sigma_j^2)
                  = -\sum_i \operatorname{logsumexp}_j \Big(\log\pi_j
                    - \frac{(w_i - \mu_j)^2}{2\sigma_j^2} - \log\sigma_j
                    - \tfrac12 \log 2\pi\Big)

    The logsumexp form keeps weights far from every mean finite; float64 throughout.

    Parameters
    ----------
    w : array (NumPy or torch), any shape
        The weights; all entries share the prior.
    pi : 1-D array of length K >= 1
        Mixture weights, pi >= 0, sum(pi) = 1 within 4 K eps of pi's dtype.
    mu : 1-D array of length K
        Component means.
    sigma : 1-D array of length K
        Component standard deviations, > 0.
    backend : str, default "auto"
        A registered backend, or "auto" to follow w's array kind. Mixture parameters of another
        array kind are moved to w's.

    Returns
    -------
    float or tensor
        NumPy input: a float64 scalar. torch input: a 0-d tensor of w's dtype that autograd
        differentiates with respect to w and any mixture tensor that requires grad.

    Raises
    ------
    ValueError
        If a mixture parameter is not a non-empty 1-D array, their lengths differ, sigma <= 0,
        pi is outside [0, 1] or does not sum to 1, or an entry is not finite.
    TypeError
        If a dtype is not float32, float64 or integer.
    RuntimeError
        If no available backend implements the operation for w's array kind (CUDA arrays: none
        does yet).
    """
    w, pi, mu, sigma = _mixture(w, pi, mu, sigma)
    fn, _ = registry.operation("soft_sharing_penalty", backend, w)
    return fn(arrays.flat(w), pi, mu, sigma)


def soft_sharing_grad(w, pi, mu, sigma, *, backend="auto") -> SoftSharingGrad:
    r"""Partial derivatives of :func:`soft_sharing_penalty`.

    With responsibilities r_ij = pi_j N(w_i; mu_j, sigma_j^2) / p(w_i), where
    p(w_i) = sum_j pi_j N(w_i; mu_j, sigma_j^2):

    .. math::
        \frac{\partial\Omega}{\partial w_i} = \sum_j r_{ij} \frac{w_i - \mu_j}{\sigma_j^2},
        \qquad
        \frac{\partial\Omega}{\partial \mu_j} = -\sum_i r_{ij} \frac{w_i - \mu_j}{\sigma_j^2},

        \frac{\partial\Omega}{\partial \sigma_j}
            = \sum_i \frac{r_{ij}}{\sigma_j}\Big(1 - \frac{(w_i - \mu_j)^2}{\sigma_j^2}\Big),
        \qquad
        \frac{\partial\Omega}{\partial \pi_j}
            = -\sum_i \frac{\mathcal N(w_i; \mu_j, \sigma_j^2)}{p(w_i)}.

    pi is treated as free coordinates (the derivative is exact also where pi_j = 0): project or
    reparameterise it, e.g. through a softmax, to stay on the simplex.

    Parameters
    ----------
    w, pi, mu, sigma, backend
        As in :func:`soft_sharing_penalty`.

    Returns
    -------
    SoftSharingGrad
        Fields ``w`` (w's kind, shape and dtype), ``pi``, ``mu``, ``sigma`` (one entry per
        component; float64 for NumPy input, the mixture parameters' dtype for torch).

    Raises
    ------
    ValueError, TypeError, RuntimeError
        As in :func:`soft_sharing_penalty`.
    """
    w, pi, mu, sigma = _mixture(w, pi, mu, sigma)
    fn, _ = registry.operation("soft_sharing_grad", backend, w)
    gw, gpi, gmu, gsig = fn(arrays.flat(w), pi, mu, sigma)
    return SoftSharingGrad(arrays.match_kind(gw.reshape(tuple(w.shape)), w), gpi, gmu, gsig)


def quantize(w, pi, mu, sigma, *, return_index=False, backend="auto"):
    r"""Each weight replaced by the mean of its most responsible mixture component.

    .. math:: q_i = \mu_{j^*(i)}, \qquad
              j^*(i) = \operatorname{argmax}_j \pi_j\, \mathcal N(w_i; \mu_j, \sigma_j^2)

    (compared as log-densities; the first component on exact ties).

    Parameters
    ----------
    w, pi, mu, sigma, backend
        As in :func:`soft_sharing_penalty`.
    return_index : bool, default False
        Also return j*(i) per weight.

    Returns
    -------
    q : array of w's kind, shape and dtype
    index : array of int64, w's kind and shape
        Only with ``return_index=True``: the component of each weight.

    Raises
    ------
    ValueError, TypeError, RuntimeError
        As in :func:`soft_sharing_penalty`.
    """
    w, pi, mu, sigma = _mixture(w, pi, mu, sigma)
    fn, _ = registry.operation("quantize", backend, w)
    q, idx = fn(arrays.flat(w), pi, mu, sigma)
    q = arrays.match_kind(q.reshape(tuple(w.shape)), w)
    return (q, arrays.match_kind(idx.reshape(tuple(w.shape)), w)) if return_index else q
