r"""Hard Concrete gates for L0 regularisation (DESIGN.md 2.4).

With u ~ U(0, 1), a location log_alpha per gate, temperature beta and stretch interval
(gamma, zeta) with gamma < 0 < 1 < zeta:

.. math::
    s = \sigma\big((\log u - \log(1-u) + \log\alpha)/\beta\big), \qquad
    z = \min(1, \max(0, s(\zeta-\gamma) + \gamma)).

Since L = log u - log(1 - u) is standard logistic, z = 0 exactly when
L <= beta log(-gamma/zeta) - log_alpha and z = 1 exactly when L >= beta log((1-gamma)/(zeta-1)) - log_alpha:

.. math::
    P(z = 0) = \sigma(\beta\log(-\gamma/\zeta) - \log\alpha), \quad
    P(z \ne 0) = \sigma(\log\alpha - \beta\log(-\gamma/\zeta)), \quad
    P(z = 1) = \sigma(\log\alpha - \beta\log\tfrac{1-\gamma}{\zeta-1}).

The expected L0 norm of the gated weights is the sum of P(z != 0). At test time the gate is the
deterministic clip(sigmoid(log_alpha) (zeta - gamma) + gamma, 0, 1).

Every function accepts NumPy, torch (any device, autograd flows on the torch backend) or CUDA
arrays of any shape and returns the same kind and shape.
"""
from __future__ import annotations

import math

from . import arrays, checks, registry
from .checks import check_scalar


def _params(beta, gamma, zeta):
    beta = check_scalar(beta, "beta", low=-math.inf)
    gamma = check_scalar(gamma, "gamma", low=-math.inf)
    zeta = check_scalar(zeta, "zeta", low=-math.inf)
    if beta <= 0:
        raise ValueError(f"beta (the temperature) must be > 0, got {beta}")
    if gamma >= 0:
        raise ValueError(f"gamma must be < 0 (the stretch below 0 that makes exact zeros possible), "
                         f"got {gamma}")
    if zeta <= 1:
        raise ValueError(f"zeta must be > 1 (the stretch above 1 that makes exact ones possible), "
                         f"got {zeta}")
    return beta, gamma, zeta


def hard_concrete(log_alpha, u, *, beta=2 / 3, gamma=-0.1, zeta=1.1, backend="auto"):
    """A Hard Concrete sample z for each gate, from uniform noise u in the open interval (0, 1).

    log_alpha and u: same shape; u may be a NumPy array when log_alpha is torch/CUDA (it is moved).
    The result dtype is the promotion of both (float32 with float32 stays float32).
    """
    beta, gamma, zeta = _params(beta, gamma, zeta)
    la = checks.as_float(log_alpha, "log_alpha")
    if arrays.array_kind(u) != arrays.array_kind(la):
        u = arrays.like(arrays.to_host(u), la)
    u = checks.as_float(u, "u")
    checks.check_same_shape(la, "log_alpha", u, "u")
    checks.check_range(u, "u", 0.0, 1.0, what="in the open interval (0, 1)")
    fn, _ = registry.operation("hard_concrete", backend, la)
    z = fn(arrays.flat(la), arrays.flat(u), beta, gamma, zeta).reshape(tuple(la.shape))
    return arrays.match_kind(z, la)


def hard_concrete_gate(log_alpha, *, gamma=-0.1, zeta=1.1, backend="auto"):
    """Deterministic test-time gate clip(sigmoid(log_alpha) (zeta - gamma) + gamma, 0, 1)."""
    _, gamma, zeta = _params(1.0, gamma, zeta)
    la = checks.as_float(log_alpha, "log_alpha")
    fn, _ = registry.operation("hard_concrete_gate", backend, la)
    return arrays.match_kind(fn(arrays.flat(la), gamma, zeta).reshape(tuple(la.shape)), la)


def _prob(log_alpha, scale, offset, backend):
    la = checks.as_float(log_alpha, "log_alpha")
    fn, _ = registry.operation("hard_concrete_prob", backend, la)
    return arrays.match_kind(fn(arrays.flat(la), scale, offset).reshape(tuple(la.shape)), la)


def hard_concrete_l0(log_alpha, *, beta=2 / 3, gamma=-0.1, zeta=1.1, backend="auto"):
    """P(z != 0) = sigmoid(log_alpha - beta log(-gamma/zeta)) per gate; its sum is E[L0]."""
    beta, gamma, zeta = _params(beta, gamma, zeta)
    return _prob(log_alpha, 1.0, -beta * math.log(-gamma / zeta), backend)


def hard_concrete_p0(log_alpha, *, beta=2 / 3, gamma=-0.1, zeta=1.1, backend="auto"):
    """P(z = 0) = sigmoid(beta log(-gamma/zeta) - log_alpha), accurate even when it is tiny."""
    beta, gamma, zeta = _params(beta, gamma, zeta)
    return _prob(log_alpha, -1.0, beta * math.log(-gamma / zeta), backend)


def hard_concrete_p1(log_alpha, *, beta=2 / 3, gamma=-0.1, zeta=1.1, backend="auto"):
    """P(z = 1) = sigmoid(log_alpha - beta log((1 - gamma)/(zeta - 1)))."""
    beta, gamma, zeta = _params(beta, gamma, zeta)
    return _prob(log_alpha, 1.0, -beta * math.log((1.0 - gamma) / (zeta - 1.0)), backend)
