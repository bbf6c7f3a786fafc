"""Warm start: order a row along the previous call's partition or sort it adaptively along its
order (see wsrbench.core.warm_start; docs/design.md#numba-cpu).

The hint is the previous call's sort records (rec[2k+1] = index of the k-th smallest previous x)
and, when that call left at most d/3 blocks, their starts (flags, ``keep_partition``). With
flags, ``cluster_hinted`` orders the row by groups of blocks and ``pava_units`` pushes each group's
certified middle as one unit (``certify_bins``, ``peel``); a partition of one block, or of one
block beside at most d // KEEP_OUTLIERS outliers, is first tried from the histogram of x itself
(``one_block``, ``with_outliers``). Without them, ``hinted_sort``
gathers the new values in that order and insertion-sorts them in place: cost O(d + I) for I
inversions left by the hint, against the radix sort's 8 (float64) or 4 (float32) full passes.
Insertion pays only while I/d is small (measured on a 2-core machine: with an exact hint it costs
0.25x the float64 radix sort and about 0.5x the float32 one; at 2.3 moves per element it is even
with the float64 sort), so the sort runs under a budget of ``moves_per_element`` moves per
element processed so far (plus MOVES_SLACK for a local burst); past it the hint is dropped and the
row is radix-sorted from scratch. Before starting, ``estimate_moves`` samples the disorder at
1024 spots and skips the hint when it is already over budget there, so a hint that is poor only
in the middle of the row does not waste half an insertion sort; a useless hint (a fresh random x)
is caught by either check at a cost of about 1% of the sort.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ...core.contract import RowsResult
from ._core import chunk_bounds, finish_scatter, rec_value, src_value, value_of
from .numerics import block_mean, shift_unit
from .pava import _next_up, pava_stack
from .sort import HIST_SIZE, U64_1, bits_f64, f64_bits, key64, sort_records, unkey64

MOVES_SLACK = 4096
GATHER_CHUNK = 2048
SAMPLES = 1024  # positions probed by estimate_moves
WINDOW = 64  # how far back each probe looks


@njit(cache=True)
def estimate_moves(x, rec, nsamp, limit):
    """Estimated insertion moves per element of x in the hint order held in rec's index slots.

    At nsamp evenly spaced positions k, counts the elements among the WINDOW before k (in hint
    order) that are larger than the one at k: the moves insertion would make for it, as far as
    that window sees (an underestimate only when the hint is far off, which then shows anyway).
    Returns as soon as the estimate must exceed ``limit`` (a useless hint is rejected after a
    few dozen probes). Costs at most nsamp * (WINDOW + 1) gathers (the caller keeps that under
    d/8), and stops the budgeted sort from wasting work on a hint that is poor only in the middle
    of the row.
    """
    d = x.shape[0]
    total = 0
    for s in range(nsamp):
        k = WINDOW + ((d - WINDOW) * s) // nsamp
        v = x[np.int64(rec[2 * k + 1])]
        for j in range(k - WINDOW, k):
            if x[np.int64(rec[2 * j + 1])] > v:
                total += 1
        if total > limit * nsamp:
            break
    return total / nsamp


@njit(cache=True)
def hinted_sort(x, rec, moves_per_element):
    """Insertion-sort x along the hint order held in rec's index slots, in place.

    Works in chunks of GATHER_CHUNK elements: first gather the chunk's values (independent loads,
    so the CPU overlaps their cache misses; inside the insertion loop every mispredicted exit
    would serialise them), then insert them one by one. Returns the number of moves (the
    inversions of x in hint order), or -1 when the budget was exceeded (rec is then garbage and
    the caller sorts from scratch; a useless hint is caught within the first chunk or two).
    """
    d = x.shape[0]
    moves = 0
    slack = min(MOVES_SLACK, d // 16 + 64)  # small rows: a burst is a larger share of the work
    for c0 in range(0, d, GATHER_CHUNK):
        c1 = min(d, c0 + GATHER_CHUNK)
        for k in range(c0, c1):
            rec[2 * k] = f64_bits(np.float64(x[np.int64(rec[2 * k + 1])]))
        for k in range(c0, c1):
            vb = rec[2 * k]
            v = bits_f64(vb)
            i = rec[2 * k + 1]
            j = k
            while j > 0 and bits_f64(rec[2 * j - 2]) > v:
                j -= 1
            for t in range(k, j, -1):  # shift the larger ones up by one record
                rec[2 * t] = rec[2 * t - 2]
                rec[2 * t + 1] = rec[2 * t - 1]
            rec[2 * j] = vb
            rec[2 * j + 1] = i
            moves += k - j
            # checked per element: a random order runs ~k/2 moves per element and is caught
            # after about sqrt(4 slack) elements
            if moves > moves_per_element * (k + 1) + slack:
                return -1
    return moves


NBINS = 256  # most histogram bins of the pooling certificate (certify_bins): m // 8, at least 16
GROUP = 6  # words per group on cluster_hinted's stack
SORT_SHARE = 0.5  # the cluster path sorts at most this share of the row, else a cold sort
SMALL_GROUP = 64  # groups up to this size are sorted, not certified
CANON_MIN = 4096  # units from this size on are kept in index order (by_index)
# certify_bins' rounding bounds are relative: every quantity it forms from a spread and a c at
# least this large is a normal number (2**-960, far above the subnormals)
SAFE_MIN = 2.0 ** -960
ONE_BLOCK = 2  # flags[0] of a kept partition of one block (keep_partition, one_block)
# flags[0] of a kept partition of one block beside at most d // KEEP_OUTLIERS values, in a row of
# at least OUTLIERS_MIN_D (finish_scatter fills a block of a quarter of such a row, so the block's
# positions are never needed): the next call tries with_outliers, which peels at most
# d // PEEL_OUTLIERS values, before the cluster path
OUTLIERS = 3
OUTLIERS_MIN_D = 4096
KEEP_OUTLIERS = 64
PEEL_OUTLIERS = 16
HIST_WAYS = 4  # interleaved histograms of a large group (group_histogram)
HIST_SPLIT_MIN = 2048  # from this group size on (their zeroing and adding is then a small share)


@njit(cache=True)
def bins_for(m):
    """Histogram bins for a group of m values: m // 8 (a few values per bin), 16 to NBINS."""
    return min(NBINS, max(16, m // 8))


@njit(cache=True)
def group_histogram(src, a, b, lo, spread, counts, bsums, nb):
    """nb-bin histogram of the records [a, b) (or of the row src itself) by value - lo (spread >
    0: the largest minus lo): per bin the count and the sum of value - lo. Bin t holds the values
    whose (value - lo) * (nb / spread) rounds to [t, t + 1) (the last bin also holds spread).

    A large group fills HIST_WAYS histograms from interleaved records and adds them up: neighbours
    in hint order often share a bin, and one histogram would chain each increment on the
    previous one through memory. (Any order of adding non-negative terms keeps certify_bins'
    bound on the sums' rounding.)"""
    scale = nb / spread
    counts[:nb] = 0
    bsums[:nb] = 0.0
    k = a
    if b - a >= HIST_SPLIT_MIN:
        cw = np.zeros((HIST_WAYS, nb), dtype=np.int64)
        sw = np.zeros((HIST_WAYS, nb), dtype=np.float64)
        while k + HIST_WAYS <= b:
            for r in range(HIST_WAYS):
                v = src_value(src, k + r) - lo
                t = min(np.int64(v * scale), nb - 1)
                cw[r, t] += 1
                sw[r, t] += v
            k += HIST_WAYS
        for r in range(HIST_WAYS):
            for t in range(nb):
                counts[t] += cw[r, t]
                bsums[t] += sw[r, t]
    for j in range(k, b):  # the tail (all of a small group)
        v = src_value(src, j) - lo
        t = min(np.int64(v * scale), nb - 1)
        counts[t] += 1
        bsums[t] += v


@njit(cache=True)
def certify_bins(counts, bsums, t0, t1, c, spread, nb):
    """Whether the values in bins [t0, t1) provably form one block of the prox wherever they sit
    among sorted neighbours (docs/design.md#numba-cpu); 0: yes, 1 or 2: no, the first failing
    prefix is in the lower (1) or upper (2) half.

    The m values, sorted, are one level set of PAVA on their own iff every prefix of the j
    smallest has L(j) = sum (mu - x) <= c j (m - j) (mu: their mean; the shifts' part of prefix
    mean minus block mean is c (m - j) at any rank). The histogram bounds L without sorting:
    inside a bin of n values in [u, v] (its edges, widened by the rounding of the bin index),
    L(J0 + r) <= L(J0) + r (mu - u) and L(J0 + r) <= L(J0 + n) - (n - r)(mu - v), L exact at the
    bin's ends; each bound minus the concave right side is
    smallest at an end of where it applies (the bin's ends and the bounds' crossing), so two
    checks per bin. The sums are over values minus the group's smallest (magnitudes at most
    ``spread``), so the computed L(j) is within 4 m eps spread j of the exact one (the mean's
    error times j, the bin sums' errors), which each check adds to the computed side.
    """
    m = 0
    total = 0.0
    for t in range(t0, t1):
        m += counts[t]
        total += bsums[t]
    if m < 2:
        return 0
    mu = total / m
    eps = 2.220446049250313e-16
    err = 4.0 * m * eps * spread  # per unit of j
    width = spread / nb
    slack = 4.0 * eps * spread  # the bin index's rounding, at most a few ulps of spread
    j0 = 0
    l0 = 0.0
    for t in range(t0, t1):
        n = counts[t]
        if n == 0:
            continue
        l1 = l0 + (mu * n - bsums[t])
        j1 = j0 + n
        up = mu - max(t * width - slack, 0.0)  # slope of the bound from the bin's left end
        dn = mu - min((t + 1) * width + slack, spread)  # and from its right end
        r = (l1 - l0 - n * dn) / (up - dn) if up > dn else 0.0
        r = min(max(r, 0.0), float(n))
        j = j0 + r
        # (L(0) = L(m) = 0 exactly: the ends need no check)
        if 0.0 < j < m and l0 + r * up + err * j > c * j * (m - j):
            return 1 if 2 * j < m else 2
        if j1 < m and l1 + err * j1 > c * j1 * (m - j1):
            return 1 if 2 * j1 < m else 2
        j0 = j1
        l0 = l1
    return 0


@njit(cache=True)
def peel(counts, bsums, c, spread, limit, nb):
    """The fewest outer bins (pl below, pr above) whose removal leaves a middle that
    ``certify_bins`` accepts, peeling on the side where the check fails, with at most ``limit``
    values peeled; (pl, pr, peeled), or peeled = -1 when there is none."""
    pl = 0
    pr = 0
    peeled = 0
    while pl + pr < nb:
        verdict = certify_bins(counts, bsums, pl, nb - pr, c, spread, nb)
        if verdict == 0:
            return pl, pr, peeled
        if verdict == 1:  # peel the lowest nonempty bin (empty ones go with it)
            peeled += counts[pl]
            pl += 1
            while pl + pr < nb and counts[pl] == 0:
                pl += 1
        else:
            pr += 1
            peeled += counts[nb - pr]
            while pl + pr < nb and counts[nb - pr - 1] == 0:
                pr += 1
        if peeled > limit:
            break
    return pl, pr, -1


@njit(cache=True)
def sort_group(rec, a, b):
    """Sort the records [a, b) by value (a comparison sort: a group is a small share of the row)."""
    m = b - a
    vals = np.empty(m, dtype=np.float64)
    idx = np.empty(m, dtype=np.uint64)
    for k in range(m):
        vals[k] = bits_f64(rec[2 * (a + k)])
        idx[k] = rec[2 * (a + k) + 1]
    perm = np.argsort(vals, kind="mergesort")  # stable: equal values keep their hint order
    for k in range(m):
        p = perm[k]
        rec[2 * (a + k)] = f64_bits(vals[p])
        rec[2 * (a + k) + 1] = idx[p]


@njit(cache=True)
def cluster_hinted(x, rec, flags, lam, spare, ustart, uend, usum, ulo):
    """Order x along the previous call's partition (flags[k] = 1 where a block started at sorted
    position k), in place in rec (docs/design.md#numba-cpu); returns (values sorted, units
    listed), or (-1, 0) when the caller must sort from scratch.

    After a training step a block of tied weights spreads a little but stays between its
    neighbours. The blocks, read in the new values, are merged into groups until each group's
    largest value is at most the next group's smallest (a stack, as PAVA's: a group that falls
    below the one before absorbs it). A group of equal values is one unit (flags: 1 at a
    unit's start only), and so is a group whose spread alone proves it one block
    (``spread_pools``). In a larger group, ``peel`` finds the fewest outer histogram bins whose
    removal leaves a middle that ``certify_bins`` proves will pool into one block; the peeled
    values go to the group's ends, sorted, as units of one, and the middle stays in hint order
    as one unit with its smallest value first and its largest last (the tie rule and the block
    values read a block's ends). Small groups, and groups with no such middle, are sorted.
    More than SORT_SHARE of the row to sort: -1.

    Units of more than SMALL_GROUP values are also listed in (ustart, uend, usum, ulo): their
    sum of x - ulo, ulo their smallest value (so PAVA does not read them again).
    """
    d = x.shape[0]
    c = lam / (d - 1)
    # One pass: gather x along the hint, each block's min and max (value, position) and the
    # descents of its indices, and the group stack in spare (GROUP words per group).
    g = 0
    k = 0
    while k < d:
        i = rec[2 * k + 1]
        lo = np.float64(x[np.int64(i)])
        rec[2 * k] = f64_bits(lo)
        hi = lo
        imin = k
        imax = k
        desc = 0
        e = k + 1
        while e < d and flags[e] == 0:
            j = rec[2 * e + 1]
            v = np.float64(x[np.int64(j)])
            rec[2 * e] = f64_bits(v)
            if v < lo:
                lo = v
                imin = e
            if v > hi:
                hi = v
                imax = e
            if j < i:
                desc += 1
            i = j
            e += 1
        start = k
        while g > 0 and bits_f64(spare[GROUP * (g - 1) + 2]) > lo:
            g -= 1
            q = GROUP * g
            start = np.int64(spare[q])
            if bits_f64(spare[q + 1]) <= lo:
                lo = bits_f64(spare[q + 1])
                imin = np.int64(spare[q + 3])
            if bits_f64(spare[q + 2]) > hi:
                hi = bits_f64(spare[q + 2])
                imax = np.int64(spare[q + 4])
            desc += np.int64(spare[q + 5]) + 1
        q = GROUP * g
        spare[q] = start
        spare[q + 1] = f64_bits(lo)
        spare[q + 2] = f64_bits(hi)
        spare[q + 3] = imin
        spare[q + 4] = imax
        spare[q + 5] = desc
        g += 1
        k = e
    counts = np.empty(NBINS, dtype=np.int64)
    bsums = np.empty(NBINS, dtype=np.float64)
    limit = np.int64(SORT_SHARE * d)
    sorted_values = 0
    nu = 0
    for j in range(g):
        q = GROUP * j
        a = np.int64(spare[q])
        b = np.int64(spare[q + GROUP]) if j + 1 < g else d
        lo = bits_f64(spare[q + 1])
        hi = bits_f64(spare[q + 2])
        # flags of [a, b) are rewritten here: a unit starts where flags = 1
        for t in range(a, b):
            flags[t] = 1
        if b - a == 1:
            continue
        if lo == hi:  # equal values: one unit (the tie rule pools them anyway)
            for t in range(a + 1, b):
                flags[t] = 0
            if b - a > SMALL_GROUP:
                ustart[nu] = a
                uend[nu] = b
                usum[nu] = 0.0
                ulo[nu] = lo
                nu += 1
            continue
        if b - a <= SMALL_GROUP:
            sort_group(rec, a, b)
            sorted_values += b - a
            continue
        spread = hi - lo
        if spread < SAFE_MIN or c < SAFE_MIN:  # near the subnormals: sorted, no certificate
            if sorted_values + b - a > limit:
                return -1, 0
            sort_group(rec, a, b)
            sorted_values += b - a
            continue
        quick = spread_pools(spread, c, b - a)  # one unit from the spread alone: no histogram
        nb = 0 if quick else bins_for(b - a)
        pl, pr, peeled = 0, 0, 0
        if not quick:
            group_histogram(rec, a, b, lo, spread, counts, bsums, nb)
            pl, pr, peeled = peel(counts, bsums, c, spread, limit - sorted_values, nb)
        if peeled < 0:
            if sorted_values + b - a > limit:
                return -1, 0
            sort_group(rec, a, b)
            sorted_values += b - a
            continue
        m0 = a
        m1 = b
        imin = np.int64(spare[q + 3])
        imax = np.int64(spare[q + 4])
        if peeled:  # the peeled values to the group's ends, sorted; the middle is one unit
            m0, m1, imin, imax = split3(rec, a, b, lo, spread, pl, nb - pr, nb)
            sort_group(rec, a, m0)
            sort_group(rec, m1, b)
            sorted_values += peeled
        if m1 - m0 > 1:
            for t in range(m0 + 1, m1):
                flags[t] = 0
            if m1 - m0 >= CANON_MIN and np.int64(spare[q + 5]) * 64 > m1 - m0:
                imin, imax = by_index(x, rec, m0, m1)
            _to_edges(rec, m0, m1, imin, imax)
            if m1 - m0 > SMALL_GROUP:
                total = 0.0  # the middle's bins' sums of x - lo
                if quick:
                    total = sum_above(rec, m0, m1, lo)
                for t in range(pl, nb - pr):
                    total += bsums[t]
                ustart[nu] = m0
                uend[nu] = m1
                usum[nu] = total
                ulo[nu] = lo
                nu += 1
    return sorted_values, nu


@njit(cache=True)
def by_index(x, rec, a, b):
    """Put a large unit's records [a, b) in increasing index order; returns the positions of its
    smallest and largest value.

    The order inside a unit is free, and the next call gathers x along it: in index order that
    gather reads memory sequentially instead of at random (a unit formed by a sort lists its
    values in value order, i.e. at random positions). Done with a mark per index, O(d); after
    it the unit keeps its order from call to call except for the few values that split3 moves.
    """
    d = x.shape[0]
    mark = np.zeros(d, dtype=np.uint8)
    for k in range(a, b):
        mark[np.int64(rec[2 * k + 1])] = 1
    k = a
    imin = a
    imax = a
    lo = np.inf
    hi = -np.inf
    for i in range(d):
        if mark[i]:
            v = np.float64(x[i])
            rec[2 * k] = f64_bits(v)
            rec[2 * k + 1] = i
            if v < lo:
                lo = v
                imin = k
            if v > hi:
                hi = v
                imax = k
            k += 1
    return imin, imax


@njit(cache=True)
def split3(rec, a, b, lo, spread, t0, t1, nb):
    """Partition records [a, b) in place by bin: below t0 first, then [t0, t1), then the rest;
    returns the middle's bounds (m0, m1) and the positions of its smallest and largest value."""
    lt = a
    i = a
    gt = b
    scale = nb / spread
    vmin = np.inf
    vmax = -np.inf
    imin = a
    imax = a
    while i < gt:
        v = bits_f64(rec[2 * i])
        t = min(np.int64((v - lo) * scale), nb - 1)  # group_histogram's bin
        if t < t0:
            _swap(rec, lt, i)  # the record from lt is a middle one already seen, or i itself
            if imin == lt:
                imin = i
            if imax == lt:
                imax = i
            lt += 1
            i += 1
        elif t >= t1:
            gt -= 1
            _swap(rec, i, gt)
        else:
            if v < vmin:
                vmin = v
                imin = i
            if v > vmax:
                vmax = v
                imax = i
            i += 1
    return lt, gt, imin, imax


@njit(cache=True)
def _to_edges(rec, a, b, imin, imax):
    """Swap the record at imin to a and the one at imax to b - 1."""
    _swap(rec, a, imin)
    if imax == a:
        imax = imin
    _swap(rec, b - 1, imax)


@njit(cache=True, inline="always")
def _swap(rec, i, j):
    if i != j:
        v = rec[2 * i]
        t = rec[2 * i + 1]
        rec[2 * i] = rec[2 * j]
        rec[2 * i + 1] = rec[2 * j + 1]
        rec[2 * j] = v
        rec[2 * j + 1] = t


@njit(cache=True)
def pava_units(rec, flags, d, lam, center, sums, starts, ustart, uend, usum, ulo, nu):
    """``pava.pava_stack`` over units: a unit [a, b) (flags[a] = 1, flags = 0 inside) enters the
    stack as one block of its centred sum (``cluster_hinted`` proved it pools); units of one
    value are pava_stack's pushes; the listed units (``cluster_hinted``) are not read again.
    Returns (nblk, merges, max_stack, longest_backmerge)."""
    c = shift_unit(lam, d)
    depth = 0
    have_top = False
    t_sum = 0.0
    t_start = 0
    t_mean = 0.0
    merges = 0
    deepest = 0
    longest = 0
    k = 0
    u = 0
    while k < d:
        n_start = k
        if u < nu and ustart[u] == k:
            k = uend[u]
            n_sum = usum[u] + (ulo[u] - center) * (k - n_start)
            u += 1
        else:
            n_sum = bits_f64(rec[2 * k]) - center
            k += 1
            while k < d and flags[k] == 0:
                n_sum += bits_f64(rec[2 * k]) - center
                k += 1
        end = k
        n_mean = block_mean(n_sum, n_start, end, d, c)
        chain = 0
        while have_top and t_mean >= n_mean:
            n_sum = t_sum + n_sum
            n_start = t_start
            n_mean = block_mean(n_sum, n_start, end, d, c)
            chain += 1
            if depth > 0:
                depth -= 1
                t_sum = sums[depth]
                t_start = np.int64(starts[depth])
                t_mean = block_mean(t_sum, t_start, n_start, d, c)
            else:
                have_top = False
        if have_top:
            sums[depth] = t_sum
            starts[depth] = t_start
            depth += 1
        t_sum = n_sum
        t_start = n_start
        t_mean = n_mean
        have_top = True
        merges += chain
        if chain > longest:
            longest = chain
        if depth + 1 > deepest:
            deepest = depth + 1
    sums[depth] = t_sum
    starts[depth] = t_start
    return depth + 1, merges, deepest, longest


@njit(cache=True)
def keep_partition(flags, rec, starts, nblk, d, outliers):
    """Keep this call's partition for the next call's cluster path: flags[k] = 1 where a block
    starts. Only a partition whose group stack fits in the scratch (GROUP words per block in 2 d)
    is kept; otherwise flags[0] = 0 says there is none (a kept partition always has flags[0] >= 1).
    A single block is kept as flags[0] = ONE_BLOCK with the hint in index order (``one_block``).
    With ``outliers``, a row of at least OUTLIERS_MIN_D values whose largest block leaves at
    most d // KEEP_OUTLIERS out (a trained network's first layer) is kept with flags[0] =
    OUTLIERS: the partition and its order stay the hint, and the next call tries
    ``with_outliers`` first.
    """
    if GROUP * nblk > 2 * d:
        flags[0] = 0
        return
    flags[:d] = 0
    for j in range(nblk):
        flags[np.int64(starts[j])] = 1
    if nblk == 1 and d > 1:
        for k in range(d):
            rec[2 * k + 1] = k
        flags[0] = ONE_BLOCK
    elif outliers and d >= OUTLIERS_MIN_D and nblk <= d // KEEP_OUTLIERS + 1:
        for j in range(nblk):  # one block of all but at most d // KEEP_OUTLIERS values
            b = np.int64(starts[j + 1]) if j + 1 < nblk else d
            if b - np.int64(starts[j]) >= d - d // KEEP_OUTLIERS:
                flags[0] = OUTLIERS


@njit(cache=True)
def one_block(x, w, lam, l1, rho, lab, spare):
    """The prox of a row whose previous prox was one block, possibly beside outliers, when it
    still is: the row's histogram (read from x itself, in index order: no gather along the hint)
    proves that all of it pools (``certify_bins``), and the answer is its mean (then L1 and rho);
    or, for a row of at least OUTLIERS_MIN_D values, that all but at most d // PEEL_OUTLIERS of
    them do (``peel``, ``with_outliers``; spare: 2 d words of its scratch). Returns (nblk,
    pushes, merges, max_stack, longest_backmerge), nblk = 0 having written nothing when neither
    proof holds; the caller then takes the cluster path on its hint (the index order is as good
    as any for one block). The hint itself is neither read nor changed."""
    d = x.shape[0]
    lo = np.float64(x[0])
    hi = lo
    for i in range(1, d):
        v = np.float64(x[i])
        lo = min(lo, v)
        hi = max(hi, v)
    spread = hi - lo
    c = lam / (d - 1)
    total = 0.0
    if spread == 0.0 and lo == 0.0:
        return 0, 0, 0, 0, 0  # zeros of both signs: the reference's block value is its first, -0.0
    if spread > 0.0:
        if spread < SAFE_MIN or c < SAFE_MIN:
            return 0, 0, 0, 0, 0
        if spread_pools(spread, c, d):
            _fill_mean(x, w, lo, hi, lam, l1, rho, lab)
            return 1, 1, 0, 1, 0
        nb = bins_for(d)
        counts = np.empty(NBINS, dtype=np.int64)
        bsums = np.empty(NBINS, dtype=np.float64)
        group_histogram(x, 0, d, lo, spread, counts, bsums, nb)
        if certify_bins(counts, bsums, 0, nb, c, spread, nb) != 0:
            if d < OUTLIERS_MIN_D:
                return 0, 0, 0, 0, 0
            found, v0, v1, nlo, nhi, total, origin = _middle(x, counts, bsums, nb, lo, hi, c)
            if not found:
                return 0, 0, 0, 0, 0
            return with_outliers(x, w, lam, l1, rho, lab, spare, v0, v1, nlo, nhi, total, origin)
        for t in range(nb):
            total += bsums[t]
    # centred at lo (any centre inside the range keeps the sum's magnitude at most d spread)
    value = value_of(total, 0, d, lo, hi, d, lam, l1, rho, lo)
    w[:] = value
    if lab.shape[0]:
        lab[:] = 0
    return 1, 1, 0, 1, 0


@njit(cache=True)
def _middle(x, counts, bsums, nb, lo, hi, c):
    """The middle of one_block's row with outliers: (found, v0, v1, nlo, nhi, total, origin),
    the values in [v0, v1) certified one block (``peel`` on the histogram counts/bsums of x over
    [lo, hi]), nlo below v0, nhi from v1 on, at most d // PEEL_OUTLIERS together, total the
    middle's sum of value - origin (origin = lo). When the peel fails there, the bins may be too
    coarse for the middle (far outliers: a handful of bins hold the rest), so the row's core, the
    bins left after stripping at most d // PEEL_OUTLIERS values from the ends, is binned again
    on its own range (``core_histogram``) and peeled there, the values outside the core
    outliers too (origin = the core's smallest possible value)."""
    d = x.shape[0]
    limit = d // PEEL_OUTLIERS
    spread = hi - lo
    scale = nb / spread
    pl, pr, peeled = peel(counts, bsums, c, spread, limit, nb)
    if peeled >= 0:
        nlo, nhi, total = _sides(counts, bsums, pl, nb - pr, nb)
        return (True, _bin_edge(lo, hi, scale, pl, nb), _bin_edge(lo, hi, scale, nb - pr, nb),
                nlo, nhi, total, lo)
    # the core: strip the cheaper end bin while the stripped values fit the limit
    t0 = 0
    t1 = nb
    out = 0
    while t1 - t0 > 1:
        if counts[t0] <= counts[t1 - 1] and out + counts[t0] <= limit:
            out += counts[t0]
            t0 += 1
        elif out + counts[t1 - 1] <= limit:
            out += counts[t1 - 1]
            t1 -= 1
        elif out + counts[t0] <= limit:
            out += counts[t0]
            t0 += 1
        else:
            break
    if 2 * (t1 - t0) > nb:  # no narrower than half the row's range: nothing to zoom into
        return False, 0.0, 0.0, 0, 0, 0.0, 0.0
    c_lo = _bin_edge(lo, hi, scale, t0, nb)  # the core is [c_lo, c_hi] (values, exactly)
    c_hi = unkey64(key64(_bin_edge(lo, hi, scale, t1, nb)) - U64_1) if t1 < nb else hi
    c_lo = max(c_lo, lo)
    c_spread = c_hi - c_lo
    if not c_spread > 0.0 or c_spread < SAFE_MIN:
        return False, 0.0, 0.0, 0, 0, 0.0, 0.0
    n_below, n_above = core_histogram(x, c_lo, c_hi, counts, bsums, nb)
    pl, pr, peeled = peel(counts, bsums, c, c_spread, limit - n_below - n_above, nb)
    if peeled < 0:
        return False, 0.0, 0.0, 0, 0, 0.0, 0.0
    c_scale = nb / c_spread
    nlo, nhi, total = _sides(counts, bsums, pl, nb - pr, nb)
    nlo += n_below
    nhi += n_above
    # below the core or in a peeled lower bin: below v0; above the core or in a peeled upper bin:
    # from v1 on
    v0 = max(_bin_edge(c_lo, c_hi, c_scale, pl, nb), c_lo)
    v1 = min(_bin_edge(c_lo, c_hi, c_scale, nb - pr, nb), _next_up(c_hi))
    return True, v0, v1, nlo, nhi, total, c_lo


@njit(cache=True, inline="always")
def _sides(counts, bsums, t0, t1, nb):
    """(values in the bins below t0, values from bin t1 on, the sum of the bins in between)."""
    nlo = 0
    for t in range(t0):
        nlo += counts[t]
    nhi = 0
    for t in range(t1, nb):
        nhi += counts[t]
    total = 0.0
    for t in range(t0, t1):
        total += bsums[t]
    return nlo, nhi, total


@njit(cache=True)
def core_histogram(x, c_lo, c_hi, counts, bsums, nb):
    """group_histogram of the values of x in [c_lo, c_hi] (their bins over that range, the sums
    of value - c_lo); returns how many values lie below and above it."""
    scale = nb / (c_hi - c_lo)
    counts[:nb] = 0
    bsums[:nb] = 0.0
    below = 0
    above = 0
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        if v < c_lo:
            below += 1
        elif v > c_hi:
            above += 1
        else:
            u = v - c_lo
            t = min(np.int64(u * scale), nb - 1)
            counts[t] += 1
            bsums[t] += u
    return below, above


@njit(cache=True)
def with_outliers(x, w, lam, l1, rho, lab, spare, v0, v1, nlo, nhi, total, ulo):
    """one_block's prox of a row whose values in [v0, v1) are certified one block (the middle,
    of sum total of value - ulo) and whose nlo values below v0 and nhi from v1 on are few (the
    outliers), docs/design.md#numba-cpu.

    One pass over x in index order finds the outliers and the middle's smallest and largest
    values. The sorted row is then the low outliers, sorted, at positions [0, nlo), the middle as
    one unit of PAVA at [nlo, d - nhi), of which only the two ends are written into rec (its
    smallest and largest value: the tie rule and the block values read a block's ends, nothing
    reads its inside), and the high outliers. PAVA runs over these units, and finish_scatter
    fills w with the block that holds the middle (at least a quarter of the row) before it writes
    the outliers' blocks. Its records and flags are its own (allocated: only the few written are
    touched), so the kept hint stays for the cluster path when the proof fails at a later call."""
    d = x.shape[0]
    rec = np.empty(2 * d, dtype=np.uint64)
    flags = np.empty(d, dtype=np.uint8)
    m1 = d - nhi  # the middle is [nlo, m1)
    kl = 0
    kh = m1
    mid_lo = np.inf
    mid_hi = -np.inf
    for i in range(d):
        v = np.float64(x[i])
        if v < v0:
            if kl < nlo:
                rec[2 * kl] = f64_bits(v)
                rec[2 * kl + 1] = i
            kl += 1
        elif v >= v1:
            if kh < d:
                rec[2 * kh] = f64_bits(v)
                rec[2 * kh + 1] = i
            kh += 1
        else:
            mid_lo = min(mid_lo, v)
            mid_hi = max(mid_hi, v)
    if kl != nlo or kh != d:  # the thresholds are the histogram's binning exactly: never taken
        return 0, 0, 0, 0, 0
    sort_group(rec, 0, nlo)  # stable: equal outliers stay in index order, as in a full sort
    sort_group(rec, m1, d)
    rec[2 * nlo] = f64_bits(mid_lo)
    rec[2 * nlo + 1] = nlo  # (never read: the middle's block is filled, not scattered)
    rec[2 * (m1 - 1)] = f64_bits(mid_hi)
    rec[2 * (m1 - 1) + 1] = m1 - 1
    ustart = np.full(1, nlo, dtype=np.int64)
    uend = np.full(1, m1, dtype=np.int64)
    usum = np.full(1, total, dtype=np.float64)
    ulos = np.full(1, ulo, dtype=np.float64)
    for k in range(nlo + 1):  # a unit starts at each outlier and at the middle (the middle's
        flags[k] = 1  # inside is never read)
    for k in range(m1, d):
        flags[k] = 1
    sums = spare[:d].view(np.float64)
    starts = spare[d: 2 * d]
    center = mid_lo  # a value of the middle, near most of the row (any centre is exact)
    nblk, merges, deepest, longest = pava_units(rec, flags, d, lam, center, sums, starts,
                                                ustart, uend, usum, ulos, 1)
    nblk = finish_scatter(x, rec, sums, starts, nblk, d, lam, l1, rho, center, w,
                          np.empty(0, dtype=np.int64))
    if lab.shape[0]:  # the middle's block (numbered in value order) first, over the whole row
        for j in range(nblk):
            a = np.int64(starts[j])
            b = np.int64(starts[j + 1]) if j + 1 < nblk else d
            if a <= nlo < b:
                lab[:] = j
        for j in range(nblk):
            a = np.int64(starts[j])
            b = np.int64(starts[j + 1]) if j + 1 < nblk else d
            if not a <= nlo < b:
                for k in range(a, b):
                    lab[np.int64(rec[2 * k + 1])] = j
    return nblk, nlo + 1 + nhi, merges, deepest, longest


@njit(cache=True, inline="always")
def _bin_of(v, lo, scale, nb):
    """group_histogram's bin of the value v."""
    return min(np.int64((v - lo) * scale), nb - 1)


@njit(cache=True)
def _bin_edge(lo, hi, scale, t, nb):
    """The smallest float v in (lo, hi] whose bin is at least t: -inf for t <= 0, inf when no
    value up to hi has that bin. The bin is a nondecreasing function of the value, so a
    bisection over the floats' order-preserving integer keys (bin(lo) = 0 < t) finds it exactly,
    whatever the rounding of the bin's arithmetic: bin(v) < t is then v < the edge."""
    if t <= 0:
        return -np.inf
    if _bin_of(hi, lo, scale, nb) < t:
        return np.inf
    k_lo = key64(lo)
    k_hi = key64(hi)
    while k_hi - k_lo > U64_1:
        mid = k_lo + (k_hi - k_lo) // np.uint64(2)
        if _bin_of(unkey64(mid), lo, scale, nb) >= t:
            k_hi = mid
        else:
            k_lo = mid
    return unkey64(k_hi)


@njit(cache=True, inline="always")
def spread_pools(spread, c, m):
    """Whether m values at most ``spread`` apart provably form one block whatever their order:
    the prefix condition of ``certify_bins``, L(j) <= c j (m - j), holds for every j when
    spread <= c m, since with a = mu - (smallest) L(j) <= j a and L(j) <= (m - j)(spread - a),
    whose smaller is at most j (m - j) spread / m (docs/design.md#numba-cpu). The margins cover
    the rounding of spread and of c m; two equal halves spread apart meet the bound."""
    return spread * (1.0 + 1e-12) <= c * m * (1.0 - 1e-12)


@njit(cache=True)
def sum_above(src, a, b, lo):
    """The sum of value - lo over the records [a, b) (or the row src itself) in four partial sums:
    independent chains; any order of adding these non-negative terms keeps the rounding bound
    that certify_bins' bin sums have."""
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    k = a
    while k + 4 <= b:
        s0 += src_value(src, k) - lo
        s1 += src_value(src, k + 1) - lo
        s2 += src_value(src, k + 2) - lo
        s3 += src_value(src, k + 3) - lo
        k += 4
    while k < b:
        s0 += src_value(src, k) - lo
        k += 1
    return (s0 + s1) + (s2 + s3)


@njit(cache=True)
def _fill_mean(x, w, lo, hi, lam, l1, rho, lab):
    """one_block's answer once proved: w filled with the block's value (``sum_above``)."""
    d = x.shape[0]
    value = value_of(sum_above(x, 0, d, lo), 0, d, lo, hi, d, lam, l1, rho, lo)
    w[:] = value
    if lab.shape[0]:
        lab[:] = 0
    return True


@njit(cache=True, nogil=True)
def warm_row(x, w, lam, l1, rho, rec, flags, spare, hist, have_hint, moves_per_element, lab):
    """Prox of one row using (and then updating) the hint in rec and flags.

    With a hint whose partition has at most half as many blocks as values (a training step
    after a prox that tied weights), ``cluster_hinted`` orders the row; otherwise the insertion
    sort under its budget; otherwise (or when the cluster path declines) the radix sort.
    Returns (nblk, pushes, merges, max_stack, longest_backmerge, moves): moves = -1 when the row
    was sorted from scratch; pushes = the values or units PAVA pushed.
    """
    d = x.shape[0]
    if d == 0:
        return 0, 0, 0, 0, 0, -1
    moves = -1
    units = False
    nu = 0
    cap = d // SMALL_GROUP + 1  # units listed with their sums (cluster_hinted)
    ustart = np.empty(cap, dtype=np.int64)
    uend = np.empty(cap, dtype=np.int64)
    usum = np.empty(cap, dtype=np.float64)
    ulo = np.empty(cap, dtype=np.float64)
    tried = have_hint and lam > 0.0 and d > 1 and (flags[0] == ONE_BLOCK or flags[0] == OUTLIERS)
    if tried:
        nblk, pushes, merges, deepest, longest = one_block(x, w, lam, l1, rho, lab, spare)
        if nblk:
            return nblk, pushes, merges, deepest, longest, 0
    if have_hint and lam > 0.0 and d > 1 and flags[0] != 0:  # a partition was kept
        moves, nu = cluster_hinted(x, rec, flags, lam, spare, ustart, uend, usum, ulo)
        units = moves >= 0
        have_hint = False  # the insertion sort's hint is no better than the clusters'
    if have_hint:
        nsamp = min(SAMPLES, d // (8 * WINDOW))
        if nsamp >= 8 and estimate_moves(x, rec, nsamp, moves_per_element) > moves_per_element:
            have_hint = False  # the sampled disorder is over budget: do not even start
    if have_hint:
        moves = hinted_sort(x, rec, moves_per_element)
    if moves < 0:
        sort_records(x, rec, spare, hist)
    center = rec_value(rec, d // 2)
    sums = spare[:d].view(np.float64)
    starts = spare[d: 2 * d]
    # PAVA only reads rec: its index slots stay the next hint
    if units:
        pushes = 0
        for k in range(d):
            if flags[k]:  # (not a sum of the uint8 flags: as Python, that would stay uint8)
                pushes += 1
        nblk, merges, deepest, longest = pava_units(rec, flags, d, lam, center, sums, starts,
                                                    ustart, uend, usum, ulo, nu)
    else:
        pushes = d
        nblk, merges, deepest, longest = pava_stack(rec, d, lam, center, sums, starts)
    nblk = finish_scatter(x, rec, sums, starts, nblk, d, lam, l1, rho, center, w, lab)
    # a row on which with_outliers just failed goes through the cluster path once before the
    # next try: a proof that keeps failing costs its histogram every other call, not every call
    keep_partition(flags, rec, starts, nblk, d, not tried)
    return nblk, pushes, merges, deepest, longest, moves


@njit(cache=True, parallel=True)
def warm_rows(X, W, lam, l1, rho, recs, flags, work, have_hint, moves_per_element,
              rounds, clusters, merges, max_stack, longest, moves, L):
    """Rows in parallel (chunks of rows per thread); recs[i], flags[i] are row i's hint, updated
    in place."""
    n, d = X.shape
    nchunks = work.shape[0]
    for c in prange(nchunks):
        lo, hi = chunk_bounds(n, nchunks, c)
        spare = work[c][: 2 * d]
        hist = np.empty(HIST_SIZE, dtype=np.int64)
        for i in range(lo, hi):
            nb, pu, mg, dp, lg, mv = warm_row(X[i], W[i], lam, l1, rho, recs[i], flags[i],
                                              spare, hist, have_hint, moves_per_element, L[i])
            clusters[i] = nb
            rounds[i] = pu + mg if d > 1 else 0
            merges[i] = mg
            max_stack[i] = dp
            longest[i] = lg
            moves[i] = mv


def run(X, lam, l1, rho, recs, flags, have_hint, moves_per_element, scratch, L, out=None):
    """Python driver for wsrbench.core.warm_start.ProxState (X prepared 2-D, recs (n, 2d) uint64,
    flags (n, d) uint8: the previous partition's block starts in sorted order, or flags[i, 0] = 0
    where none is kept: ``keep_partition``).

    ``scratch``: the caller's uint64 scratch from the previous call (2 words per element and
    thread), or None; it is reused when large enough. L: int64 (n, d) labels out, or (n, 0) when
    not asked. out: a C-contiguous array of X's shape and dtype for the answer (X itself too:
    warm_row reads all of x, in the gather, the sort or one_block's passes, before it writes w),
    or None. Returns (RowsResult, moves, scratch).
    """
    n, d = X.shape
    W = np.empty_like(X) if out is None else out
    if n == 1 and d:  # serial, and lean: at small d the Python overhead is a visible share
        work = scratch
        if work is None or work.shape[1] < 2 * d:
            work = np.empty((1, 2 * d), dtype=np.uint64)
        nb, pu, mg, dp, lg, mv = warm_row(X[0], W[0], lam, l1, rho, recs[0], flags[0],
                                          work[0, : 2 * d], np.empty(HIST_SIZE, dtype=np.int64),
                                          have_hint, moves_per_element, L[0])
        st = ({"merges": mg, "max_stack": dp, "longest_backmerge": lg, "hint_moves": mv,
               "pushes": pu} if d > 1 else {"hint_moves": mv})
        return (RowsResult(W, np.array([pu + mg if d > 1 else 0]), np.array([nb]), [st]),
                np.array([mv]), work)
    import numba

    rounds = np.zeros(n, dtype=np.int64)
    clusters = np.zeros(n, dtype=np.int64)
    merges = np.zeros(n, dtype=np.int64)
    max_stack = np.zeros(n, dtype=np.int64)
    longest = np.zeros(n, dtype=np.int64)
    moves = np.full(n, -1, dtype=np.int64)
    work = scratch
    if n and d:
        nchunks = min(n, numba.get_num_threads())
        if work is None or work.shape[0] < nchunks or work.shape[1] < 2 * d:
            work = np.empty((nchunks, 2 * d), dtype=np.uint64)
        warm_rows(X, W, lam, l1, rho, recs, flags, work[:nchunks], have_hint, moves_per_element,
                  rounds, clusters, merges, max_stack, longest, moves, L)
    stats = [{"merges": int(m), "max_stack": int(s), "longest_backmerge": int(g),
              "hint_moves": int(v), "pushes": int(r - m)} if d > 1 else {"hint_moves": int(v)}
             for m, s, g, v, r in zip(merges.tolist(), max_stack.tolist(), longest.tolist(),
                                      moves.tolist(), rounds.tolist())]
    return RowsResult(W, rounds, clusters, stats), moves, work
