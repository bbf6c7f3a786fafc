"""hull_bridges' lowest levels in one launch: a thread block per aligned tile, in shared memory.

Levels 0 .. K-1 of ``hull_bridges`` (docs/design.md#hull_bridges) only ever merge points inside an aligned
tile of 2^K points. ``tile_levels`` runs them for a (row, tile) per thread block: it loads the
tile's sorted keys once into shared memory, centred as float64 (``finish.centred``: the same
bits as everywhere else), and runs the levels there, a block barrier between
them, then writes to global memory exactly the state ``hull_bridges.partition``'s per-level loop
has after level K - 1 with its hull just written (docs/design.md#hull_bridges-memory-traffic):

* the hull of every segment of 2^K points (offsets from the segment's start, ``hull_type(K)``),
  its count (``cnt`` of level K), the block totals T_1 .. T_K of the pyramid;
* each tile's step bound per level (``tilebound``): a level's bound is a maximum over the whole
  row, i.e. across blocks, so the next launch (``bridge_pairs`` at level K) folds them into
  ``rowbound`` with atomics, and the first ``merge_copy`` adds levels 0 .. K-1 to the rounds and
  depth; ``rowbound``, the rounds and depth and the tile's ``is_start`` are cleared here (what
  level 0's launch does in the per-level path);
* when the row fits in one tile (K = ceil(log2 d)) the tile is the whole row: the block marks its
  vertices in ``is_start`` and writes the rounds and depth itself, and nothing else runs.

Bit for bit: the S values are ``sum_from_start`` / ``sum_to_end`` over the same pyramid, which
the block keeps in shared memory (T_0 = the data, then T_1, T_2, ...: every total the sum of the
same two totals, in the same order, as the global pyramid), plus ``shift_sum`` at the points'
global positions; the search is the same ``bridge_step`` / ``junction_is_bridge`` on the same
probes. So every decision, count and bound equals the per-level path's, hence the reference's.

Shared memory (static, sizes fixed at compile time for tiles of up to 2^MAX_TILE_BITS points P):
the sums 2P float64, two hull buffers 2P int16 (tile-local vertex indices), the counts of every
level P int16 (level l at offset P - 2P/2^l), the bridges (i*, j*) of one level P/4 int16 each
(level 0's are implied by its counts, as in ``hull_bridges``), K step bounds: 23 P + 4 K bytes,
47.2 KB at P = 2048, under the 48 KB a block may declare statically. Threads per block:
min(2^(K-1), MAX_THREADS), each looping over its pairs and elements; on a GPU 512 threads, so
that a block of ~128 registers per thread fits one SM's 64 K registers.

The simulator runs a block's threads as Python threads and a barrier costs milliseconds there, so
it uses tiles of 8 points (K = 3; tests also choose 2 and 4) with 2 threads each and shortens the
interpreter's switch interval while the kernel runs.
"""
from __future__ import annotations

from numba import cuda, float64, int16, int32

from . import simulator
from .bridge_device import bridge_bound, bridge_step, junction_is_bridge, level_size
from .finish import centred
from .launch import SIMULATOR
from .numerics import depth as _dev_depth
from .numerics import shift_sum

# shift_sum is c (b-a)(d-a-b) with an unfused product (docs/design.md#hull_bridges-precision).

#: Largest tile, 2^MAX_TILE_BITS points: fixes the shared arrays' sizes at compile time.
GPU_TILE_BITS = 11
MAX_TILE_BITS = 3 if SIMULATOR else GPU_TILE_BITS
#: Levels run in tiles (tiles of 2^TILE_BITS points), <= MAX_TILE_BITS; 0 turns the tile kernel
#: off (every level a launch). Read at each call (tests may change it).
TILE_BITS = 3 if SIMULATOR else GPU_TILE_BITS
#: Most threads per block (each loops over its pairs and elements). The simulator's 2 threads
#: per tile of 8 loop over level 0's four pairs, as a GPU block's 512 threads over its 1024.
GPU_MAX_THREADS = 512
MAX_THREADS = 2 if SIMULATOR else GPU_MAX_THREADS

_P = 1 << MAX_TILE_BITS
_SUMS = 2 * _P  # T_0 (the data) then T_1, T_2, ...: level l at 2P - 2P/2^l
_HULLS = 2 * _P  # two hull buffers of P entries, written in turn
_COUNTS = _P  # level l >= 1 at P - 2P/2^l (level 0: every segment has 1 vertex, not stored)
_BRIDGES = max(_P // 4, 1)  # (i*, j*) of the level's pairs, levels >= 1
_LEVELS = max(MAX_TILE_BITS, 1)

hull_level = _dev_depth.hull_level



@cuda.jit(device=True, inline=True)
def sums_at(K, lev):
    """Offset of T_lev in the shared sums of a tile of 2^K points: 2^(K+1) - 2^(K+1-lev)."""
    return (2 << K) - ((2 << K) >> lev)


@cuda.jit(device=True, inline=True)
def counts_at(K, lev):
    """Offset of level lev's (>= 1) counts in the shared counts: 2^K - 2^(K+1-lev)."""
    return (1 << K) - ((2 << K) >> lev)


@cuda.jit(device=True, inline=True)
def tile_sum_from_start(S, k, L, K):
    """``hull_bridges.sum_from_start`` on the tile's shared pyramid (tile-local k): the same
    totals added in the same order (docs/design.md#hull_bridges-memory-traffic)."""
    acc = S[k]
    if L > 0 and k & 1:
        acc = S[k - 1] + acc
    for lev in range(1, L):
        b = k >> lev
        if b & 1:
            acc = S[sums_at(K, lev) + b - 1] + acc
    return acc


@cuda.jit(device=True, inline=True)
def tile_sum_to_end(S, k, L, K, npts):
    """``hull_bridges.sum_to_end`` on the tile's shared pyramid; npts: the tile's points (a right
    sibling block exists iff it starts before the row's end)."""
    acc = S[k]
    if L > 0 and (k & 1) == 0 and k + 1 < npts:
        acc = acc + S[k + 1]
    for lev in range(1, L):
        b = k >> lev
        if (b & 1) == 0 and ((b + 1) << lev) < npts:
            acc = acc + S[sums_at(K, lev) + b + 1]
    return acc


@cuda.jit(device=True, inline=True)
def tile_s_at(S, k, mid, L, K, npts, g, d, c):
    """``hull_bridges.s_at`` for tile-local k and mid of the tile starting at global position g."""
    if k > mid:
        return tile_sum_from_start(S, k - 1, L, K) + shift_sum(g + mid, g + k, d, c)
    if k == mid:
        return 0.0
    return -(tile_sum_to_end(S, k, L, K, npts) + shift_sum(g + k, g + mid, d, c))


@cuda.jit(device=True, inline=True)
def tile_vertex(H, cur, base, t, ident):
    """t-th stored vertex (tile-local index) of the segment starting at base, from the hull
    buffer at ``cur``; level 0's hull (``ident``: every point its own vertex) is not stored."""
    return base + t if ident else int(H[cur + base + t])


@cuda.jit(device=True, inline=True)
def tile_bridge(S, H, cur, lo, mid, hi, cnt_l, cnt_r, L, K, npts, g, d, c):
    """(i*, j*) of the pair [lo, mid), [mid, hi) at level L: ``hull_bridges.bridge_pairs``' junction
    test and search, the same probes in the same order, on the shared hull and sums."""
    ident = L == 0
    a = cnt_l + 1
    b = cnt_r
    r0 = tile_vertex(H, cur, mid, 1, ident) if b > 1 else hi
    split = 0.5 * (0.0 + float(r0 - mid))
    il = 0
    ih = a - 1
    jl = 0
    jh = b - 1
    t = max(a - 2, 0)
    k0 = tile_vertex(H, cur, lo, t, ident) if t < cnt_l else mid
    t = min(1, b - 1)
    q2 = tile_vertex(H, cur, mid, t + 1, ident) if t < cnt_r - 1 else hi
    if junction_is_bridge(a > 1, float(k0 - mid), tile_s_at(S, k0, mid, L, K, npts, g, d, c),
                          0.0, 0.0, float(r0 - mid), tile_s_at(S, r0, mid, L, K, npts, g, d, c),
                          b > 1, float(q2 - mid), tile_s_at(S, q2, mid, L, K, npts, g, d, c)):
        il = a - 1  # already convex at the junction: no search
        jh = 0
    while il < ih or jl < jh:
        i = (il + ih) // 2
        j = (jl + jh) // 2
        t = max(i - 1, 0)
        k0 = tile_vertex(H, cur, lo, t, ident) if t < cnt_l else mid
        k1 = tile_vertex(H, cur, lo, i, ident) if i < cnt_l else mid
        t = min(i + 1, a - 1)
        k2 = tile_vertex(H, cur, lo, t, ident) if t < cnt_l else mid
        t = max(j - 1, 0)
        q0 = tile_vertex(H, cur, mid, t + 1, ident) if t < cnt_r - 1 else hi
        q1 = tile_vertex(H, cur, mid, j + 1, ident) if j < cnt_r - 1 else hi
        t = min(j + 1, b - 1)
        q2 = tile_vertex(H, cur, mid, t + 1, ident) if t < cnt_r - 1 else hi
        il, ih, jl, jh = bridge_step(
            il, ih, jl, jh,
            float(k0 - mid), tile_s_at(S, k0, mid, L, K, npts, g, d, c),
            float(k1 - mid), tile_s_at(S, k1, mid, L, K, npts, g, d, c),
            float(k2 - mid), tile_s_at(S, k2, mid, L, K, npts, g, d, c),
            float(q0 - mid), tile_s_at(S, q0, mid, L, K, npts, g, d, c),
            float(q1 - mid), tile_s_at(S, q1, mid, L, K, npts, g, d, c),
            float(q2 - mid), tile_s_at(S, q2, mid, L, K, npts, g, d, c),
            split)
    return il, jl


@cuda.jit(cache=True)
def tile_levels(keys, center, hull, cnt, T, tilebound, rowbound, rounds, depth, is_start, K, top,
                c):
    """Levels 0 .. K-1 of hull_bridges for tile ``blockIdx.x`` (row-major over (row, tile)), tiles
    of 2^K points; ``top`` = ceil(log2 d) levels in all (module docstring). Writes the hull of the
    segments of 2^K points into ``hull`` (offsets), their counts into ``cnt`` (level K's view),
    T_1 .. T_K into ``T`` (the pyramid's first K levels), each level's bound over the tile into
    ``tilebound`` ((level, row, tile)); clears ``rowbound``, the rounds, the depth and the tile's
    ``is_start``. If K == top (the row is one tile) it instead marks the row's vertices in
    ``is_start`` and writes the rounds and depth."""
    S = cuda.shared.array(_SUMS, float64)
    H = cuda.shared.array(_HULLS, int16)
    C = cuda.shared.array(_COUNTS, int16)
    I = cuda.shared.array(_BRIDGES, int16)  # noqa: E741 (i*, as in docs/design.md#hull_bridges)
    J = cuda.shared.array(_BRIDGES, int16)
    B = cuda.shared.array(_LEVELS, int32)
    n, d = keys.shape
    tsz = 1 << K
    nt = (d + tsz - 1) >> K
    r = cuda.blockIdx.x // nt
    tile = cuda.blockIdx.x - r * nt
    g = tile * tsz
    npts = min(tsz, d - g)
    tid = cuda.threadIdx.x
    nth = cuda.blockDim.x
    final = K == top
    # Each thread loads the points of its own level-0 pairs (no barrier needed before level 0).
    for s in range(tid, (npts + 1) >> 1, nth):
        for k in range(2 * s, min(2 * s + 2, npts)):
            S[k] = centred(keys, center, r, g + k)
            is_start[r, g + k] = 0
    if tid == 0:
        for lev in range(K):
            B[lev] = 0
        if npts > 1:  # every level-0 pair merges hulls of 2 and 1 vertices
            B[0] = bridge_bound(2, 1)
        if tile == 0 and not final:
            rounds[r] = 0
            depth[r] = 0
    if tile == 0:
        for lev in range(tid, top, nth):
            rowbound[lev * n + r] = 0
    goff = 0  # offset of T_{L+1} in the global pyramid
    for L in range(K):
        h = 1 << L
        m = (npts + h - 1) >> L  # segments of the tile at level L
        m2 = (npts + 2 * h - 1) >> (L + 1)
        cur = (L & 1) * _P  # the hull buffer level L reads (level 0's is implied)
        for s in range(tid, m2, nth):  # merged segment s: the pair (2s, 2s + 1), if 2s + 1 exists
            lo = 2 * h * s
            cl = int(C[counts_at(K, L) + 2 * s]) if L > 0 else 1
            if 2 * s + 1 < m:
                mid = lo + h
                cr = int(C[counts_at(K, L) + 2 * s + 1]) if L > 0 else 1
                if L > 0:
                    cuda.atomic.max(B, L, bridge_bound(cl + 1, cr))
                i, j = tile_bridge(S, H, cur, lo, mid, min(lo + 2 * h, npts), cl, cr, L, K,
                                   npts, g, d, c)
                if L > 0:  # level 0's are implied by its merged count (i = count - 1, j = 0)
                    I[s] = i
                    J[s] = j
                C[counts_at(K, L + 1) + s] = i + cr - j
                tot = S[sums_at(K, L) + 2 * s] + S[sums_at(K, L) + 2 * s + 1]
            else:  # the last segment has no partner at this level: unchanged
                C[counts_at(K, L + 1) + s] = cl
                tot = S[sums_at(K, L) + 2 * s]
            if L + 1 < K:
                S[sums_at(K, L + 1) + s] = tot
            if not final:
                T[goff + r * level_size(d, L + 1) + (tile << (K - L - 1)) + s] = tot
        goff += n * level_size(d, L + 1)
        cuda.syncthreads()
        # The merged hulls: left prefix, P_mid, right suffix (hull_bridges.merge_copy).
        last = L == K - 1
        nxt = _P - cur
        for k in range(tid, npts, nth):
            s = k >> (L + 1)
            lo = s << (L + 1)
            o = k - lo
            if o >= C[counts_at(K, L + 1) + s]:
                continue  # past the merged segment's stored vertices
            if 2 * s + 1 < m:
                mid = lo + h
                i = int(I[s]) if L > 0 else int(C[counts_at(K, L + 1) + s]) - 1
                if o <= i:
                    cl = int(C[counts_at(K, L) + 2 * s]) if L > 0 else 1
                    v = tile_vertex(H, cur, lo, o, L == 0) if o < cl else mid
                else:
                    v = tile_vertex(H, cur, mid, o - i + (int(J[s]) if L > 0 else 0), L == 0)
            else:
                v = tile_vertex(H, cur, lo, o, L == 0)
            if not last:
                H[nxt + k] = v
            elif final:
                is_start[r, g + v] = 1
            else:
                hull[r, g + o] = v  # offsets from the segment's start: the tile's
        if not last:
            cuda.syncthreads()
    if final:
        if tid == 0:
            rr = 0
            dd = 0
            for lev in range(K):
                rr += B[lev]
                dd += hull_level(1 << lev, ((d + (1 << lev) - 1) >> lev) // 2, B[lev])
            rounds[r] = rr
            depth[r] = dd
    else:
        if tid == 0:
            cnt[r * nt + tile] = C[counts_at(K, K)]
        for lev in range(tid, K, nth):
            tilebound[(lev * n + r) * nt + tile] = B[lev]


def threads(K: int) -> int:
    """Threads per block for tiles of 2^K points: one per level-0 pair, at most MAX_THREADS."""
    return min(1 << max(K - 1, 0), MAX_THREADS)


def shared_steps(K: int) -> int:
    """Dependent shared-memory steps of a block: per level the search's worst-case bound
    (2 log2(h) + 2 steps after the junction test, as ``bridge_pairs`` is charged) and one for the
    copy of the merged hulls."""
    return sum(2 * (1 << L).bit_length() + 2 + 1 for L in range(K))


def launch(cost, keys, center, K, top, c, hull, cnt, T, tilebound, rowbound, rounds, depth,
           is_start):
    """Run ``tile_levels`` for tiles of 2^K points through ``cost``: every block reads its tile
    and writes its outputs once (``full``: whole arrays); one dependent global step (the load),
    the levels' searches in shared memory (``shared_steps``)."""
    n, d = keys.shape
    blocks = n * ((d + (1 << K) - 1) >> K)
    with simulator.running():  # the simulator's shared-array lock, quick barriers
        cost(tile_levels, (blocks, threads(K)), full=True, serial=1, shared=shared_steps(K))(
            keys, center, hull, cnt, T, tilebound, rowbound, rounds, depth, is_start, K, top, c)
