"""Cluster labels (``prox_info(..., labels=True)``) for every (backend, algorithm) of the registry.

The labels must describe the partition the algorithm found (docs/design.md#the-canonical-partition and docs/design.md#cluster-labels): one int64 per
weight, in x's shape and array kind, numbered 0, 1, ... in increasing value per row. Because the
canonical partition is the same for every algorithm, and labels increasing with the value name a
partition uniquely, the expected labels are the NumPy reference's; the reference itself is checked
against a partition read off the exact fit (equal fitted values) on inputs where that is unambiguous.
"""
from __future__ import annotations

import numpy as np
import pytest

import wsrbench
from wsrbench import cases

# Families whose partition has no near-ties at rounding level (nearly_sorted's noise sits at the
from wsrbench.core import registry

# level of its ties, so GPU sums in another order may split a block there; see test_prox.py).
FAMILIES = [f for f in cases.names("typical") if f != "nearly_sorted"]


def _labels_np(impl, x, lam, **kw):
    mod = impl.entry.load()
    w, info = wsrbench.prox_info(mod.from_numpy(np.asarray(x)), lam, algorithm=impl.algorithm,
                                 backend=impl.backend, labels=True, **kw)
    assert registry.array_kind(info.labels) == registry.array_kind(w)  # the input's kind
    return np.asarray(mod.to_numpy(w)), np.asarray(mod.to_numpy(info.labels)), info


def _check_structure(x, w, labels, clusters):
    """Shape, dtype, ids 0..clusters-1 all used, increasing with x, outputs constant per label."""
    assert labels.shape == x.shape and labels.dtype == np.int64
    X, W, L = (np.atleast_2d(a) for a in (x, w, labels))
    for i, c in enumerate(np.atleast_1d(clusters)):
        if X.shape[1] == 0:
            continue
        assert np.array_equal(np.unique(L[i]), np.arange(c))
        order = np.argsort(X[i], kind="stable")
        assert np.all(np.diff(L[i][order]) >= 0), "labels must increase with the value"
        first = np.zeros(c, dtype=np.int64)
        first[L[i]] = np.arange(X.shape[1])
        assert np.array_equal(W[i], W[i][first[L[i]]]), "one output value per cluster"


# Every family in both dtypes, each with one of the (l1, rho) settings in turn, so that every
# setting meets every dtype and most families (the full cross product repeats the same code paths)
_SETTINGS = [(0.0, 0.0), (0.3, 0.0), (0.1, 0.5)]
_CASES = [pytest.param(f, t, *_SETTINGS[(i + j) % len(_SETTINGS)], id=f"{f}-{np.dtype(t).name}")
          for i, f in enumerate(FAMILIES) for j, t in enumerate([np.float64, np.float32])]


@pytest.mark.slow
@pytest.mark.parametrize("family,dtype,l1,rho", _CASES)
def test_labels_are_the_reference_partition(impl, family, dtype, l1, rho):
    d = impl.cap(200)
    x, lam = cases.make(family, d, seed=3, dtype=dtype)
    w, labels, info = _labels_np(impl, x, lam, l1=l1, rho=rho)
    _check_structure(x, w, labels, info.clusters)
    _, ref = wsrbench.prox_info(x, lam, l1=l1, rho=rho, algorithm="pava", backend="numpy",
                                labels=True)
    np.testing.assert_array_equal(labels, ref.labels)


def test_labels_rows_and_edge_sizes(impl):
    rng = np.random.default_rng(7)
    d = impl.cap(40)
    X = np.round(rng.standard_normal((3, d)), 1)  # rounded: exact ties inside rows
    w, labels, info = _labels_np(impl, X, 0.4)
    _check_structure(X, w, labels, info.clusters)
    ref = wsrbench.prox_info(X, 0.4, backend="numpy", labels=True)[1].labels
    np.testing.assert_array_equal(labels, ref)
    for k in (0, 1, 2):
        x = np.array([0.5, -1.25][:k])
        w, labels, info = _labels_np(impl, x, 0.75)
        assert labels.shape == (k,) and labels.dtype == np.int64
        assert labels.tolist() == [[], [0], [1, 0]][k]  # 1.75 apart: no collision at 0.75


def test_reference_labels_match_the_exact_fit():
    """Reference partition = runs of equal fitted value. x on a 1/8 grid and lam a multiple of
    (d-1)/4 make every shift sum exact, so distinct blocks' values differ by far more than their
    rounding and equal fitted values name the clusters unambiguously."""
    rng = np.random.default_rng(11)
    for _ in range(20):
        x = rng.integers(-40, 40, size=25).astype(np.float64) / 8
        lam = float(rng.integers(1, 40)) / 4 * 24  # multiples of (d-1)/4: shifts on a 1/4 grid
        w, info = wsrbench.prox_info(x, lam, backend="numpy", labels=True)
        expect = np.searchsorted(np.unique(w), w)
        np.testing.assert_array_equal(info.labels, expect)


def test_l1_zeroed_clusters_keep_distinct_labels():
    x = np.array([-0.5, -0.2, 0.1, 0.3, 2.0, 3.0])
    w, info = wsrbench.prox_info(x, 0.05, l1=1.0, labels=True, backend="numpy")
    assert np.count_nonzero(w == 0.0) >= 3  # several clusters zeroed: equal outputs...
    assert len(np.unique(info.labels)) == info.clusters > len(np.unique(w))  # ...distinct labels


def test_labels_not_computed_unless_asked(impl):
    x = np.linspace(-1, 1, impl.cap(16))
    mod = impl.entry.load()
    _, info = wsrbench.prox_info(mod.from_numpy(x), 0.3, algorithm=impl.algorithm,
                                 backend=impl.backend)
    assert info.labels is None


def test_plugin_prox_rows_and_labels():
    """A plugin written before labels keeps working without them and says so when they are asked;
    one that takes the keyword returns them through the same path."""
    from wsrbench.core import plugins
    from wsrbench.core.registry import Algorithm

    def old(X, lam, *, l1, rho, algorithm):
        return registry.get_backend("numpy").load().prox_rows(X, lam, l1=l1, rho=rho,
                                                              algorithm="pava")

    def new(X, lam, *, l1, rho, algorithm, labels=False):
        return registry.get_backend("numpy").load().prox_rows(X, lam, l1=l1, rho=rho,
                                                              algorithm="pava", labels=labels)

    x, lam = cases.make("quantized", 50)
    ref = wsrbench.prox_info(x, lam, backend="numpy", labels=True)[1].labels
    for name, fn in (("old_plugin", old), ("new_plugin", new)):
        plugins.register(Algorithm(name, "", "", ""), "numpy", prox_rows=fn)
        try:
            _, info = wsrbench.prox_info(x, lam, algorithm=name, backend="numpy")
            assert info.labels is None
            if fn is old:
                with pytest.raises(ValueError, match="does not return cluster labels"):
                    wsrbench.prox_info(x, lam, algorithm=name, backend="numpy", labels=True)
            else:
                _, info = wsrbench.prox_info(x, lam, algorithm=name, backend="numpy", labels=True)
                np.testing.assert_array_equal(info.labels, ref)
        finally:
            plugins.unregister(name)
