"""Numba-backend specifics. The generic, registry-parametrised tests (tests/test_prox.py) already
cover exactness, properties, L1/rho, dtypes and bad input for every numba algorithm; this file
covers what only this backend has: its radix sort, batched rows, warm start, lazy compilation
without per-call recompilation, and memory use."""
from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import wsrbench
from wsrbench import cases

from .conftest import value_tol

numba = pytest.importorskip("numba")
NB = pytest.importorskip("wsrbench.backends.numba")
from wsrbench.backends.numba import sort as nsort  # noqa: E402
from wsrbench.core.warm_start import ProxState  # noqa: E402

ALGS = NB.ALGORITHMS
DTYPES = (np.float32, np.float64)


def _reference(x, lam, **kw):
    return wsrbench.prox(x, lam, backend="numpy", **kw)


def _close(w, ref, x, lam):
    d = x.shape[-1]
    scale = float(np.max(np.abs(x))) + lam if x.size else 1.0
    err = np.max(np.abs(w.astype(np.float64) - ref.astype(np.float64))) if x.size else 0.0
    return err <= value_tol(d, x.dtype, scale), err


# --------------------------------------------------------------------------------------------
# The radix argsort

def _tricky(d, dtype, rng):
    fin = np.finfo(dtype)
    pool = np.array([0.0, -0.0, 1.0, -1.0, fin.tiny, -fin.tiny, fin.smallest_subnormal,
                     -fin.smallest_subnormal, fin.max, -fin.max, 0.5, 2.0], dtype=dtype)
    return [
        rng.standard_normal(d).astype(dtype),
        rng.choice(pool, d),
        np.round(rng.standard_normal(d) * 3).astype(dtype),  # many ties
        np.full(d, 1.5, dtype),  # one key: every pass skipped
        (1.0 + rng.random(d)).astype(dtype),  # one binade: exponent digits skipped
        np.sort(rng.standard_normal(d)).astype(dtype),  # sorted: the sort is skipped
        np.sort(rng.standard_normal(d))[::-1].astype(dtype),
    ]


@numba.njit(cache=False)
def _sort_records(x, a, b, h):
    nsort.sort_records(x, a, b, h)


def _sort_of(x):
    d = x.shape[0]
    a = np.empty(2 * d, np.uint64)
    b = np.empty(2 * d, np.uint64)
    _sort_records(x, a, b, np.empty(nsort.HIST_SIZE, np.int64))
    return a


def _assert_sorts_exactly(x, a):
    d = x.shape[0]
    vals, order = a.view(np.float64)[0::2], a[1::2].astype(np.int64)
    assert np.array_equal(np.sort(order), np.arange(d))  # a permutation
    assert np.array_equal(x[order], np.sort(x))  # that sorts x
    assert np.array_equal(vals, x[order].astype(np.float64))  # values decoded exactly
    # stable on the sort's keys (the float order with -0.0 before +0.0): equal keys keep
    # their input order, whichever passes ran as one or two streams
    u = x.view(np.uint64 if x.dtype == np.float64 else np.uint32)
    top = u >> (u.dtype.itemsize * 8 - 1)
    keys = np.where(top == 1, ~u, u | (u.dtype.type(1) << (u.dtype.itemsize * 8 - 1)))
    assert np.array_equal(order, np.argsort(keys, kind="stable"))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [0, 1, 2, 31, 32, 33, 64, 257, 5000, 5001])
def test_radix_argsort_sorts_exactly(dtype, d):
    rng = np.random.default_rng(d)
    for x in _tricky(d, dtype, rng):
        _assert_sorts_exactly(x, _sort_of(x))


def _heavy_rows(d, dtype, rng):
    """Rows where one key holds a large share: the sort splits it off. The other keys vary in
    1 to all digits (odd and even pass counts), are all equal, or are almost none; the heavy key
    is the smallest, the largest, in the middle, or +0.0 beside -0.0."""
    eps = float(np.finfo(dtype).eps)
    rows = []
    for share in (0.5, 0.999):
        m = int(share * d)
        for span in (1, 1 << 12, 1 << 20, None):
            rest = (rng.standard_normal(d - m) if span is None
                    else 1.0 + eps * rng.integers(0, span, d - m))
            for heavy in (0.5, 1.0 + eps * (span or 1) / 2, 3.0):
                rows.append(np.concatenate([np.full(m, heavy), rest]))
        rows.append(np.concatenate([np.full(m, 2.0), np.full(d - m, -7.0)]))  # others all equal
    zeros = np.concatenate([np.full(d // 2, 0.0), np.full(d // 8, -0.0),
                            rng.choice([-1.0, 1.0, -0.0], d - d // 2 - d // 8)])
    rows.append(zeros)
    return [rng.permutation(r).astype(dtype) for r in rows]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [nsort.HEAVY_MIN_D, 5001])
def test_radix_argsort_splits_a_heavy_key(dtype, d):
    rng = np.random.default_rng(d)
    for x in _heavy_rows(d, dtype, rng):
        found, _ = nsort.heavy_candidate(x, np.empty(nsort.HIST_SIZE, np.int64))
        assert found  # the split path runs
        _assert_sorts_exactly(x, _sort_of(x))


@pytest.mark.parametrize("dtype", DTYPES)
def test_prox_of_tie_heavy_rows_is_the_reference(dtype):
    """The whole prox on rows that take the heavy-key split, the skipped magnitude digits and
    PAVA's in-place pooling: the reference's partition, rounds (pushes + poolings) and values."""
    rng = np.random.default_rng(2)
    d = 6000
    pruned = rng.standard_normal(d)
    pruned[rng.random(d) < 0.7] = 0.0  # a pruned layer: most weights exactly zero
    rows = [(pruned, 0.05), cases.make("worst_pava", d, seed=3, dtype=dtype),
            cases.make("worst_imminent_collisions", d, seed=3, dtype=dtype),
            cases.make("quantized", d, seed=3, dtype=dtype), (-pruned, 2.0)]
    for x, lam in rows:
        x = np.asarray(x, dtype=dtype)
        w, info = wsrbench.prox_info(x, lam, backend="numba")
        ref, ref_info = wsrbench.prox_info(x, lam, backend="numpy")
        assert info.clusters == ref_info.clusters and info.rounds == ref_info.rounds
        ok, err = _close(w, ref, x, lam)
        assert ok, err


@numba.njit(cache=False)
def _split_sort(x, a, b, h):
    return nsort.sort_split_records(x, a, b, h)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
def test_implicit_heavy_run_is_the_materialized_one(dtype):
    """A prox without labels leaves a heavy key's run out of the sort's records: PAVA reads its
    value, the scatter fills w with its block. The split records with the run put back at lt are
    the full sort, and the answer has the bits, block count and rounds of the path that
    materializes the run (labels), itself the reference's (test_prox_of_tie_heavy_rows_is_the_
    reference). Rows: the sort's heavy rows (run smallest, largest, in the middle, +0.0 beside
    -0.0), the worst cases (run holding the median or not), a run of 30% in noise; lam from 0 (the
    runs of equal values) to one block, with L1 and rho."""
    rng = np.random.default_rng(7)
    d = 6000
    noisy = rng.standard_normal(d)
    noisy[rng.random(d) < 0.3] = 0.25
    heavy = _heavy_rows(d, dtype, rng) + [cases.make("worst_pava", d, seed=3, dtype=dtype)[0]]
    heavy = [x for x in heavy if not np.all(x[1:] >= x[:-1])]  # a sorted row skips the sort
    rows = heavy + [cases.make("worst_imminent_collisions", d, seed=3, dtype=dtype)[0],
                    noisy.astype(dtype)]
    uint = np.uint64 if dtype == np.float64 else np.uint32
    ran = 0
    for x in rows:
        a, b = np.empty(2 * d, np.uint64), np.empty(2 * d, np.uint64)
        lt, m, v = _split_sort(x, a, b, np.empty(nsort.HIST_SIZE, np.int64))
        if m == 0:  # no key took a quarter of the sample: the records are the full sort
            _assert_sorts_exactly(x, a)
            continue
        ran += 1
        run = np.flatnonzero(x.view(uint) == np.array(v, dtype=dtype).view(uint))
        assert run.size == m
        full = np.empty((d, 2), np.uint64)
        rec = a[: 2 * (d - m)].reshape(-1, 2)
        full[:lt], full[lt + m:] = rec[:lt], rec[lt:]
        full[lt: lt + m, 0] = np.array(v, np.float64).view(np.uint64)
        full[lt: lt + m, 1] = run
        _assert_sorts_exactly(x, full.reshape(-1))
        for lam, l1, rho in [(0.0, 0.0, 0.0), (1e-4, 0.0, 0.0), (0.05, 0.01, 0.3), (0.05, 0.0, 0.0),
                             (20.0, 0.0, 0.0)]:
            w = wsrbench.prox(x, lam, l1=l1, rho=rho, backend="numba")
            w_info, info = wsrbench.prox_info(x, lam, l1=l1, rho=rho, backend="numba")
            w_lab, lab_info = wsrbench.prox_info(x, lam, l1=l1, rho=rho, backend="numba",
                                                 labels=True)
            assert np.array_equal(w.view(uint), w_lab.view(uint))
            assert np.array_equal(w_info.view(uint), w_lab.view(uint))
            assert info.clusters == lab_info.clusters and info.rounds == lab_info.rounds
    assert ran >= len(heavy)


@pytest.mark.parametrize("dtype", DTYPES)
def test_singleton_values_are_value_of(dtype):
    """The value pass writes a singleton block (no L1, no rho) without value_of: the same bits
    as value_of (the labels path), including the middle rank of an odd row, whose shift is 0
    and whose -0.0 stays -0.0, and rows with blocks of several elements between singletons."""
    rng = np.random.default_rng(12)
    uint = np.uint64 if dtype == np.float64 else np.uint32
    k = 1500
    mid = np.concatenate([-np.arange(1.0, k + 1), [-0.0], np.arange(1.0, k + 1)])
    rows = [(rng.permutation(mid), 1e-3), (rng.permutation(mid), 50.0)]
    for d in (999, 1000, 5001):
        rows += [(rng.standard_normal(d), 1e-3), (rng.standard_normal(d), 0.3),
                 (rng.uniform(-1, 1, d), 1e-5)]
    for x, lam in rows:
        x = x.astype(dtype)
        w = wsrbench.prox(x, lam, backend="numba")
        w_lab, _ = wsrbench.prox_info(x, lam, backend="numba", labels=True)
        assert np.array_equal(w.view(uint), w_lab.view(uint))
    w = wsrbench.prox(rows[0][0].astype(dtype), 1e-3, backend="numba")
    assert np.signbit(w[rows[0][0] == 0]).all()  # the middle rank: shift 0, -0.0 kept


def _window_rows(d, rng):
    """float64 rows for the 32-bit window sort, with whether its ties fit the move budget: varying
    bits within 32 (no ties to order), in 1 to 4 window digits (odd and even pass counts), ties in
    the window between distinct keys (few, or so many that the full sort takes over), equal keys,
    -0.0 beside +0.0, subnormals."""
    eps = np.finfo(np.float64).eps
    k = rng.integers(0, 1 << 20, d)
    rows = [(1.0 + eps * k, True),  # varying bits in one window: s = 0
            (rng.standard_normal(d), True),
            (np.round(rng.standard_normal(d), 2), True),  # equal keys: runs without moves
            # 0.0 and the smallest subnormal tie in the window: long runs to order, or hand over
            (rng.choice([-0.0, 0.0, 1.0, -1.0, 5e-324, -5e-324], d), None)]
    for digits in (1, 2, 3, 4):  # bits 52 - 8 digits .. 51 vary: 'digits' passes
        rows.append((1.0 + eps * 2.0 ** (52 - 8 * digits) * rng.integers(0, 1 << (8 * digits), d),
                     True))
    # ties in the window: signs differ (the window starts at the sign bit), low bits vary
    few = rng.standard_normal(d)
    few[: d // 50] = 1.0 + eps * rng.integers(0, 1 << 10, d // 50)
    rows.append((rng.permutation(few), True))
    rows.append((np.where(rng.random(d) < 0.5, -1.0, 1.0) * (1.0 + eps * k), False))
    return rows


def test_float64_window_sort_orders_its_ties_or_hands_over():
    """Up to PREFIX_MAX_D, float64 rows sort through a 32-bit window of their keys; keys tied in
    it are ordered by insertion, and beyond d moves the full sort runs: exact either way (rows
    marked None may take either branch)."""
    rng = np.random.default_rng(11)
    for d in (33, 1000, 4099):
        for x, fits in _window_rows(d, rng):
            a, b = np.empty(2 * d, np.uint64), np.empty(2 * d, np.uint64)
            done = nsort._sort_prefix_f64(x, a, b, np.empty(nsort.HIST_SIZE, np.int64))
            assert fits is None or done == fits, (d, x[:4])
            if done:
                _assert_sorts_exactly(x, a)
            _assert_sorts_exactly(x, _sort_of(x))
    # the same rows with a heavy key: the others sort through their window after the split
    d = 4099
    branches = set()
    for x, _ in _window_rows(d, rng):
        x[rng.random(d) < 0.6] = 3.0
        hist = np.empty(nsort.HIST_SIZE, np.int64)
        found, cand = nsort.heavy_candidate(x, hist)
        assert found
        a, b = np.empty(2 * d, np.uint64), np.empty(2 * d, np.uint64)
        done, n, m, lt = nsort._split_prefix_f64(x, a, b, hist, cand, True)
        branches.add(done)
        if done:
            nsort._run_out(a, b, n, lt, m, nsort.unkey64(cand), True)  # the run inserted
            _assert_sorts_exactly(x, a)
        _assert_sorts_exactly(x, _sort_of(x))
    assert branches == {True, False}
    x = rng.standard_normal(nsort.PREFIX_MAX_D + 1)  # beyond it: the full sort
    _assert_sorts_exactly(x, _sort_of(x))


def test_float64_narrow_window_sort_orders_its_ties_or_hands_over():
    """Up to NARROW_MAX_D, float64 rows first try a 24-bit window in two 12-bit passes: exact
    when done (window ties ordered by insertion, or none to order when the bits below the window
    never vary); it hands over when a digit is constant or the ties exceed d moves, and the
    sort is exact either way."""
    rng = np.random.default_rng(12)
    eps = np.finfo(np.float64).eps
    for d in (33, 1000, 4099, nsort.NARROW_MAX_D):
        k = rng.integers(0, 1 << 20, d)
        must = {"done": [1.0 + eps * k,  # 20 varying bits: all in the window, nothing to order
                         rng.standard_normal(d),  # ties in the window: few and short
                         np.round(rng.standard_normal(d), 2)],  # equal keys only
                "handed over": [
                    # one window for every value of each sign: runs far beyond d moves
                    np.where(rng.random(d) < 0.5, -1.0, 1.0) * (1.0 + eps * k),
                    1.0 + eps * 2.0 ** 44 * rng.integers(0, 256, d)]}  # the low digit constant
        for expect, rows in must.items():
            for x in rows:
                a, b = np.empty(2 * d, np.uint64), np.empty(2 * d, np.uint64)
                done = nsort._sort_narrow_f64(x, a, b, np.empty(nsort.HIST_SIZE, np.int64))
                assert done == (expect == "done"), (d, expect, x[:3])
                if done:
                    _assert_sorts_exactly(x, a)
                _assert_sorts_exactly(x, _sort_of(x))
        for x, _ in _window_rows(d, rng):
            a, b = np.empty(2 * d, np.uint64), np.empty(2 * d, np.uint64)
            if nsort._sort_narrow_f64(x, a, b, np.empty(nsort.HIST_SIZE, np.int64)):
                _assert_sorts_exactly(x, a)


def test_a_heavy_key_takes_its_share_of_the_row():
    # the sample only nominates: a key that is frequent among the sampled elements but rare in
    # the row still sorts exactly (the split is exact for any count)
    d = 1 << 14
    rng = np.random.default_rng(5)
    x = rng.standard_normal(d)
    x[:: d // nsort.HEAVY_SAMPLE] = 0.25
    found, key = nsort.heavy_candidate(x, np.empty(nsort.HIST_SIZE, np.int64))
    assert found and key == nsort.key64(0.25)
    _assert_sorts_exactly(x, _sort_of(x))
    hist = np.empty(nsort.HIST_SIZE, np.int64)
    assert not nsort.heavy_candidate(rng.standard_normal(d), hist)[0]
    assert not nsort.heavy_candidate(np.full(nsort.HEAVY_MIN_D - 1, 0.25), hist)[0]  # too short


# --------------------------------------------------------------------------------------------
# Batched rows

@pytest.mark.parametrize("alg", ALGS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_batched_rows_equal_per_row_calls(alg, dtype):
    rng = np.random.default_rng(7)
    fams = ["gaussian", "quantized", "all_equal", "worst_pava", "heavy_tailed"]
    d = 257
    X = np.stack([cases.make(fams[i % len(fams)], d, seed=i, dtype=dtype)[0] for i in range(13)])
    X[3] = np.sort(X[3])  # an already sorted row takes the no-sort path
    X = X + rng.standard_normal(X.shape).astype(dtype) * 0  # a fresh array
    lam = 0.05
    W, info = wsrbench.prox_info(X, lam, l1=0.01, rho=0.25, algorithm=alg, backend="numba")
    for i in range(X.shape[0]):
        w, inf = wsrbench.prox_info(X[i], lam, l1=0.01, rho=0.25, algorithm=alg, backend="numba")
        assert np.array_equal(W[i], w)  # same kernels, bit for bit
        assert info.rounds[i] == inf.rounds and info.clusters[i] == inf.clusters
        ok, err = _close(w, _reference(X[i], lam, l1=0.01, rho=0.25), X[i], lam)
        assert ok, err


def test_batched_rows_many_small_and_few_large():
    rng = np.random.default_rng(3)
    for shape in [(300, 64), (3, 40000)]:
        X = rng.standard_normal(shape)
        W = wsrbench.prox(X, 0.1, backend="numba")
        for i in range(shape[0]):
            assert np.array_equal(W[i], wsrbench.prox(X[i], 0.1, backend="numba"))


@pytest.mark.slow
def test_search_collisions_parallel_long_row_matches_serial_rows():
    # one long row resolves each level's pairs with prange; rows of a 2-D input use the serial
    # partition: same blocks, rounds and values
    d = NB.search_collisions.PARALLEL_MIN_D + 123
    x, lam = cases.make("gaussian", d, seed=1)
    w, info = wsrbench.prox_info(x, lam, algorithm="search_collisions", backend="numba")
    W, infos = wsrbench.prox_info(np.stack([x, x]), lam, algorithm="search_collisions",
                                  backend="numba")
    assert np.array_equal(W[0], w) and np.array_equal(W[1], w)
    assert infos.rounds[0] == info.rounds and infos.clusters[0] == info.clusters
    ref, rinfo = wsrbench.prox_info(x, lam, algorithm="search_collisions", backend="numpy")
    assert (info.rounds, info.clusters) == (rinfo.rounds, rinfo.clusters)
    assert _close(w, ref, x, lam)[0]


def test_non_contiguous_and_readonly_input():
    X = np.random.default_rng(0).standard_normal((40, 30))
    ref = wsrbench.prox(np.ascontiguousarray(X.T), 0.2, backend="numba")
    assert np.array_equal(wsrbench.prox(X.T, 0.2, backend="numba"), ref)
    Y = np.ascontiguousarray(X.T)
    Y.flags.writeable = False
    assert np.array_equal(wsrbench.prox(Y, 0.2, backend="numba"), ref)


# --------------------------------------------------------------------------------------------
# PAVA and the finishing step

def test_pava_only_reads_the_records():
    """The tie rule reads the sorted values from the records' value slots after PAVA
    (docs/design.md#ties): PAVA leaves the records as the sort wrote them, and its stack (popped
    means recomputed) is the reference's, pooling for pooling."""
    from wsrbench.backends.numba import pava as npava
    from wsrbench.backends.numpy import pava as ref_pava

    rng = np.random.default_rng(5)
    d = 2000
    rows = [cases.make("gaussian", d), cases.make("worst_pava", d),  # deep stack, many pops
            (np.round(rng.standard_normal(d) * 3), 0.05)]  # runs of ties
    for x, lam in rows:
        order = np.argsort(x, kind="stable")
        xs = x[order].astype(np.float64)
        rec = np.empty(2 * d, np.uint64)
        rec[0::2] = xs.view(np.uint64)
        rec[1::2] = order
        before = rec.copy()
        center = xs[d // 2]
        spare = np.empty(2 * d, np.uint64)
        nblk, merges, _, _ = npava.pava_stack(rec, d, lam, center, spare[:d].view(np.float64),
                                              spare[d:])
        assert np.array_equal(rec, before)
        starts, rounds, _ = ref_pava.partition(xs - center, lam)
        assert merges > 0 and d + merges == rounds
        assert np.array_equal(spare[d:d + nblk].astype(np.int64), starts)


def _ref_means(T, a, sizes, d, c):
    """The reference's pooled means (block_mean) of the blocks [a, a + s), x sum T, vectorised
    with the same operations."""
    s = np.asarray(sizes, dtype=np.int64)
    return (T + c * (s * (d - a - (a + s))).astype(np.float64)) / s.astype(np.float64)


def test_tie_run_stretch_is_sound_and_not_idle():
    """_tie_run certifies a stretch of pushes of a run at the centre (n_sum = 0) only when every
    one of them takes the fast path as the reference computes it: the top's mean >= the next
    element's y, and the pooled mean > the mean of the block below. Checked element by element
    on stretches whose decisions hinge on rounding (b_mean within a few ulps of the smallest
    pooled mean; T that puts the top's mean at the next y), both signs of T, with and without a
    block below; it must also certify most stretches that stop short of the crossing."""
    from wsrbench.backends.numba import pava as npava

    rng = np.random.default_rng(9)
    held = 0
    cases_run = 0
    for _ in range(3000):
        d = int(rng.integers(50, 200000))
        c = float(rng.choice([1e-9, 1e-6, 1e-3, 1.0])) / (d - 1)
        a = int(rng.integers(0, d // 2))
        s_lo = int(rng.integers(1, max(2, (d - a) // 4)))
        s_hi = int(rng.integers(s_lo + 8, max(s_lo + 9, d - a + 1)))
        s_hi = min(s_hi, d - a)
        if s_hi - s_lo < 8:
            continue
        kind = rng.integers(0, 4)
        if kind == 3:  # the top's mean at the next element's y: T/s_lo + c (s_lo + 1) = 0
            T = float(-c * s_lo * (s_lo + 1)) * (1.0 + float(rng.integers(-4, 5)) * 2.0 ** -52)
        else:
            T = float(rng.standard_normal() * rng.choice([1e-12, 1e-3, 1.0, 1e3]) * s_lo)
        means = _ref_means(T, a, np.arange(s_lo + 1, s_hi + 1), d, c)
        depth = 0 if kind == 3 else int(rng.integers(0, 2))
        if kind in (0, 3):  # b_mean within ulps of the smallest pooled mean (at an end)
            b = float(means.min())
            for _ in range(int(rng.integers(-3, 4))):
                b = float(np.nextafter(b, np.inf))
            for _ in range(int(rng.integers(0, 4))):
                b = float(np.nextafter(b, -np.inf))
        elif kind == 1:  # short of the crossing
            b = float(means.min() - abs(means.min()) * 10.0 ** rng.uniform(-15, -1) - 1e-300)
        else:
            b = float(means.min() - rng.uniform(0, 1) * (abs(means.max()) + c))
        D = float(d - 2 * a)
        ok = npava._stretch_holds(T, float(s_lo), float(s_hi), b, depth, D, c, d)
        # the reference's decisions, element by element
        prev = _ref_means(T, a, np.arange(s_lo, s_hi), d, c)
        ys = 0.0 + c * (d - 2 * (a + np.arange(s_lo, s_hi)) - 1).astype(np.float64)
        truth = bool(np.all(prev >= ys)) and (depth == 0 or bool(np.all(means > b)))
        assert truth or not ok, (d, c, a, s_lo, s_hi, T, b, depth)
        cases_run += 1
        held += ok
    assert cases_run > 2000 and held > cases_run // 5


def test_quotient_ge_is_the_divisions_comparison():
    """_quotient_ge(num, size, t) decides fl(num / size) >= t as the division does, for t at
    and a few floats around the rounded quotient (where the residual signs cannot settle it
    and it divides), far from it, at zero, and for sizes of one to 2^40."""
    from wsrbench.backends.numba import pava as npava

    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(4000):
        size = float(rng.choice([1, 2, 3, 7, 1000, 123457, 2 ** 40 + 1]))
        num = float(rng.standard_normal() * 10.0 ** rng.integers(-300, 300))
        if rng.random() < 0.05:
            num = 0.0
        q = num / size
        ts = [q, -q, 0.0, q * 2.0, q * 0.5]
        for steps in range(1, 4):
            ts += [float(np.nextafter(q, np.inf)), float(np.nextafter(q, -np.inf))]
            q_up = q_dn = q
            for _ in range(steps):
                q_up = float(np.nextafter(q_up, np.inf))
                q_dn = float(np.nextafter(q_dn, -np.inf))
            ts += [q_up, q_dn]
        for t in ts:
            assert npava._quotient_ge(num, size, t) == (q >= t), (num, size, t)
            checked += 1
    assert checked > 40000


@pytest.mark.slow
def test_split_pava_is_the_reference_partition():
    """PAVA over a split source (the heavy run implicit, pushed by _tie_run: certified stretches
    and back-merges at the centre) gives the reference's partition, rounds, deepest stack and
    longest back-merge: pruned rows (70% zeros) at lam from one block to almost none,
    worst_pava and worst_imminent_collisions (one or two back-merges per tied push, then none),
    a run of 40% below and above the median."""
    from wsrbench.backends.numba import _core
    from wsrbench.backends.numba import pava as npava
    from wsrbench.backends.numpy import pava as ref_pava

    @numba.njit(cache=False)
    def split_pava(x, lam):
        d = x.shape[0]
        a = np.empty(2 * d, np.uint64)
        b = np.empty(2 * d, np.uint64)
        lt, m, v = nsort.sort_split_records(x, a, b, np.empty(nsort.HIST_SIZE, np.int64))
        src = _core.split_source(a, lt, m, v)
        center = _core.src_value(src, d // 2)
        nblk, merges, deepest, longest = npava.pava_stack(src, d, lam, center,
                                                          b[:d].view(np.float64), b[d:])
        return m, center, b[d:d + nblk].copy(), merges, deepest, longest

    rng = np.random.default_rng(4)
    rows = []
    for d in (6000, 50000):
        for share, at in ((0.7, 0.0), (0.4, -1.0), (0.4, 1.0)):
            x = rng.standard_normal(d)
            x[rng.random(d) < share] = at
            for lam in (1e-4, 0.05, 1.0, 30.0):
                rows.append((x, lam))
        rows.append(cases.make("worst_pava", d, seed=1))
    for dtype in DTYPES:
        # its heavy cluster is a split run in float32 (cascade_mass grows with the dtype's eps)
        extra = [cases.make("worst_imminent_collisions", 100000, seed=1, dtype=dtype)
                 ] if dtype == np.float32 else []
        for x, lam in rows + extra:
            x = np.asarray(x, dtype=dtype)
            m, center, starts, merges, deepest, longest = split_pava(x, lam)
            assert m > 0, (dtype, len(x), lam)
            xs = np.sort(x).astype(np.float64)
            ref_starts, rounds, stats = ref_pava.partition(xs - center, lam)
            assert np.array_equal(starts.astype(np.int64), ref_starts), (dtype, len(x), lam)
            assert x.shape[0] + merges == rounds
            assert (deepest, longest) == (stats["max_stack"], stats["longest_backmerge"])


def test_prox_pools_a_run_of_ties_that_pava_splits():
    """Rounding can leave PAVA's stack split inside a run of equal values (lam far below their
    spacing; rows found by a random search), at the first boundary or after others; the prox
    pools the run (docs/design.md#ties), with and without labels."""
    from wsrbench.backends.numba import pava as npava

    rows = [(('-0x1.c59f991b52baep+7', '0x1.e0853fe137c77p+7', '0x1.b379c3f9e1e5ep+9'),
             [4, 2, 4], 5.928643194128241e-18, 0),
            (('-0x1.46c25dc02d8fcp+4', '0x1.154ccef2ee102p+4', '0x1.f0de85c6593a7p+6'),
             [3, 4, 4], 1.9692509711904017e-14, 2)]
    rng = np.random.default_rng(0)
    for values, counts, lam, first in rows:
        x = np.repeat([float.fromhex(h) for h in values], counts)
        d = x.shape[0]
        rec = np.empty(2 * d, np.uint64)
        rec[0::2] = x.view(np.uint64)
        rec[1::2] = np.arange(d)
        spare = np.empty(2 * d, np.uint64)
        nblk, _, _, _ = npava.pava_stack(rec, d, lam, x[d // 2], spare[:d].view(np.float64),
                                         spare[d:])
        starts = spare[d:d + nblk].astype(np.int64)
        split = np.flatnonzero(x[starts[1:]] == x[starts[1:] - 1])
        assert split.size and split[0] == first  # the stack is split inside a run, there
        for row in (x, rng.permutation(x)):  # the sorted-row path and the sort's
            ref, ref_info = wsrbench.prox_info(row, lam, backend="numpy", labels=True)
            assert ref_info.clusters == 3
            for labels in (False, True):
                w, info = wsrbench.prox_info(row, lam, backend="numba", labels=labels)
                assert info.clusters == 3 and np.array_equal(w, ref)
                assert not labels or np.array_equal(info.labels, ref_info.labels)
            assert np.array_equal(wsrbench.prox(row, lam, backend="numba"), ref)


# --------------------------------------------------------------------------------------------
# Warm start

@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2000,), (4, 500)])
def test_warm_start_exact_and_uses_the_hint(dtype, shape):
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape).astype(dtype)
    state = ProxState()
    lam, l1, rho = 0.05, 0.01, 0.2
    for step in range(4):
        w, info = state.prox_info(x, lam, l1=l1, rho=rho)
        ref, rinfo = wsrbench.prox_info(x, lam, l1=l1, rho=rho, backend="numpy")
        for r in range(w.reshape(-1, shape[-1]).shape[0]):
            xr, wr, rr = (a.reshape(-1, shape[-1])[r] for a in (x, w, ref))
            ok, err = _close(wr, rr, xr, lam)
            assert ok, (step, r, err)
        assert np.array_equal(np.asarray(info.rounds), np.asarray(rinfo.rounds))
        assert np.array_equal(np.asarray(info.clusters), np.asarray(rinfo.clusters))
        if step == 0:
            assert np.all(state.last_moves == -1)  # nothing to go on yet
        else:
            assert np.all(state.last_moves >= 0), state.last_moves  # sorted along the hint
        # a small training step: few inversions with respect to the previous order
        x = (x + 1e-6 * rng.standard_normal(shape)).astype(dtype)
    assert state.order.shape == (int(np.prod(shape[:-1])), shape[-1])


def test_warm_start_useless_hint_falls_back_exactly():
    rng = np.random.default_rng(2)
    d = 20000
    state = ProxState(order=rng.permutation(d))
    x = rng.standard_normal(d)
    w = state.prox(x, 0.1)
    assert state.last_moves[0] == -1  # over budget: sorted from scratch
    assert np.array_equal(w, wsrbench.prox(x, 0.1, backend="numba"))
    # the order of this call is the next hint; the same x again costs no move at all
    state.prox(x, 0.1)
    assert state.last_moves[0] == 0
    assert np.array_equal(state.order[0], np.argsort(x, kind="stable"))


def test_warm_start_hint_poor_in_the_middle_is_sampled_and_skipped():
    rng = np.random.default_rng(4)
    d = 40000
    x = rng.standard_normal(d)
    order = np.argsort(x)
    order[d // 4: 3 * d // 4] = rng.permutation(order[d // 4: 3 * d // 4])  # scrambled middle
    state = ProxState(order=order)
    w = state.prox(x, 0.1)
    assert state.last_moves[0] == -1
    assert np.array_equal(w, wsrbench.prox(x, 0.1, backend="numba"))
    from wsrbench.backends.numba import warm

    rec = np.zeros(2 * d, np.uint64)
    rec[1::2] = order
    assert warm.estimate_moves(x, rec, 256, 1e9) > 10.0  # the probes see the scrambled half
    rec[1::2] = np.argsort(x)
    assert warm.estimate_moves(x, rec, 256, 1e9) == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1000,), (3, 400)])
@pytest.mark.parametrize("sigma", [1e-5, 1e-3])
def test_cluster_hint_follows_training_steps(dtype, shape, sigma):
    """Prox, then a step that spreads the tied weights a little (noise of sigma), repeated: the
    warm calls keep the exact partition of the reference, and once the blocks are few the
    cluster path orders the row (fewer PAVA pushes than values), docs/design.md#proxstate."""
    rng = np.random.default_rng(7)
    x = (0.05 * rng.standard_normal(shape)).astype(dtype)
    lam = 0.02
    state = ProxState()
    d = shape[-1]
    pushes = []
    for step in range(8):
        w, info = state.prox_info(x, lam, labels=True)
        ref, rinfo = wsrbench.prox_info(x, lam, backend="numpy", labels=True)
        for r in range(w.reshape(-1, d).shape[0]):
            ok, err = _close(w.reshape(-1, d)[r], ref.reshape(-1, d)[r], x.reshape(-1, d)[r], lam)
            assert ok, (step, r, err)
        np.testing.assert_array_equal(np.asarray(info.labels), np.asarray(rinfo.labels))
        assert wsrbench.certify(x, w, lam)
        pushes.append(max(s["pushes"] for s in info.stats))
        x = (w + sigma * rng.standard_normal(shape)).astype(dtype)
    assert pushes[0] == d  # cold
    assert all(p < d // 10 for p in pushes[-3:]), pushes  # clustered rows: units, not values


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("l1, rho", [(0.0, 0.0), (1e-3, 0.0), (0.0, 0.5)])
def test_one_block_rows_follow_training_steps(dtype, l1, rho):
    """A row whose prox is one block (a collapsed layer) is kept as such (flags[0] = ONE_BLOCK)
    and the next calls prove from x alone that it still pools (warm.one_block): the answer,
    labels and statistics are the reference's, step after step, with and without L1 and rho;
    and a step that splits the row falls back to the cluster path exactly."""
    from wsrbench.backends.numba import warm

    rng = np.random.default_rng(11)
    d = 5000
    x = (0.3 + 1e-3 * rng.standard_normal(d)).astype(dtype)
    lam = 1.0  # far above the collapse threshold (about 2e-3 here)
    state = ProxState()
    for step in range(6):
        if step == 4:  # spread the weights beyond what lam pools: several blocks again
            x = (x + 10.0 * rng.standard_normal(d)).astype(dtype)
        w, info = state.prox_info(x, lam, l1=l1, rho=rho, labels=True)
        ref, rinfo = wsrbench.prox_info(x, lam, l1=l1, rho=rho, backend="numpy", labels=True)
        ok, err = _close(w, ref, x, lam + l1)
        assert ok, (step, err)
        np.testing.assert_array_equal(np.asarray(info.labels), np.asarray(rinfo.labels))
        assert info.clusters == rinfo.clusters
        assert wsrbench.certify(x, w, lam, l1=l1) or rho > 0
        one = state._flags[0, 0] == warm.ONE_BLOCK
        assert one == (rinfo.clusters == 1), step
        if 0 < step < 4:
            assert state.last_moves[0] == 0 and info.stats[0]["pushes"] == 1
        x = (w + 1e-5 * rng.standard_normal(d)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_block_spread_bound_is_tight(dtype):
    """warm.spread_pools proves one block from the spread alone (spread <= c m). Two equal halves
    spread apart are the case that meets it: at 0.99 c m the reference's answer is one block and
    the warm call gives it without the histogram; at 1.01 c m the reference splits the halves,
    the bound declines, and the warm call still gives the reference's two blocks. A uniform row
    at 1.5 c m is one block through the histogram's certificate (the bound declines)."""
    from wsrbench.backends.numba import warm

    rng = np.random.default_rng(13)
    d = 4000
    base = np.where(np.arange(d) < d // 2, 0.5, 0.5 + 2.0 ** -10).astype(dtype)
    spread = float(base.max()) - float(base.min())
    uniform = (0.5 + spread * rng.random(d)).astype(dtype)
    uniform[:2] = 0.5, 0.5 + spread  # the same spread exactly
    for x, f, quick, blocks in [(base, 0.99, True, 1), (base, 1.01, False, 2),
                                (uniform, 1.5, False, 1)]:
        lam = spread / (f * d) * (d - 1)  # spread = f c d
        c = lam / (d - 1)
        assert bool(warm.spread_pools(spread, c, d)) == quick
        x = rng.permutation(x)
        state = ProxState()
        state.prox(x + np.asarray(0.25, dtype), lam)  # shifted: no tie with x
        w0 = np.full(d, 0.25, dtype)
        state.prox(w0, lam)  # one block: kept as such
        assert state._flags[0, 0] == warm.ONE_BLOCK
        w, info = state.prox_info(x, lam)
        ref, rinfo = wsrbench.prox_info(x, lam, backend="numpy")
        assert rinfo.clusters == blocks and info.clusters == blocks
        ok, err = _close(w, ref, x, lam)
        assert ok, (f, err)


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_block_with_outliers_follows_training_steps(dtype):
    """A row whose prox is one large block beside a few outliers (784-150-10's first layer after
    training): the cluster path takes the block as one unit (its histogram in interleaved ways,
    a group of more than HIST_SPLIT_MIN values) step after step, the partition the reference's
    and the values within tolerance."""
    rng = np.random.default_rng(12)
    d = 12000
    x = 1e-3 * rng.standard_normal(d)
    out = rng.choice(d, 30, replace=False)
    x[out] = rng.choice([-1.0, 1.0], 30) * rng.uniform(0.05, 0.5, 30)
    x = x.astype(dtype)
    lam = 0.05
    state = ProxState()
    pushes = []
    for step in range(6):
        w, info = state.prox_info(x, lam, labels=True)
        ref, rinfo = wsrbench.prox_info(x, lam, backend="numpy", labels=True)
        ok, err = _close(w, ref, x, lam)
        assert ok, (step, err)
        np.testing.assert_array_equal(np.asarray(info.labels), np.asarray(rinfo.labels))
        assert wsrbench.certify(x, w, lam)
        pushes.append(info.stats[0]["pushes"])
        x = (w + 2e-4 * rng.standard_normal(d)).astype(dtype)
    assert max(pushes[1:]) < 200, pushes  # the large block enters PAVA as one unit


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("far", [False, True])
def test_one_block_with_outliers_follows_training_steps(dtype, far):
    """A row whose prox is one block of all but a few values is kept with flags[0] = OUTLIERS
    (keep_partition) and the next calls take warm.with_outliers: the middle proved one unit from
    the histogram of x, the outliers found by one pass and sorted, PAVA over them and the middle,
    the kept hint untouched. Outliers tied among themselves, with and without labels, with L1
    and rho: the reference's partition, labels and values (within tolerance), step after step.
    A step that spreads more values than d // PEEL_OUTLIERS out of the block declines to the cluster
    path on the kept partition, still exact. Far outliers (``far``) leave the whole row's
    histogram too coarse for the block (its peel fails), and the row's core is binned again.
    """
    from wsrbench.backends.numba import warm

    rng = np.random.default_rng(21)
    d = 6000
    bulk = rng.permutation(d)
    out, bulk = bulk[:40], bulk[40:]
    x = np.empty(d)
    x[bulk] = 0.3 + 1e-4 * rng.standard_normal(bulk.size)
    # ties among the outliers
    x[out] = rng.choice([-1e3, -200.0, 500.0, 1e3] if far else [-0.5, -0.2, 0.9, 1.7], out.size)
    x = x.astype(dtype)
    lam = 0.05
    state = ProxState()
    for step in range(8):
        if step == 1 and far:  # the whole row's bins are too coarse: the core is binned again
            nb = warm.bins_for(d)
            counts = np.empty(warm.NBINS, np.int64)
            bsums = np.empty(warm.NBINS)
            lo, hi = float(x.min()), float(x.max())
            warm.group_histogram(x, 0, d, lo, hi - lo, counts, bsums, nb)
            assert warm.peel(counts, bsums, lam / (d - 1), hi - lo, d // warm.PEEL_OUTLIERS,
                             nb)[2] < 0
        if step == 5:  # a tenth of the block spread far: more than the peel may take
            far = rng.choice(bulk, d // 10, replace=False)
            x[far] = (x[far] + 0.2 * rng.standard_normal(far.size)).astype(dtype)
        before = state.copy()
        for l1, rho in [(0.0, 0.0), (1e-3, 0.0), (0.0, 0.5)]:
            w, info = before.copy().prox_info(x, lam, l1=l1, rho=rho, labels=True)
            ref, rinfo = wsrbench.prox_info(x, lam, l1=l1, rho=rho, backend="numpy", labels=True)
            ok, err = _close(w, ref, x, lam + l1)
            assert ok, (step, l1, rho, err)
            np.testing.assert_array_equal(np.asarray(info.labels), np.asarray(rinfo.labels))
            assert info.clusters == rinfo.clusters
            assert wsrbench.certify(x, w, lam, l1=l1) or rho > 0
            plain = before.copy().prox(x, lam, l1=l1, rho=rho)  # without labels: the same
            np.testing.assert_array_equal(plain.view(np.uint8), w.view(np.uint8))
        w, info = state.prox_info(x, lam)
        proved = (before._recs is not None and np.array_equal(state._recs, before._recs)
                  and np.array_equal(state._flags, before._flags))  # the hint untouched
        largest = np.bincount(np.asarray(rinfo.labels)).max()  # (l1 leaves the partition)
        outliers = largest >= d - d // warm.KEEP_OUTLIERS and rinfo.clusters > 1
        mark = 0 if before._flags is None else before._flags[0, 0]
        assert proved == (mark in (warm.OUTLIERS, warm.ONE_BLOCK) and step != 5), step
        assert proved or not 1 <= step <= 4, step
        if proved:
            assert state._flags[0, 0] == warm.OUTLIERS and info.stats[0]["pushes"] < 50
        elif step == 5:  # declined: the cluster path ran and keeps no OUTLIERS mark this once
            assert state._flags[0, 0] in (1, warm.ONE_BLOCK)
        else:
            assert (state._flags[0, 0] == warm.OUTLIERS) == outliers, step
        x = np.where(np.isin(np.arange(d), out), x, w + 2e-5 * rng.standard_normal(d))
        x = x.astype(dtype)


def test_keep_partition_marks_one_block_with_outliers():
    """keep_partition marks flags[0] = OUTLIERS for a row of at least OUTLIERS_MIN_D values whose
    largest block leaves at most d // KEEP_OUTLIERS out, unless told not to (with_outliers just
    failed on the row), and keeps the partition itself either way; one block is ONE_BLOCK."""
    from wsrbench.backends.numba import warm

    for d in (warm.OUTLIERS_MIN_D - 1, warm.OUTLIERS_MIN_D, 20_000):
        k = d // warm.KEEP_OUTLIERS
        for others, outliers in [(k, True), (k + 1, True), (k, False), (3, True)]:
            starts = np.r_[np.arange(others // 2), np.arange(d - others + others // 2, d),
                           others // 2].astype(np.uint64)
            starts = np.sort(starts)
            nblk = starts.size
            rec = np.zeros(2 * d, np.uint64)
            flags = np.zeros(d, np.uint8)
            warm.keep_partition(flags, rec, starts, nblk, d, outliers)
            mark = outliers and d >= warm.OUTLIERS_MIN_D and others <= k
            assert flags[0] == (warm.OUTLIERS if mark else 1), (d, others, outliers)
            assert np.count_nonzero(flags) == nblk
        flags = np.zeros(d, np.uint8)
        warm.keep_partition(flags, np.zeros(2 * d, np.uint64), np.zeros(1, np.uint64), 1, d, True)
        assert flags[0] == warm.ONE_BLOCK


def test_bin_edge_is_the_histograms_binning():
    """warm._bin_edge(lo, hi, scale, t, nb) is the smallest value whose group_histogram bin is at
    least t: the value below it is in a lower bin, exactly, for spreads of many ulps and of a
    few (where the bins' arithmetic rounds), so value < edge decides bin < t as the histogram
    does."""
    from wsrbench.backends.numba import warm

    rng = np.random.default_rng(5)
    for lo, spread in [(-0.3, 0.7), (1.0, 1e-3), (1.0, 8 * 2.0 ** -52), (-2.0, 3 * 2.0 ** -51),
                       (0.0, 1e-300)]:
        hi = lo + spread
        spread = hi - lo
        for nb in (16, 100, 256):
            scale = nb / spread
            vals = np.r_[lo, hi, lo + spread * rng.random(200)]
            for t in range(0, nb + 1):
                e = warm._bin_edge(lo, hi, scale, t, nb)
                below = np.array([warm._bin_of(v, lo, scale, nb) < t for v in vals])
                np.testing.assert_array_equal(below, vals < e)
                if np.isfinite(e):
                    assert warm._bin_of(e, lo, scale, nb) >= t
                    assert warm._bin_of(np.nextafter(e, -np.inf), lo, scale, nb) < t


def test_one_block_declines_what_it_cannot_prove():
    """warm.one_block writes nothing and says so when the row does not provably pool, and for
    a row of zeros of both signs (whose block value is the reference's first value, -0.0)."""
    from wsrbench.backends.numba import warm

    d = 4000
    empty = np.zeros(0, dtype=np.int64)
    spare = np.zeros(2 * d, np.uint64)

    def one_block(x, w, lam):
        return warm.one_block(x, w, lam, 0.0, 0.0, empty, spare)[0] == 1

    x = np.linspace(-1.0, 1.0, d)
    c_need = cases.collapse_lam(x)
    for lam, expect in ((0.5 * c_need, False), (1.5 * c_need, True)):
        w = np.full(d, np.nan)
        assert one_block(x, w, lam) == expect
        if expect:
            np.testing.assert_allclose(w, np.full(d, x.mean()), rtol=0, atol=4 * 2.0 ** -52)
        else:
            assert np.isnan(w).all()
    z = np.zeros(d)
    z[::7] = -0.0
    w = np.full(d, np.nan)
    assert not one_block(z, w, 1.0) and np.isnan(w).all()
    state = ProxState()
    for _ in range(2):  # the second call has the one-block hint and declines to the cluster path
        out = state.prox(z, 1.0)
    np.testing.assert_array_equal(out.view(np.uint64), _reference(z, 1.0).view(np.uint64))


def test_histogram_of_the_row_is_the_histogram_of_its_records():
    """group_histogram reads records or the row itself (one_block) alike, interleaved ways and
    the tail included."""
    from wsrbench.backends.numba import warm

    rng = np.random.default_rng(4)
    for m in (100, warm.HIST_SPLIT_MIN + 3):
        v = rng.standard_normal(m)
        rec = np.zeros(2 * m, dtype=np.uint64)
        rec[0::2] = v.view(np.uint64)
        lo, spread = float(v.min()), float(np.ptp(v))
        nb = warm.bins_for(m)
        out = [(np.empty(warm.NBINS, np.int64), np.empty(warm.NBINS)) for _ in range(2)]
        warm.group_histogram(rec, 0, m, lo, spread, *out[0], nb)
        warm.group_histogram(v, 0, m, lo, spread, *out[1], nb)
        np.testing.assert_array_equal(out[0][0][:nb], out[1][0][:nb])
        np.testing.assert_array_equal(out[0][1][:nb], out[1][1][:nb])
        t = np.minimum(((v - lo) * (nb / spread)).astype(np.int64), nb - 1)
        np.testing.assert_array_equal(out[0][0][:nb], np.bincount(t, minlength=nb))
        tol = 4 * m * np.finfo(float).eps * spread
        np.testing.assert_allclose(out[0][1][:nb], np.bincount(t, v - lo, minlength=nb),
                                   rtol=0, atol=tol)


def _prefix_condition_exact(v, c):
    """Exact rational check that the values v pool into one block on their own: every prefix of
    the j smallest has sum(mu - x) <= c j (m - j)."""
    from fractions import Fraction

    xs = [Fraction(float(t)) for t in np.sort(v)]
    m = len(xs)
    mu = sum(xs) / m
    cf = Fraction(float(c))
    acc = Fraction(0)
    for j in range(1, m):
        acc += mu - xs[j - 1]
        if acc > cf * j * (m - j):
            return False
    return True


@pytest.mark.parametrize("kind", ["uniform", "gaussian", "outliers", "two_ties"])
def test_pooling_certificate_is_sound_and_not_idle(kind):
    """certify_bins (the cluster path's proof that a spread group pools) never accepts a group
    that the exact rational check rejects, c swept across the group's own threshold; and it
    accepts every group at 4x that threshold (a certificate that never answers is useless)."""
    from wsrbench.backends.numba import warm

    rng = np.random.default_rng(3)
    accepted = 0
    for trial in range(64):
        m = int(rng.integers(65, 400)) if trial < 60 else 2048  # the last ones: all NBINS bins
        if kind == "uniform":
            v = rng.uniform(-1, 1, m)
        elif kind == "gaussian":
            v = rng.standard_normal(m)
        elif kind == "outliers":
            v = np.concatenate([1e-3 * rng.standard_normal(m - 3), rng.uniform(-1, 1, 3)])
        else:
            v = np.repeat([0.25, 0.75], [m // 3, m - m // 3]) + 1e-9 * rng.standard_normal(m)
        v = 0.1 + 1e-3 * v
        srt = np.sort(v)
        j = np.arange(1, m)
        need = float(np.max(np.cumsum(v.mean() - srt)[:-1] / (j * (m - j))))
        rec = np.zeros(2 * m, dtype=np.uint64)
        rec[0::2] = v.view(np.uint64)
        lo, hi = float(v.min()), float(v.max())
        counts = np.empty(warm.NBINS, dtype=np.int64)
        sums = np.empty(warm.NBINS)
        nb = warm.bins_for(m)
        warm.group_histogram(rec, 0, m, lo, hi - lo, counts, sums, nb)
        for ratio in (0.5, 0.9, 0.99, 1.0, 1.01, 1.1, 2.0, 4.0):
            c = ratio * need
            ok = warm.certify_bins(counts, sums, 0, nb, c, hi - lo, nb) == 0
            if ok:
                accepted += 1
                assert _prefix_condition_exact(v, c), (kind, trial, ratio)
            if ratio == 4.0:
                assert ok, (kind, trial)
    assert accepted >= 64


def test_warm_start_given_order_and_shape_change():
    rng = np.random.default_rng(5)
    x = rng.standard_normal(100)
    state = ProxState(order=np.argsort(x))
    w = state.prox(x, 0.3)
    assert state.last_moves[0] == 0
    assert np.array_equal(w, wsrbench.prox(x, 0.3, backend="numba"))
    y = rng.standard_normal(50)  # another length: the hint is dropped, not misused
    assert np.array_equal(state.prox(y, 0.3), wsrbench.prox(y, 0.3, backend="numba"))
    assert state.last_moves[0] == -1
    with pytest.raises(ValueError, match="permutation"):
        ProxState(order=[0, 0, 1])
    with pytest.raises(TypeError, match="integer"):
        ProxState(order=[0.0, 1.0])
    with pytest.raises(ValueError, match="lam"):
        state.prox(y, -1.0)


# --------------------------------------------------------------------------------------------
# Compilation: lazy, cached, no per-call recompilation

def test_importing_wsrbench_compiles_and_imports_no_numba():
    # (wsrbench.list_backends() may import numba: it probes numba.cuda for the numba_cuda backend)
    code = ("import sys, wsrbench, wsrbench.core.warm_start; "
            "assert 'numba' not in sys.modules, 'numba imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def _compiled_copies():
    """The dispatchers built from one Python function by wsrbench.backends.numba._rows."""
    from wsrbench.backends.numba import hull_bridges, search_collisions

    return ([alg.module.prox_rows for alg in ALGS.values()]
            + [search_collisions.partition, search_collisions.partition_parallel,
               hull_bridges.partition, hull_bridges.partition_parallel])


def test_compiled_copies_have_cache_entries_of_their_own():
    """numba keys its disk cache by file, name and first line (not by the jit options or the
    globals), and a closure's entry by its pickled cells: each copy needs a name of its own, and
    cells that pickle the same in every process (a dispatcher does not: it carries a per-process
    id, so a driver closing over its kernel would compile again in every process)."""
    dispatchers = _compiled_copies()
    bases = [f._cache._impl.filename_base for f in dispatchers]
    assert len(set(bases)) == len(bases), bases
    for f in dispatchers:
        for cell in f.py_func.__closure__ or ():
            assert isinstance(cell.cell_contents, (str, bytes, int)), (f, cell.cell_contents)


@pytest.mark.slow
def test_rows_drivers_load_from_the_disk_cache():
    """A second process loads every algorithm's rows driver from the disk cache, compiling none."""
    code = ("import numpy as np, wsrbench\n"
            "from wsrbench.backends.numba import ALGORITHMS\n"
            "for alg in ALGORITHMS:\n"
            "    for dt in (np.float32, np.float64):\n"
            "        wsrbench.prox(np.arange(12, dtype=dt).reshape(3, 4)[:, ::-1], 0.5,\n"
            "                      algorithm=alg, backend='numba')\n")
    exec(compile(code, "<warm-up>", "exec"), {})  # this process fills the cache where it is cold
    env = dict(os.environ, NUMBA_DEBUG_CACHE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                         text=True).stdout
    for alg in ALGS:
        name = f"_rows.prox_rows_{alg}-"
        assert any("data loaded" in ln and name in ln for ln in out.splitlines()), (alg, out)
        assert not any("data saved" in ln and name in ln for ln in out.splitlines()), (alg, out)


def test_no_recompilation_after_warm_up():
    from wsrbench.backends.numba import (
        end_collisions,
        hull_bridges,
        imminent_collisions,
        pava,
        search_collisions,
        warm,
    )

    dispatchers = [pava.prox_row, pava.prox_rows, imminent_collisions.prox_row,
                   imminent_collisions.prox_rows, end_collisions.prox_row,
                   end_collisions.prox_rows, search_collisions.prox_row,
                   search_collisions.prox_rows, warm.warm_row, warm.warm_rows,
                   hull_bridges.prox_row, hull_bridges.prox_rows]

    def calls(seed):
        rng = np.random.default_rng(seed)
        for dtype in DTYPES:
            for shape in [(37,), (3, 41), (1, 29)]:
                x = rng.standard_normal(shape).astype(dtype)
                for alg in ALGS:
                    wsrbench.prox(x, float(rng.random()), l1=0.01 * seed, rho=0.1 * seed,
                                  algorithm=alg, backend="numba")
                st = ProxState()
                st.prox(x, 0.1)
                st.prox(x, 0.2)

    calls(0)  # warm-up: compiles (or loads from the cache) each kernel once per dtype
    before = [len(f.signatures) for f in dispatchers]
    assert all(n <= 2 for n in before), before  # one specialisation per dtype at most
    calls(1)
    assert [len(f.signatures) for f in dispatchers] == before


# --------------------------------------------------------------------------------------------
# Memory

@pytest.mark.skipif(NB._LAZY_FREE is None, reason="madvise has no MADV_FREE here")
def test_large_workspace_is_a_lazily_freed_mapping_reused_across_calls(monkeypatch):
    """Beyond the kept size the scratch is one anonymous mapping, handed back with MADV_FREE after
    each call and reused by the next (no fresh pages to fault in); a concurrent call gets its own
    array; release_workspace unmaps it."""
    import threading

    monkeypatch.setattr(NB, "WORKSPACE_KEEP_WORDS", 1024)
    NB.release_workspace()
    rng = np.random.default_rng(11)
    d = 5000
    x = rng.standard_normal(d)
    ref = wsrbench.prox(x, 0.1, backend="numpy")
    w1 = wsrbench.prox(x, 0.1, backend="numba")
    big = NB._big
    assert big is not None and len(big) >= 8 * NB.WORDS_PER_ELEMENT * d
    assert _close(w1, ref, x, 0.1)[0]
    # a second call (after the pages were handed back) and a batch of rows reuse the mapping
    assert np.array_equal(wsrbench.prox(x, 0.1, backend="numba"), w1)
    X = rng.standard_normal((3, 2000))
    W = wsrbench.prox(X, 0.1, backend="numba")
    assert NB._big is big
    for i in range(3):
        assert np.array_equal(W[i], wsrbench.prox(X[i], 0.1, backend="numba"))
    # a row beyond it (the mapping is whole 2 MiB pages) replaces it
    wide = len(big) // (8 * NB.WORDS_PER_ELEMENT) + 1
    wsrbench.prox(rng.standard_normal(wide), 0.1, backend="numba")
    assert NB._big is not big and len(NB._big) >= 8 * NB.WORDS_PER_ELEMENT * wide
    # while the mapping is taken, another caller allocates its own scratch
    with NB._big_lock:
        out = []
        t = threading.Thread(target=lambda: out.append(wsrbench.prox(x, 0.1, backend="numba")))
        t.start()
        t.join()
    assert np.array_equal(out[0], w1)
    NB.release_workspace()
    assert NB._big is None
    assert np.array_equal(wsrbench.prox(x, 0.1, backend="numba"), w1)  # mapped again
    NB.release_workspace()


def test_memory_per_call():
    """Peak extra memory of a prox call, besides the input and the output.

    NumPy buffers (the 4-word/element workspace, the output, validation temporaries) are seen by
    tracemalloc; Numba's own allocations are not, so the NRT counters check that the kernels
    allocate only O(1) small buffers per call (histograms, flags), independent of d, and free
    them all.
    """
    from numba.core.runtime import rtsys

    d = 200_000
    x, lam = cases.make("gaussian", d)
    wsrbench.prox(x, lam, backend="numba")  # compiled
    NB.release_workspace()

    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        w = wsrbench.prox(x, lam, backend="numba")  # first call: builds the workspace
        first = tracemalloc.get_traced_memory()[1] - base - w.nbytes
        del w
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        w = wsrbench.prox(x, lam, backend="numba")  # steady state: reuses it
        steady = tracemalloc.get_traced_memory()[1] - base - w.nbytes
    finally:
        tracemalloc.stop()
    words = 8 * d
    assert first <= 4.25 * words, first / words  # workspace (4 words) + validation (1/8 word)
    assert steady <= 0.25 * words, steady / words

    def nrt_allocs(n):
        xs = cases.make("gaussian", n)[0]
        s0 = rtsys.get_allocation_stats()
        wsrbench.prox(xs, lam, backend="numba")
        s1 = rtsys.get_allocation_stats()
        return s1.alloc - s0.alloc, s1.free - s0.free

    from numba.core.runtime import _nrt_python

    was_on = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()  # off by default (or NUMBA_NRT_STATS=1)
    try:
        small, big = nrt_allocs(1000), nrt_allocs(100_000)
    finally:
        if not was_on:
            _nrt_python.memsys_disable_stats()
    assert small[0] == small[1] and big[0] == big[1]  # everything allocated is freed
    assert small[0] == big[0] <= 8  # a constant count of small buffers, none sized by d
