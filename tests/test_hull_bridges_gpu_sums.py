"""The numba_cuda hull_bridges reads its local x sums from a pyramid of block totals instead of
carrying F and G through every level (docs/design.md 13.6). The S values, hence every bridge
decision, must be bit for bit the NumPy reference's: checked here on the sums themselves and on
whole partitions of data whose sums depend on the order of additions."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsrbench.backends.numpy import hull_bridges as ref

pytest.importorskip("numba_cuda")
from wsrbench.backends.numba_cuda import hull_bridges as hb
from wsrbench.backends.numba_cuda.cost import Cost


def _wide(rng, n, d):
    """Values over 16 decades with mixed signs: almost no sum of three is associative."""
    return rng.standard_normal((n, d)) * 10.0 ** rng.uniform(-8, 8, (n, d))


def _near_collinear(rng, n, d):
    """A constant that is not a dyadic number (0.1) plus noise below its ulp: the points P_k are
    collinear up to rounding, so the bridge decisions turn on the last bits of the S values (a
    different order of additions changes the partition here)."""
    return 0.1 + rng.standard_normal((n, d)) * 1e-17


def _pyramid(X):
    """T_1, T_2, ... laid out as the kernels keep them: level l as (row, block), levels in order."""
    n, d = X.shape
    levels, T = [], X.copy()
    while T.shape[1] > 1:
        m = (T.shape[1] + 1) // 2
        nxt = T[:, 0::2].copy()
        nxt[:, :T.shape[1] // 2] = T[:, 0:2 * (T.shape[1] // 2):2] + T[:, 1::2]
        levels.append(nxt.reshape(-1))
        T = nxt
        assert T.shape[1] == m
    return np.concatenate(levels) if levels else np.zeros(1)


@pytest.mark.parametrize("d", [1, 2, 3, 5, 8, 13, 64, 100, 129])
def test_pyramid_sums_are_the_references_bits(d):
    """sum_from_start / sum_to_end at every level equal the reference's F / G after the same
    number of ``combine`` sweeps, bit for bit, for every point, on every row."""
    rng = np.random.default_rng(d)
    n = 3
    X = _wide(rng, n, d)
    T = _pyramid(X)
    assert T.shape[0] >= n * (hb._pyramid_offsets(d)[-1])
    F, G = X.copy(), X.copy()
    L, h = 0, 1
    while True:
        for r in range(n):
            for k in range(d):
                f = hb.sum_from_start.py_func(X, T, r, k, L, n, d)
                g = hb.sum_to_end.py_func(X, T, r, k, L, n, d)
                assert f == F[r, k] and g == G[r, k], (d, L, r, k)
        if h >= d:
            break
        for r in range(n):
            F[r], G[r] = ref.combine(F[r], G[r], h)
        L, h = L + 1, 2 * h
    # The pyramid holds the reference's F at each block's last point (and G at its first).
    offs = hb._pyramid_offsets(d)
    F, G = X.copy(), X.copy()
    for lev in range(1, len(offs)):
        for r in range(n):
            F[r], G[r] = ref.combine(F[r], G[r], 1 << (lev - 1))
        m = (d + (1 << lev) - 1) >> lev
        block = T[n * offs[lev - 1]:n * (offs[lev - 1] + m)].reshape(n, m)
        last = np.minimum((np.arange(m) + 1) << lev, d) - 1
        assert np.array_equal(block, F[:, last]) and np.array_equal(block, G[:, np.arange(m) << lev])


def _gpu_partition(X, lam):
    from numba import cuda

    is_start, rounds, syncs, extra = hb.partition(cuda.to_device(X), lam, Cost())
    return is_start.copy_to_host(), rounds.copy_to_host(), extra["depth"].copy_to_host()


def _check_against_reference(X, lam):
    S, R, D = _gpu_partition(X, lam)
    for r in range(X.shape[0]):
        starts, rounds, info = ref.partition(X[r], lam)
        assert np.array_equal(np.flatnonzero(S[r]), starts), r
        assert (R[r], D[r]) == (rounds, info["depth"]), r


@pytest.mark.parametrize("d", [2, 7, 33, 200])
@pytest.mark.parametrize("lam", [0.0, 1e-3, 10.0])
def test_partition_is_the_references_on_wide_unsorted_data(d, lam):
    """Unsorted rows over 16 decades: many hull vertices, real bridge searches, and S values whose
    last bits depend on the order of the additions; the GPU partition, rounds and depth must be
    the reference's exactly."""
    rng = np.random.default_rng(7 * d)
    _check_against_reference(_wide(rng, 2, d), lam)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("d", [33, 100])
def test_partition_is_the_references_on_near_collinear_rows(d, seed):
    _check_against_reference(_near_collinear(np.random.default_rng(seed), 3, d), 0.0)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(d=st.integers(2, 40), seed=st.integers(0, 2 ** 32 - 1),
       lam=st.sampled_from([0.0, 0.01, 1.0, 100.0]), sort=st.booleans(), collinear=st.booleans())
def test_partition_matches_on_random_rows(d, seed, lam, sort, collinear):
    rng = np.random.default_rng(seed)
    X = (_near_collinear if collinear else _wide)(rng, 2, d)
    if sort:
        X = np.sort(X, axis=1)
    _check_against_reference(X, lam)


@pytest.mark.parametrize("d", [200, 257])
def test_every_hull_offset_type(d, monkeypatch):
    """Hulls are stored in uint8, uint16 or int32 offsets by level; with the bounds lowered, rows of
    a few hundred points pass through every type and every widening (at the real bounds the
    int32 hulls need d > 65536)."""
    monkeypatch.setattr(hb, "HULL_TYPES", ((1, "uint8"), (4, "uint16"), (31, "int32")))
    rng = np.random.default_rng(d)
    _check_against_reference(_wide(rng, 2, d), 1e-3)
    _check_against_reference(_near_collinear(rng, 2, d), 0.0)


def test_rows_too_long_for_int32_positions_are_refused():
    """The hull keeps positions and counts as int32: a row of 2^31 points is refused by name before
    anything is allocated (a dry run: shapes only)."""
    from wsrbench.backends.numba_cuda.cost import Phantom

    with pytest.raises(ValueError, match=r"d < 2\*\*31"):
        hb.partition(Phantom((1, 2 ** 31), "float64"), 0.1, Cost(dry=True))
    is_start, _, syncs, _ = hb.partition(Phantom((2, 2 ** 20), "float64"), 0.1, Cost(dry=True))
    assert is_start.shape == (2, 2 ** 20) and syncs == 0
