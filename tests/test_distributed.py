"""The sharded prox (wsrbench.distributed) on 1, 2, 3 and 4 gloo processes spawned here.

One group of processes per world size runs every case (process start-up, mostly importing torch,
is the cost); the answers are checked here against the single-process NumPy reference, the
certificate and the counters' bounds (docs/design.md#distributed). Every spawned run has a
timeout: a rank left waiting in a collective fails the test instead of hanging it.
"""
from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
from hypothesis import settings

import wsrbench
from wsrbench import cases as families

from .conftest import value_tol

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available():  # pragma: no cover
    pytest.skip("torch.distributed is not available", allow_module_level=True)

from wsrbench.bench import launch  # noqa: E402
from wsrbench.bench.sharded import summarize  # noqa: E402
from wsrbench.distributed import _local  # noqa: E402

from . import _distributed_worker  # noqa: E402
from ._exact import drawn, tie_problems  # noqa: E402
from .test_float_range import assert_matches_exact  # noqa: E402

WORLDS = [1, 2, 3, 4]
TIE_DRAWS = settings.default.max_examples  # tie and wide-row draws per world (build_cases)
BAD = ["dtype", "lam", "nan", "negative_lam", "ndim", "float16_tensor"]
NEEDS_TWO = {"dtype", "lam"}  # a disagreement needs two ranks


def _bounds(d, p, split, rng):
    if split == "even":
        return [(d * r) // p for r in range(p + 1)]
    if split == "one":  # everything on the last rank
        return [0] * p + [d]
    if split == "empty_first":
        inner = np.sort(rng.integers(0, d + 1, p - 1)).tolist() if p > 1 else []
        return [0, 0] + inner[1:] + [d] if p > 1 else [0, d]
    cuts = np.sort(rng.integers(0, d + 1, p - 1)).tolist()  # uneven, empty shards possible
    return [0] + cuts + [d]


def build_cases(p):
    """(name, case) pairs for world size p; every input is deterministic."""
    rng = np.random.default_rng([14, p])
    out = []

    def add(name, x, lam, *, l1=0.0, rho=0.0, split="random", **extra):
        x = np.asarray(x)
        out.append((name, {"x": x, "lam": float(lam), "l1": float(l1), "rho": float(rho),
                           "bounds": _bounds(x.shape[0], p, split, rng), **extra}))

    g = rng.standard_normal(257)
    for lam in [0.0, 1e-3, 0.05, 1.0, 1e30]:
        add(f"gaussian-lam{lam:g}", g, lam)
    add("gaussian-collapse", g, 1.01 * families.collapse_lam(g))
    # exactly at the collapse the last two blocks have equal means in exact arithmetic: which side
    # of the tie rounding lands on is not defined, so only the values are compared
    add("gaussian-at-collapse", g, families.collapse_lam(g), rounding_tie=True)
    add("gaussian-even", g, 0.2, split="even")
    add("gaussian-one-rank", g, 0.2, split="one")
    add("gaussian-empty-first", g, 0.2, split="empty_first")
    for lam in [1e-3, 0.3]:
        add(f"float32-lam{lam:g}", g.astype(np.float32), lam)
    q = rng.integers(-3, 4, size=240) * 0.5  # exact ties, across every rank boundary
    add("ties-random", q, 0.01)
    add("ties-even", q, 0.3, split="even")
    add("ties-float32", q.astype(np.float32), 0.02, split="even")
    add("all-equal", np.full(100, 2.5), 1.0)
    # ties whose pooled means round off the tied value, at lam = 0 and below any gap of x
    spread = rng.choice([0.024551469011268333, -0.09682455963503417, 0.06104621376709379], 240)
    for lam in [0.0, 5e-324, 1e-20]:
        add(f"ties-spread-lam{lam:g}", spread, lam)
    add("ties-lam0-l1", q, 0.0, l1=0.7, rho=0.5, split="even")
    wide = q.copy()
    wide[7] = 2.0 ** 60  # an outlier far beyond 1/eps of the rest
    add("wide-lam0", wide, 0.0)
    add("all-equal-lam0", np.full(100, -0.75), 0.0, split="even")
    add("all-equal-float32", np.full(64, 3.0, dtype=np.float32), 0.5)
    # the extreme range: +-0.9 of the float maximum (sums of centred values overflow unscaled)
    # with exact ties and values near the bottom of the range, the single-process scaled path's
    # decision on the global max (docs/design.md#errors-devices-rounding)
    for dtype in (np.float64, np.float32):
        big = 0.9 * float(np.finfo(dtype).max)
        ext = rng.choice([-big, big, 0.5 * big, 1.0, 2.0 ** -1000, 0.0], 120).astype(dtype)
        for lam in [0.0, 1.0, 0.01 * big, 0.1 * big]:  # 1.0: below the resolution of big
            add(f"extreme-{np.dtype(dtype).name}-lam{lam:g}", ext, lam)
        add(f"extreme-{np.dtype(dtype).name}-l1-rho", ext, 0.02 * big, l1=0.1 * big, rho=0.5)
    for fam in families.names():
        for dtype in (np.float64, np.float32):
            x, lam = families.make(fam, 300, seed=p, dtype=dtype)
            add(f"family-{fam}-{np.dtype(dtype).name}", x, lam)
    add("l1", g, 0.05, l1=0.1)
    add("rho", g, 0.05, rho=0.5)
    add("l1-rho", g, 0.5, l1=0.2, rho=1.0)
    for d in [0, 1, 2, 3]:
        add(f"tiny-d{d}", g[:d], 0.4)
    add("torch-float32", g.astype(np.float32), 0.05, torch=True)
    add("gather-baseline", g, 0.05, gather=True)
    for bad in BAD:
        if p > 1 or bad not in NEEDS_TWO:
            add(f"bad-{bad}", g, 0.05, bad=bad, split="even")
    # random small vectors (as tests/test_prox.py draws them): many exact ties or none,
    # magnitudes from 1e-8 to 1e8, lam from 0 to collapsing, random (often empty) shards
    for i in range(24):
        d = int(rng.integers(0, 48))
        dtype = (np.float64, np.float32)[i % 2]
        mag = float(rng.choice([1e-8, 1.0, 1e8]))
        if i % 3 == 0:
            base = rng.choice(rng.integers(-4, 5, size=int(rng.integers(1, 5))), size=d)
        else:
            base = rng.uniform(-1.0, 1.0, size=d)
        x = (base * mag).astype(dtype)
        lam = float(rng.choice([0.0, 1e-6, 1e-2, 0.3, 3.0, 1e6])) * mag
        add(f"random-{i}", x, lam, l1=(0.1 * mag if i % 5 == 0 else 0.0))
    # the tie and wide-row draws of tests/test_ties.py, as many as the hypothesis profile's
    # examples per property (every case is a few collectives in the one spawned group)
    for i, (x, lam, l1, rho) in enumerate(drawn(tie_problems(), TIE_DRAWS)):
        add(f"tie-draw-{i}", x, lam, l1=l1, rho=rho, tie_draw=True)
    add("after-errors", g, 0.05)  # the group still works after every rank raised together
    out.append(("measure", {"measure": ([3000], ["float32", "float64"]), "bounds": None}))
    if p > 1:  # a process group other than the default one (ranks 1..p-1)
        x = rng.standard_normal(150)
        out.append(("subgroup", {"subgroup": True, "x": x, "lam": 0.1, "l1": 0.0, "rho": 0.0,
                                 "bounds": _bounds(150, p - 1, "random", rng)}))
    return out


# Each world is one spawn of p processes running every case (10-40 s): slow tests, like every
# spawn; the everyday run checks the local fits in process (the tests at the end of this file).
@pytest.fixture(scope="module", ids=[f"p{p}" for p in WORLDS],
                params=[pytest.param(p, marks=pytest.mark.slow) for p in WORLDS])
def world(request):
    """(p, [(name, case, [result of each rank])]) with every case run in one group of p processes."""
    p = request.param
    named = build_cases(p)
    per_rank = launch.run(_distributed_worker.run_cases, p, [c for _, c in named],
                          timeout=240.0 + 0.05 * len(named), collective_timeout=60.0)
    return p, [(name, case, [per_rank[r][i] for r in range(p)])
               for i, (name, case) in enumerate(named)]


def _ok_cases(world):
    _p, runs = world
    for name, case, res in runs:
        if case.get("bad") or case.get("measure") or case.get("subgroup"):
            continue
        assert all(r[0] == "ok" for r in res), f"{name}: {[r for r in res if r[0] != 'ok']}"
        yield name, case, res


@pytest.mark.slow
def test_matches_single_process_reference(world):
    for name, case, res in _ok_cases(world):
        x, lam, l1, rho = case["x"], case["lam"], case["l1"], case["rho"]
        b = case["bounds"]
        for r, (_, w, info) in enumerate(res):
            assert w.shape == (b[r + 1] - b[r],), name
            assert w.dtype == x.dtype, name
            assert info["kind"] == ("torch" if case.get("torch") else "numpy"), name
            assert info["input_unchanged"], f"{name}: rank {r} had its shard modified"
        w = np.concatenate([r[1] for r in res])
        ref, ref_info = wsrbench.prox_info(x, lam, l1=l1, rho=rho, backend="numpy")
        # the tolerance is linear in the scale max|x| + lam: summed per term, it stays finite
        # where that sum overflows (values and lam near the float maximum)
        atol = (value_tol(x.size, x.dtype, float(np.max(np.abs(x), initial=0.0)))
                + value_tol(x.size, x.dtype, lam))
        assert np.isfinite(atol), name
        np.testing.assert_allclose(w, ref, rtol=0, atol=atol, err_msg=name)
        # equal inputs: bitwise equal outputs, across ranks too; lam = 0: x itself (with L1 and
        # rho, the single-process answer bit for bit)
        for v in np.unique(x):
            assert np.unique(w[x == v]).size == 1, f"{name}: equal inputs {v!r} split"
        if lam == 0.0:
            np.testing.assert_array_equal(w, ref, err_msg=name)
        clusters = {r[2]["clusters"] for r in res}
        assert len(clusters) == 1, f"{name}: ranks disagree on the cluster count {clusters}"
        if case.get("tie_draw"):
            # tests/test_ties.py's property: the exact prox within tolerance; the partition
            # itself only at lam = 0 (distinct values a rounded mean pools at a lam below their
            # gap are outside the tie rule: docs/design.md#ties)
            if rho == 0.0:
                assert_matches_exact(x, w, lam, l1)
            if lam > 0.0:
                continue
        # nearly_sorted: its noise sits at the rounding level of its ties
        if "nearly_sorted" not in name and not case.get("rounding_tie"):
            assert clusters == {ref_info.clusters}, name
            # the same partition, not only the same count: equal neighbours in sorted order
            order = np.argsort(x, kind="stable")
            if lam < 1e29:  # (at 1e30 the whole vector is one block; values equal up to rounding)
                assert np.array_equal(np.diff(w[order]) == 0, np.diff(ref[order]) == 0), name


@pytest.mark.slow
def test_certificate_accepts_gathered_answer(world):
    for name, case, res in _ok_cases(world):
        if case["rho"] > 0:
            continue  # the certificate checks the prox itself (rho = 0)
        w = np.concatenate([r[1] for r in res])
        cert = wsrbench.certify(case["x"], w, case["lam"], l1=case["l1"])
        assert cert.ok, f"{name}: {cert.message}"


def test_bad_input_same_error_on_every_rank(world):
    p, runs = world
    seen = set()
    for name, case, res in runs:
        if not case.get("bad"):
            continue
        seen.add(case["bad"])
        assert all(r[0] == "error" for r in res), f"{name}: some rank did not raise: {res}"
        assert len({(r[1], r[2]) for r in res}) == 1, f"{name}: ranks raised different errors"
        kind, msg = res[0][1], res[0][2]
        want = {"dtype": ("ValueError", "dtype differs across ranks"),
                "lam": ("ValueError", "lam differs across ranks"),
                "nan": ("ValueError", "contains NaN"),
                "negative_lam": ("ValueError", "lam must be >= 0"),
                "ndim": ("ValueError", "must be"),
                "float16_tensor": ("TypeError", "only float32 and float64 are supported")}[case["bad"]]
        assert kind == want[0] and want[1] in msg, f"{name}: {kind}: {msg}"
        assert "rank" in msg, f"{name}: the message must name the rank: {msg}"
    assert seen == {b for b in BAD if p > 1 or b not in NEEDS_TWO}


def test_counters(world):
    """Rounds and collectives within their bounds; the payload within the issue's target."""
    p, _runs = world
    levels = math.ceil(math.log2(p)) if p > 1 else 0
    for name, case, res in _ok_cases(world):
        if case.get("gather"):
            continue
        x = case["x"]
        d = x.shape[0]
        infos = [r[2] for r in res]
        assert len({i["rounds"] for i in infos}) == 1 and len({i["levels"] for i in infos}) == 1
        if d == 0:
            continue
        assert infos[0]["levels"] == levels, name
        # per level at most floor(log2 |A|) + floor(log2 |B|) bridge steps (docs/design.md#the-bridge-step)
        assert infos[0]["rounds"] <= levels * 2 * math.floor(math.log2(d + 1)), name
        for info in infos:
            calls = info["calls"]
            assert calls["all_to_all"] == 3, name  # counts, values there, values back
            # check, samples, range sizes, median, totals, crossing sums (6) and the 3
            # all-to-alls; per level one (surviving counts, last vertices), and one per step
            assert info["collectives"] == 9 + levels + info["rounds"], name
            payload = info["sent_by_kind"]["all_to_all"]
            bound = x.itemsize * (np.diff(case["bounds"]).max() + info["stats"]["range"]) + 8 * p
            assert payload <= bound, name


def test_gather_baseline_moves_everything_through_rank0(world):
    _p, runs = world
    for name, case, res in runs:
        if not case.get("gather") or case.get("measure"):
            continue
        d, n0 = case["x"].shape[0], np.diff(case["bounds"])[0]
        sent0 = res[0][2]["sent_by_kind"]["all_to_all"]
        assert sent0 == case["x"].itemsize * (d - n0), name


def test_same_answer_as_gather_baseline(world):
    _p, runs = world
    by_name = {name: res for name, _, res in runs}
    a = np.concatenate([r[1] for r in by_name["gather-baseline"]])
    b = np.concatenate([r[1] for r in by_name["gaussian-lam0.05"]])
    # different splits of the same vector: the answers agree to rounding
    x = next(c for n, c, _ in runs if n == "gather-baseline")["x"]
    np.testing.assert_allclose(a, b, rtol=0, atol=value_tol(x.size, x.dtype, np.abs(x).max() + 0.05))


def test_communication_within_target_and_asv_suite_reads_it(world):
    """The issue's target: per rank, the payload (values there and back) is at most
    2 (d/p) (itemsize + 8) bytes each way, and rank 0 of the baseline moves d - n_0 values."""
    p, runs = world
    res = next(res for _, case, res in runs if case.get("measure"))
    tab = {}
    for _, rows in res:
        for row in rows:
            tab.setdefault((p, row[0], row[1]), []).append(row)
    for (_, d, dtype), rows in tab.items():
        item = np.dtype(dtype).itemsize
        for _, _, _, info, _base, diff, scale in rows:
            small = info["bytes_sent"] - info["sent_by_kind"]["all_to_all"]
            assert info["bytes_sent"] - small <= 2 * (d / p) * (item + 8)
            assert info["bytes_received"] - small <= 2 * (d / p) * (item + 8)  # symmetric counts
            assert diff <= 2 * value_tol(d, dtype, scale)  # both are the prox, to rounding
        assert rows[0][4]["sent_by_kind"]["all_to_all"] == item * (d - d // p)
    bench = importlib.import_module("benchmarks.bench_distributed")
    cache = summarize(tab)
    obj = bench.Communication()
    for key in cache:
        obj.setup(cache, *key)
        for m in [m for m in dir(obj) if m.startswith("track_")]:
            out = getattr(obj, m)(cache, *key)
            assert isinstance(out, int) and out >= 0, m
    with pytest.raises(NotImplementedError, match="torch"):
        obj.setup({"unavailable": "no torch here"}, p, 3000, "float32")


def test_subgroup(world):
    """group=: the vector is the concatenation over the group's ranks, in group-rank order."""
    p, runs = world
    for _, case, res in runs:
        if not case.get("subgroup"):
            continue
        assert res[0][1] is None  # rank 0 is not a member
        w = np.concatenate([r[1] for r in res[1:]])
        ref, ref_info = wsrbench.prox_info(case["x"], case["lam"], backend="numpy")
        x = case["x"]
        np.testing.assert_allclose(w, ref, rtol=0,
                                   atol=value_tol(x.size, x.dtype, np.abs(x).max() + case["lam"]))
        assert {r[2]["clusters"] for r in res[1:]} == {ref_info.clusters}
        assert res[1][2]["stats"]["world_size"] == p - 1


# ------------------------------------------------------------------- in-process: the local fit

@pytest.mark.parametrize("lam", [0.0, 0.01, 0.5, 5.0])
def test_local_fit_is_the_reference_pava_on_a_whole_vector(lam):
    from wsrbench.backends.numpy import pava

    rng = np.random.default_rng(3)
    xs = np.sort(rng.standard_normal(500))
    xs -= xs[250]
    ref_starts, _, _ = pava.partition(xs, lam)
    for jit in (False, True):
        starts, sums = _local.local_fit(xs, 0, 500, lam, jit=jit)
        np.testing.assert_array_equal(starts, ref_starts)
        ends = np.append(starts[1:], 500)
        np.testing.assert_allclose(sums, [xs[a:b].sum() for a, b in zip(starts, ends)],
                                   rtol=0, atol=1e-12)


def test_local_fit_with_offset_uses_global_shifts():
    """A range at offset o fits y_k = x_k + v_{o+k}: the same blocks as isotonic regression of it."""
    from scipy.optimize import isotonic_regression

    rng = np.random.default_rng(4)
    d, o, n, lam = 400, 150, 120, 0.7
    xs = np.sort(rng.standard_normal(n))
    y = xs + lam * (d - 1 - 2 * (o + np.arange(n))) / (d - 1)
    fit = isotonic_regression(y).x
    expect = np.flatnonzero(np.r_[True, np.diff(fit) > 1e-12])
    for jit in (False, True):
        starts, _ = _local.local_fit(xs, o, d, lam, jit=jit)
        np.testing.assert_array_equal(starts, expect)
