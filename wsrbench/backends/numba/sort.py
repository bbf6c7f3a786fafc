"""Argsort by LSD radix on order-preserving integer keys of the float bits.

The sort is the cost floor of the prox on a CPU, and a comparison argsort (``np.argsort``) spends
most of its time on unpredictable branches and, for large d, on cache misses of the indirect
compare. A least-significant-digit radix sort does a fixed number of sequential reads and
bucket-wise writes per element instead, and it is stable.

Keys (the "flip" trick): for IEEE floats, the unsigned integer with the same bits orders the
non-negative floats correctly, and the negative ones in reverse. Setting the sign bit of
non-negative floats and inverting every bit of negative ones gives an unsigned key whose integer
order is the float order (-0.0 sorts just before +0.0; they are equal floats, and equal inputs end
up in the same block of the prox anyway, so their relative order never changes the result).
The flip is a bijection, so the sorted keys decode back to the sorted values exactly: no gather
``x[order]`` is needed after the sort.

float32: the 32-bit key and the 32-bit index are packed into one uint64 (key << 32 | index), so a
pass moves 8 bytes per element and sorts only the 32 key bits (4 passes of 8 bits); the last pass
writes the same interleaved records as float64 (value as float64 bits, index), so everything after
the sort is dtype-agnostic.
float64: records of two uint64 (key, index) interleaved in one array (16 bytes per element, one
write stream per bucket), 8 passes of 8 bits. Rows of at most PREFIX_MAX_D elements sort through a
32-bit window of their keys instead (``_sort_prefix_f64``): float32's packed records, the values
gathered from x in the last pass, then the keys tied in the window ordered by insertion; rows
of NARROW_MIN_D to NARROW_MAX_D first try the window's top 24 bits in two 12-bit passes
(``_sort_narrow_f64``). Passes whose digit is the same for every element are skipped (e.g. the
exponent digit of data within one binade), and so are those below the top one that are the same
in every element's magnitude bits (``_histograms``: the zero low mantissa bits of values rounded
to fewer bits, of both signs); the first pass reads x directly and the last one writes the
decoded value in place of the key. Rows of at most ``INSERTION_MAX``
elements use an insertion sort, and already sorted rows (checked first: the check stops at the
first descent) skip the sort. Tie-heavy rows: the histogram pass counts a run of equal keys once
and each 16-byte scatter pass keeps the current bucket's slot in a register while the digit
repeats, so ties do not chain read-modify-writes of one counter through memory (the 8-byte passes
do without: its branch cost them more than the chain, see ``_r32_first``). A heavy key (a key that a
quarter of 64 sampled elements share: a pruned layer's zeros, a massive tie) is split off in one
branch-free pass, the passes move only the other keys, and its run is inserted at its place
(``_sort_split_f64``, ``_sort_split_f32``).

Measured on a 2-core machine (scripts/numba_speed.py has the end-to-end figures): 8-bit digits
beat 11-bit ones (256 buckets keep every bucket's write position in L1 and the write-combining
streams few; 11-bit saved passes but lost more to misses), and interleaved float64 records beat
separate key and index arrays by about 1.5x at d = 1e6 (half the write streams).
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

SIGN64 = np.uint64(1 << 63)
ALL64 = np.uint64(0xFFFFFFFFFFFFFFFF)
SIGN32 = np.uint32(1 << 31)
ALL32 = np.uint32(0xFFFFFFFF)
LOW32 = np.uint64(0xFFFFFFFF)
U64_1 = np.uint64(1)
U32_1 = np.uint32(1)
INSERTION_MAX = 32
BITS = 8
NB = 1 << BITS
MASK = np.uint64(NB - 1)
# float64 rows of NARROW_MIN_D to NARROW_MAX_D values sort through a 24-bit window first: two
# passes of 12-bit digits (_sort_narrow_f64). Measured on a 2-core machine against the 32-bit
# window's passes: 0.76-0.87x at 4e3-1.6e4, even at 2e3 (the 4,096-bucket histograms' fixed
# cost), 1.06-1.57x at 3e4-6e4 (more bucket misses, more ties in the window)
NARROW_MIN_D = 1 << 11
NARROW_MAX_D = 1 << 14
NARROW_BITS = 12
NARROW_NB = 1 << NARROW_BITS
NARROW_MASK = np.uint64(NARROW_NB - 1)
HIST_SIZE = max(8 * NB, 2 * NARROW_NB)  # int64 scratch for the histograms of all digits
# A heavy key (docs/design.md#numba-cpu): a row of at least HEAVY_MIN_D elements whose
# HEAVY_SAMPLE evenly spaced elements share a key HEAVY_SAMPLE_MIN times is split by that key.
HEAVY_MIN_D = 4096
HEAVY_SAMPLE = 64
HEAVY_SAMPLE_MIN = 16
# float64 rows up to this length sort through a 32-bit window of their keys (_sort_prefix_f64),
# whose last pass gathers x: 1 MiB of x, within the caches
PREFIX_MAX_D = 1 << 17


# Bit casts between floats and same-width unsigned ints (a register move, no memory traffic).
@intrinsic
def f64_bits(typingctx, v):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.uint64(types.float64), codegen


@intrinsic
def bits_f64(typingctx, v):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.uint64), codegen


@intrinsic
def f32_bits(typingctx, v):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(32))
    return types.uint32(types.float32), codegen


@intrinsic
def bits_f32(typingctx, v):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.uint32), codegen


@njit(cache=True, inline="always")
def key64(v):
    """Order-preserving uint64 key of a float64."""
    u = f64_bits(v)
    return u ^ (((u >> np.uint64(63)) * ALL64) | SIGN64)


@njit(cache=True, inline="always")
def unkey64(k):
    """Inverse of key64."""
    return bits_f64(k ^ (((k >> np.uint64(63)) - U64_1) | SIGN64))


@njit(cache=True, inline="always")
def key32(v):
    """Order-preserving uint32 key of a float32."""
    u = f32_bits(v)
    return u ^ (((u >> np.uint32(31)) * ALL32) | SIGN32)


@njit(cache=True, inline="always")
def unkey32(k):
    """Inverse of key32 (k a uint32)."""
    return bits_f32(k ^ (((k >> np.uint32(31)) - U32_1) | SIGN32))


@njit(cache=True, inline="always")
def packed_value(p):
    """float64 value of a packed float32 record (key << 32 | index)."""
    return np.float64(unkey32(np.uint32(p >> np.uint64(32))))


@njit(cache=True)
def is_sorted(x):
    """True when x is non-decreasing. Stops at the first descent, so it costs next to nothing on
    unsorted data and saves the whole radix sort on sorted data (e.g. constant rows)."""
    for i in range(1, x.shape[0]):
        if x[i] < x[i - 1]:
            return False
    return True


@njit(cache=True, inline="always")
def magnitude_bits(k, top):
    """The key k (sign in bit ``top``) with the bits of a negative float's key inverted back:
    the float's magnitude bits, the same for x and -x."""
    return k ^ (((k >> np.uint64(top)) ^ U64_1) * (ALL64 >> np.uint64(63 - top)))


@njit(cache=True)
def _varying_f64(x):
    """The bits of |x| that differ between two elements of x (magnitude_bits of a key is |x|'s
    bits with the top one set): one pass of ORs and ANDs, vectorised."""
    m_or = np.uint64(0)
    m_and = ALL64
    for i in range(x.shape[0]):
        m = f64_bits(x[i]) & ~SIGN64
        m_or |= m
        m_and &= m
    return m_or ^ m_and


@njit(cache=True)
def _varying_f32(x):
    """_varying_f64 of a float32 row (the 32-bit keys' magnitude bits)."""
    m_or = np.uint32(0)
    m_and = ALL32
    for i in range(x.shape[0]):
        m = f32_bits(x[i]) & ~SIGN32
        m_or |= m
        m_and &= m
    return np.uint64(m_or ^ m_and)


def bits_summary(x):
    """(largest magnitude, OR, AND) of the bits of x's entries as unsigned integers, in one
    vectorised pass (0, 0, all ones for an empty x).

    The largest magnitude is the largest |x_i|'s bits (the float bits without the sign): integer
    order is magnitude order, Inf's bits exceed every finite value's and NaN's exceed Inf's, so it
    bounds the row and catches NaN and Inf. OR == AND when every entry has the same bits (a
    constant row)."""
    raise NotImplementedError  # only callable from jitted code


@overload(bits_summary, jit_options={"cache": True})
def _bits_summary_impl(x):
    if x.dtype == types.float64:
        def f64(x):
            m = np.uint64(0)
            b_or = np.uint64(0)
            b_and = ALL64
            for i in range(x.shape[0]):
                u = f64_bits(x[i])
                m = max(m, u & ~SIGN64)
                b_or |= u
                b_and &= u
            return m, b_or, b_and
        return f64

    def f32(x):
        m = np.uint32(0)
        b_or = np.uint32(0)
        b_and = ALL32
        for i in range(x.shape[0]):
            u = f32_bits(x[i])
            m = max(m, u & ~SIGN32)
            b_or |= u
            b_and &= u
        return np.uint64(m), np.uint64(b_or), np.uint64(b_and)
    return f32


@njit(cache=True)
def _histograms(h, d, ndig, active, varying):
    """Turn per-digit bucket counts into exclusive prefix sums (each bucket's first output slot).

    Marks the digits whose pass can reorder something and returns how many there are. A digit
    shared by all d elements reorders nothing. Nor does a digit below the top one that is the same
    in every element's magnitude bits (``varying``: the OR of the bits that differ between any
    two of them): keys equal above it have one sign, so they are equal in it too, and a stable
    pass over it keeps their order (values rounded to fewer mantissa bits, of both signs).
    """
    nact = 0
    for j in range(ndig):
        full = j < ndig - 1 and ((varying >> np.uint64(j * BITS)) & MASK) == 0
        for b in range(NB):
            if full or h[j * NB + b] == d:
                full = True
                break
        active[j] = not full
        if not full:
            nact += 1
            s = 0
            for b in range(NB):
                c = h[j * NB + b]
                h[j * NB + b] = s
                s += c
    return nact


@njit(cache=True)
def heavy_candidate(x, hist):
    """(found, key64 of its float64 value) of a key shared by HEAVY_SAMPLE_MIN of HEAVY_SAMPLE
    evenly spaced elements of x: a key that likely holds a large share of the row. The sample is
    sorted in hist (int64 scratch, overwritten) as key64 ^ SIGN64, whose signed order is the key
    order: no allocation."""
    d = x.shape[0]
    if d < HEAVY_MIN_D:
        return False, np.uint64(0)
    s = hist[:HEAVY_SAMPLE]
    step = d // HEAVY_SAMPLE
    for j in range(HEAVY_SAMPLE):
        k = np.int64(key64(np.float64(x[j * step])) ^ SIGN64)
        i = j - 1
        while i >= 0 and s[i] > k:
            s[i + 1] = s[i]
            i -= 1
        s[i + 1] = k
    best = 0
    best_key = s[0]
    run = 0
    for j in range(HEAVY_SAMPLE):
        run = run + 1 if j > 0 and s[j] == s[j - 1] else 1
        if run > best:
            best = run
            best_key = s[j]
    return best >= HEAVY_SAMPLE_MIN, np.uint64(best_key) ^ SIGN64


@njit(cache=True)
def _light_histograms(b, n, stride, ndig, shift0, h):
    """Digit counts of the n compacted keys b[stride * k] (digit j at bit shift0 + 8 j) into h, a
    run of equal keys counted once (as in the sorts); returns the magnitude bits that vary
    (``_histograms``), gathered per run here since the keys are already in hand."""
    h[: ndig * NB] = 0
    if n == 0:
        return np.uint64(0)
    top = ndig * BITS - 1
    prev = b[0] >> np.uint64(shift0)
    m_or = magnitude_bits(prev, top)
    m_and = m_or
    run = 0
    for i in range(n):
        k = b[stride * i] >> np.uint64(shift0)
        if k != prev:
            for j in range(ndig):
                h[j * NB + np.int64((prev >> np.uint64(j * BITS)) & MASK)] += run
            m = magnitude_bits(k, top)
            m_or |= m
            m_and &= m
            prev = k
            run = 0
        run += 1
    for j in range(ndig):
        h[j * NB + np.int64((prev >> np.uint64(j * BITS)) & MASK)] += run
    return m_or ^ m_and


@njit(cache=True)
def _insert_run(a, b, n, lt, ch, vbits):
    """Sorted records of the n other keys in a[:2n] -> all n + ch records: those above the heavy
    key move up by ch (back to front) and the heavy run fills the gap at lt, its indices read
    from the tail of b, where the split wrote the j-th one at b[len(b) - 1 - j]."""
    for k in range(n - 1, lt - 1, -1):
        a[2 * (k + ch)] = a[2 * k]
        a[2 * (k + ch) + 1] = a[2 * k + 1]
    top = b.shape[0] - 1
    for j in range(ch):
        a[2 * (lt + j)] = vbits
        a[2 * (lt + j) + 1] = b[top - j]


@njit(cache=True)
def _run_out(a, b, n, lt, m, v, materialize):
    """The end of a split sort: the run inserted (``_insert_run``; returns no run), or its
    (lt, m, v) returned for a caller that reads it implicitly (sort_split_records)."""
    if materialize:
        _insert_run(a, b, n, lt, m, f64_bits(v))
        return 0, 0, 0.0
    return lt, m, v


@njit(cache=True)
def _r64_first(x, dst, off, shift):
    # One LSD pass: element i goes to the next free slot of its digit's bucket. Keeping the slot
    # of the current bucket in a register while the digit repeats (ties, or a constant high
    # digit) avoids a load-increment-store chain through off[b] per element, which costs a
    # store-to-load forwarding latency each time on tie-heavy rows.
    pb = 0
    p = off[0]
    for i in range(x.shape[0]):
        k = key64(x[i])
        b = np.int64((k >> shift) & MASK)
        if b != pb:  # see _r64_first
            off[pb] = p
            p = off[b]
            pb = b
        dst[2 * p] = k
        dst[2 * p + 1] = np.uint64(i)
        p += 1


@njit(cache=True)
def _r64_mid(src, dst, off, shift, decode, n):
    pb = 0
    p = off[0]
    for i in range(n):
        k = src[2 * i]
        b = np.int64((k >> shift) & MASK)
        if b != pb:  # see _r64_first
            off[pb] = p
            p = off[b]
            pb = b
        # the last pass stores the float bits instead of the key: the sorted values, decoded
        dst[2 * p] = f64_bits(unkey64(k)) if decode else k
        dst[2 * p + 1] = src[2 * i + 1]
        p += 1


@njit(cache=True)
def _split_f64(x, b, cand, tail):
    """The split pass of _sort_split_f64: (n others, m of cand, count of keys below cand); cand's
    indices go to the tail of b only when ``tail`` (its run is materialized)."""
    d = x.shape[0]
    top = 2 * d - 1
    n = 0
    m = 0
    lt = 0
    for i in range(d):
        k = key64(x[i])
        heavy = k == cand
        if tail:  # loop-invariant: compiled as two loops
            b[top - m] = np.uint64(i)  # (where the two writes meet, at i = d - 1, both write i)
        b[2 * n] = k
        b[2 * n + 1] = np.uint64(i)
        m += heavy
        n += not heavy
        lt += k < cand
    return n, m, lt


@njit(cache=True)
def _split_prefix_f64(x, a, b, hist, cand, tail):
    """_sort_split_f64 with the other keys sorted through their 32-bit window (_sort_prefix_f64):
    (done, n, m, lt), not done when their ties in the window needed more than d moves."""
    d = x.shape[0]
    n, m, lt = _split_f64(x, b, cand, tail)
    if n > 0:
        k_or = np.uint64(0)
        k_and = ALL64
        m_or = np.uint64(0)
        m_and = ALL64
        for i in range(n):
            k = b[2 * i]
            k_or |= k
            k_and &= k
            u = magnitude_bits(k, 63)
            m_or |= u
            m_and &= u
        s = _window_shift(k_or ^ k_and)
        ndig = 4
        h = hist[: ndig * NB]
        _light_histograms(b, n, 2, ndig, s, h)
        for i in range(n):
            a[i] = (((b[2 * i] >> s) & LOW32) << np.uint64(32)) | b[2 * i + 1]
        active = np.zeros(ndig, dtype=np.bool_)
        nact = _histograms(h, n, ndig, active, (m_or ^ m_and) >> s)
        _window_passes(x, a, b, h, active, nact, n)
        if s > 0 and not _order_window_ties(a, n, s, d):
            return False, n, m, lt
    return True, n, m, lt


@njit(cache=True)
def _sort_split_f64(x, a, b, hist, cand, tail):
    """sort_f64 for a row with a heavy key candidate (key64 cand): one sequential pass splits
    the row into the records of the other keys (front of b, in order) and, with ``tail``, the
    indices of cand's elements (tail of b, from the end down); the radix passes then move only
    the others into a[:2n]. Returns (n, m, lt) for ``_insert_run``. Both writes happen for every
    element and only one position advances, so the split has no branch to mispredict."""
    n, m, lt = _split_f64(x, b, cand, tail)
    ndig = 8
    h = hist[: ndig * NB]
    varying = _light_histograms(b, n, 2, ndig, 0, h)
    active = np.zeros(ndig, dtype=np.bool_)
    nact = _histograms(h, n, ndig, active, varying) if n > 0 else 0
    if nact % 2 == 0:  # the passes from a, so that the last one writes a
        for i in range(2 * n):
            a[i] = b[i]
    t = 0
    for j in range(ndig):
        if not active[j]:
            continue
        off = h[j * NB: (j + 1) * NB]
        shift = np.uint64(j * BITS)
        if t % 2 == nact % 2:
            _r64_mid(a, b, off, shift, False, n)
        else:
            _r64_mid(b, a, off, shift, t == nact - 1, n)
        t += 1
    if nact == 0:  # the other keys are all equal (or none): decode in place
        for i in range(n):
            a[2 * i] = f64_bits(unkey64(a[2 * i]))
    return n, m, lt


@njit(cache=True)
def _spans_f64(x):
    """(key bits that differ between two elements, magnitude bits that do): one vectorised pass."""
    k_or = np.uint64(0)
    k_and = ALL64
    m_or = np.uint64(0)
    m_and = ALL64
    for i in range(x.shape[0]):
        k = key64(x[i])
        m = f64_bits(x[i]) & ~SIGN64
        k_or |= k
        k_and &= k
        m_or |= m
        m_and &= m
    return k_or ^ k_and, m_or ^ m_and


@njit(cache=True, inline="always")
def _window_counts(x, s, h, ndig, bits):
    """Counts of the ndig digits of ``bits`` bits of each key's 32-bit window (key >> s) into h
    (digit j's buckets from j << bits), a run of equal windows counted once (sort_f64)."""
    nb = 1 << bits
    mask = np.uint64(nb - 1)
    h[: ndig * nb] = 0
    prev = (key64(x[0]) >> s) & LOW32
    run = 0
    for i in range(x.shape[0]):
        k = (key64(x[i]) >> s) & LOW32
        if k != prev:
            for j in range(ndig):
                h[j * nb + np.int64((prev >> np.uint64(j * bits)) & mask)] += run
            prev = k
            run = 0
        run += 1
    for j in range(ndig):
        h[j * nb + np.int64((prev >> np.uint64(j * bits)) & mask)] += run


@njit(cache=True)
def _rp_first(x, dst, off, shift, s, mask):
    # the window of each key (32 bits from bit s) packed with its index, as sort_f32's records;
    # the digit is (record >> shift) & mask (8 bits, or the narrow window's 12)
    for i in range(x.shape[0]):
        p = (((key64(x[i]) >> s) & LOW32) << np.uint64(32)) | np.uint64(i)
        b = np.int64((p >> shift) & mask)
        q = off[b]
        dst[q] = p
        off[b] = q + 1


@njit(cache=True)
def _rp_last(src, dst, off, shift, d, x, mask):
    # the common records: the value read from x at the record's index, then the index
    for i in range(d):
        p = src[i]
        b = np.int64((p >> shift) & mask)
        q = off[b]
        j = p & LOW32
        dst[2 * q] = f64_bits(x[j])
        dst[2 * q + 1] = j
        off[b] = q + 1


@njit(cache=True)
def _sort_prefix_f64(x, a, b, hist):
    """sort_f64 through a 32-bit window of the keys: True when done, False (a holds nothing of
    use) when the keys tied in the window needed more than d moves to order.

    The window starts at the highest key bit that differs between two elements (the bits above
    it are the same in every key), so the passes move 8-byte packed records (window << 32 |
    index) as sort_f32 does, and at most 4 of them; the last pass reads each value from x at its
    index (a gather, cheap while x fits the caches: PREFIX_MAX_D). Keys equal in the window are
    then adjacent, in index order; one pass orders each such run by its full keys, by insertion
    (stable). A row whose varying bits all fit the window has no such run to order."""
    d = x.shape[0]
    k_var, m_var = _spans_f64(x)
    s = _window_shift(k_var)
    ndig = 4
    h = hist[: ndig * NB]
    _window_counts(x, s, h, ndig, BITS)
    active = np.zeros(ndig, dtype=np.bool_)
    nact = _histograms(h, d, ndig, active, m_var >> s)
    t = 0
    for j in range(ndig):  # as sort_f32: the pass before the last writes b, the last reads it
        if not active[j]:
            continue
        off = h[j * NB: (j + 1) * NB]
        shift = np.uint64(32 + j * BITS)
        if t == 0:
            _rp_first(x, b if (nact - 2 - t) % 2 == 0 or nact == 1 else a, off, shift, s, MASK)
        elif t == nact - 1:
            _rp_last(b, a, off, shift, d, x, MASK)
        elif (nact - 2 - t) % 2 == 0:
            _r32_mid(a, b, off, shift, d)
        else:
            _r32_mid(b, a, off, shift, d)
        t += 1
    if nact == 1:  # the one pass wrote b: expand it into a
        for i in range(d):
            j = b[i] & LOW32
            a[2 * i] = f64_bits(x[j])
            a[2 * i + 1] = j
    # every varying bit in the window (s = 0): no keys tie in it unless equal
    return s == 0 or _order_window_ties(a, d, s, d)


@njit(cache=True)
def _sort_narrow_f64(x, a, b, hist):
    """_sort_prefix_f64 through a 24-bit window in two passes of 12-bit digits (short rows, where
    the passes, not the buckets, are the cost): True when done; False, a holding nothing of use,
    when the 32-bit window would run at most two passes (its digits below the top one that the
    magnitudes vary in: values rounded to few bits), when a 12-bit digit is the same in every
    element, or when the keys tied in the window needed more than d moves to order. The window
    ties are ordered only when the magnitude bits below the window vary: keys tied in it have
    one sign (the window starts at the highest varying key bit), so otherwise they are equal."""
    d = x.shape[0]
    k_var, m_var = _spans_f64(x)
    mv = m_var >> _window_shift(k_var)
    busy = 0
    for j in range(3):
        busy += ((mv >> np.uint64(8 * j)) & MASK) != 0
    if busy < 2:
        return False
    s = _window_shift(k_var, 24)
    h = hist[: 2 * NARROW_NB]
    # the 32-bit window's digits: its bits above the narrow one are the same in every key
    _window_counts(x, s, h, 2, NARROW_BITS)
    for j in range(2):
        t = 0
        for c in range(NARROW_NB):
            n = h[j * NARROW_NB + c]
            if n == d:
                return False
            h[j * NARROW_NB + c] = t
            t += n
    _rp_first(x, b, h[:NARROW_NB], np.uint64(32), s, NARROW_MASK)
    _rp_last(b, a, h[NARROW_NB:], np.uint64(32 + NARROW_BITS), d, x, NARROW_MASK)
    below = m_var & ((U64_1 << s) - U64_1)
    return below == 0 or _order_window_ties(a, d, s, d)


@njit(cache=True)
def _window_shift(k_var, width=32):
    """The lowest bit of the key window of ``width`` bits whose top bit is the highest varying
    key bit (k_var: the key bits that differ between two elements), or 0."""
    top = 63
    while top > 0 and (k_var >> np.uint64(top)) == 0:
        top -= 1
    return np.uint64(max(top - (width - 1), 0))


@njit(cache=True)
def _window_passes(x, a, b, h, active, nact, n):
    """The radix passes over the packed window records in a[:n] (digit offsets h, the active
    digits of _histograms); they alternate between a[:n] and b[:n], and the last (_rp_last, or an
    expansion when no digit needs a pass) writes the records, values read from x, into a[:2n]."""
    if nact == 0:  # back to front: slots 2k and 2k+1 of the output are at or above packed slot k
        for i in range(n - 1, -1, -1):
            j = a[i] & LOW32
            a[2 * i + 1] = j
            a[2 * i] = f64_bits(x[j])
        return
    src_b = nact % 2 == 1  # so that after nact - 1 alternations the last pass reads b
    if src_b:
        for i in range(n):
            b[i] = a[i]
    t = 0
    for j in range(h.shape[0] // NB):
        if not active[j]:
            continue
        off = h[j * NB: (j + 1) * NB]
        shift = np.uint64(32 + j * BITS)
        if t == nact - 1:
            _rp_last(b, a, off, shift, n, x, MASK)
        elif src_b:
            _r32_mid(b, a, off, shift, n)
        else:
            _r32_mid(a, b, off, shift, n)
        src_b = not src_b
        t += 1


@njit(cache=True)
def _order_window_ties(a, n, s, budget):
    """Order the runs of records in a[:2n] whose keys tie in the window (key >> s) by their full
    keys, by insertion (stable); False, a left partly ordered, once more than budget moves."""
    kp = key64(bits_f64(a[0]))
    start = 0
    for i in range(1, n):
        v = a[2 * i]
        k = key64(bits_f64(v))
        if (k >> s) != (kp >> s):
            start = i
            kp = k
            continue
        if k >= kp:
            kp = k  # (the run's largest key stays last when an element moves below it)
            continue
        idx = a[2 * i + 1]
        j = i
        while j > start and key64(bits_f64(a[2 * j - 2])) > k:
            a[2 * j] = a[2 * j - 2]
            a[2 * j + 1] = a[2 * j - 1]
            j -= 1
        a[2 * j] = v
        a[2 * j + 1] = idx
        budget -= i - j
        if budget < 0:
            return False
    return True


@njit(cache=True)
def sort_f64(x, a, b, hist):
    """Stable argsort of float64 x into interleaved records: a[2k] = bits of the k-th smallest
    value (view a as float64 to read it), a[2k+1] = its index in x.

    a and b are uint64 arrays of 2 * len(x) (b is scratch), hist int64 scratch of HIST_SIZE. The
    passes alternate between a and b, planned so that the last one lands in a.
    """
    _sort_f64(x, a, b, hist, True)


@njit(cache=True)
def _sort_f64(x, a, b, hist, materialize):
    """sort_f64, or with ``materialize`` False sort_split_records' (lt, m, v): a heavy key's run
    left out of the records. (0, 0, 0.0) when every record is in a."""
    d = x.shape[0]
    if d <= INSERTION_MAX:
        for i in range(d):
            k = key64(x[i])
            j = i - 1
            while j >= 0 and a[2 * j] > k:
                a[2 * j + 2] = a[2 * j]
                a[2 * j + 3] = a[2 * j + 1]
                j -= 1
            a[2 * j + 2] = k
            a[2 * j + 3] = np.uint64(i)
        for i in range(d):
            a[2 * i] = f64_bits(unkey64(a[2 * i]))
        return 0, 0, 0.0
    if is_sorted(x):
        for i in range(d):
            a[2 * i] = f64_bits(x[i])
            a[2 * i + 1] = np.uint64(i)
        return 0, 0, 0.0
    found, cand = heavy_candidate(x, hist)
    if found:
        done = False
        if d <= PREFIX_MAX_D:
            done, n, m, lt = _split_prefix_f64(x, a, b, hist, cand, materialize)
        if not done:
            n, m, lt = _sort_split_f64(x, a, b, hist, cand, materialize)
        return _run_out(a, b, n, lt, m, unkey64(cand), materialize)
    if NARROW_MIN_D <= d <= NARROW_MAX_D and _sort_narrow_f64(x, a, b, hist):
        return 0, 0, 0.0
    if not (d <= PREFIX_MAX_D and _sort_prefix_f64(x, a, b, hist)):
        _sort_full_f64(x, a, b, hist)
    return 0, 0, 0.0


@njit(cache=True)
def _sort_full_f64(x, a, b, hist):
    """sort_f64's radix passes over all 64 key bits (16-byte records)."""
    d = x.shape[0]
    ndig = 8
    h = hist[: ndig * NB]
    h[:] = 0
    # counts of all digits in one pass; a run of equal keys is counted once (ties would chain
    # increments of the same counters through memory)
    prev = key64(x[0])
    varying = _varying_f64(x)
    run = 0
    for i in range(d):
        k = key64(x[i])
        if k != prev:
            for j in range(ndig):
                h[j * NB + np.int64((prev >> np.uint64(j * BITS)) & MASK)] += run
            prev = k
            run = 0
        run += 1
    for j in range(ndig):
        h[j * NB + np.int64((prev >> np.uint64(j * BITS)) & MASK)] += run
    active = np.zeros(ndig, dtype=np.bool_)
    nact = _histograms(h, d, ndig, active, varying)
    if nact == 0:  # every key equal: the identity order
        for i in range(d):
            a[2 * i] = f64_bits(x[i])
            a[2 * i + 1] = np.uint64(i)
        return
    t = 0
    for j in range(ndig):
        if not active[j]:
            continue
        off = h[j * NB: (j + 1) * NB]
        shift = np.uint64(j * BITS)
        to_a = (nact - 1 - t) % 2 == 0  # pass t writes a when nact-1-t is even: the last one does
        if t == 0:
            _r64_first(x, a if to_a else b, off, shift)
            if nact == 1:
                for i in range(d):
                    a[2 * i] = f64_bits(unkey64(a[2 * i]))
        elif to_a:
            _r64_mid(b, a, off, shift, t == nact - 1, d)
        else:
            _r64_mid(a, b, off, shift, False, d)
        t += 1


@njit(cache=True)
def _r32_first(x, dst, off, shift):
    # The 8-byte passes update the bucket's slot in memory for every element: keeping it in a
    # register while the digit repeats (_r64_first) mispredicts wherever the digit changes
    # irregularly, which costs these short passes more than the chained slot costs on ties
    # (docs/design.md#numba-cpu).
    for i in range(x.shape[0]):
        p = (np.uint64(key32(x[i])) << np.uint64(32)) | np.uint64(i)
        b = np.int64((p >> shift) & MASK)
        q = off[b]
        dst[q] = p
        off[b] = q + 1


@njit(cache=True)
def _r32_mid(src, dst, off, shift, d):
    for i in range(d):
        p = src[i]
        b = np.int64((p >> shift) & MASK)
        q = off[b]
        dst[q] = p
        off[b] = q + 1


@njit(cache=True)
def _r32_last(src, dst, off, shift, d):
    # writes the common record format: float64 bits of the value, then the index
    for i in range(d):
        p = src[i]
        b = np.int64((p >> shift) & MASK)
        q = off[b]
        dst[2 * q] = f64_bits(packed_value(p))
        dst[2 * q + 1] = p & LOW32
        off[b] = q + 1


@njit(cache=True)
def _r32_expand(a, d):
    # packed records in a[:d] -> interleaved records in a[:2d], back to front so nothing unread
    # is overwritten (slot k of the output covers packed slots 2k and 2k+1, both >= k)
    for k in range(d - 1, -1, -1):
        p = a[k]
        a[2 * k + 1] = p & LOW32
        a[2 * k] = f64_bits(packed_value(p))


@njit(cache=True)
def _sort_split_f32(x, a, b, hist, cand64, materialize):
    """sort_f32 for a row with a heavy key candidate (``_sort_split_f64``): the other keys as
    packed records in front of b, with ``materialize`` the candidate's indices in its tail, then
    the radix passes over the others (the last writes the interleaved records into a[:2n]) and
    the run inserted or returned (``_run_out``)."""
    d = x.shape[0]
    cand = np.uint64(key32(np.float32(unkey64(cand64))))
    top = 2 * d - 1
    n = 0
    m = 0
    lt = 0
    for i in range(d):
        k = np.uint64(key32(x[i]))
        heavy = k == cand
        if materialize:  # loop-invariant: compiled as two loops
            b[top - m] = np.uint64(i)
        b[n] = (k << np.uint64(32)) | np.uint64(i)
        m += heavy
        n += not heavy
        lt += k < cand
    ndig = 4
    h = hist[: ndig * NB]
    varying = _light_histograms(b, n, 1, ndig, 32, h)
    active = np.zeros(ndig, dtype=np.bool_)
    nact = _histograms(h, n, ndig, active, varying) if n > 0 else 0
    if nact == 0:  # the other keys are all equal (or none): in order, expanded
        for i in range(n):
            a[i] = b[i]
        _r32_expand(a, n)
    elif nact % 2 == 0:  # the passes from a, so that the last one reads b
        for i in range(n):
            a[i] = b[i]
    t = 0
    for j in range(ndig):
        if not active[j]:
            continue
        off = h[j * NB: (j + 1) * NB]
        shift = np.uint64(32 + j * BITS)
        if t == nact - 1:
            _r32_last(b, a, off, shift, n)
        elif t % 2 == nact % 2:
            _r32_mid(a, b, off, shift, n)
        else:
            _r32_mid(b, a, off, shift, n)
        t += 1
    return _run_out(a, b, n, lt, m, np.float64(unkey32(np.uint32(cand))), materialize)


@njit(cache=True)
def sort_f32(x, a, b, hist):
    """Stable argsort of float32 x into the same interleaved records as sort_f64.

    a[2k] = float64 bits of the k-th smallest value, a[2k+1] = its index in x. a and b are uint64
    arrays of 2 * len(x) (b is scratch), hist int64 scratch of HIST_SIZE. The intermediate passes
    move packed records (key << 32 | index, 8 bytes) between a[:d] and b[:d]; the last pass reads
    b[:d] and writes the interleaved records into a.
    """
    _sort_f32(x, a, b, hist, True)


@njit(cache=True)
def _sort_f32(x, a, b, hist, materialize):
    """sort_f32, or sort_split_records' (lt, m, v) with ``materialize`` False (``_sort_f64``)."""
    d = x.shape[0]
    if d <= INSERTION_MAX:
        for i in range(d):
            p = (np.uint64(key32(x[i])) << np.uint64(32)) | np.uint64(i)
            j = i - 1
            while j >= 0 and a[j] > p:
                a[j + 1] = a[j]
                j -= 1
            a[j + 1] = p
        _r32_expand(a, d)
        return 0, 0, 0.0
    if is_sorted(x):
        for i in range(d):
            a[2 * i] = f64_bits(np.float64(x[i]))
            a[2 * i + 1] = np.uint64(i)
        return 0, 0, 0.0
    found, cand = heavy_candidate(x, hist)
    if found:
        return _sort_split_f32(x, a, b, hist, cand, materialize)
    ndig = 4
    h = hist[: ndig * NB]
    h[:] = 0
    prev = np.uint64(key32(x[0]))  # as in sort_f64: runs of equal keys counted once
    varying = _varying_f32(x)
    run = 0
    for i in range(d):
        k = np.uint64(key32(x[i]))
        if k != prev:
            for j in range(ndig):
                h[j * NB + np.int64((prev >> np.uint64(j * BITS)) & MASK)] += run
            prev = k
            run = 0
        run += 1
    for j in range(ndig):
        h[j * NB + np.int64((prev >> np.uint64(j * BITS)) & MASK)] += run
    active = np.zeros(ndig, dtype=np.bool_)
    nact = _histograms(h, d, ndig, active, varying)
    if nact == 0:
        for i in range(d):
            a[2 * i] = f64_bits(np.float64(x[i]))
            a[2 * i + 1] = np.uint64(i)
        return 0, 0, 0.0
    t = 0
    for j in range(ndig):
        if not active[j]:
            continue
        off = h[j * NB: (j + 1) * NB]
        shift = np.uint64(32 + j * BITS)
        if nact == 1:
            _r32_first(x, a, off, shift)
            _r32_expand(a, d)
        elif t == nact - 1:
            _r32_last(b, a, off, shift, d)
        elif t == 0:
            # pass t writes b when nact-2-t is even, so that the pass before the last writes b
            _r32_first(x, b if (nact - 2 - t) % 2 == 0 else a, off, shift)
        elif (nact - 2 - t) % 2 == 0:
            _r32_mid(a, b, off, shift, d)
        else:
            _r32_mid(b, a, off, shift, d)
        t += 1
    return 0, 0, 0.0


def sort_records(x, a, b, hist):
    """Dispatch (inside jitted code) to sort_f64 or sort_f32 by x's dtype."""
    raise NotImplementedError  # only callable from jitted code


@overload(sort_records, jit_options={"cache": True})
def _sort_records_impl(x, a, b, hist):
    if x.dtype == types.float64:
        return lambda x, a, b, hist: sort_f64(x, a, b, hist)
    return lambda x, a, b, hist: sort_f32(x, a, b, hist)


def sort_split_records(x, a, b, hist):
    """sort_records with a heavy key's run left implicit: returns (lt, m, v), the records of the
    d - m other elements in a[:2(d - m)] and the run's m elements, all equal to v (float64), at
    ranks lt..lt+m-1 (``_core.split_source``); m = 0 when every record is in a (no heavy key)."""
    raise NotImplementedError  # only callable from jitted code


@overload(sort_split_records, jit_options={"cache": True})
def _sort_split_records_impl(x, a, b, hist):
    if x.dtype == types.float64:
        return lambda x, a, b, hist: _sort_f64(x, a, b, hist, False)
    return lambda x, a, b, hist: _sort_f32(x, a, b, hist, False)
