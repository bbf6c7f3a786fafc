"""The rho variant where two clusters are exactly about to merge (docs/design.md#the-rho-discontinuity).

There the prox value is continuous but the rho answer is not: merged clusters move to their joint
centroid's side, unmerged ones each to their own, an O(|x|) difference decided by the rounding of
the merge test. Both readings are legitimate; every registered (backend, algorithm) must give one
of them (``properties.check_rho``), and a wrong rho answer must still be rejected.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import strategies as st

from wsrbench.bench import properties

from .conftest import given_impl, value_tol


def merge_point(lam: float, a_ulps: int, dtype):
    """x with two clusters {0, 0} and {a, a} whose prox values 2 lam / 3 and a - 2 lam / 3 are
    equal when a = 4 lam / 3 (here within a few ulps of it): the merge test is a tie."""
    a = np.float64(4.0 * lam / 3.0)
    for _ in range(abs(a_ulps)):
        a = np.nextafter(a, math.copysign(np.inf, a_ulps))
    return np.array([a, 0.0, a, 0.0]).astype(dtype)


@pytest.mark.slow
@given_impl(lam=st.floats(1e-3, 1e3), exp=st.integers(-40, 40), ulps=st.integers(-2, 2),
            rho=st.floats(0.05, 0.95), dtype=st.sampled_from([np.float64, np.float32]))
def test_rho_at_an_exact_merge_point(impl, lam, exp, ulps, rho, dtype):
    lam = math.ldexp(lam, exp)
    x = merge_point(lam, ulps, dtype)
    lam = float(4.0 * float(x.max()) / 3.0 * 0.75) if dtype == np.float32 else lam
    w = impl.prox(x, lam, rho=rho)
    tol = value_tol(x.size, dtype, float(np.max(np.abs(x))) + lam)
    properties.check_rho(x, w, lam, rho, tol)


def test_both_readings_differ_by_order_of_x_and_a_wrong_one_fails():
    lam = 0.3
    x = merge_point(lam, 0, np.float64)
    tol = value_tol(4, np.float64, float(np.max(x)) + lam)
    merged, split = properties.rho_readings(x, lam, 0.5, tol)
    assert np.max(np.abs(merged - split)) > 0.1 * float(np.max(x))  # O(|x|): not rounding
    properties.check_rho(x, merged, lam, 0.5, tol)
    properties.check_rho(x, split, lam, 0.5, tol)
    with pytest.raises(properties.CheckFailure):
        properties.check_rho(x, 0.5 * (merged + split), lam, 0.5, tol)
