"""Hull bridges as CUDA kernels (numba-cuda): every pair of every row in lockstep.

Same algorithm, partition, rounds and depth as ``wsrbench.backends.numpy.hull_bridges`` (read that
first, and docs/design.md 13). Device state, dense (rows, d), double-buffered per level:
* ``hull``/``cnt``: each segment's stored hull vertices packed at its front, their number at
  cnt[r, lo];
* ``F``/``G``: x sums local to each segment (from its start to k, from k to its end), joined per
  level exactly as the reference's ``combine`` (one addition per element, fixed order).

Per level, two kernels:
* ``bridge_pairs`` (a thread per (row, pair)): the simultaneous binary search, driving
  ``wsrbench.bridge.bridge_step`` compiled as a device function, on vertices read from ``hull``
  and S values from F/G plus the closed-form shift sums; writes (i*, j*) and the pair's step bound
  (atomic max per row);
* ``merge_copy`` (a thread per element): the merged hull (left prefix, then right suffix at its
  known offset), the joined sums, and the row's rounds and depth (thread k = 0).
Host synchronisation: none. Device functions are ``inline=True``; only integer and float64
scalar arithmetic, comparisons and array indexing appear in kernels (numba-cuda supported).
"""
from __future__ import annotations

from numba import cuda

from ... import depth as dp
from ...bridge import bridge_step as _bridge_step_py
from ...bridge import junction_is_bridge as _junction_py
from ...numerics import shift_unit
from .finish import fill2, full, mark_starts
from .launch import SIMULATOR, grid

bridge_step = cuda.jit(device=True, inline=True)(_bridge_step_py)
junction_is_bridge = cuda.jit(device=True, inline=True)(_junction_py)
floor_log2 = cuda.jit(device=True, inline=True)(dp.floor_log2)


if SIMULATOR:  # plain Python floats: every product is rounded on its own already
    @cuda.jit(device=True, inline=True)
    def mul_rn(x, y):
        return x * y
else:
    from numba.cuda import libdevice

    @cuda.jit(device=True, inline=True)
    def mul_rn(x, y):
        """x * y rounded to nearest, never fused with a following add into an FMA."""
        return libdevice.dmul_rn(x, y)


@cuda.jit(device=True, inline=True)
def shift_sum(a, b, d, c):
    """``numerics.shift_sum_scalar``, c (b-a)(d-a-b), with an unfusable product: the S values then
    round exactly as on the CPU, so every bridge decision is the reference's (docs/design.md
    section 13.3)."""
    return mul_rn(c, float((b - a) * (d - a - b)))


@cuda.jit(device=True, inline=True)
def left_vertex(hull, r, lo, mid, cnt_l, t):
    """t-th vertex of the left hull: a stored one, or P_mid after them."""
    return hull[r, lo + t] if t < cnt_l else mid


@cuda.jit(device=True, inline=True)
def right_vertex(hull, r, mid, hi, cnt_r, t):
    """t-th vertex of the right hull without P_mid: a stored one, or P_hi after them."""
    return hull[r, mid + 1 + t] if t < cnt_r - 1 else hi


@cuda.jit(device=True, inline=True)
def s_at(F, G, r, k, mid, d, c):
    """S local to mid at point k (the reference's local_point); c = shift_unit(lam, d)."""
    if k > mid:
        return F[r, k - 1] + shift_sum(mid, k, d, c)
    if k == mid:
        return 0.0
    return -(G[r, k] + shift_sum(k, mid, d, c))


@cuda.jit(cache=True)
def init_state(xs, hull, cnt, F, G):
    t = cuda.grid(1)
    n, d = xs.shape
    if t >= n * d:
        return
    r = t // d
    k = t - r * d
    hull[r, k] = k
    cnt[r, k] = 1
    F[r, k] = xs[r, k]
    G[r, k] = xs[r, k]


@cuda.jit(cache=True)
def bridge_pairs(hull, cnt, F, G, istar, jstar, rowbound, h, P, c):
    q = cuda.grid(1)
    n, d = hull.shape
    if q >= n * P:
        return
    r = q // P
    p = q - r * P
    lo = p * 2 * h
    mid = lo + h
    hi = min(lo + 2 * h, d)
    cnt_l = cnt[r, lo]
    cnt_r = cnt[r, mid]
    a = cnt_l + 1
    b = cnt_r
    cuda.atomic.max(rowbound, r, floor_log2(a) + floor_log2(b))
    r0 = right_vertex(hull, r, mid, hi, cnt_r, 0)
    split = 0.5 * (0.0 + float(r0 - mid))
    il = 0
    ih = a - 1
    jl = 0
    jh = b - 1
    k0 = left_vertex(hull, r, lo, mid, cnt_l, max(a - 2, 0))
    q2 = right_vertex(hull, r, mid, hi, cnt_r, min(1, b - 1))
    if junction_is_bridge(a > 1, float(k0 - mid), s_at(F, G, r, k0, mid, d, c), 0.0, 0.0,
                          float(r0 - mid), s_at(F, G, r, r0, mid, d, c), b > 1,
                          float(q2 - mid), s_at(F, G, r, q2, mid, d, c)):
        il = a - 1  # already convex at the junction: no search
        jh = 0
    while il < ih or jl < jh:
        i = (il + ih) // 2
        j = (jl + jh) // 2
        k0 = left_vertex(hull, r, lo, mid, cnt_l, max(i - 1, 0))
        k1 = left_vertex(hull, r, lo, mid, cnt_l, i)
        k2 = left_vertex(hull, r, lo, mid, cnt_l, min(i + 1, a - 1))
        q0 = right_vertex(hull, r, mid, hi, cnt_r, max(j - 1, 0))
        q1 = right_vertex(hull, r, mid, hi, cnt_r, j)
        q2 = right_vertex(hull, r, mid, hi, cnt_r, min(j + 1, b - 1))
        il, ih, jl, jh = bridge_step(
            il, ih, jl, jh,
            float(k0 - mid), s_at(F, G, r, k0, mid, d, c),
            float(k1 - mid), s_at(F, G, r, k1, mid, d, c),
            float(k2 - mid), s_at(F, G, r, k2, mid, d, c),
            float(q0 - mid), s_at(F, G, r, q0, mid, d, c),
            float(q1 - mid), s_at(F, G, r, q1, mid, d, c),
            float(q2 - mid), s_at(F, G, r, q2, mid, d, c),
            split)
    istar[q] = il
    jstar[q] = jl


@cuda.jit(cache=True)
def merge_copy(hull, cnt, F, G, hull2, cnt2, F2, G2, istar, jstar, rowbound, rounds, depth,
               level_depth, h, P):
    t = cuda.grid(1)
    n, d = hull.shape
    if t >= n * d:
        return
    r = t // d
    k = t - r * d
    lo = (k // (2 * h)) * (2 * h)
    p = lo // (2 * h)
    mid = lo + h
    o = k - lo
    if p >= P:  # a last segment without a right half: unchanged
        hull2[r, k] = hull[r, k]
        if o == 0:
            cnt2[r, lo] = cnt[r, lo]
        F2[r, k] = F[r, k]
        G2[r, k] = G[r, k]
    else:
        q = r * P + p
        i = istar[q]
        j = jstar[q]
        cnt_l = cnt[r, lo]
        cnt_r = cnt[r, mid]
        if o <= i:
            hull2[r, k] = left_vertex(hull, r, lo, mid, cnt_l, o)
        elif o - (i + 1) < cnt_r - j - 1:
            hull2[r, k] = hull[r, mid + j + 1 + (o - (i + 1))]
        if o == 0:
            cnt2[r, lo] = i + cnt_r - j
        if k >= mid:
            F2[r, k] = F[r, mid - 1] + F[r, k]
            G2[r, k] = G[r, k]
        else:
            F2[r, k] = F[r, k]
            G2[r, k] = G[r, k] + G[r, mid]
    if k == 0:
        b = rowbound[r]
        rounds[r] += b
        depth[r] += b + level_depth
        rowbound[r] = 0


def partition(xs, lam: float, cost):
    """(is_start int8 (n, d), rounds (n,), host syncs, {"depth": (n,)}) for sorted, centred rows;
    ``cost`` counts the launches (``cost.Cost``, docs/design.md 14.4)."""
    n, d = xs.shape
    g = grid(n * d)
    hull, hull2, cnt, cnt2 = (cost.empty((n, d), "int64") for _ in range(4))
    F, G, F2, G2 = (cost.empty((n, d), "float64") for _ in range(4))
    cost(init_state, g)(xs, hull, cnt, F, G)
    slots = n * ((d + 1) // 2)  # pair slots of the first (largest) level
    istar, jstar = (cost.empty(max(slots, 1), "int64") for _ in range(2))
    rounds = full(n, 0, "int64", cost)
    depth = full(n, 0, "int64", cost)
    rowbound = full(n, 0, "int64", cost)
    c = shift_unit(lam, d)  # the shift sums' factor, as every backend computes it
    h = 1
    while h < d:
        P = (d - h + 2 * h - 1) // (2 * h)  # pairs with a right half
        # one thread per pair: a simultaneous binary search, <= 2 log2(h) + 2 steps (9.4)
        cost(bridge_pairs, grid(n * P), serial=2 * h.bit_length() + 2)(
            hull, cnt, F, G, istar, jstar, rowbound, h, P, c)
        cost(merge_copy, g)(hull, cnt, F, G, hull2, cnt2, F2, G2, istar, jstar, rowbound, rounds,
                            depth, dp.hull_level(h, P, 0), h, P)
        hull, hull2, cnt, cnt2, F, F2, G, G2 = hull2, hull, cnt2, cnt, F2, F, G2, G
        h *= 2
    is_start = cost.empty((n, d), "int8")
    cost(fill2, g)(is_start, 0)
    cost(mark_starts, g)(hull, cnt, is_start)
    return is_start, rounds, 0, {"depth": depth}
