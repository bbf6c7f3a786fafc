"""Hard Concrete gates on every backend registered in OPERATIONS.

The formulas are checked against an independent float64 evaluation, the probabilities of exact 0
and exact 1 against their closed forms on many samples (binomial tolerance: 5 standard deviations,
fixed seed), E[L0] against the mean count of nonzero gates, and every backend against NumPy.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import wsrbench.ops.gates as G

from ._operations import OpImpl, eps, op_impls

PARAMS = [dict(), dict(beta=0.3, gamma=-0.5, zeta=1.2), dict(beta=1.5, gamma=-0.05, zeta=1.01)]
PARAM_IDS = ["default", "sharp-wide", "soft-narrow"]


@pytest.fixture(scope="module",
                params=op_impls("hard_concrete", "hard_concrete_gate", "hard_concrete_prob"))
def impl(request) -> OpImpl:
    return OpImpl(request.param)


def full(kw):
    return dict(beta=2 / 3, gamma=-0.1, zeta=1.1) | kw


def oracle_sample(la, u, beta, gamma, zeta):
    """Straight from the definition, float64 (|t| stays moderate in these tests)."""
    la, u = la.astype(np.float64), u.astype(np.float64)
    t = (np.log(u) - np.log(1.0 - u) + la) / beta
    return np.clip((1.0 / (1.0 + np.exp(-t))) * (zeta - gamma) + gamma, 0.0, 1.0)


def sample_tol(la, u, dtype, beta, gamma, zeta):
    """The logit t = (log u - log(1-u) + la)/beta takes a few roundings relative to its terms,
    sigmoid' <= 1/4 scales them by (zeta - gamma)/4; plus the roundings of the stretch and of the
    output to dtype. Backends evaluating in float32 see eps32 in every step."""
    e = eps(dtype)
    u64 = u.astype(np.float64)
    terms = np.abs(np.log(u64)) + np.abs(np.log1p(-u64)) + np.abs(la.astype(np.float64)) + 1.0
    return 4 * e * ((zeta - gamma) / 4 * terms / beta + (zeta - gamma) + 1.0)


def inputs(rng, n, dtype):
    la = (rng.normal(size=n) * 3).astype(dtype)
    u = rng.uniform(size=n)
    u[:4] = [1e-6, 1 - 1e-6, 0.5, 1e-3]  # both tails of the noise
    return la, u.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", PARAMS, ids=PARAM_IDS)
def test_sample_formula_and_agreement(impl, dtype, kw):
    rng = np.random.default_rng(1)
    la, u = inputs(rng, impl.cap(300), dtype)
    la_d, u_d = impl.put(la), impl.put(u)
    z_d = G.hard_concrete(la_d, u_d, backend=impl.backend, **kw)
    assert type(z_d) is type(la_d)
    z = impl.get(z_d)
    assert z.dtype == dtype and z.shape == la.shape
    p = full(kw)
    tol = sample_tol(la, u, dtype, **p)
    assert np.all(np.abs(z - oracle_sample(la, u, **p)) <= tol)
    assert np.all((z >= 0) & (z <= 1))
    ref = G.hard_concrete(la, u, backend="numpy", **kw)
    assert np.all(np.abs(z - ref) <= 2 * tol)
    # N-D input keeps its shape
    z2 = impl.get(G.hard_concrete(impl.put(la[:12].reshape(3, 4)), impl.put(u[:12].reshape(3, 4)),
                                  backend=impl.backend, **kw))
    np.testing.assert_array_equal(z2.reshape(-1), z[:12])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", PARAMS, ids=PARAM_IDS)
def test_closed_forms(impl, dtype, kw):
    beta, gamma, zeta = full(kw).values()
    la = np.linspace(-30, 30, 61).astype(dtype)
    la_d = impl.put(la)
    l0 = impl.get(G.hard_concrete_l0(la_d, backend=impl.backend, **kw)).astype(np.float64)
    p0 = impl.get(G.hard_concrete_p0(la_d, backend=impl.backend, **kw)).astype(np.float64)
    p1 = impl.get(G.hard_concrete_p1(la_d, backend=impl.backend, **kw)).astype(np.float64)
    gate = impl.get(G.hard_concrete_gate(la_d, gamma=gamma, zeta=zeta, backend=impl.backend))
    la64 = la.astype(np.float64)
    e = eps(dtype)
    # Independent closed forms (scalar math); relative accuracy in both tails.
    sig = np.vectorize(lambda t: 1 / (1 + math.exp(-t)) if t >= 0 else math.exp(t) / (1 + math.exp(t)))
    off0 = beta * math.log(-gamma / zeta)
    off1 = beta * math.log((1 - gamma) / (zeta - 1))
    for got, want in ((l0, sig(la64 - off0)), (p0, sig(off0 - la64)), (p1, sig(la64 - off1))):
        # t = la + offset is rounded (eps |t| absolute), which moves log sigmoid(t) by at most as
        # much (its slope is below 1): relative error <= eps |t|, plus the output rounding.
        rtol = 4 * e * (2 + np.abs(la64) + abs(off1))
        assert np.all(np.abs(got - want) <= rtol * want)
    np.testing.assert_allclose(l0 + p0, 1.0, rtol=0, atol=4 * e)
    assert np.all(p1 <= l0) and np.all(np.diff(l0) >= 0)
    np.testing.assert_allclose(gate, np.clip(sig(la64) * (zeta - gamma) + gamma, 0, 1),
                               rtol=0, atol=4 * e)
    assert gate[0] == 0.0 and gate[-1] == 1.0  # exact zeros and ones at test time


def binomial_ok(count, n, p, k=5.0):
    """|count/n - p| within k standard deviations of a binomial proportion (+1/n for p near 0, 1)."""
    return abs(count / n - p) <= k * math.sqrt(p * (1 - p) / n) + 1.0 / n


@pytest.mark.parametrize("kw", PARAMS, ids=PARAM_IDS)
def test_exact_zero_and_one_probabilities(impl, kw):
    rng = np.random.default_rng(2024)
    n = impl.cap(20000)
    for la_value in (-2.0, 0.0, 1.5):
        la = np.full(n, la_value)
        u = rng.uniform(size=n)
        u = np.where(u == 0.0, 0.5, u)  # (0, 1) open
        z = impl.get(G.hard_concrete(impl.put(la), impl.put(u), backend=impl.backend, **kw))
        p0 = float(G.hard_concrete_p0(np.array([la_value]), backend="numpy", **kw)[0])
        p1 = float(G.hard_concrete_p1(np.array([la_value]), backend="numpy", **kw)[0])
        assert 0 < p0 < 1 and 0 < p1 < 1
        assert binomial_ok(int(np.sum(z == 0.0)), n, p0), (la_value, np.mean(z == 0), p0)
        assert binomial_ok(int(np.sum(z == 1.0)), n, p1), (la_value, np.mean(z == 1), p1)


def test_expected_l0(impl):
    """Mean number of nonzero gates over S samples vs sum_i P(z_i != 0) (variance sum p(1-p)/S)."""
    rng = np.random.default_rng(5)
    n_gates, samples = 8, impl.cap(2000) // 8
    la = np.linspace(-4, 4, n_gates)
    la_rep = np.tile(la, samples)
    u = rng.uniform(size=la_rep.shape)
    z = impl.get(G.hard_concrete(impl.put(la_rep), impl.put(u), backend=impl.backend))
    counts = (z.reshape(samples, n_gates) != 0).sum(axis=1)
    p = impl.get(G.hard_concrete_l0(impl.put(la), backend=impl.backend))
    expected = float(p.sum())
    sd = math.sqrt(float(np.sum(p * (1 - p))) / samples)
    assert abs(counts.mean() - expected) <= 5 * sd + 1.0 / samples


def test_torch_autograd_reaches_log_alpha():
    torch = pytest.importorskip("torch")
    from wsrbench.core import registry

    if "torch" not in registry.OPERATIONS["hard_concrete"]:
        pytest.skip("no torch implementation registered")
    la = torch.tensor([-8.0, -0.3, 0.0, 0.4, 9.0], dtype=torch.float64, requires_grad=True)
    u = torch.full((5,), 0.5, dtype=torch.float64)
    z = G.hard_concrete(la, u, backend="torch")
    z.sum().backward()
    g = la.grad
    assert g[0] == 0 and g[-1] == 0  # clamped at exactly 0 / 1: no gradient
    h = 1e-6
    for i in (1, 2, 3):
        lp, lm = la.detach().clone(), la.detach().clone()
        lp[i] += h
        lm[i] -= h
        fd = (G.hard_concrete(lp, u)[i] - G.hard_concrete(lm, u)[i]) / (2 * h)
        assert abs(float(g[i] - fd)) <= 1e-8
    l0 = G.hard_concrete_l0(la, backend="torch").sum()
    assert l0.requires_grad


@pytest.mark.parametrize("call,exc,match", [
    (lambda: G.hard_concrete(np.zeros(3), np.array([0.5, 0.0, 0.5])), ValueError, r"u must be in the open interval \(0, 1\); u\[1\] = 0.0"),
    (lambda: G.hard_concrete(np.zeros(2), np.array([0.5, 1.0])), ValueError, "u must be in the open interval"),
    (lambda: G.hard_concrete(np.zeros(2), np.array([0.5, -0.1])), ValueError, "u must be in the open"),
    (lambda: G.hard_concrete(np.zeros(2), np.array([0.5, np.nan])), ValueError, "u contains NaN"),
    (lambda: G.hard_concrete(np.array([np.nan, 0]), np.array([0.5, 0.5])), ValueError, "log_alpha contains NaN"),
    (lambda: G.hard_concrete(np.zeros(3), np.full(2, 0.5)), ValueError, "u must have the shape of log_alpha"),
    (lambda: G.hard_concrete(np.zeros(2), np.full(2, 0.5), beta=0.0), ValueError, "beta"),
    (lambda: G.hard_concrete(np.zeros(2), np.full(2, 0.5), gamma=0.1), ValueError, "gamma must be < 0"),
    (lambda: G.hard_concrete(np.zeros(2), np.full(2, 0.5), zeta=1.0), ValueError, "zeta must be > 1"),
    (lambda: G.hard_concrete(np.zeros(2), np.full(2, 0.5), beta=float("nan")), ValueError, "beta must be finite"),
    (lambda: G.hard_concrete_l0(np.array(["a"])), TypeError, "log_alpha must be"),
    (lambda: G.hard_concrete_gate(np.array([np.inf])), ValueError, "log_alpha contains Inf"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_bad_input_on_device(impl):
    la = impl.put(np.zeros(4))
    with pytest.raises(ValueError, match="u must be in the open interval"):
        G.hard_concrete(la, impl.put(np.array([0.5, 0.5, 1.0, 0.5])), backend=impl.backend)
    with pytest.raises(ValueError, match="log_alpha contains NaN at index 2"):
        G.hard_concrete_l0(impl.put(np.array([0.0, 1.0, np.nan])), backend=impl.backend)
