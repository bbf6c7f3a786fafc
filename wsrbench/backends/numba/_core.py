"""Shared jitted pieces of the Numba backend: sorted records, block values and the scatter.

Layout of one row's work (d elements; a "word" is 8 bytes):
    rec    uint64[2d]  the sort's output records: rec[2k] = float64 bits of the k-th smallest x,
                       rec[2k+1] = its index in x (sort.sort_records)
    spare  uint64[2d]  the sort's scratch; afterwards the partition lives there:
                       spare[:d] viewed as float64 = per-block x sums (centred, float64),
                       spare[d:2d] = block starts
So a prox call needs 4 words per element besides x and w (plus O(256) histogram words). The
records stay intact until the blocks are finished: the tie rule (docs/design.md#ties) reads the
sorted values from them sequentially instead of gathering x through the sort's index.

Block values follow wsrbench.core.sorted_space.finish exactly (docs/design.md#numerics-and-range):
with the row
centred at its median element c = x_(d//2), a block [a, b) with centred x-sum S has

    centroid = S/(b-a),  value = centroid + shift_sum(a, b) / (b-a)   (numerics.shift_sum)

then c is added back, L1 soft-thresholds the value, and rho moves it back toward the centroid
(blocks L1 set to zero stay zero). S is a float64 sum of the original data, never an average of
averages.
"""
from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import overload

from .numerics import shift_sum, shift_unit
from .sort import HIST_SIZE, bits_f64, sort_records


@njit(cache=True, inline="always")
def rec_value(rec, k):
    """The k-th smallest x of the row (float64)."""
    return bits_f64(rec[2 * k])


def src_value(src, k):
    """k-th smallest x: from sort records (uint64), from a row that is already sorted, from a
    split source (``split_source``), or a float standing for every element of a run."""
    raise NotImplementedError  # only callable from jitted code


def src_index(src, k):
    """Original position of the k-th smallest x (records, or a split source outside its run), or
    k itself (an already sorted row)."""
    raise NotImplementedError


@njit(cache=True, inline="always")
def split_source(rec, lt, m, v):
    """The sorted row of sort.sort_split_records: the records rec of the elements other than its
    heavy run, and the run itself, m elements equal to v (float64) at ranks lt..lt+m-1, whose
    positions are never read (the run is one block, written by filling w, ``finish_scatter``)."""
    return (rec, np.int64(lt), np.int64(m), np.float64(v))


@overload(src_value, jit_options={"cache": True}, inline="always")
def _src_value(src, k):
    if isinstance(src, types.Float):
        return lambda src, k: np.float64(src)
    if isinstance(src, types.BaseTuple):
        def split_value(src, k):
            rec, lt, m, v = src
            if k < lt:
                return bits_f64(rec[2 * k])
            if k < lt + m:
                return v
            return bits_f64(rec[2 * (k - m)])
        return split_value
    if src.dtype == types.uint64:
        return lambda src, k: bits_f64(src[2 * k])
    return lambda src, k: np.float64(src[k])


@overload(src_index, jit_options={"cache": True}, inline="always")
def _src_index(src, k):
    if isinstance(src, types.BaseTuple):
        def split_index(src, k):
            rec, lt, m, _ = src
            return np.int64(rec[2 * (k - m * np.int64(k >= lt)) + 1])
        return split_index
    if src.dtype == types.uint64:
        return lambda src, k: np.int64(src[2 * k + 1])
    return lambda src, k: np.int64(k)


def is_split(src):
    """Whether src is a split source (``split_source``)."""
    raise NotImplementedError


@overload(is_split, jit_options={"cache": True}, inline="always")
def _is_split(src):
    split = isinstance(src, types.BaseTuple)
    return lambda src: split


def run_of(src, center):
    """(lo, hi, centred value) of a split source's run (ranks lo..hi-1); (0, 0, 0.0) otherwise."""
    raise NotImplementedError


@overload(run_of, jit_options={"cache": True}, inline="always")
def _run_of(src, center):
    if isinstance(src, types.BaseTuple):
        return lambda src, center: (src[1], src[1] + src[2], src[3] - center)
    return lambda src, center: (np.int64(0), np.int64(0), 0.0)


def heavy_block(src, starts, nblk):
    """The block holding a split source's run (-1 for records and sorted rows)."""
    raise NotImplementedError


@overload(heavy_block, jit_options={"cache": True}, inline="always")
def _heavy_block(src, starts, nblk):
    if isinstance(src, types.BaseTuple):
        def find(src, starts, nblk):
            lt = src[1]
            lo = 0
            hi = nblk  # the last block starting at or before lt: starts[lo] <= lt < starts[hi]
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if np.int64(starts[mid]) <= lt:
                    lo = mid
                else:
                    hi = mid
            return lo
        return find
    return lambda src, starts, nblk: -1


@njit(cache=True)
def centred_values(rec, d, center, xs):
    """xs[k] = x_(k) - center (float64), the reference's centred sorted row."""
    for k in range(d):
        xs[k] = rec_value(rec, k) - center


@njit(cache=True)
def block_sums(xs, starts, nblk, d, sums):
    """Per-block float64 sums of xs, summed in order within each block."""
    for j in range(nblk):
        a = np.int64(starts[j])
        b = np.int64(starts[j + 1]) if j + 1 < nblk else d
        s = 0.0
        for k in range(a, b):
            s += xs[k]
        sums[j] = s


@njit(cache=True)
def pool_ties(src, sums, starts, nblk, d, lam):
    """No block boundary inside a run of equal values (sorted_space.pool_ties,
    docs/design.md#ties); returns the new block count. Pooled blocks add their x sums. At
    lam = 0 the partition is the runs of equal values (their values need no sums).

    src: the sort records (their value slots: the sorted row, read in order) or the sorted row
    itself. Compared as float64, so -0.0 and +0.0 are one run."""
    if lam == 0.0:
        nblk = 1
        starts[0] = 0
        prev = src_value(src, 0)
        for k in range(1, d):
            v = src_value(src, k)
            if v != prev:
                starts[nblk] = k
                nblk += 1
            prev = v
        return nblk
    # read-only up to the first tie at a boundary (rows without ties: no writes at all)
    first = 1
    while first < nblk:
        a = np.int64(starts[first])
        if src_value(src, a) == src_value(src, a - 1):
            break
        first += 1
    m = first - 1
    for j in range(first, nblk):
        a = np.int64(starts[j])
        if src_value(src, a) == src_value(src, a - 1):
            sums[m] += sums[j]
        else:
            m += 1
            sums[m] = sums[j]
            starts[m] = a
    return m + 1


@njit(cache=True, inline="always")
def value_of(bsum, a, b, first, last, d, lam, l1, rho, center):
    """Value of the block [a, b) whose x sum, centred at center, is bsum and whose smallest and
    largest x are first and last: closed-form shift mean, then L1 and rho (sorted_space.finish);
    a block of equal values t is computed from t itself (sorted_space.block_values)."""
    size = b - a
    shift = shift_sum(a, b, d, shift_unit(lam, d))
    if size != 1:  # a division by 1 is exact: singletons (most blocks at small lam) skip it
        shift /= size
    if first == last:
        centroid = first
        value = first if shift == 0.0 else first + shift  # -0.0 + 0.0 is +0.0
    else:
        centroid = bsum / size
        value = centroid + shift
        centroid += center
        value += center
    if l1 > 0.0:
        mag = abs(value) - l1
        if mag > 0.0:
            value = mag if value > 0.0 else -mag
        else:
            value = 0.0
    if rho > 0.0:
        if not (value == 0.0 and l1 > 0.0) and value != centroid:
            value = centroid + (1.0 - rho) * (value - centroid)
    return value


@njit(cache=True, inline="always")
def block_value(src, sums, starts, nblk, j, d, lam, l1, rho, center):
    """Value of block j of the sorted row src (``value_of``), with its bounds."""
    a = np.int64(starts[j])
    b = np.int64(starts[j + 1]) if j + 1 < nblk else d
    value = value_of(sums[j], a, b, src_value(src, a), src_value(src, b - 1), d, lam, l1, rho,
                     center)
    return value, a, b


@njit(cache=True)
def _scatter_checking_ties(src, sums, starts, nblk, d, lam, l1, rho, center, w):
    """finish_scatter's pool_ties and block values in one pass while no block starts at a value
    equal to the last one of the block before it (the common case: no tie at a boundary); from
    the first such block on, pool_ties and the value pass run on the rest. Returns the block
    count after pooling. A singleton block without L1 or rho (most blocks at small lam) is
    value_of's first branch written out: its value plus its shift, one store; through value_of
    and the block's loop it cost about 1.5x as much (docs/design.md#the-cpu-prox-against-half-a-sort)."""
    c = shift_unit(lam, d)
    plain = l1 == 0.0 and rho == 0.0
    for j in range(nblk):
        a = np.int64(starts[j])
        b = np.int64(starts[j + 1]) if j + 1 < nblk else d
        last = src_value(src, b - 1)
        if j + 1 < nblk and src_value(src, b) == last:
            m = pool_ties(src, sums[j:], starts[j:], nblk - j, d, lam)
            for i in range(m):
                value, a, b = block_value(src, sums[j:], starts[j:], m, i, d, lam, l1, rho,
                                          center)
                for k in range(a, b):
                    w[src_index(src, k)] = value
            return j + m
        if plain and b == a + 1:
            shift = shift_sum(a, b, d, c)
            w[src_index(src, a)] = last if shift == 0.0 else last + shift  # -0.0 + 0.0 is +0.0
            continue
        value = value_of(sums[j], a, b, src_value(src, a), last, d, lam, l1, rho, center)
        for k in range(a, b):
            w[src_index(src, k)] = value
    return nblk


@njit(cache=True)
def finish_scatter(x, rec, sums, starts, nblk, d, lam, l1, rho, center, w, lab):
    """Block values (closed-form shifts, L1, rho) written to w at the original positions; returns
    the block count after ``pool_ties``.

    x: the row itself. lab: int64 labels out (length d: lab[i] = the block of x_i, blocks numbered
    in increasing value, docs/design.md#the-canonical-partition), or an empty array when the
    caller did not ask for them.

    rec: the sort records, the row itself when it was already sorted (then w[a:b] is written
    in order, no scatter), or a split source (``split_source``; no labels). A block of at least
    a quarter of the row (large lam, massive ties) is written by filling all of w first,
    sequentially, and the other blocks are scattered over it: a random write costs several
    sequential ones once the row outgrows the caches. A split source's run is always that block
    (whatever its size): its positions are not in the records.
    """
    if (lam != 0.0 and lab.shape[0] == 0 and not is_split(rec)
            and (d < 4096 or nblk > d - d // 4 + 1)):
        # no block of a quarter of the row (nor labels, nor lam = 0's runs): the tie rule's
        # test rides along the value pass and pool_ties runs only from the first tie on
        return _scatter_checking_ties(rec, sums, starts, nblk, d, lam, l1, rho, center, w)
    nblk = pool_ties(rec, sums, starts, nblk, d, lam)
    if lam == 0.0 and l1 == 0.0:
        # x itself: -0.0 and 0.0 share a run but keep their own signs (docs/design.md#ties)
        for i in range(d):
            w[i] = x[i]
        if lab.shape[0]:
            scatter_labels(rec, starts, nblk, d, lab)
        return nblk
    big = heavy_block(rec, starts, nblk)
    big_size = d // 4
    if big < 0 and d >= 4096:
        for j in range(nblk):
            b = np.int64(starts[j + 1]) if j + 1 < nblk else d
            if b - np.int64(starts[j]) >= big_size:
                big = j
                big_size = b - np.int64(starts[j])
    if big >= 0:
        value, a, b = block_value(rec, sums, starts, nblk, big, d, lam, l1, rho, center)
        w[:] = value
    for j in range(nblk):
        if j == big:
            continue
        value, a, b = block_value(rec, sums, starts, nblk, j, d, lam, l1, rho, center)
        for k in range(a, b):
            w[src_index(rec, k)] = value
    if lab.shape[0]:
        scatter_labels(rec, starts, nblk, d, lab)
    return nblk


@njit(cache=True)
def scatter_labels(rec, starts, nblk, d, lab):
    """lab[original position of the k-th smallest x] = its block (the partition, not the values:
    blocks that L1 zeroes or that rounding makes equal keep distinct labels)."""
    for j in range(nblk):
        a = np.int64(starts[j])
        b = np.int64(starts[j + 1]) if j + 1 < nblk else d
        for k in range(a, b):
            lab[src_index(rec, k)] = j


@njit(cache=True)
def sorted_centred_row(x, rec, spare, xs, hist):
    """Sort the row into ``rec`` and write xs = x_(k) - center; returns center = x_(d//2)."""
    d = x.shape[0]
    sort_records(x, rec, spare, hist)
    center = rec_value(rec, d // 2)
    centred_values(rec, d, center, xs)
    return center


@njit(cache=True)
def finish_blocks(x, d, lam, l1, rho, center, rec, spare, xs, nblk, w, lab):
    """Block sums of the partition in spare[d:d + nblk], then their values scattered to w;
    returns the block count (``finish_scatter``)."""
    sums = spare[:d].view(np.float64)
    starts = spare[d: 2 * d]
    block_sums(xs, starts, nblk, d, sums)
    return finish_scatter(x, rec, sums, starts, nblk, d, lam, l1, rho, center, w, lab)


def prox_long_row(long_partition, x, w, lam, l1, rho, work, scratch, stats, lab):
    """One long row whose partition runs the pairs of each level in parallel (a prange inside
    ``long_partition(xs, lam, starts, scratch, stats) -> (nblk, rounds)``; a Python-level driver,
    so the parallel region is the partition's own). Returns (clusters, rounds)."""
    d = x.shape[0]
    rec = work[0][: 2 * d]
    spare = work[0][2 * d: 4 * d]
    xs = scratch[0]
    center = sorted_centred_row(x, rec, spare, xs, np.empty(HIST_SIZE, dtype=np.int64))
    nblk, rounds = long_partition(xs, lam, spare[d: 2 * d], scratch, stats)
    nblk = finish_blocks(x, d, lam, l1, rho, center, rec, spare, xs, nblk, w, lab)
    return nblk, rounds


@njit(cache=True)
def centred_scratch(d):
    """The row scratch (``_rows.py``) of a kernel that needs only the centred sorted values."""
    return (np.empty(d, dtype=np.float64),)


@njit(cache=True)
def chunk_bounds(n, nchunks, c):
    """Rows [lo, hi) of chunk c when n rows are split into nchunks near-equal chunks."""
    return (c * n) // nchunks, ((c + 1) * n) // nchunks
