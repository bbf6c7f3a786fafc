"""The bridge step (docs/design.md#the-bridge-step and docs/design.md#why-the-tangent-search-is-correct) against a brute-force common tangent in exact arithmetic.

Hulls come from cumulative sums of small integers (many collinear points and exact ties, as in the
prox's cumulative-sum diagram of integer data) and from random floats; the brute force tries every
vertex pair with Fractions and picks the outermost pair (smallest i, largest j) on the tangent.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from wsrbench.core.bridge import bridge, bridge_probe, bridge_step


def lower_hull(xs, ss):
    """Strict lower hull (no three collinear vertices) of points sorted by x, in exact arithmetic."""
    hull = []
    for p in zip(xs, ss):
        p = (Fraction(p[0]), Fraction(p[1]))
        while len(hull) >= 2:
            (x0, s0), (x1, s1) = hull[-2], hull[-1]
            # drop hull[-1] unless it is strictly below the chord hull[-2] -> p
            if (s1 - s0) * (p[0] - x0) >= (p[1] - s0) * (x1 - x0):
                hull.pop()
            else:
                break
        hull.append(p)
    return hull


def brute_bridge(left, right):
    """(i, j): the outermost vertex pair whose line has every vertex on or above it."""
    pts = left + right
    best = None
    for i, (xa, sa) in enumerate(left):
        for j, (xb, sb) in enumerate(right):
            ok = all((s - sa) * (xb - xa) >= (sb - sa) * (x - xa) for x, s in pts)
            if ok and (best is None or i < best[0] or (i == best[0] and j > best[1])):
                best = (i, j)
    return best


def as_arrays(hull):
    return (np.array([float(x) for x, _ in hull]), np.array([float(s) for _, s in hull]))


def integer_diagram(rng, lo, hi, pool):
    """Points (k - mid, S_k - S_mid) of cumulative sums of integers drawn from ``pool``, split at mid.

    The left hull covers k in [lo, mid], the right hull k in (mid, hi]: hulls of neighbouring
    segments that share the point at mid pass it with the left one only (docs/design.md#hull_bridges).
    """
    mid = int(rng.integers(lo + 1, hi))
    y = rng.choice(pool, size=hi - lo)
    S = np.concatenate([[0], np.cumsum(y)])
    k = np.arange(lo, hi + 1)
    x, s = k - mid, S - S[mid - lo]
    cut = mid - lo + 1
    return lower_hull(x[:cut].tolist(), s[:cut].tolist()), lower_hull(x[cut:].tolist(), s[cut:].tolist())


def check(left, right):
    kl, sl = as_arrays(left)
    kr, sr = as_arrays(right)
    i, j, steps = bridge(kl, sl, kr, sr)
    assert (i, j) == brute_bridge(left, right)
    a, b = len(left), len(right)
    assert steps <= int(np.floor(np.log2(a))) + int(np.floor(np.log2(b)))
    assert steps <= int(np.ceil(np.log2(a))) + int(np.ceil(np.log2(b))) + 2  # the 9.4 bound
    return steps


@pytest.mark.parametrize("pool", [[-1, 0, 1], [-2, 0, 1, 3], [0, 1], [-5, 5], list(range(-40, 41))])
def test_integer_diagrams_with_ties(pool):
    rng = np.random.default_rng(len(pool) * 7 + pool[0])
    for _ in range(300):
        n = int(rng.integers(2, 60))
        check(*integer_diagram(rng, 0, n, pool))


def test_random_float_hulls():
    rng = np.random.default_rng(3)
    for _ in range(300):
        a, b = (int(v) for v in rng.integers(1, 40, size=2))
        xl = -np.sort(rng.choice(np.arange(0, 200), size=a, replace=False)).astype(float)[::-1]
        xr = np.sort(rng.choice(np.arange(1, 200), size=b, replace=False)).astype(float)
        sl = rng.normal(size=a) * 10.0 ** rng.integers(-8, 8)
        sr = rng.normal(size=b) * 10.0 ** rng.integers(-8, 8)
        left = lower_hull(xl.tolist(), sl.tolist())
        right = lower_hull(xr.tolist(), sr.tolist())
        check(left, right)


def test_collinear_across_the_split_goes_outermost():
    """Every point on one line: the bridge joins the two extreme vertices (one maximal block)."""
    left = lower_hull([-3, -2, -1, 0], [-6, -4, -2, 0])  # collapses to its two ends
    right = lower_hull([1, 2, 5], [2, 4, 10])
    assert check(left, right) >= 0
    kl, sl = as_arrays(left)
    kr, sr = as_arrays(right)
    assert bridge(kl, sl, kr, sr)[:2] == (0, len(right) - 1)


def test_shared_tangent_line_with_several_vertices_each_side():
    # Both hulls have an edge on y = 0 touching the tangent: l_2, l_3 and r_0, r_1 are on it.
    left = [(Fraction(x), Fraction(s)) for x, s in [(-9, 20), (-7, 5), (-5, 0), (-2, 0)]]
    left = lower_hull([x for x, _ in left], [s for _, s in left])  # (-2, 0) is not collinear-dropped
    right = lower_hull([1, 4, 6, 8], [0, 0, 3, 10])
    i, j = brute_bridge(left, right)
    assert check(left, right) >= 0
    assert left[i] == (-5, 0) and right[j] == (4, 0)


def test_single_vertex_hulls_need_no_step():
    assert bridge([0.0], [0.0], [1.0], [5.0]) == (0, 0, 0)


def test_step_never_empties_a_range_even_on_inconsistent_input():
    """A probe whose range is one vertex is tangent by definition: with vertices that are not a
    convex chain (as rounding could produce) the ranges still shrink and stay non-empty."""
    rng = np.random.default_rng(5)
    for _ in range(200):
        a, b = (int(v) for v in rng.integers(1, 30, size=2))
        kl = np.arange(-a + 1, 1, dtype=float)
        kr = np.arange(1, b + 1, dtype=float)
        sl, sr = rng.normal(size=a), rng.normal(size=b)  # not convex
        i, j, steps = bridge(kl, sl, kr, sr)
        assert 0 <= i < a and 0 <= j < b
        assert steps <= int(np.floor(np.log2(a))) + int(np.floor(np.log2(b)))


def test_probe_is_the_floor_midpoint():
    assert bridge_probe(0, 5, 2, 3) == (2, 2)
    assert bridge_probe(4, 4, 0, 0) == (4, 0)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="separated"):
        bridge([0.0, 1.0], [0.0, 0.0], [1.0], [0.0])
    with pytest.raises(ValueError, match="non-empty"):
        bridge([], [], [1.0], [0.0])


def test_step_compiles_with_numba_and_agrees():
    """The scalar step is plain arithmetic: numba.njit compiles it and decides identically."""
    numba = pytest.importorskip("numba")
    step = numba.njit(bridge_step)
    rng = np.random.default_rng(11)
    for _ in range(100):
        left, right = integer_diagram(rng, 0, int(rng.integers(2, 40)), [-2, -1, 0, 1, 2])
        kl, sl = as_arrays(left)
        kr, sr = as_arrays(right)
        a, b = kl.size, kr.size
        st = (0, a - 1, 0, b - 1)
        split = 0.5 * (kl[-1] + kr[0])
        while st[0] < st[1] or st[2] < st[3]:
            i, j = bridge_probe(*st)
            i0, i2, j0, j2 = max(i - 1, 0), min(i + 1, a - 1), max(j - 1, 0), min(j + 1, b - 1)
            args = (kl[i0], sl[i0], kl[i], sl[i], kl[i2], sl[i2],
                    kr[j0], sr[j0], kr[j], sr[j], kr[j2], sr[j2], split)
            new = bridge_step(*st, *args)
            assert tuple(step(*st, *args)) == tuple(new)
            st = new
        assert (st[0], st[2]) == brute_bridge(left, right)


def test_junction_test_agrees_with_the_brute_force():
    """junction_is_bridge is true exactly when the outermost bridge is (last left, first right)."""
    from wsrbench.core.bridge import junction_is_bridge

    rng = np.random.default_rng(8)
    seen = {True: 0, False: 0}
    for _ in range(600):
        left, right = integer_diagram(rng, 0, int(rng.integers(2, 40)), [-2, -1, 0, 1, 2])
        kl, sl = as_arrays(left)
        kr, sr = as_arrays(right)
        a, b = kl.size, kr.size
        got = junction_is_bridge(a > 1, kl[max(a - 2, 0)], sl[max(a - 2, 0)], kl[-1], sl[-1],
                                 kr[0], sr[0], b > 1, kr[min(1, b - 1)], sr[min(1, b - 1)])
        assert got == (brute_bridge(left, right) == (a - 1, 0))
        seen[got] += 1
    assert seen[True] > 10 and seen[False] > 10  # both outcomes exercised
