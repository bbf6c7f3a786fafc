"""The whole floating-point range, for every registered (backend, algorithm): docs/design.md#the-whole-floating-point-range.

Magnitudes are drawn over every exponent of each dtype (``tests/_exact.py``: the smallest
subnormals, the largest finite values and everything between), and every answer is judged against
the exact rational prox rounded to the dtype, and by the certificate. The certificate itself is
checked not to reject exactly rounded answers anywhere in the range (no false rejections), nor to
accept wrong ones. A new backend or algorithm is swept by registering it.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wsrbench
import wsrbench.ops.projection as P
import wsrbench.ops.soft_sharing as S
from wsrbench.core.numerics import EPS64, eps, value_tolerance

from ._exact import exact_prox, full_range_problems, magnitudes, round_to, rounded_exact
from ._operations import OpImpl, op_impls
from .conftest import given_impl


def exact_tolerance(x, exact, lam, l1) -> Fraction:
    """numerics.value_tolerance evaluated in rationals (the float scale may itself overflow)."""
    d = x.size
    scale = (max((abs(Fraction(float(v))) for v in x.reshape(-1)), default=Fraction(0))
             + max((abs(v) for v in exact), default=Fraction(0)) + Fraction(l1))
    rel = 2 * eps(x.dtype) + 4 * (d + 1) * EPS64
    floor = value_tolerance(d, x.dtype, 0.0)  # the absolute floor alone
    return (scale * Fraction(rel) + Fraction(lam) * Fraction(4 * (d + 1) * EPS64)
            + Fraction(floor))


def assert_matches_exact(x, w, lam, l1):
    """w within the derived tolerance of the exact prox; +-inf exactly where the exact answer
    rounds beyond the dtype's range."""
    exact = exact_prox(x, lam, l1)
    tol = exact_tolerance(x, exact, lam, l1)
    for i, (wi, ei) in enumerate(zip(w.reshape(-1).tolist(), exact)):
        target = round_to(ei, x.dtype)
        if not math.isfinite(target):
            assert wi == target, f"w[{i}] = {wi!r}, the exact value {float(ei)!r} overflows {x.dtype}"
            continue
        assert math.isfinite(wi), f"w[{i}] = {wi!r} but the exact value is {float(ei)!r}"
        err = abs(Fraction(wi) - ei)
        assert err <= tol, (f"w[{i}] = {wi!r}, exact {float(ei)!r}: error {float(err):.3e} > "
                            f"tolerance {float(tol):.3e}")


@pytest.mark.slow
@given_impl(problem=full_range_problems())
def test_full_range_matches_exact(impl, problem):
    """No silent wrong answer for finite input anywhere in float32 and float64."""
    x, lam, l1 = problem
    x = x[: impl.cap(x.size)]
    w, _ = impl.run(x, lam, l1=l1)
    assert w.dtype == x.dtype and w.shape == x.shape
    assert_matches_exact(x, w, lam, l1)
    if np.all(np.isfinite(w)):
        cert = wsrbench.certify(x, w, lam, l1=l1)
        assert cert, cert.message


@pytest.mark.slow
@given_impl(per_backend=True, problem=full_range_problems(max_d=6), rows=st.integers(2, 4),
            data=st.data())
def test_full_range_rows_of_different_scales(impl, problem, rows, data):
    """Rows of wildly different magnitudes in one call: each row scaled on its own. The grouping
    of rows by exponent is the backend's driver (numerics.prox_rows_in_range), the same for every
    algorithm: one run per backend (every algorithm meets the whole range in
    test_full_range_matches_exact)."""
    x, lam, l1 = problem
    d = impl.cap(x.size)
    X = np.empty((rows, d), dtype=x.dtype)
    for r in range(rows):
        mag = data.draw(magnitudes(x.dtype))
        base = np.array(data.draw(st.lists(st.floats(-1, 1), min_size=d, max_size=d)), float)
        with np.errstate(under="ignore"):
            X[r] = (base * mag).astype(x.dtype)
    W, _ = impl.run(X, lam)
    for r in range(rows):
        assert_matches_exact(X[r], W[r], lam, 0.0)


@given(problem=full_range_problems(max_d=32))
def test_certificate_accepts_exactly_rounded_answers(problem):
    """0 false rejections: the exact prox rounded to the dtype passes, subnormals included."""
    x, lam, l1 = problem
    w = rounded_exact(x, lam, l1)
    if not np.all(np.isfinite(w)):
        return  # the true answer overflows the dtype; nothing finite to certify
    cert = wsrbench.certify(x, w, lam, l1=l1)
    assert cert, cert.message


@given(problem=full_range_problems(max_d=16, dtypes=(np.float64,)),
       tiny=st.integers(1, 2**20))
def test_subnormal_answers_certified_and_wrong_ones_rejected(problem, tiny):
    """At subnormal scale the floor accepts the rounded exact answer; an error well above the
    floor on one cluster is still rejected."""
    x, lam, _ = problem
    x = (np.sign(x) * np.float64(5e-324) * np.round(np.abs(x) / max(np.max(np.abs(x), initial=1.0),
                                                                    1e-300) * tiny))
    lam = 5e-324 * float(tiny) * (lam > 0)
    w = rounded_exact(x, lam)
    cert = wsrbench.certify(x, w, lam)
    assert cert, cert.message
    if x.size >= 2:
        floor = value_tolerance(x.size, x.dtype, 0.0)
        scale = float(np.max(np.abs(x)) + np.max(np.abs(w))) + lam
        bad = w.copy()
        bad[int(np.argmax(x))] += 4 * (value_tolerance(x.size, x.dtype, scale, lam) + floor) \
            + 8 * scale
        assert not wsrbench.certify(x, bad, lam)


def _extreme_instances():
    big = np.finfo(np.float64).max
    return [
        (np.array([-0.9, 0.8, -0.7, 0.95]) * big, 0.0),           # x - median overflowed: -inf
        (np.array([1.0, -1.0, 0.5, -0.25, 0.75]) * 1e300, 1e308),  # shift sums near the maximum
        (np.linspace(-1, 1, 17) * 1e150, 1e160),
        (np.array([1.5e308, 1.5e308, -1.5e308]), 1e307),
        (np.array([3.0, 1.0, 2.0], dtype=np.float32), 1e300),      # float32 data, collapsing lam
    ]


def test_extreme_instances(impl):
    """Instances where x - median or a plain closed-form shift sum overflows near the top of the
    range."""
    for x, lam in _extreme_instances():
        x = x[: impl.cap(x.size)]
        w, _ = impl.run(x, lam)
        assert_matches_exact(x, w, lam, 0.0)


# ------------------------------------------------------------------ the other operators

@pytest.fixture(params=op_impls("project_ties"))
def ties_impl(request):
    return OpImpl(request.param)


@pytest.fixture(params=op_impls("soft_sharing_penalty"))
def soft_impl(request):
    return OpImpl(request.param)


@st.composite
def tied_weights(draw):
    """(w, groups): up to 4 groups, each of its own magnitude anywhere in w's dtype."""
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    n = draw(st.integers(1, 12))
    groups = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    mags = np.array([draw(magnitudes(dtype)) for _ in range(4)])
    base = np.array(draw(st.lists(st.floats(-1, 1), min_size=n, max_size=n)))
    if draw(st.booleans()):
        base = np.sign(base) + (base == 0)  # equal magnitudes: sums that overflow
    with np.errstate(under="ignore", over="ignore"):
        w = np.clip(base * mags[groups], -float(np.finfo(dtype).max), float(np.finfo(dtype).max))
    return w.astype(dtype), groups


def test_tie_means_full_range(ties_impl):
    """Group means of weights anywhere in the range (two of 1.5e308 used to sum to inf): within
    (n - 1) eps64 of the group's largest magnitude plus one rounding of the exact mean."""
    @settings(max_examples=max(10, settings.default.max_examples // 3))
    @given(problem=tied_weights())
    def run(problem):
        w, groups = problem
        out = ties_impl.get(P.project_ties(ties_impl.put(w), groups, backend=ties_impl.backend))
        for g in np.unique(groups):
            sel = groups == g
            exact = sum(Fraction(float(v)) for v in w[sel]) / int(sel.sum())
            big = max(abs(Fraction(float(v))) for v in w[sel])
            tol = (big * Fraction(int(sel.sum()) * EPS64) + abs(exact) * Fraction(eps(w.dtype))
                   + Fraction(value_tolerance(int(sel.sum()), w.dtype, 0.0)))
            got = out[sel]
            assert np.all(got == got[0]), "a group's weights are not bitwise equal"
            assert math.isfinite(float(got[0])), f"group {g}: {got[0]} for a finite mean"
            assert abs(Fraction(float(got[0])) - exact) <= tol, (g, float(got[0]), float(exact))
    run()


def test_tie_mean_of_a_group_spanning_the_whole_range(ties_impl):
    """One group from 1.5e308 down to the smallest subnormal: its plain sum overflows, and the
    re-sum must not drop the bits of the small weights (w 2^-64 flushed everything below 2^-1010).
    The large weights cancel exactly in any order and every partial sum of the small ones is a
    multiple of 2^-1072 below 2^-1019 (exact), so the answer is the exact (fractions) mean up to
    one rounding of the division: eps64 relative, or the subnormal spacing 2^-1074."""
    big = [1.5e308, 1.5e308, -1.5e308, -1.5e308, 1.0, -1.0, 2.0 ** -800, -(2.0 ** -800)]
    small = [2.0 ** -1072, 2.0 ** -1060, 2.0 ** -1030, 2.0 ** -1020]
    w = np.array(big + small)
    groups = np.array([0] * w.size + [1, 1])  # a second, ordinary group beside it
    w = np.append(w, [0.25, 0.5])
    out = ties_impl.get(P.project_ties(ties_impl.put(w), groups, backend=ties_impl.backend))
    n = len(big) + len(small)
    exact = sum(Fraction(v) for v in small) / n
    tol = abs(exact) * Fraction(EPS64) + Fraction(math.ldexp(1.0, -1074))
    got = out[:n]
    assert np.all(got == got[0])
    assert abs(Fraction(float(got[0])) - exact) <= tol, (float(got[0]), float(exact))
    assert np.all(out[n:] == 0.375)


@pytest.mark.parametrize("exp", [-1000, -300, -170, -100, 0, 100, 160, 300, 1000])
def test_affine_consistency_at_any_scale(exp):
    """Inconsistent constraints are refused and consistent ones projected onto, at every scale
    (the consistency norms used to overflow near 1e155 and underflow near 1e-160)."""
    s = math.ldexp(1.0, exp)
    A = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 1.0, -1.0]]) * s
    with pytest.raises(ValueError, match="inconsistent"):
        P.AffineProjector(A, np.array([1.0, 2.0, 0.5]) * s)
    proj = P.AffineProjector(A, np.array([1.0, 1.0, 0.5]) * s)
    w = proj.project(np.array([3.0, -2.0, 1.0]))  # the solutions have entries of order 1
    assert np.all(np.isfinite(w))
    assert proj.residual_of(w) <= 64 * EPS64 * (np.linalg.norm([1.0, 1.0, 0.5]) * s
                                                + P.scaled_norm(A) * P.scaled_norm(w))


@pytest.mark.slow
def test_soft_sharing_penalty_overflows_to_inf(soft_impl):
    """A weight 1e160 standard deviations from every component: the penalty is +inf, not NaN."""
    pi, mu, sigma = np.array([0.5, 0.5]), np.array([0.0, 1.0]), np.array([1.0, 2.0])
    for w in (np.array([1e160, 0.1]), np.array([-1e300]), np.array([1.7e308, -1.7e308])):
        value = soft_impl.get(S.soft_sharing_penalty(*(soft_impl.put(a) for a in (w, pi, mu, sigma)),
                                                     backend=soft_impl.backend))
        assert float(value) == math.inf


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(problem=full_range_problems())
def test_prox_state_full_range_matches_exact(problem):
    """The warm-started prox of training takes the same scaled path near the float limits, and a
    call on ordinary data afterwards still uses (and rebuilds) its hint correctly."""
    x, lam, l1 = problem
    state = wsrbench.ProxState()
    for _ in range(2):  # cold, then with the hint of the first call (or none after scaling)
        w = state.prox(x, lam, l1=l1)
        assert w.dtype == x.dtype and w.shape == x.shape
        assert_matches_exact(x, w, lam, l1)


def test_prox_state_extreme_instances():
    state = wsrbench.ProxState()
    for x, lam in _extreme_instances():
        assert_matches_exact(x, state.prox(x, lam), lam, 0.0)
        assert np.all(state.last_moves == -1)  # the scaled path uses and leaves no hint
    x = np.linspace(-1.0, 1.0, 9)
    state.prox(x, 0.1)
    state.prox(x, 0.1)
    assert np.all(state.last_moves == 0)  # ordinary data afterwards: the hint works again
