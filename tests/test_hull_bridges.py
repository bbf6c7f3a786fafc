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


PTX_CHECK = r'''
import os
os.environ["NUMBA_ENABLE_CUDASIM"] = "0"
from numba import types
from numba.cuda import compile_ptx
try:
    compile_ptx(lambda a: None, (types.int64[:],), cc=(8, 0))
except Exception as exc:  # no NVVM here: nothing to check
    print("NO-NVVM", type(exc).__name__, exc)
    raise SystemExit(0)
from wsrbench.backends.numba_cuda import hull_bridges as hb
from wsrbench.backends.numba_cuda import hull_tiles as ht
i2, i1, i = types.int32[:, ::1], types.int32[::1], types.int64
k2 = types.float32[:, ::1]  # the sorted keys, read centred as float64
f1, l1 = types.float64[::1], types.int64[::1]
b2 = types.int8[:, ::1]
sigs = {
    "bridge_pairs": (i2, i1, i1, k2, f1, f1, f1, f1, i1, i1, l1, l1, l1, b2, i1, i1, i1, i, i, i, i,
                     i, types.float64, i1, i),
    "merge_copy": (i2, i2, i1, i1, i1, i1, i1, i1, i1, l1, l1, l1, b2, i, i, i, i, i, i, i, i),
    "tile_levels": (k2, f1, i2, i1, f1, i1, l1, l1, l1, b2, i, i, types.float64),
}
for name, sig in sigs.items():
    ptx, _ = compile_ptx(getattr(ht if name == "tile_levels" else hb, name).py_func, sig,
                         cc=(8, 0))
    assert ".entry" in ptx, name
    if name in ("bridge_pairs", "tile_levels"):
        # The decisions must round as on the CPU: no fused multiply-adds, IEEE division.
        assert "fma." not in ptx and "div.rn.f64" in ptx and "div.approx" not in ptx
print("OK")
'''


@pytest.mark.slow
def test_cuda_kernels_compile_for_a_real_gpu():
    """The real NVVM compiler (not the simulator) accepts the kernels, and the bridge kernels'
    arithmetic (global levels and tiles) has no FMA contraction (docs/design.md#hull_bridges-precision). Skips
    where NVVM is not installed."""
    pytest.importorskip("numba_cuda")
    import os
    import subprocess
    import sys

    root = os.path.join(os.path.dirname(__file__), os.pardir)
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0", PYTHONPATH=os.path.abspath(root))
    out = subprocess.run([sys.executable, "-c", PTX_CHECK], capture_output=True, text=True,
                         timeout=300, env=env, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    if "NO-NVVM" in out.stdout:
        pytest.skip(out.stdout.strip())
    assert "OK" in out.stdout


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
