"""Hull bridges as CUDA kernels (numba-cuda): every pair of every row in lockstep.

Same algorithm, partition, rounds and depth as ``wsrbench.backends.numpy.hull_bridges`` (read that
first, and docs/design.md#hull_bridges; docs/design.md#hull_bridges-memory-traffic explains the
memory layout below and what it saves). State, per
level l (segments of 2^l points), all flat (row, entry) per level:
* the hull: each segment's stored vertices packed at its front, as offsets from the segment's
  start in the narrowest type that holds them (``HULL_TYPES``: uint16 up to l = 16, int32
  above); written only every second level (and never at level 0, where every point is
  its own vertex): between two writes a bridge reads each half through the previous level's
  merge of its own halves (``stored_vertex``), one indirection with decisions loaded up front;
* ``cnt`` (int32): stored vertices per segment; ``istar``/``jstar`` (int32): each pair's bridge;
  ``rowbound``: each level's largest step bound per row (level 0's decisions are implied by its
  counts and not stored);
* ``T``: the pyramid of block totals T_l (each the sum of its two halves' totals; T_0 is the data
  itself, read from the sorted keys as centred float64, ``finish.centred``, wherever it is needed:
  no array of the centred rows exists). The reference's local sums F and G are not stored:
  ``sum_from_start`` / ``sum_to_end`` rebuild any of them from at most log2(d) totals with the
  reference's additions in the reference's order, so every S value, hence every bridge decision,
  has the reference's bits (13.3, 13.6).

Levels 0 .. K-1 (tiles of 2^K points: 2048 on a GPU, 8 in the simulator, ``hull_tiles.TILE_BITS``)
run in one launch, ``hull_tiles.tile_levels``: a thread block per (row, tile) loads the tile once
into shared memory, runs those levels there and writes exactly the state the per-level loop below
would have after level K - 1 with its hull just written (hull, counts, T_1 .. T_K, each tile's
bounds; the rounds, depth, bounds and ``is_start`` cleared), or, for a row that is one tile, the
finished row (docs/design.md#hull_bridges-memory-traffic). The loop then continues at level K. Per
level from K on:
* ``bridge_pairs`` (a thread per (row, pair)): the simultaneous binary search, driving
  ``wsrbench.core.bridge.bridge_step`` compiled as a device function, on vertices from the hull and S
  values from the pyramid plus the closed-form shift sums; writes (i*, j*), the merged segment's
  count and block total, and the pair's step bound (atomic max per row and level). The level-0
  launch (K = 0: no tiles) also clears ``is_start``, the rounds, the depths and the bounds; the
  level-K launch folds the tiles' bounds of levels 0 .. K-1 into the rows' bounds;
* every second level and at the last, ``merge_copy`` (a thread per element): the hull of the
  segments two levels (or one) up; the last one marks the row's vertices (the block starts) in
  ``is_start`` instead; thread k = 0 adds the levels' bounds to its row's rounds and depth (the
  first one after the tiles, their levels' too).
Host synchronisation: none. Device functions are ``inline=True``; only integer and float64
scalar arithmetic, comparisons and array indexing appear in kernels (numba-cuda supported).
"""
from __future__ import annotations

from numba import cuda

from ...core import depth as dp
from ...core.numerics import shift_unit
from . import hull_tiles
from .bridge_device import bridge_bound, bridge_step, junction_is_bridge, level_size
from .finish import centred
from .launch import grid
from .numerics import shift_sum  # c (b-a)(d-a-b) with an unfused product (13.3)

# A hull of segments of 2^level points is stored as offsets from each segment's start in the first
# of these types whose level bound it meets (offsets < 2^level;
# docs/design.md#hull_bridges-memory-traffic). No uint8:
# on a GPU the levels below 11 run in hull_tiles' shared memory, so it would never be launched.
HULL_TYPES = ((16, "uint16"), (31, "int32"))


@cuda.jit(device=True, inline=True)
def sum_from_start(keys, center, T, r, k, L, n, d):
    """The reference's F at level L: the x sum over [start of k's block of 2^L, k], with the same
    additions in the same order (docs/design.md#hull_bridges-memory-traffic): for l = 0..L-1 where
    bit l of k is set,
    the left sibling block's total T_l is added to the running sum (T_0 = the centred keys)."""
    acc = centred(keys, center, r, k)
    if L > 0 and k & 1:
        acc = centred(keys, center, r, k - 1) + acc
    off = 0
    for lev in range(1, L):
        m = level_size(d, lev)
        b = k >> lev
        if b & 1:
            acc = T[n * off + r * m + b - 1] + acc
        off += m
    return acc


@cuda.jit(device=True, inline=True)
def sum_to_end(keys, center, T, r, k, L, n, d):
    """The reference's G at level L: the x sum over [k, end of k's block of 2^L], same additions
    in the same order: for l = 0..L-1 where bit l of k is clear and a right sibling exists, its
    total T_l is added."""
    acc = centred(keys, center, r, k)
    if L > 0 and (k & 1) == 0 and k + 1 < d:
        acc = acc + centred(keys, center, r, k + 1)
    off = 0
    for lev in range(1, L):
        m = level_size(d, lev)
        b = k >> lev
        if (b & 1) == 0 and b + 1 < m:
            acc = acc + T[n * off + r * m + b + 1]
        off += m
    return acc


@cuda.jit(device=True, inline=True)
def s_at(keys, center, T, r, k, mid, L, n, d, c):
    """S local to mid at point k (the reference's local_point at level L, h = 2^L);
    c = shift_unit(lam, d)."""
    if k > mid:
        return sum_from_start(keys, center, T, r, k - 1, L, n, d) + shift_sum(mid, k, d, c)
    if k == mid:
        return 0.0
    return -(sum_to_end(keys, center, T, r, k, L, n, d) + shift_sum(k, mid, d, c))


@cuda.jit(device=True, inline=True)
def hull_at(hull, r, base, t, ident):
    """t-th stored vertex of the written segment starting at base: hulls are stored as offsets
    from their segment's start, in the narrowest type that holds them
    (docs/design.md#hull_bridges-memory-traffic); the
    level-0 hull (``ident``: every point its own vertex) is never stored."""
    return base + (t if ident else int(hull[r, base + t]))


@cuda.jit(device=True, inline=True)
def stored_vertex(hull, r, slo, h0, paired, i, j, cl, t, ident):
    """t-th stored vertex of the segment starting at slo, from the hull last written (segments
    of h0 points; ``ident``: level 0): the segment itself if not ``paired``, else the merge of its
    halves [slo, mid) and [mid, ...) with the bridge (i, j) and cl stored vertices in the left
    half (the merge's left prefix, P_mid, then the right suffix;
    docs/design.md#hull_bridges-memory-traffic)."""
    if not paired:
        return hull_at(hull, r, slo, t, ident)
    mid = slo + h0
    if t <= i:
        return hull_at(hull, r, slo, t, ident) if t < cl else mid
    return hull_at(hull, r, mid, t - i + j, ident)


@cuda.jit(device=True, inline=True)
def count_at(cnt, idx, level):
    """Stored vertices of a segment: cnt[idx], or 1 at level 0 (never stored)."""
    return cnt[idx] if level > 0 else 1


@cuda.jit(cache=True)
def bridge_pairs(hull, cnt, cnt2, keys, center, T, Tsrc, T2, istar, jstar, rowbound, rounds, depth,
                 is_start, prev_i, prev_j, prev_cnt, h, P, L, stale, P_prev, c, tilebound, tiles):
    """Level L (halves of h = 2^L points): the bridge of pair (row, p). ``hull`` holds the
    segments of h points (``stale`` = 0) or of h/2 (``stale`` = 1: then each half is the merge of
    its own halves by the previous level's (prev_i, prev_j), with prev_cnt their left counts and
    P_prev that level's pairs). Also writes the merged segment's count and block total (and the
    unpaired last segment's), so that the next level needs no copy of either; ``Tsrc`` holds the
    halves' totals T_L (at L = 0 the data: read from the keys instead). The first launch
    (L = 0) also clears ``is_start``, the rows' rounds and depth and the later levels' bounds.
    The first launch after ``hull_tiles.tile_levels`` (L = ``tiles`` > 0) also folds the tiles'
    bounds of levels 0 .. L-1 (``tilebound``, (level, row, tile); tiles are this level's
    segments) into ``rowbound``."""
    q = cuda.grid(1)
    n, d = keys.shape
    if q >= n * P:
        return
    r = q // P
    p = q - r * P
    lo = p * 2 * h
    mid = lo + h
    hi = min(lo + 2 * h, d)
    m = (d + h - 1) // h
    m2 = (d + 2 * h - 1) // (2 * h)
    cnt_l = count_at(cnt, r * m + 2 * p, L)
    cnt_r = count_at(cnt, r * m + 2 * p + 1, L)
    # The halves' own merges (stale hull): decisions of pairs 2p and 2p + 1 one level down.
    ident = L - stale == 0  # the hull in memory is level 0's: not stored
    h0 = h // 2
    mp = (d + h0 - 1) // h0 if stale else 1
    pa = stale != 0 and 2 * p < P_prev
    pb = stale != 0 and 2 * p + 1 < P_prev
    # Level 0's decisions are not stored: its merged counts give them (i = count - 1, j = 0).
    ia = (prev_i[r * P_prev + 2 * p] if L > 1 else cnt_l - 1) if pa else 0
    ja = prev_j[r * P_prev + 2 * p] if pa and L > 1 else 0
    ca = count_at(prev_cnt, r * mp + 4 * p, L - 1) if pa else 0
    ib = (prev_i[r * P_prev + 2 * p + 1] if L > 1 else cnt_r - 1) if pb else 0
    jb = prev_j[r * P_prev + 2 * p + 1] if pb and L > 1 else 0
    cb = count_at(prev_cnt, r * mp + 4 * p + 2, L - 1) if pb else 0
    a = cnt_l + 1
    b = cnt_r
    if L == 0:
        is_start[r, 2 * p] = 0
        is_start[r, 2 * p + 1] = 0
        if p == P - 1 and d > 2 * P:
            is_start[r, 2 * P] = 0
        if q < n:
            rounds[q] = 0
            depth[q] = 0
        for e in range(n + q, rowbound.shape[0], n * P):  # later levels: no bound yet
            rowbound[e] = 0
        # Every pair of level 0 has hulls of a = 2 and b = 1 vertices: all write the same bound
        # (no atomic needed, and none may race with the clearing above).
        rowbound[r] = bridge_bound(a, b)
    else:
        cuda.atomic.max(rowbound, L * n + r, bridge_bound(a, b))
    r0 = stored_vertex(hull, r, mid, h0, pb, ib, jb, cb, 1, ident) if b > 1 else hi
    split = 0.5 * (0.0 + float(r0 - mid))
    il = 0
    ih = a - 1
    jl = 0
    jh = b - 1
    t = max(a - 2, 0)
    k0 = stored_vertex(hull, r, lo, h0, pa, ia, ja, ca, t, ident) if t < cnt_l else mid
    t = min(1, b - 1)
    q2 = stored_vertex(hull, r, mid, h0, pb, ib, jb, cb, t + 1, ident) if t < cnt_r - 1 else hi
    if junction_is_bridge(a > 1, float(k0 - mid), s_at(keys, center, T, r, k0, mid, L, n, d, c),
                          0.0, 0.0, float(r0 - mid), s_at(keys, center, T, r, r0, mid, L, n, d, c),
                          b > 1, float(q2 - mid), s_at(keys, center, T, r, q2, mid, L, n, d, c)):
        il = a - 1  # already convex at the junction: no search
        jh = 0
    while il < ih or jl < jh:
        i = (il + ih) // 2
        j = (jl + jh) // 2
        t = max(i - 1, 0)
        k0 = stored_vertex(hull, r, lo, h0, pa, ia, ja, ca, t, ident) if t < cnt_l else mid
        k1 = stored_vertex(hull, r, lo, h0, pa, ia, ja, ca, i, ident) if i < cnt_l else mid
        t = min(i + 1, a - 1)
        k2 = stored_vertex(hull, r, lo, h0, pa, ia, ja, ca, t, ident) if t < cnt_l else mid
        t = max(j - 1, 0)
        q0 = stored_vertex(hull, r, mid, h0, pb, ib, jb, cb, t + 1, ident) if t < cnt_r - 1 else hi
        q1 = stored_vertex(hull, r, mid, h0, pb, ib, jb, cb, j + 1, ident) if j < cnt_r - 1 else hi
        t = min(j + 1, b - 1)
        q2 = stored_vertex(hull, r, mid, h0, pb, ib, jb, cb, t + 1, ident) if t < cnt_r - 1 else hi
        il, ih, jl, jh = bridge_step(
            il, ih, jl, jh,
            float(k0 - mid), s_at(keys, center, T, r, k0, mid, L, n, d, c),
            float(k1 - mid), s_at(keys, center, T, r, k1, mid, L, n, d, c),
            float(k2 - mid), s_at(keys, center, T, r, k2, mid, L, n, d, c),
            float(q0 - mid), s_at(keys, center, T, r, q0, mid, L, n, d, c),
            float(q1 - mid), s_at(keys, center, T, r, q1, mid, L, n, d, c),
            float(q2 - mid), s_at(keys, center, T, r, q2, mid, L, n, d, c),
            split)
    if L > 0:  # level 0's are il = its merged count - 1, jl = 0 (never stored)
        istar[q] = il
        jstar[q] = jl
    cnt2[r * m2 + p] = il + cnt_r - jl
    s = r * m + 2 * p
    # the reference's F at the block's last point
    if L == 0:
        T2[r * m2 + p] = centred(keys, center, r, 2 * p) + centred(keys, center, r, 2 * p + 1)
    else:
        T2[r * m2 + p] = Tsrc[s] + Tsrc[s + 1]
    if p == P - 1 and m2 > P:  # the last segment has no partner at this level: unchanged
        cnt2[r * m2 + P] = count_at(cnt, s + 2, L)
        T2[r * m2 + P] = centred(keys, center, r, 2 * P) if L == 0 else Tsrc[s + 2]
    if L > 0 and L == tiles:
        for lev in range(tiles):
            e = (lev * n + r) * m + 2 * p
            v = max(tilebound[e], tilebound[e + 1])
            if p == P - 1 and m > 2 * P:  # the unpaired last tile
                v = max(v, tilebound[e + 2])
            cuda.atomic.max(rowbound, lev * n + r, v)


@cuda.jit(cache=True)
def merge_copy(hull, hull2, cnt, cnt2, istar, jstar, prev_cnt, prev_i, prev_j, rowbound, rounds,
               depth, is_start, levels_depth, h, P, L, two, P_prev, final, first):
    """The hull of segments of 2h points (thread per element) from ``hull``: segments of h points
    merged by the level's (istar, jstar) (``two`` = 0), or of h/2 points merged twice, first by the
    previous level's (prev_i, prev_j) (``two`` = 1). Thread k = 0 adds the bounds of levels
    ``first`` .. L and ``levels_depth`` to its row's rounds and depth (``first`` = L - two, or 0
    for the first merge after the tile kernel: its levels too). The ``final`` merge (the whole
    row) marks its vertices in ``is_start`` instead of storing them."""
    t = cuda.grid(1)
    n, d = is_start.shape if final else hull2.shape
    if t >= n * d:
        return
    r = t // d
    k = t - r * d
    if k == 0:
        b = 0
        for lev in range(first, L + 1):
            b += rowbound[lev * n + r]
        rounds[r] += b
        depth[r] += b + levels_depth
    lo = (k // (2 * h)) * (2 * h)
    s = lo // (2 * h)
    o = k - lo
    m = (d + h - 1) // h
    m2 = (d + 2 * h - 1) // (2 * h)
    if o >= cnt2[r * m2 + s]:
        return  # past the merged segment's stored vertices: never read
    c = 2 * s  # the half holding vertex o, and its index there
    if s < P:
        q = r * P + s
        i = istar[q] if L > 0 else cnt2[r * m2 + s] - 1  # level 0's: see bridge_pairs
        mid = lo + h
        if o <= i:
            if o >= count_at(cnt, r * m + c, L):
                v = mid
                if final:
                    is_start[r, v] = 1
                else:
                    hull2[r, k] = v - lo
                return
        else:
            c += 1
            o = o - i + (jstar[q] if L > 0 else 0)
    h0 = h // 2
    ident = L - two == 0  # the source hull is level 0's: not stored
    if two:
        mp = (d + h0 - 1) // h0
        pc = c < P_prev
        v = stored_vertex(
            hull, r, c * h, h0, pc,
            (prev_i[r * P_prev + c] if L > 1 else count_at(cnt, r * m + c, L) - 1) if pc else 0,
            prev_j[r * P_prev + c] if pc and L > 1 else 0,
            count_at(prev_cnt, r * mp + 2 * c, L - 1) if pc else 0, o, ident)
    else:
        v = hull_at(hull, r, c * h, o, ident)
    if final:
        is_start[r, v] = 1
    else:
        hull2[r, k] = v - lo


def _pyramid_offsets(d: int) -> list[int]:
    """Offsets (in blocks per row) of T_1, T_2, ..., T_top in the flat pyramid, and its size last:
    level l holds ceil(d / 2^l) block totals (docs/design.md#hull_bridges-memory-traffic)."""
    offs, off, lev = [], 0, 1
    while True:
        offs.append(off)
        if (1 << (lev - 1)) >= d:  # T_{l-1} was already the row total
            return offs
        off += (d + (1 << lev) - 1) >> lev
        lev += 1


def hull_type(level: int) -> str:
    """The offset type of a stored hull of segments of 2^level points (``HULL_TYPES``)."""
    return next(t for most, t in HULL_TYPES if level <= most)


def partition(keys, center, lam: float, cost):
    """(is_start int8 (n, d), rounds (n,), host syncs, {"depth": (n,)}) for sorted rows ``keys``
    centred at ``center`` (read as ``finish.centred``); ``cost`` counts the launches
    (``cost.Cost``, docs/design.md#cost-counted-without-a-gpu)."""
    n, d = keys.shape
    if d >= 2 ** 31:
        raise ValueError(f"hull_bridges on the GPU keeps positions as int32: rows need d < 2**31, "
                         f"got d = {d}; split the row (the sharded prox, docs/design.md#distributed)")
    g = grid(n * d)
    top = (d - 1).bit_length()  # levels: ceil(log2 d)
    sizes = [(d + (1 << lev) - 1) >> lev for lev in range(top + 1)]  # segments per row, level l
    pairs = [sizes[lev] // 2 for lev in range(top)]  # pairs with a right half, level l

    def flat(counts, dtype):
        """One flat array holding a (row, entry) block per level; the per-level views."""
        buf = cost.empty(max(n * sum(counts), 1), dtype)
        offs = [n * sum(counts[:lev]) for lev in range(len(counts) + 1)]
        return buf, [buf[offs[lev]:offs[lev + 1]] for lev in range(len(counts))]

    level0 = cost.empty((n, 1), hull_type(0))  # level 0's hull is every point: never stored
    buffers = {}  # two (n, d) hulls per offset type, written in turn

    def new_hull(level, other):
        """A hull buffer for segments of 2^level points that is not ``other``."""
        dtype = hull_type(level)
        pair = buffers.setdefault(dtype, [])
        for buf in pair:
            if buf is not other:
                return buf
        pair.append(cost.empty((n, d), dtype))
        return pair[-1]

    _, cnt = flat([1] + sizes[1:], "int32")  # stored vertices per segment (level 0: all 1)
    T, Tl = flat([0] + sizes[1:], "float64")  # block totals T_1 .. T_top
    no_sums = cost.empty(1, "float64")  # for a pyramid level that is not read
    Tl[0] = no_sums  # T_0 is the data: level 0 reads the keys instead
    _, istar = flat([0] + pairs[1:], "int32")  # bridges (i*, j*) per pair; level 0's not stored
    _, jstar = flat([0] + pairs[1:], "int32")
    none = cost.empty(1, "int32")  # for the previous level's arrays when they are not read
    rowbound = cost.empty(n * top, "int64")  # (level, row): the level's step bound
    rounds, depth = cost.empty(n, "int64"), cost.empty(n, "int64")
    is_start = cost.empty((n, d), "int8")
    no_starts = cost.empty((n, 1), "int8")  # for the launches that do not touch is_start
    c = shift_unit(lam, d)  # the shift sums' factor, as every backend computes it
    src = level0  # the last hull written
    # 1 when ``src`` holds the segments of the level below
    # (docs/design.md#hull_bridges-memory-traffic)
    stale = 0
    K = min(hull_tiles.TILE_BITS, top)  # levels run in tiles of 2^K points, one block each
    if K > hull_tiles.MAX_TILE_BITS:
        raise ValueError(f"hull_tiles.TILE_BITS = {hull_tiles.TILE_BITS} exceeds the shared "
                         f"arrays' MAX_TILE_BITS = {hull_tiles.MAX_TILE_BITS}")
    tiles_depth, tilebound = 0, none
    if K > 0:
        whole = K == top  # one tile per row: the tile kernel is the last level
        nt = sizes[K]
        if not whole:
            src = new_hull(K, None)
            tilebound = cost.empty(max(K * n * nt, 1), "int32")
        hull_tiles.launch(
            cost, keys, center, K, top, c, src if not whole else cost.empty((n, 1), hull_type(K)),
            cnt[K] if not whole else none, T[:max(n * sum(sizes[1:K + 1]), 1)] if not whole
            else no_sums, tilebound, rowbound, rounds, depth, is_start)
        # The first merge after the tiles adds their levels' bounds and depth terms too.
        tiles_depth = sum(dp.hull_level(1 << lev, pairs[lev], 0) for lev in range(K))
    for L in range(K, top):
        h, P = 1 << L, pairs[L]
        lower = T[:max(n * sum(sizes[1:L]), 1)]  # T_1 .. T_{L-1}
        ij = (istar[L], jstar[L]) if L > 0 else (none, none)
        prev = (istar[L - 1], jstar[L - 1], cnt[L - 1]) if stale and L > 1 else (none,) * 3
        p_prev = pairs[L - 1] if stale else 1
        fold = K if L == K else 0  # the tiles' bounds, folded by the first launch after them
        # one thread per pair: a simultaneous binary search, <= 2 log2(h) + 2 steps (9.4),
        # after one more dependent read when the halves are the previous level's merges
        cost(bridge_pairs, grid(n * P), serial=2 * h.bit_length() + 2 + stale)(
            src, cnt[L], cnt[L + 1], keys, center, lower, Tl[L], Tl[L + 1], *ij, rowbound,
            rounds, depth, is_start if L == 0 else no_starts, *prev, h, P, L, stale, p_prev, c,
            tilebound if fold else none, fold)
        # Traffic the launch counted as one element per thread and array: each S value of the
        # junction test sums up to L + 1 pyramid entries (13.6), a stale hull needs the
        # decisions of both halves, level 0 clears all of is_start, and the fold reads every
        # tile's bounds.
        cost.add(bytes=8 * n * P * (3 * (L + 1) - 2) + 12 * n * P * (stale and L > 1)
                 + (n * (d - P) if L == 0 else 0)
                 + (4 * (K * n * sizes[K] - min(K * n * sizes[K], n * P)) if fold else 0))
        final = L == top - 1
        if stale or final:  # write the hull every second level; mark the last one's vertices
            levels_depth = dp.hull_level(h, P, 0) + (dp.hull_level(h // 2, p_prev, 0)
                                                     if stale else 0) + tiles_depth
            out = cost.empty((n, 1), hull_type(L + 1)) if final else new_hull(L + 1, src)
            cost(merge_copy, g, serial=stale)(
                src, out, cnt[L], cnt[L + 1], *ij, prev[2], prev[0], prev[1],
                rowbound, rounds, depth, is_start if final else no_starts, levels_depth, h, P, L,
                stale, p_prev, int(final), 0 if L - stale <= K else L - stale)
            src = out
            stale = 0
            tiles_depth = 0  # added once
        else:
            stale = 1
    return is_start, rounds, 0, {"depth": depth}
