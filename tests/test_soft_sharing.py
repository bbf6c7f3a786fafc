"""Soft weight sharing (Gaussian mixture prior) on every backend registered in OPERATIONS.

The penalty is checked against a direct evaluation of the mixture density, the gradients against
central finite differences and torch autograd, the quantizer against the argmax of responsibilities,
and every backend against the NumPy reference.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import wsrbench.ops.soft_sharing as S
from wsrbench.core import registry

from ._operations import EPS64, OpImpl, eps, op_impls

PI = np.array([0.5, 0.3, 0.2])
MU = np.array([-1.0, 0.0, 1.5])
SIGMA = np.array([0.3, 0.1, 0.5])


@pytest.fixture(scope="module", params=op_impls("soft_sharing_penalty", "soft_sharing_grad", "quantize"))
def impl(request) -> OpImpl:
    return OpImpl(request.param)


def direct_penalty(w, pi, mu, sigma):
    """-sum log sum_j pi_j N(w; mu_j, sigma_j^2) without logsumexp (fine for moderate w)."""
    w = np.asarray(w, dtype=np.float64).reshape(-1, 1)
    dens = pi * np.exp(-0.5 * ((w - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    return float(-np.log(dens.sum(axis=1)).sum())


def penalty_tol(w, pi, mu, sigma):
    """Each term log p(w_i) is accurate to a few eps64 times its inputs' size ((w - mu)^2/sigma^2,
    log sigma, log pi); the float64 sum of n terms adds (n - 1) eps64 times sum |term|."""
    w = np.asarray(w, dtype=np.float64).reshape(-1, 1)
    terms = (((w - mu) / sigma) ** 2).max(axis=1) + np.abs(np.log(sigma)).max() + \
        np.abs(np.log(pi[pi > 0])).max() + 2.0
    return 8 * (w.size + 4) * EPS64 * float(terms.sum())


def weights(rng, n, dtype):
    return (rng.normal(size=n) * 1.2).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_penalty(impl, dtype):
    rng = np.random.default_rng(0)
    w = weights(rng, impl.cap(200), dtype)
    w_d = impl.put(w)
    got = float(impl.get(S.soft_sharing_penalty(w_d, impl.put(PI), impl.put(MU), impl.put(SIGMA),
                                                 backend=impl.backend)))
    want = direct_penalty(w, PI, MU, SIGMA)
    # a backend that returns w's dtype (torch) rounds the total once more
    tol = penalty_tol(w, PI, MU, SIGMA) + eps(dtype) * abs(want)
    assert abs(got - want) <= tol
    # N-D weights are one set of weights
    got2 = float(impl.get(S.soft_sharing_penalty(impl.put(w[:12].reshape(3, 4)), impl.put(PI),
                                                  impl.put(MU), impl.put(SIGMA), backend=impl.backend)))
    assert abs(got2 - direct_penalty(w[:12], PI, MU, SIGMA)) <= tol


def test_penalty_far_weights_stay_finite(impl):
    """Weights 1e4 standard deviations from every mean: the density underflows, logsumexp does not."""
    w = np.array([-3000.0, 5000.0])
    got = float(impl.get(S.soft_sharing_penalty(impl.put(w), impl.put(PI), impl.put(MU),
                                                 impl.put(SIGMA), backend=impl.backend)))
    # closed form: the dominant component per weight (the others are e^-(millions) smaller)
    logs = [np.log(PI) - 0.5 * ((x - MU) / SIGMA) ** 2 - np.log(SIGMA) - 0.5 * math.log(2 * math.pi)
            for x in w]
    want = -sum(float(np.max(lg)) for lg in logs)
    assert np.isfinite(got) and abs(got - want) <= 1e-12 * abs(want)


FAR = {  # |w - mu_j| > 1e154 sigma_j for every j: (w - mu_j)^2 / sigma_j^2 overflows everywhere
    # the wider component dominates every weight (its quadratic is 4x smaller)
    "float64": (np.array([1e200, -1e300, 3e160]), np.array([0.3, 0.7]), np.array([0.0, 1.0]),
                np.array([1.0, 2.0]), 1),
    # ordinary float32 weights, components far away: the nearer mean dominates
    "float32": (np.array([1.0, -2.0], dtype=np.float32), np.array([0.4, 0.6]),
                np.array([1e300, -3e300]), np.array([1e140, 1e140]), 0),
}


@pytest.mark.parametrize("dtype", list(FAR))
def test_grad_far_from_every_component_is_the_limit(impl, dtype):
    """Where every density underflows the responsibilities are those of the limit: all on the
    component with the smallest |w - mu_j| / sigma_j. So d/dw_i = (w_i - mu_j*) / sigma_j*^2,
    d/dmu_j* = -sum_i of it, d/dpi_j* = -n / pi_j*, d/dsigma_j* = -inf (the true value is beyond
    the range), and 0 for the other component; never NaN."""
    w, pi, mu, sigma, top = FAR[dtype]
    got = [impl.get(g) for g in S.soft_sharing_grad(*(impl.put(a) for a in (w, pi, mu, sigma)),
                                                      backend=impl.backend)]
    other = 1 - top
    exact = [(Fraction(float(v)) - Fraction(mu[top])) / Fraction(sigma[top]) ** 2 for v in w]
    # three float64 roundings ((w - mu) / sigma / sigma), one to w's dtype
    for g, e in zip(got[0].tolist(), exact):
        assert abs(Fraction(g) - e) <= abs(e) * Fraction(3 * EPS64 + eps(w.dtype)), (g, float(e))
    gmu = sum(exact)
    assert abs(Fraction(float(got[2][top])) + gmu) <= abs(gmu) * Fraction((3 + w.size) * EPS64)
    # 1 / pi through exp(-log sigma - log(pi / sigma)): the logs' rounding, relative in the exp
    rel = 8 * (abs(math.log(sigma[top])) + abs(math.log(pi[top])) + 1) * EPS64
    assert abs(float(got[1][top]) + w.size / pi[top]) <= rel * w.size / pi[top]
    assert float(got[3][top]) == -math.inf
    for g in got[1:]:
        assert float(g[other]) == 0.0


def finite_difference_grads(w, pi, mu, sigma):
    """Central differences in float64 with step h ~ eps^(1/3) times the scale: error O(h^2)."""
    def f(w_, pi_, mu_, sig_):
        return float(S.soft_sharing_penalty(w_, pi_, mu_, sig_, backend="numpy"))

    out = []
    args = [w, pi, mu, sigma]
    for k in range(4):
        g = np.zeros(args[k].shape)
        for i in range(args[k].size):
            h = 1e-6 * max(1.0, abs(args[k][i]))
            plus = [a.copy() for a in args]
            minus = [a.copy() for a in args]
            plus[k][i] += h
            minus[k][i] -= h
            if k == 1:
                # pi's partials are those of free coordinates: the perturbed pi leaves the simplex,
                # which the validated API rightly refuses, so evaluate the density directly.
                g[i] = (direct_penalty(w, plus[1], mu, sigma)
                        - direct_penalty(w, minus[1], mu, sigma)) / (2 * h)
            else:
                g[i] = (f(*plus) - f(*minus)) / (2 * h)
        out.append(g)
    return out


def test_grad_vs_finite_differences():
    rng = np.random.default_rng(1)
    w = weights(rng, 15, np.float64)
    got = S.soft_sharing_grad(w, PI, MU, SIGMA, backend="numpy")
    fd = finite_difference_grads(w, PI, MU, SIGMA)
    # Central differences err by (rounding of f) / h + h^2 |f'''| / 6. f is accurate to
    # penalty_tol; its third derivatives scale like 1/sigma^3 per weight (Gaussian terms, x3 for
    # the products of responsibilities), and h <= 1e-6 * max(1, |argument|).
    h = 1e-6 * max(1.0, float(np.abs(np.concatenate([w, PI, MU, SIGMA])).max()))
    tol = penalty_tol(w, PI, MU, SIGMA) / h + h * h * w.size * 3 / SIGMA.min() ** 3
    for name, a, b in zip(("w", "pi", "mu", "sigma"), got, fd):
        np.testing.assert_allclose(a, b, rtol=0, atol=tol, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_grad_agrees_with_numpy(impl, dtype):
    rng = np.random.default_rng(2)
    w = weights(rng, impl.cap(100), dtype)
    got = S.soft_sharing_grad(impl.put(w), impl.put(PI), impl.put(MU), impl.put(SIGMA),
                              backend=impl.backend)
    ref = S.soft_sharing_grad(w, PI, MU, SIGMA, backend="numpy")
    assert impl.get(got.w).dtype == dtype and impl.get(got.w).shape == w.shape
    for name, a, b in zip(got._fields, got, ref):
        a = impl.get(a).astype(np.float64)
        # d/dw is rounded to dtype; the mixture partials are float64 sums of n terms
        tol = (eps(dtype) + 16 * w.size * EPS64) * (1.0 + np.abs(b).max()) * (100 if name != "w" else 1)
        np.testing.assert_allclose(a, b, rtol=0, atol=tol, err_msg=name)


def test_grad_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    if "torch" not in registry.OPERATIONS["soft_sharing_penalty"]:
        pytest.skip("no torch implementation registered")
    rng = np.random.default_rng(3)
    w = torch.tensor(weights(rng, 50, np.float64), requires_grad=True)
    pi, mu, sigma = (torch.tensor(a, requires_grad=True) for a in (PI, MU, SIGMA))
    S.soft_sharing_penalty(w, pi, mu, sigma, backend="torch").backward()
    ref = S.soft_sharing_grad(w.detach().numpy(), PI, MU, SIGMA, backend="numpy")
    for t, b in zip((w, pi, mu, sigma), ref):
        np.testing.assert_allclose(t.grad.numpy(), b, rtol=1e-12, atol=1e-12 * np.abs(b).max())


def test_zero_mixture_weight(impl):
    """pi_j = 0 drops component j from the penalty; its pi-partial is still the exact -sum N/p."""
    pi = np.array([0.7, 0.0, 0.3])
    w = np.linspace(-2, 2, 9)
    args = [impl.put(a) for a in (pi, MU, SIGMA)]
    got = float(impl.get(S.soft_sharing_penalty(impl.put(w), *args, backend=impl.backend)))
    want = direct_penalty(w, pi[[0, 2]], MU[[0, 2]], SIGMA[[0, 2]])
    assert abs(got - want) <= penalty_tol(w, pi, MU, SIGMA)
    g = S.soft_sharing_grad(impl.put(w), *args, backend=impl.backend)
    dens = np.exp(-0.5 * ((w[:, None] - MU) / SIGMA) ** 2) / (SIGMA * math.sqrt(2 * math.pi))
    want_gpi = -(dens / (dens @ pi)[:, None]).sum(axis=0)
    np.testing.assert_allclose(impl.get(g.pi), want_gpi, rtol=1e-12)
    assert np.all(np.isfinite(impl.get(g.w)))


def test_quantize(impl):
    rng = np.random.default_rng(4)
    w = weights(rng, impl.cap(200), np.float64)
    q, idx = S.quantize(impl.put(w), impl.put(PI), impl.put(MU), impl.put(SIGMA),
                        return_index=True, backend=impl.backend)
    q, idx = impl.get(q), impl.get(idx)
    log_joint = np.log(PI) - 0.5 * ((w[:, None] - MU) / SIGMA) ** 2 - np.log(SIGMA)
    best = log_joint.max(axis=1)
    # the chosen component is a most responsible one (to rounding of the log-joint terms)
    chosen = log_joint[np.arange(w.size), idx]
    assert np.all(best - chosen <= 64 * EPS64 * (1 + np.abs(best)))
    np.testing.assert_array_equal(q, MU[idx])
    # weights sitting on a mean, with narrow components, quantize to that mean
    q2 = impl.get(S.quantize(impl.put(MU.astype(np.float32)), impl.put(PI), impl.put(MU),
                             impl.put(SIGMA / 100), backend=impl.backend))
    assert q2.dtype == np.float32
    np.testing.assert_array_equal(q2, MU.astype(np.float32))


@pytest.mark.parametrize("call,exc,match", [
    (lambda: S.soft_sharing_penalty(np.zeros(3), PI, MU, -SIGMA), ValueError, r"sigma must be > 0"),
    (lambda: S.soft_sharing_penalty(np.zeros(3), PI, MU, SIGMA * 0), ValueError, r"sigma must be > 0"),
    (lambda: S.soft_sharing_penalty(np.zeros(3), PI * 0.9, MU, SIGMA), ValueError, "pi must sum to 1"),
    (lambda: S.soft_sharing_penalty(np.zeros(3), np.array([1.2, -0.2, 0.0]), MU, SIGMA), ValueError, r"pi must be in \[0, 1\]"),
    (lambda: S.soft_sharing_penalty(np.zeros(3), PI, MU[:2], SIGMA), ValueError, "mu must have the shape of pi"),
    (lambda: S.soft_sharing_penalty(np.zeros(3), PI, MU, SIGMA[:2]), ValueError, "sigma must have the shape of pi"),
    (lambda: S.soft_sharing_penalty(np.zeros(3), PI.reshape(1, 3), MU, SIGMA), ValueError, "pi must be at most 1-D"),
    (lambda: S.soft_sharing_penalty(np.zeros(3), np.zeros(0), MU, SIGMA), ValueError, "pi must be a non-empty"),
    (lambda: S.soft_sharing_penalty(np.array([np.nan]), PI, MU, SIGMA), ValueError, "w contains NaN"),
    (lambda: S.soft_sharing_penalty(np.zeros(2), PI, np.array([0, np.inf, 1]), SIGMA), ValueError, "mu contains Inf"),
    (lambda: S.quantize(np.zeros(2), PI, MU, np.array([0.1, np.nan, 1])), ValueError, "sigma contains NaN"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_pi_sum_tolerance_is_derived():
    """A softmax-normalised pi in float32 passes; one off by more than 4 K eps32 fails."""
    logits = np.random.default_rng(5).normal(size=7).astype(np.float32)
    pi = np.exp(logits) / np.exp(logits).sum()
    mu, sigma = np.linspace(-1, 1, 7), np.full(7, 0.3)
    S.soft_sharing_penalty(np.zeros(3), pi, mu, sigma)
    with pytest.raises(ValueError, match="pi must sum to 1"):
        S.soft_sharing_penalty(np.zeros(3), pi * (1 + 40 * eps(np.float32)), mu, sigma)
