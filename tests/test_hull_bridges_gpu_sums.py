"""The numba_cuda hull_bridges reads its local x sums from a pyramid of block totals instead of
carrying F and G through every level (docs/design.md#hull_bridges-memory-traffic). The S values, hence every bridge
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
                f = hb.sum_from_start.py_func(X, np.zeros(n), T, r, k, L, n, d)
                g = hb.sum_to_end.py_func(X, np.zeros(n), T, r, k, L, n, d)
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


def _gpu_partition(keys, center, lam):
    from numba import cuda

    is_start, rounds, syncs, extra = hb.partition(cuda.to_device(keys), cuda.to_device(center),
                                                  lam, Cost())
    return is_start.copy_to_host(), rounds.copy_to_host(), extra["depth"].copy_to_host()


def _check_against_reference(X, lam, center=None):
    """The GPU partition of the rows ``X`` read centred at ``center`` (zero by default: the rows
    themselves) against the reference's partition of float64(X) - center."""
    center = np.zeros(X.shape[0]) if center is None else center
    S, R, D = _gpu_partition(X, center, lam)
    xs = X.astype(np.float64) - center[:, None]
    for r in range(X.shape[0]):
        starts, rounds, info = ref.partition(xs[r], lam)
        assert np.array_equal(np.flatnonzero(S[r]), starts), r
        assert (R[r], D[r]) == (rounds, info["depth"]), r


@pytest.mark.slow
@pytest.mark.parametrize("d", [2, 7, 33, 200])
@pytest.mark.parametrize("lam", [0.0, 1e-3, 10.0])
def test_partition_is_the_references_on_wide_unsorted_data(d, lam):
    """Unsorted rows over 16 decades: many hull vertices, real bridge searches, and S values whose
    last bits depend on the order of the additions; the GPU partition, rounds and depth must be
    the reference's exactly."""
    rng = np.random.default_rng(7 * d)
    _check_against_reference(_wide(rng, 2, d), lam)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("d", [33, 100])
def test_partition_is_the_references_on_near_collinear_rows(d, seed):
    _check_against_reference(_near_collinear(np.random.default_rng(seed), 3, d), 0.0)


@pytest.mark.slow
@pytest.mark.parametrize("K", [0, 2, 3])
@pytest.mark.parametrize("d", [9, 64, 100])
def test_partition_reads_float32_keys_centred(d, K, monkeypatch):
    """The partition reads its data as float64(key) - center (``finish.centred``), in the tile
    kernel, the pyramid's T_0 and (K = 0) level 0's block totals: on sorted float32 keys centred
    at their median, the reference's partition, rounds and depth of those centred rows."""
    monkeypatch.setattr(ht, "TILE_BITS", K)
    rng = np.random.default_rng(d + K)
    keys = np.sort(rng.standard_normal((3, d)).astype(np.float32) * 1e3 + 7e3, axis=1)
    _check_against_reference(keys, 0.05, center=keys[:, d // 2].astype(np.float64))


@pytest.mark.slow
@settings(max_examples=25, deadline=None, derandomize=True)
@given(d=st.integers(2, 40), seed=st.integers(0, 2 ** 32 - 1),
       lam=st.sampled_from([0.0, 0.01, 1.0, 100.0]), sort=st.booleans(), collinear=st.booleans())
def test_partition_matches_on_random_rows(d, seed, lam, sort, collinear):
    rng = np.random.default_rng(seed)
    X = (_near_collinear if collinear else _wide)(rng, 2, d)
    if sort:
        X = np.sort(X, axis=1)
    _check_against_reference(X, lam)


@pytest.mark.slow
@pytest.mark.parametrize("d", [200, 257])
def test_every_hull_offset_type(d, monkeypatch):
    """Hulls are stored in uint16 or int32 offsets by level; with the bounds lowered, rows of
    a few hundred points pass through every type and every widening (at the real bounds the
    int32 hulls need d > 65536)."""
    monkeypatch.setattr(hb, "HULL_TYPES", ((4, "uint16"), (31, "int32")))
    rng = np.random.default_rng(d)
    _check_against_reference(_wide(rng, 2, d), 1e-3)
    _check_against_reference(_near_collinear(rng, 2, d), 0.0)


def test_rows_too_long_for_int32_positions_are_refused():
    """The hull keeps positions and counts as int32: a row of 2^31 points is refused by name before
    anything is allocated (a dry run: shapes only)."""
    from wsrbench.backends.numba_cuda.cost import Phantom

    with pytest.raises(ValueError, match=r"d < 2\*\*31"):
        hb.partition(Phantom((1, 2 ** 31), "float32"), Phantom((1,), "float64"), 0.1,
                     Cost(dry=True))
    is_start, _, syncs, _ = hb.partition(Phantom((2, 2 ** 20), "float32"),
                                         Phantom((2,), "float64"), 0.1, Cost(dry=True))
    assert is_start.shape == (2, 2 ** 20) and syncs == 0


# ------------------------------------------------------------ the tile kernel (docs/design.md#hull_bridges-memory-traffic)
# ``hull_tiles.tile_levels`` runs levels 0 .. K-1 in one thread block per tile of 2^K points, from a
# pyramid kept in shared memory. Its sums must be the global ones bit for bit, and the state it
# writes must be the state of the per-level path after level K - 1 (checked against the reference's
# own hulls and bounds, stopped after K levels), whether later levels run globally or the row is a
# single tile.
from wsrbench.backends.numba_cuda import hull_tiles as ht  # noqa: E402
from wsrbench.core import depth as dp  # noqa: E402


@pytest.mark.parametrize("K", [1, 2, 3])
@pytest.mark.parametrize("d", [2, 5, 8, 13, 33])
def test_tile_sums_are_the_global_sums(K, d):
    """tile_sum_from_start / tile_sum_to_end over a tile's shared pyramid equal sum_from_start /
    sum_to_end over the global one, bit for bit, at every point and level below K."""
    rng = np.random.default_rng(d + 50 * K)
    n = 2
    X = _wide(rng, n, d)
    T = _pyramid(X)
    offs = hb._pyramid_offsets(d)
    tsz = 1 << K
    for r in range(n):
        for g in range(0, d, tsz):
            npts = min(tsz, d - g)
            S = np.full(2 * tsz, np.nan)
            S[:npts] = X[r, g:g + npts]
            for lev in range(1, K):
                if lev >= len(offs):
                    break
                m = (d + (1 << lev) - 1) >> lev
                block = T[n * offs[lev - 1]:n * (offs[lev - 1] + m)].reshape(n, m)[r]
                b0, nb = g >> lev, (npts + (1 << lev) - 1) >> lev
                S[ht.sums_at.py_func(K, lev):ht.sums_at.py_func(K, lev) + nb] = block[b0:b0 + nb]
            for L in range(K):
                for k in range(npts):
                    f = ht.tile_sum_from_start.py_func(S, k, L, K)
                    e = ht.tile_sum_to_end.py_func(S, k, L, K, npts)
                    z = np.zeros(n)
                    assert f == hb.sum_from_start.py_func(X, z, T, r, g + k, L, n, d), (r, g, k, L)
                    assert e == hb.sum_to_end.py_func(X, z, T, r, g + k, L, n, d), (r, g, k, L)


def _reference_levels(x, lam, K):
    """The reference's stored hulls (one per segment of 2^K points) and each level's step bound
    after its levels 0 .. K-1: ``ref.partition``'s loop, stopped."""
    d = x.shape[0]
    hulls = [np.array([k], dtype=np.int64) for k in range(d)]
    F, G = x.astype(np.float64, copy=True), x.astype(np.float64, copy=True)
    bounds, half = [], 1
    for _ in range(K):
        if half >= d:
            break
        merged, bound = [], 0
        for p in range(0, len(hulls) - 1, 2):
            lo = p * half
            bound = max(bound, dp.bridge_bound(hulls[p].shape[0] + 1, hulls[p + 1].shape[0]))
            merged.append(ref.merge(F, G, lam, lo, lo + half, min(lo + 2 * half, d), hulls[p],
                                    hulls[p + 1])[0])
        if len(hulls) % 2:
            merged.append(hulls[-1])
        hulls = merged
        F, G = ref.combine(F, G, half)
        bounds.append(bound)
        half *= 2
    return hulls, bounds


@pytest.mark.parametrize("K", [1, 2, 3])
@pytest.mark.parametrize("d", [3, 5, 8, 13, 33])
def test_tile_kernel_writes_the_per_level_state(K, d):
    """The tile kernel alone, on state arrays filled with garbage: the hulls and counts of the
    segments of 2^K points, the pyramid T_1 .. T_K and every level's bound (the maximum of the
    tiles' bounds) are the reference's after K levels; rowbound, the rounds, the depth and
    is_start are cleared. A row that is one tile comes out finished: is_start, rounds and depth
    are the reference's."""
    from numba import cuda

    from wsrbench.backends.numba_cuda.numerics import shift_unit

    rng = np.random.default_rng(d + 100 * K)
    n, lam = 3, 1e-3
    X = np.concatenate([_wide(rng, 2, d), _near_collinear(rng, 1, d)])
    top = (d - 1).bit_length()
    Ke = min(K, top)
    nt = (d + (1 << Ke) - 1) >> Ke
    sizes = [(d + (1 << lev) - 1) >> lev for lev in range(top + 1)]
    garbage = {"hull": np.full((n, d), 200, hb.hull_type(Ke)), "cnt": np.full(n * nt, -5, "int32"),
               "T": np.full(max(n * sum(sizes[1:Ke + 1]), 1), np.nan),
               "tilebound": np.full(Ke * n * nt, -5, "int32"),
               "rowbound": np.full(n * top, 99, "int64"), "rounds": np.full(n, 99, "int64"),
               "depth": np.full(n, 99, "int64"), "is_start": np.full((n, d), 7, "int8")}
    dev = {k: cuda.to_device(v) for k, v in garbage.items()}
    cost = Cost()
    ht.launch(cost, cuda.to_device(X), cuda.to_device(np.zeros(n)), Ke, top, shift_unit(lam, d),
              dev["hull"], dev["cnt"], dev["T"], dev["tilebound"], dev["rowbound"], dev["rounds"],
              dev["depth"], dev["is_start"])
    out = {k: v.copy_to_host() for k, v in dev.items()}
    assert cost.launches == 1 and cost.serial_steps == 1
    assert cost.shared_steps == ht.shared_steps(Ke)
    if Ke == top:  # one tile per row: finished
        for r in range(n):
            starts, rounds, info = ref.partition(X[r], lam)
            assert np.array_equal(np.flatnonzero(out["is_start"][r]), starts), r
            assert (out["rounds"][r], out["depth"][r]) == (rounds, info["depth"]), r
        return
    assert not out["rowbound"].any() and not out["rounds"].any() and not out["depth"].any()
    assert not out["is_start"].any()
    assert np.array_equal(out["T"], _pyramid(X)[:out["T"].shape[0]])  # bit for bit
    tb = out["tilebound"].reshape(Ke, n, nt)
    for r in range(n):
        hulls, bounds = _reference_levels(X[r], lam, Ke)
        assert len(hulls) == nt
        for s, want in enumerate(hulls):
            lo = s << Ke
            assert out["cnt"][r * nt + s] == want.shape[0], (r, s)
            assert np.array_equal(out["hull"][r, lo:lo + want.shape[0]].astype(np.int64) + lo,
                                  want), (r, s)
        assert tb[:, r, :].max(axis=1).tolist() == bounds, r


@pytest.mark.slow
@pytest.mark.parametrize("K", [0, 1, 2])
@pytest.mark.parametrize("d", [2, 3, 8, 9, 33, 100])
def test_partition_with_any_tile_size(K, d, monkeypatch):
    """Levels in tiles of 2^K points (0: every level its own launch; the simulator's default 3 is
    covered above), then the global levels: the reference's partition, rounds and depth, on
    wide and near-collinear rows, tiles that are whole rows, partial last tiles and both parities
    of the first global level."""
    monkeypatch.setattr(ht, "TILE_BITS", K)
    rng = np.random.default_rng(d + 7 * K)
    _check_against_reference(np.concatenate([_wide(rng, 2, d), _near_collinear(rng, 1, d)]), 1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("K", [1, 2])
def test_prox_with_tiles_matches_numpy(dtype, K, monkeypatch):
    """The whole numba_cuda prox, float32 and float64 rows in a batch, tiles of 2^K points: the
    NumPy backend's rounds, clusters and depth exactly, its values to the value tolerance."""
    import wsrbench
    from wsrbench.backends import numba_cuda as nc
    from wsrbench.core.numerics import value_tolerance

    monkeypatch.setattr(ht, "TILE_BITS", K)
    rng = np.random.default_rng(K)
    X = rng.standard_normal((3, 21)).astype(dtype)
    lam = 0.3
    W, info = wsrbench.prox_info(nc.from_numpy(X), lam, algorithm="hull_bridges",
                                 backend="numba_cuda")
    R, rinfo = wsrbench.prox_info(X, lam, algorithm="hull_bridges", backend="numpy")
    assert np.array_equal(info.rounds, rinfo.rounds) and np.array_equal(info.clusters,
                                                                        rinfo.clusters)
    assert np.array_equal(info.depth, rinfo.depth)
    scale = float(np.abs(X).max()) + lam
    np.testing.assert_allclose(nc.to_numpy(W), R, rtol=0, atol=value_tolerance(21, dtype, scale))
