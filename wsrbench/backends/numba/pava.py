"""Pool-adjacent-violators fused with the decode of the sorted records (the default, fast path).

After the radix sort (sort.py) the records hold the sorted values, so one sequential pass reads
x_(k), centres it and pushes it on the PAVA stack; a second pass turns the stack into block values
and scatters them to the original positions. The stack lives in the sort's scratch buffer, so the
whole prox needs no memory beyond the sort's two record buffers.

Decisions replicate the reference (wsrbench/backends/numpy/pava.py) operation for operation: the
mean of y over [a, b) is (S + c (b-a)(d-a-b)) / (b-a) with c = lam/(d-1) and S the float64 sum of
the centred x over the block (sums of pooled blocks are added, never averaged), and the block
below the top pools into it when its mean is >= the top's (equal means merge: blocks are maximal).
rounds = d + number of poolings; stats: merges, max_stack, longest_backmerge.

A row whose sort split off a heavy key (sort.sort_split_records) keeps that run implicit: PAVA
reads its value from a register and pushes it in one call (``_tie_run``: the top's mean
compared without dividing, the back-merges included); where the value is the centre (a run
holding the median: pruned zeros, a massive tie) it certifies whole stretches of the pushes at
once (docs/design.md#ties-in-pava). The scatter fills w with the run's block first.

An already sorted row skips the sort and the scatter (PAVA reads x, blocks are written to w in
order), and a constant row skips PAVA too (one block whose centred sum is exactly 0).

No prange inside a row: PAVA is a sequential stack, and the sort (the bulk of the time) is a
sequence of scatter passes whose two-thread form needs a per-thread histogram pass before each
scatter; not done. Rows of a 2-D input run in parallel (``prox_rows``).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._core import finish_scatter, is_split, rec_value, run_of, split_source, src_value, value_of
from ._rows import rows_driver
from .numerics import block_mean, fma, shift_sum, shift_unit
from .sort import (
    U64_1,
    bits_f64,
    bits_summary,
    f64_bits,
    is_sorted,
    sort_records,
    sort_split_records,
)

# A try (a call of _tie_run, a stretch inside it) that pushes fewer than TIE_RUN_GAIN elements
# doubles the number of elements pushed one by one before the next, up to TIE_RUN_WAIT (a run
# whose every few elements pool the block below gains nothing from the tries).
TIE_RUN_GAIN = 16
TIE_RUN_WAIT = 1024
# 16 units of float64 rounding: twice the bound on the reference's rounding of a mean and this
# evaluation's together (docs/design.md#ties-in-pava)
SLACK = 16.0 * 2.0 ** -53


@njit(cache=True, inline="always")
def _next_up(v):
    """The next float64 above the finite v (np.nextafter(v, inf) without a library call)."""
    if v == 0.0:
        return 5e-324
    u = f64_bits(v)
    return bits_f64(u + U64_1 if v > 0.0 else u - U64_1)


@njit(cache=True, inline="always")
def _stretch_holds(T, s_lo, s_hi, b_mean, depth, D, c, d):
    """Whether the pushes that pool the top (x sum T, n_sum = 0) from size s_lo to s_hi all take
    the fast path, certified from the exact means mu(s) = T/s + c (D - s) with a margin that
    covers the rounding of the reference's mean and of this evaluation."""
    tol = SLACK * (abs(T) / s_lo + c * d)
    # the top's mean above the next element's y: mu(s) - y = T/s + c (s + 1), s = s_lo..s_hi-1,
    # smallest at s_lo when T < 0 (both terms increase); bounded termwise otherwise
    if not (T / s_lo if T < 0.0 else T / s_hi) + c * (s_lo + 1.0) > tol:
        return False
    if depth == 0:
        return True
    # the pooled mean above b_mean for s = s_lo+1..s_hi: mu is concave (T < 0) or decreasing,
    # so its smallest value is at an end
    lo = min(T / (s_lo + 1.0) + c * (D - s_lo - 1.0), T / s_hi + c * (D - s_hi))
    return lo - b_mean > tol + SLACK * abs(b_mean)


@njit(cache=True, inline="always")
def _quotient_ge(num, size, t):
    """fl(num / size) >= t for a float t and size > 0, as the division decides it, mostly without
    dividing: the exact residual num - t size has the sign of its FMA (one rounding keeps the
    sign; a nonzero exact value is a multiple of the smallest subnormal), and rounding is
    monotone, so num / size >= t exactly gives fl(num / size) >= t, and num / size <= the float
    below t exactly gives fl(num / size) < t. Only a quotient strictly between the two is divided
    (docs/design.md#ties-in-pava)."""
    if fma(-t, size, num) >= 0.0:
        return True
    if fma(_next_up(-t), size, num) <= 0.0:  # -nextafter(-t, inf): the float below t
        return False
    return num / size >= t


@njit(cache=True, inline="always")
def _stretch_end(k, hi, T, t_start, depth, b_mean, d, c):
    """The end of the longest certified stretch of pushes of 0.0 from element k on (k when none
    of at least 8): each pools into the top (x sum T, start t_start) and leaves the pooled mean
    above b_mean (``_stretch_holds``); tried up to where the quadratic predicts the next
    back-merge, halved until it certifies."""
    D = float(d - 2 * t_start)
    s_lo = float(k - t_start)
    s_hi = float(hi - t_start)
    if depth > 0:
        # mu(s) > b_mean iff -c s^2 + (c D - b_mean) s + T > 0: up to its larger root
        e = c * D - b_mean
        disc = e * e + 4.0 * c * T
        if disc >= 0.0:
            s_hi = min(s_hi, np.floor((e + np.sqrt(disc)) / (2.0 * c) * (1.0 - 1e-9)) - 1.0)
    while s_hi - s_lo >= 8.0:
        if _stretch_holds(T, s_lo, s_hi, b_mean, depth, D, c, d):
            return t_start + np.int64(s_hi)
        s_hi = s_lo + np.floor((s_hi - s_lo) / 2.0)
    return k


@njit(cache=True, inline="always")
def _stored_mean(sums, starts, j, end, d, c):
    """block_mean of the stored block j, which ends where the block above it starts (a
    singleton's division by 1 is exact and skipped)."""
    a = np.int64(starts[j])
    if end - a == 1:
        return sums[j] + shift_sum(a, end, d, c)
    return block_mean(sums[j], a, end, d, c)


@njit(cache=True, inline="always")
def _tie_run(k, hi, n_sum, t_sum, t_start, t_mean, depth, b_mean, sums, starts, d, c):
    """pava_stack's pushes of the elements k..hi-1 of a run of equal values (each with centred x
    n_sum): each pools into the top and the top then pools the blocks below it while their means
    are >= its own, as the reference decides it, without dividing for the top's mean.

    Returns (the first element not pushed, t_sum, t_start, t_mean, depth, b_mean, merges,
    longest chain). The caller guarantees a top and, when depth > 0, b_mean: the mean of the
    block below the top, which stays known on return. Only an element that would not pool into
    the top ends the call early (that element is left to the general step).

    The top's mean is kept as num / size undivided; each comparison of it with a float is decided
    by ``_quotient_ge``. At the centre (n_sum = 0) whole stretches of pushes that pool nothing
    below are certified at once (``_stretch_end``): tried at the start, again once the stack
    below is empty, and in between after a number of elements that doubles (up to TIE_RUN_WAIT)
    while the tries gain fewer than TIE_RUN_GAIN pushes (a run that back-merges every few
    pushes pays almost nothing for them). The top's mean is divided once, at the end, with
    block_mean's operands: the same bits as the reference's. A block popped from the stack gets
    its mean from its unchanged sum and bounds, as in pava_stack."""
    num = t_mean  # t_mean / 1.0 is t_mean: the top's mean as an undivided quotient
    size = 1.0
    merges = 0
    longest = 0
    at_centre = n_sum == 0.0 and c > 0.0
    next_try = k if at_centre else hi
    wait = np.int64(1)
    b_up = _next_up(b_mean)
    while k < hi:
        if k >= next_try:
            j = _stretch_end(k, hi, t_sum, t_start, depth, b_mean, d, c)
            wait = 1 if j - k >= TIE_RUN_GAIN else min(2 * wait, TIE_RUN_WAIT)
            next_try = j + wait
            if j > k:
                merges += j - k
                longest = max(longest, 1)
                k = j
                t_sum = t_sum + 0.0  # the reference's sum after pushes of 0.0
                num = t_sum + shift_sum(t_start, k, d, c)
                size = float(k - t_start)
                continue
        n_mean = n_sum + shift_sum(k, k + 1, d, c)
        if not _quotient_ge(num, size, n_mean):  # the element starts a block of its own
            break
        t_sum = t_sum + n_sum
        k += 1
        num = t_sum + shift_sum(t_start, k, d, c)
        size = float(k - t_start)
        chain = 1
        # the block below pools while its mean >= the top's: fl(num / size) <= b_mean, that is
        # not fl(num / size) >= the float above b_mean
        while depth > 0 and not _quotient_ge(num, size, b_up):
            depth -= 1
            t_sum = sums[depth] + t_sum
            t_start = np.int64(starts[depth])
            num = t_sum + shift_sum(t_start, k, d, c)
            size = float(k - t_start)
            chain += 1
            if depth > 0:
                b_mean = _stored_mean(sums, starts, depth - 1, t_start, d, c)
                b_up = _next_up(b_mean)
            elif at_centre:
                next_try = k  # nothing below: the rest may go in one stretch
        merges += chain
        if chain > longest:
            longest = chain
    return k, t_sum, t_start, num / size, depth, b_mean, merges, longest


@njit(cache=True)
def pava_stack(src, d, lam, center, sums, starts):
    """PAVA over the sorted row; returns (nblk, merges, max_stack, longest_backmerge).

    src: the sort records, or the row itself when it is already sorted; only read, so the
    records still hold the sorted values when the blocks are finished (the tie rule reads them
    there, docs/design.md#ties). The finished stack is (sums[j], starts[j]) for j < nblk. The top
    block lives in registers (the common push and the pooling into the top touch no memory); the
    blocks below it are stored as (sum, start) only, and a block that becomes the top again gets
    its mean recomputed from its unchanged sum and bounds [start, start of the block above), the
    same operations on the same operands as when it was pushed, hence the same bits, as the
    reference computes it. Pops are at most as many as pushes in all (a gaussian row: a few per
    thousand elements): a store per push becomes a division per pop. The block just below the
    top keeps the mean it had as the top in a register until it is popped, so pooling into the
    top again and again (ties, a heavy cluster's back-merges) divides once per element, not twice.
    """
    c = shift_unit(lam, d)
    depth = 0  # blocks stored below the top
    have_top = False
    t_sum = 0.0
    t_start = 0
    t_mean = 0.0
    # the mean of the stored block just below the top (sums[depth - 1]) while it is known: a
    # pushed top keeps the mean it had, so a run of pools into a new top (ties, the back-merges
    # of a heavy cluster) compares against it without dividing again
    b_mean = 0.0
    b_known = False
    merges = 0
    deepest = 0
    longest = 0
    run_lo, run_hi, run_sum = run_of(src, center)  # a split source's implicit run
    wait = np.int64(1)  # elements to push one by one before the next _tie_run
    tried = True
    k0 = 0
    while k0 < d:
        stop = d
        if is_split(src):  # compiled for split sources only
            if (not tried and run_lo <= k0 < run_hi and have_top
                    and (depth == 0 or b_known)):
                tried = True
                nxt, t_sum, t_start, t_mean, depth, b_mean, pooled, chain = _tie_run(
                    k0, run_hi, run_sum, t_sum, t_start, t_mean, depth, b_mean, sums, starts,
                    d, c)
                if nxt - k0 >= TIE_RUN_GAIN:
                    wait = 1
                else:  # few pushes: wait longer before the next try
                    wait = min(2 * wait, TIE_RUN_WAIT)
                if nxt > k0:
                    b_known = depth > 0
                    merges += pooled
                    if chain > longest:
                        longest = chain
                    k0 = nxt  # element nxt takes the general step
                    continue
            if k0 < run_lo:
                stop = run_lo
            elif k0 < run_hi:
                stop = min(run_hi, k0 + wait)
            tried = False
        for k in range(k0, stop):
            n_sum = src_value(src, k) - center
            n_start = k
            end = k + 1
            # mean of y over the new block [k, k+1): block_mean's division by 1 is exact, skipped
            n_mean = n_sum + shift_sum(n_start, end, d, c)
            if have_top and t_mean >= n_mean and (depth == 0 or b_known):
                # The commonest pooling (every element of a run of ties, most steps of a
                # back-merge): the new element pools into the top and the result stays above the
                # block below. The loop below would pop that block into registers and store it back
                # unchanged, a store and a load of the same words per element that chain one
                # element's work to the next through memory; here the top grows in place. Same
                # operations, same bits. (When the result pools further, the loop below computes
                # the pooled mean again: going on from here instead compiled to a slower loop,
                # measured on gaussian, trained-layer and worst_pava rows.)
                p_sum = t_sum + n_sum
                p_mean = block_mean(p_sum, t_start, end, d, c)
                if depth == 0 or not b_mean >= p_mean:
                    t_sum = p_sum
                    t_mean = p_mean
                    merges += 1
                    if longest < 1:
                        longest = 1
                    continue
            chain = 0
            while have_top and t_mean >= n_mean:
                # the block below has mean >= the new one's: pool them (add sums of original data)
                n_sum = t_sum + n_sum
                n_start = t_start
                n_mean = block_mean(n_sum, n_start, end, d, c)
                chain += 1
                if depth > 0:
                    depth -= 1
                    t_sum = sums[depth]
                    t_start = np.int64(starts[depth])
                    # the popped block ends where the pooled block now starts
                    t_mean = b_mean if b_known else block_mean(t_sum, t_start, n_start, d, c)
                    b_known = False
                else:
                    have_top = False
            if have_top:
                sums[depth] = t_sum
                starts[depth] = t_start
                depth += 1
                b_mean = t_mean
                b_known = True
            t_sum = n_sum
            t_start = n_start
            t_mean = n_mean
            have_top = True
            merges += chain
            if chain > longest:
                longest = chain
            if depth + 1 > deepest:
                deepest = depth + 1
        k0 = stop
    sums[depth] = t_sum
    starts[depth] = t_start
    return depth + 1, merges, deepest, longest


STATS_WIDTH = 3  # merges, max_stack, longest_backmerge


@njit(cache=True)
def row_scratch(d):
    return ()  # the stack lives in the sort's records


@njit(cache=True)
def prox_row(x, w, lam, l1, rho, rec, spare, hist, scratch, stats, lab):
    """Prox of one row x into w; rec/spare are uint64[2d] scratch (the interface: _rows.py).

    Returns (nblk, rounds), rounds = d pushes + the poolings (0 for d = 1: no partition, as the
    reference); stats: merges, max_stack, longest_backmerge."""
    d = x.shape[0]
    if d == 0:
        return 0, 0
    sums = spare[:d].view(np.float64)
    starts = spare[d: 2 * d]
    if is_sorted(x):
        center = np.float64(x[d // 2])
        if x[0] == x[d - 1]:
            # a constant row: PAVA would pool every push into one block (equal means merge),
            # whose centred x sum is exactly 0 and whose shift sum is 0: skip to the answer
            sums[0] = 0.0
            starts[0] = 0
            nblk, merges, deepest, longest = 1, d - 1, 1, 1 if d > 1 else 0
        else:
            # no sort, no scatter: PAVA reads x, the blocks are written to w in order
            nblk, merges, deepest, longest = pava_stack(x, d, lam, center, sums, starts)
        nblk = finish_scatter(x, x, sums, starts, nblk, d, lam, l1, rho, center, w, lab)
    elif lab.shape[0] == 0:
        # a heavy key's run stays implicit (labels would need its positions)
        lt, m, v = sort_split_records(x, rec, spare, hist)
        if m == 0:
            center = rec_value(rec, d // 2)
            nblk, merges, deepest, longest = pava_stack(rec, d, lam, center, sums, starts)
            nblk = finish_scatter(x, rec, sums, starts, nblk, d, lam, l1, rho, center, w, lab)
        else:
            src = split_source(rec, lt, m, v)
            center = src_value(src, d // 2)
            nblk, merges, deepest, longest = pava_stack(src, d, lam, center, sums, starts)
            nblk = finish_scatter(x, src, sums, starts, nblk, d, lam, l1, rho, center, w, lab)
    else:
        sort_records(x, rec, spare, hist)
        center = rec_value(rec, d // 2)
        nblk, merges, deepest, longest = pava_stack(rec, d, lam, center, sums, starts)
        nblk = finish_scatter(x, rec, sums, starts, nblk, d, lam, l1, rho, center, w, lab)
    stats[0] = merges
    stats[1] = deepest
    stats[2] = longest
    return nblk, (d + merges if d > 1 else 0)


prox_rows = rows_driver(__name__, prox_row, row_scratch)


@njit(cache=True)
def prox_vector(x, w, lam, l1, rho, work, hist, limit):
    """prox_row of one vector whose input check is its first pass (the capability "prox_vector",
    docs/design.md#fixed-per-call-cost): False, nothing written, when an entry's magnitude bits
    exceed ``limit`` (the bits of the safe bound: a NaN, an Inf or an entry beyond it); work is
    uint64[4d] scratch. The same pass finds a constant row, whose answer is one block's value."""
    m, b_or, b_and = bits_summary(x)
    if m > limit:
        return False
    d = x.shape[0]
    if b_or == b_and:
        # prox_row's constant row: one block of equal values, centred at itself (sum 0)
        t = np.float64(x[0])
        w[:] = value_of(0.0, 0, d, t, t, d, lam, l1, rho, t)
        return True
    prox_row(x, w, lam, l1, rho, work[: 2 * d], work[2 * d: 4 * d], hist, (),
             np.empty(STATS_WIDTH, dtype=np.int64), np.empty(0, dtype=np.int64))
    return True
