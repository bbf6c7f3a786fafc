"""hull_bridges and the parallel depth (docs/design.md#hull_bridges): exact ties, the depth rule, the bounds.

The prox itself is covered by the registry-parametrised suite (tests/test_prox.py); here are the
properties particular to this algorithm and to ``ProxInfo.depth``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import wsrbench
from wsrbench import cases
from wsrbench.backends.numpy import hull_bridges, pava
from wsrbench.core import depth as dp


def test_depth_helpers_match_their_definitions():
    for n in range(1, 2000):
        assert dp.lg(n) == math.ceil(math.log2(n))
        assert dp.floor_log2(n) == math.floor(math.log2(n))
    assert dp.lg(0) == 0


def worst_depth(d):
    """hull_bridges' depth when every hull is full at every level (docs/design.md#parallel-depth)."""
    total, half = 0, 1
    while half < d:
        npairs = (d - half + 2 * half - 1) // (2 * half)
        total += dp.hull_level(half, npairs, dp.bridge_bound(half + 1, min(half, d - half)))
        half *= 2
    return total


@pytest.mark.slow
@pytest.mark.parametrize("d", [2, 3, 100, 1000, 4096])
def test_worst_family_reaches_the_largest_depth(d):
    x, lam = cases.make("worst_hull_bridges", d)
    _, info = wsrbench.prox_info(x, lam, algorithm="hull_bridges", backend="numpy")
    assert info.depth == worst_depth(d)
    assert info.clusters == d
    for fam in cases.names():
        x, lam = cases.make(fam, d)
        _, other = wsrbench.prox_info(x, lam, algorithm="hull_bridges", backend="numpy")
        assert other.depth <= info.depth, fam


def test_worst_depth_is_order_log_squared():
    """The bound of docs/design.md#parallel-depth: level l costs at most 2 + L + l (+1 at l = 0) with
    L = ceil(log2 d), so depth <= 1.5 L^2 + 1.5 L + 1 for every d."""
    ds = list(range(2, 3000)) + [2**k + j for k in range(12, 31) for j in (-1, 0, 1)]
    for d in ds:
        L = dp.lg(d)
        assert worst_depth(d) <= 1.5 * L * L + 1.5 * L + 1, d


@pytest.mark.parametrize("family", cases.names())
def test_smaller_depth_than_search_collisions(family):
    x, lam = cases.make(family, 1024)
    _, hb = wsrbench.prox_info(x, lam, algorithm="hull_bridges", backend="numpy")
    _, sc = wsrbench.prox_info(x, lam, algorithm="search_collisions", backend="numpy")
    assert hb.depth < sc.depth


def test_pava_depth_is_its_sequential_steps():
    x, lam = cases.make("gaussian", 500)
    _, info = wsrbench.prox_info(x, lam, algorithm="pava", backend="numpy")
    assert info.depth == info.rounds


@pytest.mark.slow
@pytest.mark.parametrize("pool", [[0, 1], [-1, 0, 1], [-3, 0, 2, 5]])
@pytest.mark.parametrize("lam_steps", [0, 1, 3])
def test_exact_ties_give_the_canonical_partition(pool, lam_steps):
    """Integer data and a lam whose shifts are integers: all arithmetic is exact, so the blocks must
    be exactly pava's (exact ties pool, maximal blocks), collinear hull points included."""
    rng = np.random.default_rng(len(pool) + 10 * lam_steps)
    for _ in range(200):
        d = int(rng.integers(2, 80))
        xs = np.sort(rng.choice(pool, size=d)).astype(np.float64)
        xs -= xs[d // 2]
        lam = lam_steps * (d - 1) / 2.0  # v_k = lam_steps (d-1-2k)/2 * 2/(d-1): integers
        assert np.array_equal(hull_bridges.partition(xs, lam)[0], pava.partition(xs, lam)[0])


def test_depth_per_row_for_2d_input():
    X = np.stack([cases.make("gaussian", 200, seed=s)[0] for s in range(3)])
    _, info = wsrbench.prox_info(X, 0.3, algorithm="hull_bridges", backend="numpy")
    assert info.depth.dtype == np.int64 and info.depth.shape == (3,)
    for i in range(3):
        assert wsrbench.prox_info(X[i], 0.3, algorithm="hull_bridges", backend="numpy")[1].depth \
            == info.depth[i]


def test_numba_compiled_bound_matches():
    pytest.importorskip("numba")
    from wsrbench.backends.numba import _depth

    for a in range(1, 70):
        for b in range(1, 70):
            assert _depth.bridge_bound(a, b) == dp.bridge_bound(a, b)


@pytest.mark.parametrize("family", ["gaussian", "worst_hull_bridges", "quantized"])
def test_numba_parallel_long_row_matches_serial_rows(family):
    """One long row merges each level's pairs with prange; rows of a 2-D input use the serial
    partition: same blocks, rounds, depth and values (and the torch batch agrees too)."""
    pytest.importorskip("numba")
    from wsrbench.backends.numba import hull_bridges as nb

    d = nb.PARALLEL_MIN_D + 77
    x, lam = cases.make(family, d, seed=2)
    w, info = wsrbench.prox_info(x, lam, algorithm="hull_bridges", backend="numba")
    W, infos = wsrbench.prox_info(np.stack([x, x[::-1].copy()]), lam, algorithm="hull_bridges",
                                  backend="numba")
    assert np.array_equal(W[0], w)
    assert (infos.rounds[0], infos.clusters[0], infos.depth[0]) == \
        (info.rounds, info.clusters, info.depth)
    assert (infos.rounds[1], infos.clusters[1], infos.depth[1]) == \
        (info.rounds, info.clusters, info.depth)  # the prox is permutation-equivariant
    assert wsrbench.certify(x, w, lam).ok
