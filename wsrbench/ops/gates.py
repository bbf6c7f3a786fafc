r"""Hard Concrete gates for L0 regularisation (docs/design.md#hard-concrete-gates).

With u ~ U(0, 1), a location log_alpha per gate, temperature beta and stretch interval
(gamma, zeta) with gamma < 0 < 1 < zeta:

.. math::
    s = \sigma\big((\log u - \log(1-u) + \log\alpha)/\beta\big), \qquad
    z = \min(1, \max(0, s(\zeta-\gamma) + \gamma)).

Since L = log u - log(1 - u) is standard logistic, z = 0 exactly when
L <= beta log(-gamma/zeta) - log_alpha and z = 1 exactly when
L >= beta log((1-gamma)/(zeta-1)) - log_alpha:

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

from ..core import arrays, checks, registry
from ..core.checks import check_scalar


def check_gate_params(beta, gamma, zeta) -> tuple[float, float, float]:
    """(beta, gamma, zeta) checked: beta > 0, gamma < 0, zeta > 1 (docs/design.md#hard-concrete-gates).

    Raises
    ------
    ValueError, TypeError
        Naming the parameter and the interval it must lie in.
    """
    beta = check_scalar(beta, "beta", low=-math.inf)
    gamma = check_scalar(gamma, "gamma", low=-math.inf)
    zeta = check_scalar(zeta, "zeta", low=-math.inf)
    if beta <= 0:
        raise ValueError(f"beta (the temperature) must be > 0, got {beta}")
    if gamma >= 0:
        raise ValueError(f"gamma must be < 0 (the stretch below 0 that makes exact zeros "
                         f"possible), got {gamma}")
    if zeta <= 1:
        raise ValueError(f"zeta must be > 1 (the stretch above 1 that makes exact ones possible), "
                         f"got {zeta}")
    return beta, gamma, zeta


def hard_concrete(log_alpha, u, *, beta=2 / 3, gamma=-0.1, zeta=1.1, backend="auto"):
    r"""A Hard Concrete sample z for each gate, from uniform noise u in the open interval (0, 1).

    .. math::
        z = \min\big(1, \max\big(0, \sigma\big((\log u - \log(1-u) + \log\alpha)/\beta\big)
            (\zeta - \gamma) + \gamma\big)\big)

    Parameters
    ----------
    log_alpha : array (NumPy, torch or CUDA), any shape
        Location log(alpha) of each gate. On the torch backend autograd flows into it (the
        reparameterisation trick).
    u : array, the shape of log_alpha
        Uniform noise, every entry in (0, 1). A NumPy array is moved to log_alpha's array kind.
    beta : float, default 2/3
        Temperature, > 0.
    gamma, zeta : float, default -0.1, 1.1
        Stretch interval, gamma < 0 < 1 < zeta: the stretch beyond [0, 1] is what gives z = 0 and
        z = 1 positive probability.
    backend : str, default "auto"
        A registered backend, or "auto" to follow log_alpha's array kind.

    Returns
    -------
    z : array of log_alpha's kind and shape
        Gates in [0, 1], exact zeros and ones included. The dtype is the promotion of log_alpha's
        and u's (float32 with float32 stays float32); computed in float64, rounded once.

    Raises
    ------
    ValueError
        If beta <= 0, gamma >= 0, zeta <= 1, a parameter or an array entry is not finite, the
        shapes differ, or u has an entry outside (0, 1).
    TypeError
        If an array's dtype is not float32, float64 or integer (integers become float64), or a
        parameter is not a real scalar.
    """
    beta, gamma, zeta = check_gate_params(beta, gamma, zeta)
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
    r"""Deterministic test-time gate: the sample with the noise replaced by its median.

    .. math:: \hat z = \min(1, \max(0, \sigma(\log\alpha)(\zeta - \gamma) + \gamma))

    Parameters
    ----------
    log_alpha : array (NumPy, torch or CUDA), any shape
        Location log(alpha) of each gate.
    gamma, zeta : float, default -0.1, 1.1
        Stretch interval, gamma < 0 < 1 < zeta.
    backend : str, default "auto"
        A registered backend, or "auto" to follow log_alpha's array kind.

    Returns
    -------
    gate : array of log_alpha's kind, shape and dtype
        Values in [0, 1].

    Raises
    ------
    ValueError
        If gamma >= 0, zeta <= 1, or a parameter or an entry of log_alpha is not finite.
    TypeError
        If log_alpha's dtype is not float32, float64 or integer (integers become float64), or a
        parameter is not a real scalar.
    """
    _, gamma, zeta = check_gate_params(1.0, gamma, zeta)
    la = checks.as_float(log_alpha, "log_alpha")
    fn, _ = registry.operation("hard_concrete_gate", backend, la)
    return arrays.match_kind(fn(arrays.flat(la), gamma, zeta).reshape(tuple(la.shape)), la)


_PROBABILITY_SECTIONS = """
    Parameters
    ----------
    log_alpha : array (NumPy, torch or CUDA), any shape
        Location log(alpha) of each gate.
    beta : float, default 2/3
        Temperature, > 0.
    gamma, zeta : float, default -0.1, 1.1
        Stretch interval, gamma < 0 < 1 < zeta.
    backend : str, default "auto"
        A registered backend, or "auto" to follow log_alpha's array kind.

    Returns
    -------
    p : array of log_alpha's kind, shape and dtype
        P(z EVENT) per gate, in [0, 1].

    Raises
    ------
    ValueError
        If beta <= 0, gamma >= 0, zeta <= 1, or a parameter or an entry of log_alpha is not
        finite.
    TypeError
        If log_alpha's dtype is not float32, float64 or integer (integers become float64), or a
        parameter is not a real scalar.
"""


def _probability(event):
    """Completes the docstring of a gate probability P(z ``event``) with the shared sections."""
    def document(fn):
        if fn.__doc__ is not None:  # None under python -OO
            fn.__doc__ = fn.__doc__.rstrip() + "\n" + _PROBABILITY_SECTIONS.replace("EVENT", event)
        return fn
    return document


def _prob(log_alpha, scale, offset, backend):
    la = checks.as_float(log_alpha, "log_alpha")
    fn, _ = registry.operation("hard_concrete_prob", backend, la)
    return arrays.match_kind(fn(arrays.flat(la), scale, offset).reshape(tuple(la.shape)), la)


@_probability("!= 0")
def hard_concrete_l0(log_alpha, *, beta=2 / 3, gamma=-0.1, zeta=1.1, backend="auto"):
    r"""Probability that each gate is nonzero; its sum is the expected L0 norm (on the torch
    backend it is differentiable with respect to log_alpha: the L0 penalty of training).

    .. math:: P(z \ne 0) = \sigma(\log\alpha - \beta\log(-\gamma/\zeta))
    """
    beta, gamma, zeta = check_gate_params(beta, gamma, zeta)
    return _prob(log_alpha, 1.0, -beta * math.log(-gamma / zeta), backend)


@_probability("= 0")
def hard_concrete_p0(log_alpha, *, beta=2 / 3, gamma=-0.1, zeta=1.1, backend="auto"):
    r"""Probability that each gate is exactly 0.

    .. math:: P(z = 0) = \sigma(\beta\log(-\gamma/\zeta) - \log\alpha)

    Evaluated directly, not as 1 - P(z != 0), so it keeps full relative accuracy when it is tiny.
    """
    beta, gamma, zeta = check_gate_params(beta, gamma, zeta)
    return _prob(log_alpha, -1.0, beta * math.log(-gamma / zeta), backend)


@_probability("= 1")
def hard_concrete_p1(log_alpha, *, beta=2 / 3, gamma=-0.1, zeta=1.1, backend="auto"):
    r"""Probability that each gate is exactly 1.

    .. math:: P(z = 1) = \sigma\Big(\log\alpha - \beta\log\frac{1-\gamma}{\zeta-1}\Big)
    """
    beta, gamma, zeta = check_gate_params(beta, gamma, zeta)
    return _prob(log_alpha, 1.0, -beta * math.log((1.0 - gamma) / (zeta - 1.0)), backend)
