"""The input families: deterministic, typed, and the worst cases really are worst."""
from __future__ import annotations

import numpy as np
import pytest

import wsrbench
from wsrbench import cases


@pytest.mark.parametrize("family", cases.names())
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_deterministic_and_typed(family, dtype):
    for d in [0, 1, 2, 3, 100]:
        x, lam = cases.make(family, d, seed=5, dtype=dtype)
        x2, lam2 = cases.make(family, d, seed=5, dtype=dtype)
        assert x.dtype == dtype and x.shape == (d,) and isinstance(lam, float) and lam >= 0
        assert np.array_equal(x, x2) and lam == lam2
        assert np.isfinite(x).all()
    if family != "all_equal":
        assert not np.array_equal(cases.make(family, 100, seed=5)[0], cases.make(family, 100, seed=6)[0])


def test_catalogue():
    fams = cases.families()
    assert {f.regime for f in fams} == {"typical", "worst"}
    assert {"worst_imminent_collisions", "worst_end_collisions", "worst_pava"} <= set(cases.names("worst"))
    algs = {a.name for a in wsrbench.list_algorithms()}
    for f in cases.families("worst"):
        assert f.worst_for in algs and f.description
    with pytest.raises(ValueError, match="unknown family 'nope'; choose one of"):
        cases.make("nope", 10)
    with pytest.raises(ValueError, match="d must be a non-negative integer"):
        cases.make("gaussian", -1)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        cases.make("gaussian", 3, dtype=np.int32)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("d", [64, 100, 257, 1024, 4096])
def test_worst_imminent_forces_one_merge_per_round(d, dtype):
    x, lam = cases.make("worst_imminent_collisions", d, dtype=dtype)
    m = cases.cascade_mass(d, dtype)
    w, info = wsrbench.prox_info(x, lam, algorithm="imminent_collisions", backend="numpy")
    assert info.rounds == d - m  # Theta(d): m stays far below d
    assert info.clusters == 1
    assert wsrbench.certify(x, w, lam).ok
    if d <= cases.cascade_limit(dtype):
        assert m == 1 and info.rounds == d - 1


def test_cascade_limit_is_where_representability_ends():
    lim64, lim32 = cases.cascade_limit(np.float64), cases.cascade_limit(np.float32)
    assert 5e4 < lim64 < 2e5 and 50 < lim32 < 200  # d^3 ~ 1/eps, as docs/design.md#the-cascades-dynamic-range derives
    assert cases.cascade_mass(lim64) == 1 < cases.cascade_mass(lim64 + 1)
    # Beyond the limit the heavy cluster keeps rounds within a vanishing fraction of d.
    for d in [10**6, 10**7]:
        assert cases.cascade_mass(d, np.float64) < d / 100


def test_single_particle_cascade_breaks_beyond_float32_limit():
    """Why the family grows m: the m = 1 cascade stops forcing d - 1 rounds once rounding of x
    swallows the progression step."""
    d = 8 * cases.cascade_limit(np.float32)
    x, lam, _ = cases.cascade(d, 1)
    _, info = wsrbench.prox_info(x.astype(np.float32), lam, algorithm="imminent_collisions",
                                 backend="numpy")
    assert info.rounds < d - 1


@pytest.mark.parametrize("d", [10, 300, 2000])
def test_worst_end_collisions_has_d_clusters(d):
    x, lam = cases.make("worst_end_collisions", d)
    _, info = wsrbench.prox_info(x, lam, algorithm="end_collisions", backend="numpy")
    assert info.clusters == d and info.rounds == d


@pytest.mark.parametrize("d", [10, 301, 2000])
def test_worst_pava_fills_the_stack_then_pools_it_back(d):
    x, lam = cases.make("worst_pava", d)
    _, info = wsrbench.prox_info(x, lam, algorithm="pava", backend="numpy")
    st = info.stats[0]
    assert st["max_stack"] >= d // 2  # every singleton of the progression waits on the stack
    assert st["merges"] == d - 1 and info.clusters == 1  # ... and is pooled back


def test_typical_families_do_what_they_say():
    x, lam = cases.make("gaussian_collapse", 500)
    assert wsrbench.prox_info(x, lam, backend="numpy")[1].clusters == 1
    assert wsrbench.prox_info(x, 0.99 * cases.collapse_lam(x), backend="numpy")[1].clusters > 1
    x, lam = cases.make("all_equal", 50)
    assert np.array_equal(wsrbench.prox(x, lam, backend="numpy"), x)
    x, _ = cases.make("quantized", 1000)
    assert np.unique(x).size < 200  # many exact ties


def test_nearly_sorted_is_a_perturbed_prox_output():
    x_prev, x, lam = cases.nearly_sorted_pair(2000, 0)
    w_prev = wsrbench.prox(x_prev, lam, backend="numpy")
    assert np.max(np.abs(x - w_prev)) < 1e-2
    # Few inversions relative to the previous order: sorting x in x_prev's order is nearly sorted.
    y = x[np.argsort(x_prev, kind="stable")]
    assert np.mean(np.diff(y) < 0) < 0.5
    assert np.array_equal(cases.make("nearly_sorted", 2000, seed=0)[0], x)
