"""Hull bridges as CUDA kernels (numba-cuda): every pair of every row in lockstep.

Same algorithm, partition, rounds and depth as ``wsrbench.backends.numpy.hull_bridges`` (read that
first, and docs/design.md 13). Device state (docs/design.md 13.6 for the memory traffic):
* ``hull`` (int32 (rows, d), double-buffered): each segment's stored hull vertices packed at its
  front; ``cnt`` (int32, one entry per segment of the level, flat (row, segment)): their number;
* ``T``: the pyramid of block totals, level l (blocks of 2^l points, l >= 1) flat as
  (row, block), each the sum of its two halves' totals (level 0 is the data itself). The
  reference's local sums F and G are not stored: ``sum_from_start`` / ``sum_to_end`` rebuild any
  of them from at most log2(d) totals with the reference's additions in the reference's order,
  so every S value, hence every bridge decision, has the reference's bits (13.3, 13.6).

Per level, two kernels:
* ``bridge_pairs`` (a thread per (row, pair)): the simultaneous binary search, driving
  ``wsrbench.bridge.bridge_step`` compiled as a device function, on vertices read from ``hull``
  and S values from the pyramid plus the closed-form shift sums; writes (i*, j*) and the pair's
  step bound (atomic max per row);
* ``merge_copy`` (a thread per element): the merged hull (left prefix, then right suffix at its
  known offset); at each segment's first element, its count and its block total; and the row's
  rounds and depth (thread k = 0).
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
def level_size(d, lev):
    """Blocks of 2^lev points in a row of d: ceil(d / 2^lev)."""
    return (d + (1 << lev) - 1) >> lev


@cuda.jit(device=True, inline=True)
def sum_from_start(xs, T, r, k, L, n, d):
    """The reference's F at level L: the x sum over [start of k's block of 2^L, k], with the same
    additions in the same order (docs/design.md 13.6): for l = 0..L-1 where bit l of k is set,
    the left sibling block's total T_l is added to the running sum."""
    acc = xs[r, k]
    if L > 0 and k & 1:
        acc = xs[r, k - 1] + acc
    off = 0
    for lev in range(1, L):
        m = level_size(d, lev)
        b = k >> lev
        if b & 1:
            acc = T[n * off + r * m + b - 1] + acc
        off += m
    return acc


@cuda.jit(device=True, inline=True)
def sum_to_end(xs, T, r, k, L, n, d):
    """The reference's G at level L: the x sum over [k, end of k's block of 2^L], same additions
    in the same order: for l = 0..L-1 where bit l of k is clear and a right sibling exists, its
    total T_l is added."""
    acc = xs[r, k]
    if L > 0 and (k & 1) == 0 and k + 1 < d:
        acc = acc + xs[r, k + 1]
    off = 0
    for lev in range(1, L):
        m = level_size(d, lev)
        b = k >> lev
        if (b & 1) == 0 and b + 1 < m:
            acc = acc + T[n * off + r * m + b + 1]
        off += m
    return acc


@cuda.jit(device=True, inline=True)
def s_at(xs, T, r, k, mid, L, n, d, c):
    """S local to mid at point k (the reference's local_point at level L, h = 2^L);
    c = shift_unit(lam, d)."""
    if k > mid:
        return sum_from_start(xs, T, r, k - 1, L, n, d) + shift_sum(mid, k, d, c)
    if k == mid:
        return 0.0
    return -(sum_to_end(xs, T, r, k, L, n, d) + shift_sum(k, mid, d, c))


@cuda.jit(cache=True)
def init_state(hull, cnt):
    t = cuda.grid(1)
    n, d = hull.shape
    if t >= n * d:
        return
    r = t // d
    hull[r, t - r * d] = t - r * d
    cnt[t] = 1


@cuda.jit(cache=True)
def bridge_pairs(hull, cnt, xs, T, istar, jstar, rowbound, h, P, L, c):
    q = cuda.grid(1)
    n, d = hull.shape
    if q >= n * P:
        return
    r = q // P
    p = q - r * P
    lo = p * 2 * h
    mid = lo + h
    hi = min(lo + 2 * h, d)
    m = (d + h - 1) // h
    cnt_l = cnt[r * m + 2 * p]
    cnt_r = cnt[r * m + 2 * p + 1]
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
    if junction_is_bridge(a > 1, float(k0 - mid), s_at(xs, T, r, k0, mid, L, n, d, c), 0.0, 0.0,
                          float(r0 - mid), s_at(xs, T, r, r0, mid, L, n, d, c), b > 1,
                          float(q2 - mid), s_at(xs, T, r, q2, mid, L, n, d, c)):
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
            float(k0 - mid), s_at(xs, T, r, k0, mid, L, n, d, c),
            float(k1 - mid), s_at(xs, T, r, k1, mid, L, n, d, c),
            float(k2 - mid), s_at(xs, T, r, k2, mid, L, n, d, c),
            float(q0 - mid), s_at(xs, T, r, q0, mid, L, n, d, c),
            float(q1 - mid), s_at(xs, T, r, q1, mid, L, n, d, c),
            float(q2 - mid), s_at(xs, T, r, q2, mid, L, n, d, c),
            split)
    istar[q] = il
    jstar[q] = jl


@cuda.jit(cache=True)
def merge_copy(hull, cnt, hull2, cnt2, T, T2, istar, jstar, rowbound, rounds, depth, level_depth,
               h, P):
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
    m = (d + h - 1) // h  # segments (and block totals) per row at this level
    m2 = (d + 2 * h - 1) // (2 * h)  # at the next
    s = r * m + 2 * p
    if p >= P:  # a last segment without a right half: unchanged
        hull2[r, k] = hull[r, k]
        if o == 0:
            cnt2[r * m2 + p] = cnt[s]
            T2[r * m2 + p] = T[s]
    else:
        q = r * P + p
        i = istar[q]
        j = jstar[q]
        cnt_l = cnt[s]
        cnt_r = cnt[s + 1]
        if o <= i:
            hull2[r, k] = left_vertex(hull, r, lo, mid, cnt_l, o)
        elif o - (i + 1) < cnt_r - j - 1:
            hull2[r, k] = hull[r, mid + j + 1 + (o - (i + 1))]
        if o == 0:
            cnt2[r * m2 + p] = i + cnt_r - j
            T2[r * m2 + p] = T[s] + T[s + 1]  # the reference's F at the block's last point
    if k == 0:
        b = rowbound[r]
        rounds[r] += b
        depth[r] += b + level_depth
        rowbound[r] = 0


def _pyramid_offsets(d: int) -> list[int]:
    """Offsets (in blocks per row) of T_1, T_2, ..., T_top in the flat pyramid, and its size last:
    level l holds ceil(d / 2^l) block totals (docs/design.md 13.6)."""
    offs, off, lev = [], 0, 1
    while True:
        offs.append(off)
        if (1 << (lev - 1)) >= d:  # T_{l-1} was already the row total
            return offs
        off += (d + (1 << lev) - 1) >> lev
        lev += 1


def partition(xs, lam: float, cost):
    """(is_start int8 (n, d), rounds (n,), host syncs, {"depth": (n,)}) for sorted, centred rows;
    ``cost`` counts the launches (``cost.Cost``, docs/design.md 14.4)."""
    n, d = xs.shape
    if d >= 2 ** 31:
        raise ValueError(f"hull_bridges on the GPU keeps positions as int32: rows need d < 2**31, "
                         f"got d = {d}; split the row (the sharded prox, docs/design.md 15)")
    g = grid(n * d)
    half = (d + 1) // 2
    hull, hull2 = (cost.empty((n, d), "int32") for _ in range(2))
    cnt_a, cnt_b = cost.empty(n * d, "int32"), cost.empty(n * half, "int32")
    offs = _pyramid_offsets(d)  # offs[l - 1]: where T_l starts; offs[-1]: the size
    T = cost.empty(max(n * offs[-1], 1), "float64")
    x0 = xs.reshape(n * d)  # T_0: the points themselves, in the pyramid's (row, block) order
    cost(init_state, g)(hull, cnt_a)
    istar, jstar = (cost.empty(n * half, "int32") for _ in range(2))
    rounds = full(n, 0, "int64", cost)
    depth = full(n, 0, "int64", cost)
    rowbound = full(n, 0, "int64", cost)
    c = shift_unit(lam, d)  # the shift sums' factor, as every backend computes it
    h, L = 1, 0
    cnt, cnt2 = cnt_a, cnt_b
    while h < d:
        P = (d - h + 2 * h - 1) // (2 * h)  # pairs with a right half
        m, m2 = (d + h - 1) // h, (d + 2 * h - 1) // (2 * h)  # segments now and after the merge
        cur = x0 if L == 0 else T[n * offs[L - 1]:n * (offs[L - 1] + m)]
        nxt = T[n * offs[L]:n * (offs[L] + m2)]
        lower = T[:max(n * offs[max(L - 1, 0)], 1)]  # T_1 .. T_{L-1}
        cnt_now, cnt_next = cnt[:n * m], cnt2[:n * m2]
        ij = istar[:n * P], jstar[:n * P]
        # one thread per pair: a simultaneous binary search, <= 2 log2(h) + 2 steps (9.4)
        cost(bridge_pairs, grid(n * P), serial=2 * h.bit_length() + 2)(
            hull, cnt_now, xs, lower, *ij, rowbound, h, P, L, c)
        # Each S value of the junction test sums up to L + 1 pyramid entries (13.6); the launch
        # counted one per thread and array.
        cost.add(bytes=8 * n * P * (3 * (L + 1) - 2))
        cost(merge_copy, g)(hull, cnt_now, hull2, cnt_next, cur, nxt, *ij, rowbound, rounds,
                            depth, dp.hull_level(h, P, 0), h, P)
        hull, hull2, cnt, cnt2 = hull2, hull, cnt2, cnt
        h *= 2
        L += 1
    is_start = cost.empty((n, d), "int8")
    cost(fill2, g)(is_start, 0)
    cost(mark_starts, g)(hull, cnt[:n].reshape(n, 1), is_start)
    return is_start, rounds, 0, {"depth": depth}
