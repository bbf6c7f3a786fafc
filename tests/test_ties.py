"""Ties and wide rows, for every registered (backend, algorithm) and ProxState: docs/design.md#ties.

Equal inputs must give bitwise equal outputs and one label at every lam >= 0, with and without L1
and rho; lam = 0 must return the exact answer bit for bit (x itself without L1); every value must
lie within the derived tolerance of the exact rational prox. The draws (``tests/_exact.py``:
``tie_problems``) are long runs of exact ties, values 1 ulp apart, rows with an outlier at 1/eps
and beyond, and lam in {0, subnormal, below the resolution of x}.
"""
from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import wsrbench
from wsrbench.core.sorted_space import block_outputs

from ._exact import tie_problems, tie_ranks
from .conftest import given_impl
from .test_float_range import assert_matches_exact


def assert_ties_shared(x, w, labels):
    """Every run of equal inputs: one output bit pattern and one label."""
    ranks = tie_ranks(x)
    bits = np.asarray(w).view(np.uint32 if w.dtype == np.float32 else np.uint64)
    for r in np.unique(ranks):
        m = ranks == r
        assert np.unique(bits[m]).size == 1, f"equal inputs {x[m][0]!r} gave {np.unique(w[m])}"
        if labels is not None:
            assert np.unique(labels[m]).size == 1, f"equal inputs {x[m][0]!r} got two labels"


def lam0_answer(x, l1, rho):
    """The prox at lam = 0, computed the library's one way (block_outputs with centroid = x)."""
    xf = x.astype(np.float64)
    return block_outputs(xf, xf, l1, rho).astype(x.dtype)


def check(x, w, labels, lam, l1, rho):
    assert w.dtype == x.dtype and w.shape == x.shape
    # -0.0 and 0.0 are equal inputs: compare values, not bits, where a zero is involved
    assert_ties_shared(np.where(x == 0, 0, x).astype(x.dtype), np.where(w == 0, 0, w).astype(w.dtype),
                       labels)
    if lam == 0.0:
        np.testing.assert_array_equal(w, lam0_answer(x, l1, rho))
        if labels is not None:  # the partition at lam = 0: the runs of equal values
            np.testing.assert_array_equal(tie_ranks(labels), tie_ranks(x))
    if rho == 0.0:
        assert_matches_exact(x, w, lam, l1)


@given_impl(problem=tie_problems())
def test_ties_and_wide_rows(impl, problem):
    x, lam, l1, rho = problem
    x = x[: impl.cap(x.size)]
    w, info = impl.run(x, lam, l1=l1, rho=rho, labels=True)
    labels = info.labels
    if labels is not None and not isinstance(labels, np.ndarray):
        labels = np.asarray(impl.entry.load().to_numpy(labels))
    check(x, w, labels, lam, l1, rho)


@given(problem=tie_problems())
def test_prox_state_ties_and_wide_rows(problem):
    x, lam, l1, rho = problem
    state = wsrbench.ProxState()
    for _ in range(2):  # cold, then with the hint of the first call
        w, info = state.prox_info(x, lam, l1=l1, rho=rho, labels=True)
        check(x, np.asarray(w), info.labels, lam, l1, rho)


@given(problem=tie_problems(max_d=400), step=st.sampled_from(["ulp", "lam", "none"]),
       seed=st.integers(0, 2**32 - 1))
def test_prox_state_after_a_step_ties_and_wide_rows(problem, step, seed):
    """A warm call after a step that moved some of the prox's outputs (by an ulp or by up to lam)
    and kept the rest, ties included: the cluster path's units, peeled values and group sorts
    (docs/design.md#proxstate) must keep the tie property and the exact values."""
    x, lam, l1, rho = problem
    state = wsrbench.ProxState()
    w = np.array(state.prox(x, lam, l1=l1, rho=rho))
    rng = np.random.default_rng(seed)
    moved = rng.random(w.shape) < 0.3
    if step == "ulp":
        w[moved] = np.nextafter(w[moved], np.asarray(np.inf, dtype=w.dtype))
    elif step == "lam":
        with np.errstate(over="ignore"):
            w[moved] = (w[moved] + lam * rng.uniform(-1, 1, int(moved.sum()))).astype(w.dtype)
    w = np.where(np.isfinite(w), w, x)
    w2, info = state.prox_info(w, lam, l1=l1, rho=rho, labels=True)
    check(w, np.asarray(w2), info.labels, lam, l1, rho)


def test_tie_spread_example():
    """Centred at the median 0.0245..., the run of -0.0968... sums to a mean 1 ulp off the tied
    value, which then no longer pooled the next copy: equal inputs came out 1 ulp apart."""
    a, b, c = 0.024551469011268333, -0.09682455963503417, 0.06104621376709379
    x = np.array([a, b, a, c, b, c, a, a, a, c, c, b, b, b, a])
    for alg in ("pava", "end_collisions", "imminent_collisions", "search_collisions",
                "hull_bridges"):
        for lam in (0.0, 5e-324):
            w, info = wsrbench.prox_info(x, lam, algorithm=alg, backend="numpy", labels=True)
            assert info.clusters == 3
            assert_ties_shared(x, w, info.labels)
        np.testing.assert_array_equal(wsrbench.prox(x, 0.0, algorithm=alg, backend="numpy"), x)


def test_signed_zeros_at_lam_zero_prox_state_and_block_outputs():
    """lam = l1 = 0 returns x bit for bit, -0.0 included, in ProxState (cold and warm) and in
    numerics.block_outputs, the lam = 0 step of the scaled path and of the sharded prox."""
    from wsrbench.core.numerics import block_outputs

    for dtype, uint in ((np.float64, np.uint64), (np.float32, np.uint32)):
        x = np.array([-0.0, 0.0, 1.5, -0.0, -2.0, 0.0, 1.5], dtype=dtype)
        for rho in (0.0, 0.5):
            state = wsrbench.ProxState()
            for _ in range(2):
                w = np.asarray(state.prox(x, 0.0, rho=rho))
                np.testing.assert_array_equal(w.view(uint), x.view(uint))
            xf = x.astype(np.float64)
            out = block_outputs(xf, xf, 0.0, rho).astype(dtype)
            np.testing.assert_array_equal(out.view(uint), x.view(uint))
