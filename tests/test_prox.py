"""The prox contract, for every (backend, algorithm) pair in the registry.

Each test takes the ``impl`` fixture (tests/conftest.py), so a newly registered backend or algorithm
is covered without writing a test. Expected values come from outside oracles (SciPy's isotonic
regression, a brute-force enumeration) or from properties of the map (docs/design.md#the-operator), never from
numbers copied out of a previous run.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import strategies as st
from scipy.optimize import isotonic_regression

import wsrbench
from wsrbench import cases
from wsrbench.bench import properties

from .conftest import given_impl, value_tol

# The slow properties below give a backend with a size cap (the GPU simulator, about a second a
# call on two cores) 4 examples each; the others get the profile's. The simulator's kernels also
# run the not-slow properties here and the GPU tests' sweeps.
SIM_EXAMPLES = 4

MAGNITUDES = [1e-100, 1e-8, 1.0, 1e8, 1e100]


@st.composite
def vectors(draw, max_d=40, dtype=None):
    """(x, lam): ties, huge and tiny magnitudes, lam from 0 to collapsing."""
    d = draw(st.integers(0, max_d))
    dtype = dtype or draw(st.sampled_from([np.float64, np.float32]))
    mag = draw(st.sampled_from(MAGNITUDES if dtype == np.float64 else [1e-8, 1.0, 1e8]))
    if draw(st.booleans()):  # few distinct values: many exact ties
        pool = draw(st.lists(st.integers(-4, 4), min_size=1, max_size=4))
        base = np.array(draw(st.lists(st.sampled_from(pool), min_size=d, max_size=d)), dtype=float)
    else:
        base = np.array(draw(st.lists(st.floats(-1.0, 1.0, allow_nan=False, width=32),
                                      min_size=d, max_size=d)), dtype=float)
    x = (base * mag).astype(dtype)
    lam_rel = draw(st.sampled_from([0.0, 1e-6, 1e-2, 0.3, 3.0, 1e6]))
    return x, lam_rel * mag


def oracle(x, lam):
    """SciPy's isotonic regression of the sorted, shifted x, un-sorted (float64)."""
    x = np.asarray(x, dtype=np.float64)
    d = x.shape[0]
    if d == 0:
        return np.zeros(0)
    order = np.argsort(x, kind="stable")
    v = lam * (d - 1 - 2 * np.arange(d)) / (d - 1) if d > 1 else np.zeros(1)
    w = np.empty(d)
    w[order] = isotonic_regression(x[order] + v).x
    return w


def scale_of(x, lam, *more):
    return float(np.max(np.abs(x), initial=0.0) + lam + sum(np.max(np.abs(m), initial=0.0) for m in more))


# -------------------------------------------------------------------------------- exactness

@given_impl(data=st.data())
@pytest.mark.slow
def test_matches_scipy_oracle(impl, data):
    x, lam = data.draw(vectors(max_d=impl.cap(40)))
    w = impl.prox(x, lam)
    properties.check_output(x, w)
    tol = value_tol(x.size, x.dtype, scale_of(x, lam))
    properties.check_reference(w, oracle(x, lam), tol, what="SciPy's isotonic regression")


@given_impl(data=st.data())
def test_certificate_accepts(impl, data):
    x, lam = data.draw(vectors(max_d=impl.cap(40)))
    l1 = data.draw(st.sampled_from([0.0, 0.0, 0.1, 10.0])) * scale_of(x, 0.0)
    w = impl.prox(x, lam, l1=l1)
    properties.check_certificate(x, w, lam, l1=l1)


@pytest.mark.slow
@pytest.mark.parametrize("family", cases.names())
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_families_certified_and_agree_with_reference(impl, family, dtype):
    d = impl.cap(300)
    x, lam = cases.make(family, d, seed=1, dtype=dtype)
    w, info = impl.run(x, lam)
    properties.check_certificate(x, w, lam)
    ref, ref_info = wsrbench.prox_info(x, lam, algorithm=impl.algorithm, backend="numpy")
    properties.check_reference(w, ref, value_tol(d, dtype, scale_of(x, lam)))
    assert ref_info.depth is not None  # every reference counts its depth (docs/design.md#parallel-depth)
    if family != "nearly_sorted":  # its noise sits at rounding level of its ties
        assert info.clusters == ref_info.clusters
        assert info.rounds == ref_info.rounds
        if info.depth is not None:  # a backend that counts depth counts the reference's
            assert info.depth == ref_info.depth


@pytest.mark.parametrize("d", [0, 1, 2])
def test_tiny_sizes(impl, d):
    x = np.array([0.5, -1.25][:d])
    w, info = impl.run(x, 0.75)
    np.testing.assert_allclose(w, oracle(x, 0.75), rtol=0, atol=4 * np.finfo(float).eps)
    assert info.clusters == d  # 1.75 apart, each moves 0.75 toward the other: no collision
    assert w.shape == (d,)


def test_d2_closed_form(impl):
    # d = 2: the points move toward each other by lam each, and stick when they meet.
    for lam in [0.0, 0.1, 0.5, 0.75]:
        w = impl.prox(np.array([0.0, 1.0]), lam)
        expect = [min(lam, 0.5), max(1 - lam, 0.5)]
        np.testing.assert_allclose(w, expect, rtol=0, atol=4 * np.finfo(float).eps)


# -------------------------------------------------------------------------------- properties

@pytest.mark.slow
@given_impl(SIM_EXAMPLES, data=st.data())
def test_order_ties_and_mean(impl, data):
    x, lam = data.draw(vectors(max_d=impl.cap(40)))
    w = impl.prox(x, lam)
    tol = value_tol(x.size, x.dtype, scale_of(x, lam))
    properties.check_order(x, w, tol)
    properties.check_ties(x, w)  # bitwise: a cluster has one value
    properties.check_mean(x, w, tol)


@pytest.mark.slow
@given_impl(SIM_EXAMPLES, data=st.data(), shift=st.sampled_from([-1e6, -3.5, 0.25, 1e3]))
def test_translation(impl, data, shift):
    x, lam = data.draw(vectors(max_d=impl.cap(30), dtype=np.float64))
    w = impl.prox(x, lam)
    tol = value_tol(x.size, x.dtype, scale_of(x, lam) + abs(shift))
    properties.check_translation(impl.prox, x, w, lam, shift, 2 * tol, label=repr(impl))


@pytest.mark.slow
@given_impl(SIM_EXAMPLES, data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_permutation_equivariance(impl, data, seed):
    x, lam = data.draw(vectors(max_d=impl.cap(40)))
    p = np.random.default_rng(seed).permutation(x.size)
    w = impl.prox(x, lam)
    tol = value_tol(x.size, x.dtype, scale_of(x, lam))
    properties.check_permutation(impl.prox, x, w, lam, tol, p, label=repr(impl))


@pytest.mark.slow
@given_impl(SIM_EXAMPLES, data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_non_expansive(impl, data, seed):
    x, lam = data.draw(vectors(max_d=impl.cap(40), dtype=np.float64))
    z = x + np.random.default_rng(seed).normal(size=x.size) * (np.abs(x).max(initial=1.0))
    lhs = np.linalg.norm(impl.prox(x, lam) - impl.prox(z, lam))
    tol = value_tol(x.size, x.dtype, scale_of(x, lam, z)) * np.sqrt(max(x.size, 1))
    assert lhs <= np.linalg.norm(x - z) + 2 * tol


@given_impl(data=st.data())
def test_lam_zero_is_identity(impl, data):
    """lam = l1 = 0 returns x bit for bit, whatever rho, signed zeros included: -0.0 and 0.0
    are equal inputs, but each keeps its own sign (docs/design.md#ties)."""
    x, _ = data.draw(vectors(max_d=impl.cap(40)))
    x = x.copy()
    for k in data.draw(st.lists(st.integers(0, max(x.size - 1, 0)), max_size=4)) if x.size else []:
        x[k] = data.draw(st.sampled_from([-0.0, 0.0]))
    rho = data.draw(st.sampled_from([0.0, 0.5]))
    w = impl.prox(x, 0.0, rho=rho)
    assert w.dtype == x.dtype
    uint = np.uint32 if x.dtype == np.float32 else np.uint64
    np.testing.assert_array_equal(w.view(uint), x.view(uint))


@pytest.mark.slow
@given_impl(SIM_EXAMPLES, data=st.data())
def test_large_lam_collapses_to_mean(impl, data):
    x, _ = data.draw(vectors(max_d=impl.cap(40), dtype=np.float64))
    if x.size < 2:
        return
    lam = max(cases.collapse_lam(x), np.abs(x).max()) * 1.5 + 1e-300
    w, info = impl.run(x, lam)
    assert info.clusters == 1
    np.testing.assert_allclose(w, np.full(x.size, x.mean()), rtol=0,
                               atol=value_tol(x.size, x.dtype, np.abs(x).max()))


def test_huge_lam_does_not_lose_the_mean(impl):
    # The shifts are ~1e30 but sum to exactly 0: the answer is mean(x) to rounding of x, not of lam.
    x = np.random.default_rng(3).normal(size=impl.cap(33))
    w = impl.prox(x, 1e30)
    np.testing.assert_allclose(w, np.full(x.size, x.mean()), rtol=0, atol=value_tol(x.size, x.dtype, 3.0))


@pytest.mark.slow
@given_impl(SIM_EXAMPLES, data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_perturbations_never_improve_the_objective(impl, data, seed):
    """benchopt-style: w + delta costs at least 1/2 ||delta||^2 more (strong convexity)."""
    x, lam = data.draw(vectors(max_d=impl.cap(30), dtype=np.float64))
    if x.size == 0:
        return
    l1 = data.draw(st.sampled_from([0.0, 0.05])) * np.abs(x).max()
    w = impl.prox(x, lam, l1=l1)
    rng = np.random.default_rng(seed)
    s = scale_of(x, lam, w)
    tol_w = value_tol(x.size, x.dtype, s)
    # |F(w) - F(w*)| <= (|grad| bound) * ||w - w*||_1 with |grad| <= 2s + 2 lam + l1 per entry.
    tol_f = x.size * tol_w * (4 * s + l1) + 8 * x.size * np.finfo(float).eps * s * s
    base = properties.objective(x, w, lam, l1)
    for eps in [1e-2, 1e-5]:
        for _ in range(10):
            delta = rng.normal(size=x.size) * eps * s
            if rng.random() < 0.5:  # move a single weight: splits or shifts a cluster
                delta[np.arange(x.size) != rng.integers(x.size)] = 0.0
            gain = properties.objective(x, w + delta, lam, l1) - base
            assert gain >= 0.5 * np.sum(delta ** 2) * (1 - 1e-6) - tol_f


# -------------------------------------------------------------------------------- L1 and rho

def brute_force(x, lam, l1):
    """Exact minimiser by enumeration (tiny d): the optimum is a partition of the sorted order into
    runs, each at mean(y) - l1 sign or at 0; evaluate the objective with the O(d^2) pairwise form
    of R, which shares nothing with the library's code."""
    x = np.asarray(x, dtype=np.float64)
    d = x.size
    order = np.argsort(x, kind="stable")
    y = x[order] + (lam * (d - 1 - 2 * np.arange(d)) / (d - 1) if d > 1 else 0.0)

    def f(w):
        pair = sum(abs(a - b) for a, b in itertools.combinations(w, 2)) / max(d - 1, 1)
        return 0.5 * np.sum((w - x) ** 2) + lam * pair + l1 * np.sum(np.abs(w))

    best, best_w = np.inf, None
    for cuts in itertools.product([False, True], repeat=d - 1):
        bounds = [0] + [i + 1 for i, c in enumerate(cuts) if c] + [d]
        blocks = list(zip(bounds[:-1], bounds[1:]))
        for signs in itertools.product([-1, 0, 1], repeat=len(blocks)):
            ws = np.empty(d)
            for (a, b), s in zip(blocks, signs):
                ws[a:b] = 0.0 if s == 0 else y[a:b].mean() - l1 * s
            w = np.empty(d)
            w[order] = ws
            val = f(w)
            if val < best:
                best, best_w = val, w
    return best_w


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(12))
def test_l1_composition_against_brute_force(impl, seed):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 6))
    x = np.round(rng.normal(size=d) * 4) / 4  # some ties
    lam = float(rng.choice([0.0, 0.1, 0.7, 3.0]))
    l1 = float(rng.choice([0.0, 0.2, 0.6, 5.0]))
    w = impl.prox(x, lam, l1=l1)
    ref = brute_force(x, lam, l1)
    np.testing.assert_allclose(w, ref, rtol=0, atol=1e3 * np.finfo(float).eps * (1 + lam + l1))


@pytest.mark.slow
@given_impl(SIM_EXAMPLES, data=st.data(), rho=st.floats(0.0, 1.0))
def test_rho_interpolates_between_prox_and_centroids(impl, data, rho):
    x, lam = data.draw(vectors(max_d=impl.cap(30), dtype=np.float64))
    w0, info0 = impl.run(x, lam)
    w1, info1 = impl.run(x, lam, rho=1.0)
    wr = impl.prox(x, lam, rho=rho)
    tol = value_tol(x.size, x.dtype, scale_of(x, lam))
    assert info1.clusters == info0.clusters  # which weights merge is decided by the full lam
    np.testing.assert_allclose(wr, (1 - rho) * w0 + rho * w1, rtol=0, atol=2 * tol)
    # rho = 1 only merges: each cluster sits at the centroid of its x, so the mean is kept and
    # every cluster of w0 is constant in w1 at the mean of x over it.
    for v in np.unique(w0):
        members = w0 == v
        np.testing.assert_allclose(w1[members], x[members].mean(), rtol=0, atol=tol)


def test_rho_keeps_l1_zeros_exact(impl):
    x = np.array([-0.3, 0.05, 0.1, 2.0, 2.2])
    w = impl.prox(x, 0.1, l1=0.5, rho=0.5)
    zero = impl.prox(x, 0.1, l1=0.5) == 0.0
    assert zero.any() and np.all(w[zero] == 0.0)


# -------------------------------------------------------------------------------- 2-D and dtypes

@pytest.mark.slow
def test_rows_are_independent(impl):
    rng = np.random.default_rng(7)
    d = impl.cap(25)
    X = rng.normal(size=(5, d))
    X[2] = X[2, 0]  # a constant row
    lams = 0.4
    W, info = impl.run(X, lams)
    assert W.shape == X.shape
    assert np.shape(info.rounds) == (5,) and np.shape(info.clusters) == (5,)
    for i in range(5):
        w_i, info_i = impl.run(X[i], lams)
        np.testing.assert_allclose(W[i], w_i, rtol=0, atol=value_tol(d, X.dtype, scale_of(X, lams)))
        assert info.clusters[i] == info_i.clusters and info.rounds[i] == info_i.rounds


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_kept(impl, dtype):
    x = np.linspace(-1, 1, impl.cap(17)).astype(dtype)
    assert impl.prox(x, 0.3).dtype == dtype
    assert impl.prox(x.reshape(1, -1), 0.3).dtype == dtype


@pytest.mark.slow
def test_input_never_mutated_and_views_work(impl):
    rng = np.random.default_rng(11)
    d = impl.cap(20)
    X = rng.normal(size=(3, 2 * d))
    keep = X.copy()
    contiguous = impl.prox(np.ascontiguousarray(X[:, ::2]), 0.5)
    assert np.array_equal(X, keep)
    ro = X.copy()
    ro.setflags(write=False)
    np.testing.assert_array_equal(impl.prox(ro[:, ::2], 0.5), contiguous)
    np.testing.assert_array_equal(impl.prox(np.asfortranarray(X[:, ::2]), 0.5), contiguous)
    np.testing.assert_array_equal(impl.prox(X[:, ::2].T.copy().T, 0.5), contiguous)
    assert np.array_equal(X, keep)


# -------------------------------------------------------------------------------- numpy-only API

def test_integer_input_becomes_float64():
    w = wsrbench.prox(np.array([3, 1, 2]), 0.5, backend="numpy")
    assert w.dtype == np.float64
    np.testing.assert_allclose(w, oracle([3.0, 1.0, 2.0], 0.5), atol=1e-15)


def test_list_input():
    np.testing.assert_allclose(wsrbench.prox([0.0, 1.0], 0.25, backend="numpy"), [0.25, 0.75])
