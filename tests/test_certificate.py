"""The optimality certificate accepts every correct answer and rejects wrong ones, however wrong."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import wsrbench
from wsrbench import cases

from .conftest import value_tol
from .test_prox import oracle, vectors


def ref(x, lam, l1=0.0):
    return wsrbench.prox(x, lam, l1=l1, backend="numpy")


@pytest.mark.parametrize("family", cases.names())
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("l1", [0.0, 0.3])
def test_accepts_reference_on_every_family(family, dtype, l1):
    x, lam = cases.make(family, 500, seed=2, dtype=dtype)
    cert = wsrbench.certify(x, ref(x, lam, l1), lam, l1=l1)
    assert cert.ok and bool(cert), cert.message
    assert cert.violation <= cert.tolerance


@given(data=st.data())
def test_accepts_the_scipy_oracle(data):
    """An answer computed by someone else, rounded to x's dtype, is accepted."""
    x, lam = data.draw(vectors(max_d=40))
    assert wsrbench.certify(x, oracle(x, lam).astype(x.dtype), lam).ok


@pytest.mark.parametrize("c", [1e-100, 1e-5, 1.0, 1e5, 1e100])
def test_scale_invariant_verdicts(c):
    x, lam = cases.make("quantized", 200, seed=3)
    w = ref(x, lam)
    good = wsrbench.certify(x * c, w * c, lam * c)
    assert good.ok
    bad = w.copy()
    bad[17] += 1e-6
    verdict = wsrbench.certify(x * c, bad * c, lam * c)
    assert not verdict.ok
    assert np.isclose(verdict.violation, wsrbench.certify(x, bad, lam).violation, rtol=1e-6)


def _wrong_answers(x, lam):
    """Wrong answers of every kind the certificate must reject, with the condition expected."""
    w = ref(x, lam)
    d = x.size
    order = np.argsort(x, kind="stable")
    k = np.arange(d)
    out = {}
    # a single moved weight, by far more than rounding but far less than the data's spread
    moved = w.copy()
    moved[d // 3] += 1e-7 * np.abs(x).max()
    out["single moved weight"] = moved
    # unmerged clusters: an algorithm stopped early (a smaller lam merges less)
    out["unmerged clusters"] = ref(x, lam * 0.5)
    # merged too much
    out["over-merged"] = ref(x, lam * 2.0)
    # wrong cluster values: one whole cluster shifted
    vals, inverse = np.unique(w, return_inverse=True)
    shifted = w + (inverse == len(vals) // 2) * 1e-6 * np.abs(x).max()
    out["wrong cluster value"] = shifted
    # wrong shift signs: isotonic fit of x - v instead of x + v
    v = lam * (d - 1 - 2 * k) / (d - 1)
    from scipy.optimize import isotonic_regression

    flipped = np.empty(d)
    flipped[order] = isotonic_regression(x[order] - v).x
    out["wrong shift sign"] = flipped
    # shifts in float32 for float64 data (the paper code's mistake)
    v32 = (np.float32(lam) * (np.float32(d - 1) - 2 * k.astype(np.float32)) / np.float32(d - 1))
    f32 = np.empty(d)
    f32[order] = isotonic_regression(x[order] + v32.astype(np.float64)).x
    out["float32 shifts"] = f32
    # order reversed inside the answer
    out["permuted answer"] = w[::-1].copy()
    return out


@pytest.mark.parametrize("family", ["gaussian", "uniform", "quantized", "nearly_sorted",
                                    "worst_imminent_collisions", "heavy_tailed"])
def test_rejects_wrong_answers(family):
    x, lam = cases.make(family, 400, seed=4)
    if family == "gaussian":
        lam = 3.0  # enough merging that the early-stop answers differ
    right = ref(x, lam)
    for what, w in _wrong_answers(x, lam).items():
        if np.max(np.abs(w - right)) <= value_tol(x.size, x.dtype, np.abs(x).max() + lam):
            continue  # within rounding of the right answer: this family cannot express the mistake
        cert = wsrbench.certify(x, w, lam)
        assert not cert.ok, f"accepted: {what}"
        assert cert.condition in {"order", "constant", "split", "balance"}
        assert cert.index is not None and 0 <= cert.index < x.size


def test_rejection_says_where():
    x = np.array([3.0, 1.0, 2.0, 10.0])
    w = ref(x, 0.4)
    w[3] += 0.01
    cert = wsrbench.certify(x, w, 0.4)
    assert not cert.ok and cert.index == 3 and cert.condition == "balance"
    assert "index 3" in cert.message


def test_split_detected():
    # One cluster where the answer should be two.
    x = np.array([0.0, 10.0])
    cert = wsrbench.certify(x, np.array([5.0, 5.0]), 0.1)
    assert not cert.ok and cert.condition == "split"


def test_l1_certificate():
    x, lam = cases.make("gaussian", 300, seed=5)
    lam = 2.0
    l1 = 0.4
    w = ref(x, lam, l1)
    assert (w == 0).any()
    assert wsrbench.certify(x, w, lam, l1=l1).ok
    assert not wsrbench.certify(x, ref(x, lam), lam, l1=l1).ok  # L1 ignored
    assert not wsrbench.certify(x, w, lam).ok  # L1 applied when it should not be
    nudged = w.copy()
    nudged[np.flatnonzero(w == 0)[0]] = 1e-6
    assert not wsrbench.certify(x, nudged, lam, l1=l1).ok


def test_rows_report_the_failing_row():
    X = np.random.default_rng(6).normal(size=(4, 30))
    W = ref(X, 0.5)
    assert wsrbench.certify(X, W, 0.5).ok
    W[2, 5] += 1e-4
    cert = wsrbench.certify(X, W, 0.5)
    assert not cert.ok and cert.row == 2 and cert.index == 5


def test_shape_mismatch_and_bad_input():
    with pytest.raises(ValueError, match="w must have the shape of x"):
        wsrbench.certify(np.zeros(3), np.zeros(4), 0.1)
    with pytest.raises(ValueError, match="w contains NaN"):
        wsrbench.certify(np.zeros(2), np.array([0.0, np.nan]), 0.1)
    with pytest.raises(ValueError, match="lam must be >= 0"):
        wsrbench.certify(np.zeros(2), np.zeros(2), -1.0)


def test_empty_and_zero():
    assert wsrbench.certify(np.zeros(0), np.zeros(0), 1.0).ok
    assert wsrbench.certify(np.zeros(5), np.zeros(5), 1.0).ok
    assert not wsrbench.certify(np.zeros(5), np.full(5, 1e-3), 1.0).ok


# ---------------------------------------------------------------- near ties and rounding noise

def test_accepts_distinct_clusters_closer_than_rounding():
    """Runs of exactly equal values may be distinct clusters even when their values differ by less
    than the tolerance (a chain of near ties must not be read as one cluster)."""
    x, _ = cases.make("nearly_sorted", 1000, dtype=np.float32)
    assert wsrbench.certify(x, x, 0.0).ok  # lam = 0: the identity, thousands of near ties
    x, lam = cases.make("gaussian", 20000, dtype=np.float32)
    assert wsrbench.certify(x, ref(x, lam), lam).ok


def test_accepts_rounding_noise_inside_a_cluster():
    """An implementation that rounds element by element leaves noise below the tolerance inside a
    cluster; the cluster is then read as one cluster with noise."""
    x, lam = cases.make("gaussian_collapse", 300, seed=8)
    w = ref(x, lam)
    cert = wsrbench.certify(x, w, lam)
    scale = np.abs(x).max() + np.abs(w).max() + lam
    noise = np.random.default_rng(0).uniform(-0.25, 0.25, size=x.size) * cert.tolerance * scale
    assert wsrbench.certify(x, w + noise, lam).ok


def test_rejects_a_staircase_of_sub_tolerance_drops():
    """Each step down is below the tolerance, but they add up: the running maximum catches it."""
    d, lam = 200, 1.0
    k = np.arange(d)
    v = lam * (d - 1 - 2 * k) / (d - 1)
    y = -k * 1e-14  # gently decreasing: the true answer pools everything
    x = y - v  # sorted ascending
    cert = wsrbench.certify(x, y, lam)  # the unmerged answer w = y
    assert 1e-14 < cert.tolerance * (np.abs(x).max() + np.abs(y).max() + lam)  # each drop passes
    assert not cert.ok and cert.condition == "order"  # ... but the staircase does not


def test_rejects_a_ramp_hidden_below_the_tolerance():
    """A ramp across one true cluster with steps below the tolerance keeps the mean and the order,
    yet it is wrong: neither reading of the chain (one noisy cluster, or exact runs) accepts it."""
    x, lam = cases.make("gaussian_collapse", 400, seed=9)
    w = ref(x, lam)
    tol = wsrbench.certify(x, w, lam).tolerance * (np.abs(x).max() + np.abs(w).max() + lam)
    ramp = (np.argsort(np.argsort(x, kind="stable")) - (x.size - 1) / 2) * 0.5 * tol
    cert = wsrbench.certify(x, w + ramp, lam)
    assert not cert.ok
