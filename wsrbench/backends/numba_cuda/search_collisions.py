"""Search collisions as CUDA kernels (numba-cuda): every pair of every row in lockstep.

Same algorithm as ``wsrbench.backends.numpy.search_collisions`` (read that first for the math):
level by level (halves of h = 1, 2, 4, ... elements) each pair of resolved halves L = [lo, mid),
R = [mid, hi) creates at most one cluster [a*, b*) across mid; a* comes from a binary search over
L's cluster starts, b* is the largest argmin over b in (mid, hi] of mean(y[a*:b]).

Device state, dense (rows, d), for the segments of the current level (size h, starting at lo):
* ``pre`` and ``suf``: prefix and suffix sums local to the segment, pre[r, k] = sum xs[r, lo..k]
  and suf[r, k] = sum xs[r, k..lo+h-1] (xs: the sorted keys centred, ``finish.centred``, read
  once by ``init_state``). A pair's sums over [a, b) are anchored at mid, as in the reference:
  suf[a] + pre[b-1] across mid (only the data inside [a, b): an outlier at lo stays out), and
  differences of one half's sums otherwise. The next level's are one kernel each away
  (``prefix_level``, ``suffix_level``: a half adds the other half's total).
* ``pack``/``cnt``: the segment's cluster starts packed at its front, and their number at
  cnt[r, lo]. Binary search needs the i-th start in O(1); after the merge the pair's list is
  L's starts up to a*, then R's starts from the first one >= b* (one kernel, no scan).

Per level: ``init_pairs``; h.bit_length() = ceil(log2(h + 1)) search steps
(enough for every pair: no host sync decides when to stop), each ``probe_min`` (one thread per
(pair, b): mean(y[a:b]) with an exact float atomic min per pair) and ``probe_update`` (one thread
per pair); the final argmin as ``argmin_means`` + ``argmin_last`` (largest b whose mean equals
the min, read back from the means stored by the first kernel, so the comparison is bit-exact);
``close_pairs`` (right-end index, rounds); ``rebuild``; ``prefix_level`` and ``suffix_level``
for the next level. Host synchronisation: none.

``rounds`` has the reference's meaning: per level, the search steps in which some pair of the row
was still active (= the most steps any of its pairs needed, since finished pairs stay finished),
plus one for the argmin.
"""
from __future__ import annotations

import math

from numba import cuda

from ...core import depth as dp
from .finish import centred, fill2, full, mark_starts
from .launch import grid
from .numerics import block_mean, shift_unit


@cuda.jit(device=True, inline=True)
def pair_mean(pre, suf, r, mid, a, b, d, lam):
    """mean of y over [a, b), lo <= a < b <= hi, from the half-local sums anchored at mid."""
    if a >= mid:  # inside R
        xsum = pre[r, b - 1]
        if a > mid:
            xsum = xsum - pre[r, a - 1]
    elif b <= mid:  # inside L
        xsum = suf[r, a]
        if b < mid:
            xsum = xsum - suf[r, b]
    else:
        xsum = suf[r, a] + pre[r, b - 1]
    return block_mean(xsum, a, b, d, shift_unit(lam, d))


@cuda.jit(device=True, inline=True)
def cand(pack, r, lo, mid, n_left, i):
    """i-th candidate left end: L's i-th cluster start, or mid for i = n_left."""
    return pack[r, lo + i] if i < n_left else mid


@cuda.jit(cache=True)
def init_state(keys, center, pre, suf, pack, cnt):
    t = cuda.grid(1)
    n, d = keys.shape
    if t >= n * d:
        return
    r = t // d
    k = t - r * d
    pre[r, k] = centred(keys, center, r, k)
    suf[r, k] = pre[r, k]
    pack[r, k] = k
    cnt[r, k] = 1


@cuda.jit(cache=True)
def prefix_level(pre, pre2, h):
    """Prefix sums local to segments of 2h from those local to segments of h."""
    t = cuda.grid(1)
    n, d = pre.shape
    if t >= n * d:
        return
    r = t // d
    k = t - r * d
    mid = (k // (2 * h)) * (2 * h) + h
    if k >= mid:
        pre2[r, k] = pre[r, mid - 1] + pre[r, k]
    else:
        pre2[r, k] = pre[r, k]


@cuda.jit(cache=True)
def suffix_level(suf, suf2, h):
    """Suffix sums local to segments of 2h from those local to segments of h."""
    t = cuda.grid(1)
    n, d = suf.shape
    if t >= n * d:
        return
    r = t // d
    k = t - r * d
    mid = (k // (2 * h)) * (2 * h) + h
    if k < mid and mid < d:
        suf2[r, k] = suf[r, k] + suf[r, mid]
    else:
        suf2[r, k] = suf[r, k]


@cuda.jit(cache=True)
def init_pairs(cnt, ilo, ihi, steps, tmin, bstar, h, P):
    t = cuda.grid(1)
    n = cnt.shape[0]
    if t >= n * P:
        return
    r = t // P
    p = t - r * P
    lo = p * 2 * h
    ilo[t] = 0
    ihi[t] = cnt[r, lo]  # n_left: the candidates are 0..n_left
    steps[t] = 0
    tmin[t] = math.inf
    bstar[t] = 0


@cuda.jit(cache=True)
def probe_min(pre, suf, pack, cnt, ilo, ihi, tmin, h, P, lam):
    """T(a) = min over b in (mid, hi] of mean(y[a:b]) at the probed candidate a of each pair."""
    t = cuda.grid(1)
    n, d = pre.shape
    if t >= n * P * h:
        return
    q = t // h  # pair slot r * P + p
    j = t - q * h
    r = q // P
    p = q - r * P
    if ilo[q] >= ihi[q]:
        return  # this pair's search is over
    lo = p * 2 * h
    mid = lo + h
    b = mid + 1 + j
    if b > min(lo + 2 * h, d):
        return
    a = cand(pack, r, lo, mid, cnt[r, lo], (ilo[q] + ihi[q] + 1) // 2)
    cuda.atomic.min(tmin, q, pair_mean(pre, suf, r, mid, a, b, d, lam))


@cuda.jit(cache=True)
def probe_update(pre, suf, pack, cnt, ilo, ihi, tmin, steps, h, P, lam):
    """P(a): mean of the L-cluster ending at a < T(a) moves the search right, else left."""
    q = cuda.grid(1)
    n, d = pre.shape
    if q >= n * P:
        return
    r = q // P
    p = q - r * P
    lo = p * 2 * h
    mid = lo + h
    i_lo, i_hi = ilo[q], ihi[q]
    if i_lo < i_hi:
        n_left = cnt[r, lo]
        i_mid = (i_lo + i_hi + 1) // 2
        a = cand(pack, r, lo, mid, n_left, i_mid)
        into = pair_mean(pre, suf, r, mid, cand(pack, r, lo, mid, n_left, i_mid - 1), a, d, lam)
        if into < tmin[q]:
            ilo[q] = i_mid
        else:
            ihi[q] = i_mid - 1
        steps[q] += 1
    tmin[q] = math.inf


@cuda.jit(cache=True)
def argmin_means(pre, suf, pack, cnt, ilo, tmin, mval, h, P, lam):
    t = cuda.grid(1)
    n, d = pre.shape
    if t >= n * P * h:
        return
    q = t // h
    j = t - q * h
    r = q // P
    p = q - r * P
    lo = p * 2 * h
    mid = lo + h
    b = mid + 1 + j
    if b > min(lo + 2 * h, d):
        return
    a = cand(pack, r, lo, mid, cnt[r, lo], ilo[q])
    m = pair_mean(pre, suf, r, mid, a, b, d, lam)
    mval[r, b - 1] = m
    cuda.atomic.min(tmin, q, m)


@cuda.jit(cache=True)
def argmin_last(mval, tmin, bstar, h, P):
    t = cuda.grid(1)
    n, d = mval.shape
    if t >= n * P * h:
        return
    q = t // h
    j = t - q * h
    r = q // P
    p = q - r * P
    b = p * 2 * h + h + 1 + j
    if b > min(p * 2 * h + 2 * h, d):
        return
    if mval[r, b - 1] == tmin[q]:
        cuda.atomic.max(bstar, q, b)


@cuda.jit(cache=True)
def close_pairs(pack, cnt, bstar, steps, jb, rowsteps, h, P):
    """Index in R's start list of the first start >= b*, and the row's search steps."""
    q = cuda.grid(1)
    n = cnt.shape[0]
    if q >= n * P:
        return
    r = q // P
    p = q - r * P
    mid = p * 2 * h + h
    b = bstar[q]
    j_lo, j_hi = 0, cnt[r, mid]
    while j_lo < j_hi:
        j = (j_lo + j_hi) // 2
        if pack[r, mid + j] >= b:
            j_hi = j
        else:
            j_lo = j + 1
    jb[q] = j_lo
    cuda.atomic.max(rowsteps, r, steps[q])


@cuda.jit(cache=True)
def rebuild(pack, cnt, pack2, cnt2, ilo, jb, h, P):
    """The merged pair's start list: L's starts up to a* (index ilo), then R's from index jb."""
    t = cuda.grid(1)
    n, d = pack.shape
    if t >= n * d:
        return
    r = t // d
    k = t - r * d
    lo = (k // (2 * h)) * (2 * h)
    p = lo // (2 * h)
    i = k - lo
    n_left = cnt[r, lo]
    if p >= P:  # a last segment without a right half is already resolved: copy it
        if i < n_left:
            pack2[r, k] = pack[r, k]
        if i == 0:
            cnt2[r, lo] = n_left
        return
    q = r * P + p
    mid = lo + h
    i_star = ilo[q]
    n_right = cnt[r, mid]
    j = jb[q]
    if i <= i_star:
        pack2[r, k] = cand(pack, r, lo, mid, n_left, i)
    elif i - (i_star + 1) < n_right - j:
        pack2[r, k] = pack[r, mid + j + i - (i_star + 1)]
    if i == 0:
        cnt2[r, lo] = i_star + 1 + n_right - j


@cuda.jit(cache=True)
def add_rounds(rounds, depth, rowsteps, level_base, per_step):
    r = cuda.grid(1)
    if r < rounds.shape[0]:
        rounds[r] += rowsteps[r] + 1  # + 1: the final argmin of the level
        depth[r] += level_base + rowsteps[r] * per_step  # wsrbench.core.depth.search_level
        rowsteps[r] = 0


def partition(keys, center, lam: float, cost):
    """(is_start int8 (n, d), rounds int64 (n,), host syncs, {stat: device array (n,)}) for sorted
    rows ``keys`` centred at ``center`` (the partitioner contract of this backend, see __init__);
    ``cost`` counts the launches (``cost.Cost``); the stat is the depth (wsrbench.core.depth.search_level
    per level, as the reference counts it)."""
    n, d = keys.shape
    g = grid(n * d)
    pre, pre2, suf, suf2 = (cost.empty((n, d), "float64") for _ in range(4))
    pack, pack2, cnt, cnt2 = (cost.empty((n, d), "int64") for _ in range(4))
    mval = cost.empty((n, d), "float64")
    cost(init_state, g)(keys, center, pre, suf, pack, cnt)
    slots = n * ((d + 1) // 2)  # pair slots of the first (largest) level
    ilo, ihi, steps, bstar, jb = (cost.empty(slots, "int64") for _ in range(5))
    tmin = cost.empty(slots, "float64")
    rounds = full(n, 0, "int64", cost)
    depth = full(n, 0, "int64", cost)
    rowsteps = full(n, 0, "int64", cost)
    h = 1
    while h < d:
        P = (d - h + 2 * h - 1) // (2 * h)  # pairs with a right half: lo in range(0, d - h, 2h)
        gp, gb = grid(n * P), grid(n * P * h)
        cost(init_pairs, gp)(cnt, ilo, ihi, steps, tmin, bstar, h, P)
        for _ in range(h.bit_length()):
            cost(probe_min, gb)(pre, suf, pack, cnt, ilo, ihi, tmin, h, P, lam)
            cost(probe_update, gp)(pre, suf, pack, cnt, ilo, ihi, tmin, steps, h, P, lam)
        cost(argmin_means, gb)(pre, suf, pack, cnt, ilo, tmin, mval, h, P, lam)
        cost(argmin_last, gb)(mval, tmin, bstar, h, P)
        cost(close_pairs, gp, serial=h.bit_length())(pack, cnt, bstar, steps, jb, rowsteps, h, P)
        cost(rebuild, g)(pack, cnt, pack2, cnt2, ilo, jb, h, P)
        pack, pack2, cnt, cnt2 = pack2, pack, cnt2, cnt
        if 2 * h < d:  # the sums of the next level's halves
            cost(prefix_level, g)(pre, pre2, h)
            cost(suffix_level, g)(suf, suf2, h)
            pre, pre2, suf, suf2 = pre2, pre, suf2, suf
        cost(add_rounds, grid(n))(rounds, depth, rowsteps, dp.search_level(h, P, 0), 3 + dp.lg(h))
        h *= 2
    is_start = cost.empty((n, d), "int8")
    cost(fill2, g)(is_start, 0)
    cost(mark_starts, g)(pack, cnt, is_start)
    return is_start, rounds, 0, {"depth": depth}
