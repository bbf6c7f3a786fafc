"""What the registry-parametrised suite cannot check for the GPU backends (torch, numba_cuda).

Array kinds in and out, foreign ``__cuda_array_interface__`` objects, the unavailable-backend
error, batching (a batch equals its rows one by one, counters included), host synchronisations
per call, the sort kernels, and thread-block boundaries. Without a GPU the numba_cuda kernels run
in the CUDA simulator (tests/conftest.py sets NUMBA_ENABLE_CUDASIM=1), so sizes stay tiny.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wsrbench
from wsrbench import cases
from wsrbench.core import checks, registry

from .conftest import value_tol

PARALLEL = ("imminent_collisions", "search_collisions", "hull_bridges")


def _available(name):
    return registry.get_backend(name).unavailable_reason() is None


needs_torch = pytest.mark.skipif(not _available("torch"), reason="torch backend unavailable")
needs_cuda_backend = pytest.mark.skipif(not _available("numba_cuda"),
                                        reason="numba_cuda backend unavailable")


def _scale(x, lam):
    return float(np.max(np.abs(x), initial=0.0) + lam)


def _batch(seed=0, n=5, d=13, dtype=np.float64):
    """Rows that converge after different numbers of rounds: noise, ties, a constant row, a
    cascade (many rounds of imminent_collisions)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[1] = np.round(X[1] * 2) / 2
    X[min(2, n - 1)] = 0.25
    if n > 3:  # prox(c x, c lam) = c prox(x, lam): rescale the cascade to lam = 0.3
        x, lam = cases.make("worst_imminent_collisions", d, seed=seed)
        X[3] = x * (0.3 / lam)
    return X.astype(dtype), 0.3


# ----------------------------------------------------------------------------------- torch

@needs_torch
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("algorithm", PARALLEL)
def test_torch_tensor_in_tensor_out(dtype, algorithm):
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        x = torch.linspace(-1, 1, 11, dtype=getattr(torch, dtype), device=device)
        for arr in (x, x.reshape(1, -1), torch.stack([x, x.flip(0)])):
            w = wsrbench.prox(arr, 0.4, algorithm=algorithm)  # backend "auto" -> torch
            assert isinstance(w, torch.Tensor)
            assert w.device == arr.device and w.dtype == arr.dtype and w.shape == arr.shape
            ref = wsrbench.prox(arr.cpu().numpy(), 0.4, algorithm=algorithm, backend="numpy")
            np.testing.assert_allclose(w.cpu().numpy(), ref, rtol=0,
                                       atol=value_tol(11, np.dtype(dtype), 1.4))


@needs_torch
def test_torch_input_validation():
    import torch

    w = wsrbench.prox(torch.tensor([3, 1, 2]), 0.5, backend="torch")
    assert w.dtype == torch.float64  # integers become float64, as for NumPy input
    with pytest.raises(ValueError, match=r"x contains NaN at index \(1, 0\)"):
        wsrbench.prox(torch.tensor([[0.0, 1.0], [np.nan, 2.0]]), 0.5, backend="torch")
    with pytest.raises(TypeError, match="float32 and float64"):
        wsrbench.prox(torch.zeros(3, dtype=torch.float16), 0.5, backend="torch")
    with pytest.raises(ValueError, match="at most 2-D"):
        wsrbench.prox(torch.zeros(2, 2, 2), 0.5, backend="torch")
    x = torch.tensor([0.3, -1.0, 0.3, 2.0])
    keep = x.clone()
    wsrbench.prox(x, 0.7, backend="torch", algorithm="search_collisions")
    assert torch.equal(x, keep)


@needs_torch
@pytest.mark.parametrize("algorithm", PARALLEL)
def test_torch_batch_equals_rows_and_counts_syncs(algorithm):
    """One batched call equals the rows one by one (values, rounds, clusters): the rows are
    processed together, not by a loop that could mix them up. The partition's host syncs are
    exactly the documented ones."""
    import torch

    X, lam = _batch()
    W, info = wsrbench.prox_info(torch.tensor(X), lam, algorithm=algorithm, backend="torch")
    syncs = info.counters["partition_syncs"]
    ref, ref_info = wsrbench.prox_info(X, lam, algorithm=algorithm, backend="numpy")
    np.testing.assert_allclose(W.numpy(), ref, rtol=0, atol=value_tol(X.shape[1], X.dtype, 3.0))
    np.testing.assert_array_equal(info.rounds, ref_info.rounds)
    np.testing.assert_array_equal(info.clusters, ref_info.clusters)
    for i in range(X.shape[0]):
        w_i, info_i = wsrbench.prox_info(torch.tensor(X[i]), lam, algorithm=algorithm,
                                         backend="torch")
        np.testing.assert_array_equal(w_i.numpy(), W[i].numpy())
        assert (info_i.rounds, info_i.clusters) == (info.rounds[i], info.clusters[i])
    if algorithm == "imminent_collisions":
        assert syncs == info.rounds.max() + 1  # one stopping test per round, + the last one
    else:
        assert syncs == 0


@needs_torch
def test_torch_finish_reuses_the_last_rounds_shift_sums():
    """imminent_collisions hands its last round's block shift sums and sizes to the finishing
    step (docs/design.md#the-torch-backends-imminent_collisions-and-the-papers-torch-code): recomputing them from the bounds gives the same bits, for single
    rows and a batch, with and without L1 and rho. A row that collapses to one block (the cascade
    row of _batch) ends the loop without such a round, and the finishing step forms them itself."""
    import torch

    from wsrbench.backends.torch import _common
    from wsrbench.backends.torch import imminent_collisions as ic

    def blocks_of(T, lam):
        vals, order = torch.sort(T, dim=1)
        xs = vals.clone()
        center = xs[:, T.shape[1] // 2:T.shape[1] // 2 + 1].clone()
        return order, center, ic.partition(xs.sub_(center), lam)[0]

    X, lam = _batch()
    for rows in (X[:1], X[1:2], X[4:], X):
        T = torch.tensor(rows)
        order, center, blocks = blocks_of(T, lam)
        assert blocks.shift is not None and blocks.size.numel() == blocks.sums.numel()
        formed = blocks._replace(shift=None, size=None)
        for l1, rho in ((0.0, 0.0), (0.05, 0.4)):
            w = _common.finish_blocks(T, order, center, blocks, lam, l1, rho)
            assert torch.equal(w, _common.finish_blocks(T, order, center, formed, lam, l1, rho))
    T = torch.tensor(X[3:4])
    order, center, blocks = blocks_of(T, lam)
    assert int(blocks.clusters[0]) == 1 and blocks.shift is None
    w = _common.finish_blocks(T, order, center, blocks, lam, 0.0, 0.0)
    np.testing.assert_allclose(w.numpy()[0], np.full(X.shape[1], X[3].mean()), rtol=0,
                               atol=value_tol(X.shape[1], X.dtype, _scale(X[3], lam)))


@needs_torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_pava_runs_on_the_tensors_memory(dtype, monkeypatch):
    """pava on a CPU tensor hands the CPU kernel a view of the tensor's memory (zero copy) and
    returns a tensor."""
    import importlib

    import torch

    name = "numba" if _available("numba") else "numpy"
    registry.get_backend(name).load()
    mod = importlib.import_module(registry.get_backend(name).module)  # the module, not a wrapper
    seen = []
    original = mod.prox_rows

    def spy(X, *args, **kwargs):
        seen.append(X)
        return original(X, *args, **kwargs)

    monkeypatch.setattr(mod, "prox_rows", spy)
    X, lam = _batch(dtype=dtype)
    x = torch.tensor(X)
    w, info = wsrbench.prox_info(x, lam, algorithm="pava", backend="torch")
    assert len(seen) == 1 and np.shares_memory(seen[0], x.numpy())
    assert isinstance(w, torch.Tensor) and w.dtype == x.dtype and w.shape == x.shape
    ref, ref_info = wsrbench.prox_info(X, lam, algorithm="pava", backend="numpy")
    np.testing.assert_allclose(w.numpy(), ref, rtol=0, atol=value_tol(13, dtype, 3.0))
    np.testing.assert_array_equal(info.rounds, ref_info.rounds)
    np.testing.assert_array_equal(info.clusters, ref_info.clusters)


@pytest.mark.skipif(not (_available("torch") and __import__("importlib").util.find_spec("torch")
                         and __import__("torch").cuda.is_available()), reason="needs a CUDA GPU")
@pytest.mark.parametrize("algorithm", PARALLEL)
def test_torch_cuda_sync_count(algorithm):
    """On a GPU: the syncs torch itself reports (sync debug mode) match the documented count:
    validation 1 + partition syncs + 1 final copy of the counters."""
    import warnings

    import torch

    X, lam = _batch()
    x = torch.tensor(X, device="cuda")
    wsrbench.prox(x, lam, algorithm=algorithm)  # warm up
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _, info = wsrbench.prox_info(x, lam, algorithm=algorithm)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = sum("synchroniz" in str(w.message) for w in caught)
    assert syncs == 2 + info.counters["partition_syncs"]


# ----------------------------------------------------------------------------------- numba_cuda

def _nc():
    from wsrbench.backends import numba_cuda as nc

    return nc


@needs_cuda_backend
@pytest.mark.parametrize("algorithm", PARALLEL + ("pava",))
def test_numba_device_array_in_device_array_out(algorithm):
    from numba import cuda

    nc = _nc()
    X, lam = _batch(d=9, dtype=np.float32)
    dev = cuda.to_device(X)  # a plain numba device array (no wrapper)
    arr, rows = checks.as_prox_input(dev)
    W, rounds, clusters, stats = nc.prox_rows(rows, lam, l1=0.0, rho=0.0, algorithm=algorithm)[:4]
    assert getattr(W, "__cuda_ndarray__", False)  # a numba device array (real or simulated)
    assert type(W) is type(dev) and W.dtype == np.float32 and W.shape == X.shape
    ref, ref_info = wsrbench.prox_info(X, lam, algorithm=algorithm, backend="numpy")
    np.testing.assert_allclose(W.copy_to_host(), ref, rtol=0, atol=value_tol(9, np.float32, 3.0))
    np.testing.assert_array_equal(rounds, ref_info.rounds)
    np.testing.assert_array_equal(clusters, ref_info.clusters)
    if algorithm == "pava":
        assert stats == ref_info.stats  # merges, max_stack, longest_backmerge per row


class _OnlyCAI:
    """An object that is nothing but a __cuda_array_interface__ (like a foreign framework's)."""

    def __init__(self, dev):
        self._dev = dev  # keeps the memory alive

    @property
    def __cuda_array_interface__(self):
        return self._dev.__cuda_array_interface__


@needs_cuda_backend
def test_foreign_cuda_array_interface_accepted():
    nc = _nc()
    x = np.array([0.5, -1.0, 0.5, 2.0, 3.0])
    obj = _OnlyCAI(nc.from_numpy(x))
    assert registry.array_kind(obj) == "cuda"
    w = wsrbench.prox(obj, 0.6)  # backend "auto" -> numba_cuda
    assert hasattr(w, "__cuda_array_interface__")  # a numba device array
    np.testing.assert_allclose(nc.to_numpy(w), wsrbench.prox(x, 0.6, backend="numpy"), rtol=0,
                               atol=value_tol(5, np.float64, 4.0))
    np.testing.assert_array_equal(nc.to_numpy(obj), x)  # input untouched


@needs_cuda_backend
def test_numba_cuda_input_validation():
    nc = _nc()
    w = wsrbench.prox(nc.from_numpy(np.array([3, 1, 2])), 0.5, backend="numba_cuda",
                      algorithm="pava")
    assert w.dtype == np.float64
    np.testing.assert_allclose(nc.to_numpy(w), wsrbench.prox([3.0, 1.0, 2.0], 0.5, backend="numpy"))
    with pytest.raises(ValueError, match=r"x contains Inf at index \(1, 0\)"):
        wsrbench.prox(nc.from_numpy(np.array([[0.0, 1.0], [np.inf, 2.0]])), 0.5,
                      backend="numba_cuda")
    with pytest.raises(ValueError, match="x contains NaN at index 2;"):
        wsrbench.prox(nc.from_numpy(np.array([0.0, 1.0, np.nan])), 0.5, backend="numba_cuda")
    with pytest.raises(TypeError, match="float32 and float64"):
        wsrbench.prox(nc.from_numpy(np.zeros(3, np.float16)), 0.5, backend="numba_cuda")


def test_numba_cuda_unavailable_says_how_to_enable(monkeypatch):
    """No GPU and no simulator: reported unavailable with the reason, and calling it raises a
    RuntimeError that says how to enable it (simulated by making numba.cuda find no device)."""
    pytest.importorskip("numba_cuda")
    from numba import cuda

    monkeypatch.setattr(cuda, "is_available", lambda: False)
    be = registry.get_backend("numba_cuda")
    monkeypatch.setattr(be, "_module", None)  # forget a module loaded by earlier tests
    info = {b.name: b for b in wsrbench.list_backends()}["numba_cuda"]
    assert not info.available and "NUMBA_ENABLE_CUDASIM=1" in info.reason
    assert "driver" in info.reason

    class Fake:  # a CUDA array as far as the registry can tell; never dereferenced
        __cuda_array_interface__ = {"shape": (3,), "typestr": "<f8", "data": (0, False),
                                    "version": 3}

    with pytest.raises(RuntimeError, match=r"numba_cuda.*NUMBA_ENABLE_CUDASIM=1"):
        wsrbench.prox(Fake(), 0.1, backend="numba_cuda")
    with pytest.raises(RuntimeError, match="no available backend"):
        wsrbench.prox(Fake(), 0.1)  # "auto" finds nothing for CUDA arrays either


@needs_cuda_backend
@pytest.mark.parametrize("algorithm", PARALLEL + ("pava",))
@pytest.mark.slow
def test_numba_cuda_batch_equals_rows_and_host_syncs(algorithm, monkeypatch):
    """A batch equals its rows one by one, counters included, and a call makes exactly the
    documented device-to-host copies: validation 1 + the algorithm's + the final counters 1."""
    nc = _nc()
    X, lam = _batch(d=11)
    W, info = wsrbench.prox_info(nc.from_numpy(X), lam, algorithm=algorithm, backend="numba_cuda")
    partition_syncs = info.counters["partition_syncs"]
    assert info.counters["syncs"] == partition_syncs + 1  # + the final copy of the counters
    W = nc.to_numpy(W)
    for i in range(X.shape[0]):
        w_i, info_i = wsrbench.prox_info(nc.from_numpy(X[i]), lam, algorithm=algorithm,
                                         backend="numba_cuda")
        np.testing.assert_array_equal(nc.to_numpy(w_i), W[i])
        assert (info_i.rounds, info_i.clusters) == (info.rounds[i], info.clusters[i])
    expected = {"imminent_collisions": int(info.rounds.max()) + 1}.get(algorithm, 0)
    assert partition_syncs == expected

    if nc.SIMULATOR:  # count the actual device-to-host copies of one call
        from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray

        calls = []
        original = FakeCUDAArray.copy_to_host

        def counting(self, *args, **kwargs):
            calls.append(self.shape)
            return original(self, *args, **kwargs)

        x = nc.from_numpy(X)
        monkeypatch.setattr(FakeCUDAArray, "copy_to_host", counting)
        _, info = wsrbench.prox_info(x, lam, algorithm=algorithm, backend="numba_cuda")
        assert len(calls) == 2 + expected
        assert info.counters["d2h_copies"] == 1 + expected  # + 1 for validation, not counted


@pytest.mark.slow
@needs_cuda_backend
@pytest.mark.parametrize("method", ["rank", "bitonic", "radix"])
def test_sort_kernels_are_stable(method):
    from numba import cuda

    from wsrbench.backends.numba_cuda.cost import Cost
    from wsrbench.backends.numba_cuda.sort import sort_rows

    rng = np.random.default_rng(5)
    for d, dtype in [(1, np.float32), (2, np.float64), (5, np.float32), (8, np.float32),
                     (13, np.float64), (21, np.float32)]:
        X = rng.integers(-2, 3, size=(3, d)).astype(dtype)  # many ties
        X[0, : d // 2] = -0.0  # -0.0 and 0.0 are equal keys: stability decides
        X[2] = rng.normal(size=d) * 10.0 ** rng.integers(-30, 30, size=d)  # every exponent
        keys, order = sort_rows(cuda.to_device(X), Cost(), method)
        expect = np.argsort(X, axis=1, kind="stable")
        np.testing.assert_array_equal(order.copy_to_host(), expect)
        np.testing.assert_array_equal(keys.copy_to_host(), np.take_along_axis(X, expect, 1))


@needs_cuda_backend
@pytest.mark.parametrize("chunk", [2, 3, 4, 7])
def test_segmented_scan_matches_a_sequential_one(chunk, monkeypatch):
    """segscan.Scan's carries give the left-to-right segmented sums (up to the rounding of its
    order, <= (levels + 1) chunk eps64 sum|x|) and every element its segment's head, for batches
    from one element to several levels of chunks, heads anywhere, rows restarting."""
    from numba import cuda

    from wsrbench.backends.numba_cuda import segscan
    from wsrbench.backends.numba_cuda.cost import Cost
    from wsrbench.backends.numba_cuda.launch import grid

    from ._gpu_kernels import sums_down

    monkeypatch.setattr(segscan, "CHUNK", chunk)
    rng = np.random.default_rng(chunk)
    for n, d, p in [(1, 1, 0.5), (1, chunk, 0.0), (2, chunk + 1, 0.3), (3, 17, 0.2),
                    (2, 40, 0.05), (1, 60, 1.0)]:
        X = rng.normal(size=(n, d)) * 10.0 ** rng.integers(-3, 4, size=(n, d))
        heads = (rng.random((n, d)) < p).astype(np.int8)
        cost = Cost()
        scan = segscan.Scan(n, d, cost)
        H, Xd = cuda.to_device(heads), cuda.to_device(X)
        scan.up(H, H, H, Xd, 0)
        S, A = cuda.device_array((n, d)), cuda.device_array((n, d), dtype=np.int64)
        sums_down[grid(scan.threads(n, d))](H, Xd, scan.chunk, scan.carry_sum, scan.carry_head,
                                            scan.has_parent, S, A)
        S, A = S.copy_to_host(), A.copy_to_host()
        levels = math.ceil(math.log(max(n * d, 2), chunk))
        for r in range(n):
            for k in range(d):
                a = max(j for j in range(k + 1) if j == 0 or heads[r, j])
                assert A[r, k] == a
                seg = X[r, a:k + 1]
                tol = (levels + 1) * chunk * np.finfo(np.float64).eps * np.abs(seg).sum()
                assert abs(S[r, k] - math.fsum(seg)) <= tol
        assert cost.launches == 2 * (levels - 1) if n * d > chunk else cost.launches == 0
        assert scan.launches() == cost.launches + 1


@needs_cuda_backend
@pytest.mark.parametrize("chunk", [2, 3, 4, 7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finish_writes_every_element_once_through_the_order(chunk, dtype, monkeypatch):
    """values_down (blocks ending in their chunk) and values_tail (blocks running past it) write
    every output once, through the sort order: each block's elements get one value, bit for bit,
    the block's mean plus its shift (within the scan's rounding), for blocks of one element to
    whole rows, starting and ending anywhere relative to the chunks, rows of several chunks."""
    from numba import cuda

    from wsrbench.backends.numba_cuda import finish, segscan
    from wsrbench.backends.numba_cuda.cost import Cost

    monkeypatch.setattr(segscan, "CHUNK", chunk)
    rng = np.random.default_rng(chunk)
    lam = 0.3
    for n, d, p in [(1, 1, 0.5), (2, chunk, 0.0), (3, chunk + 1, 0.4), (2, 17, 0.2),
                    (2, 40, 0.05), (1, 31, 1.0), (4, 9, 0.6)]:
        keys = rng.normal(size=(n, d)).astype(dtype)  # the sorted keys have the output's dtype
        xs = keys.astype(np.float64)
        starts = rng.random((n, d)) < p
        starts[:, 0] = True
        order = np.stack([rng.permutation(d) for _ in range(n)]).astype(np.int64)
        W = cuda.device_array((n, d), dtype=dtype)
        W[:] = np.nan  # an element written by neither kernel stays NaN
        clusters = cuda.to_device(np.zeros(n, dtype=np.int64))
        finish.finish(cuda.to_device(starts.astype(np.int8)), cuda.to_device(keys),
                      cuda.to_device(order), cuda.to_device(np.zeros(n)), lam, 0.0, 0.0, W,
                      clusters, Cost())
        W = W.copy_to_host()
        assert not np.isnan(W).any()
        np.testing.assert_array_equal(clusters.copy_to_host(), starts.sum(axis=1))
        levels = math.ceil(math.log(max(n * d, 2), chunk))
        c = lam / max(d - 1, 1)
        for r in range(n):
            bounds = [*np.flatnonzero(starts[r]), d]
            for a, b in zip(bounds[:-1], bounds[1:]):
                got = W[r, order[r, a:b]]
                assert (got == got[0]).all()  # one value per block, exactly
                shift = c * (b - a) * (d - a - b)  # the closed-form shift sum (docs 3.2)
                want = (math.fsum(xs[r, a:b]) + shift) / (b - a)
                tol = ((levels + 2) * chunk * np.finfo(np.float64).eps
                       * (np.abs(xs[r, a:b]).sum() + abs(shift)) / (b - a)
                       + np.finfo(dtype).eps * abs(want))
                assert abs(float(got[0]) - want) <= tol


@pytest.mark.slow
@needs_cuda_backend
@pytest.mark.parametrize("chunk", [2, 3, 5])
def test_imminent_run_merging_scan_any_chunk(chunk, monkeypatch):
    """Rounds that merge more than WALK_MAX blocks go through the scan (any chunk: runs cross
    chunks and levels) and give the reference's rounds, clusters and values."""
    from wsrbench.backends.numba_cuda import segscan
    from wsrbench.backends.numba_cuda.imminent_collisions import WALK_MAX

    monkeypatch.setattr(segscan, "CHUNK", chunk)
    nc = _nc()
    X, lam = _batch(seed=4, n=4, d=23)
    for scale in (1.0, 8.0, 100.0):  # larger lam: longer runs merging in the first rounds
        ref, ref_info = wsrbench.prox_info(X, lam * scale, algorithm="imminent_collisions",
                                           backend="numpy")
        W, info = wsrbench.prox_info(nc.from_numpy(X), lam * scale,
                                     algorithm="imminent_collisions", backend="numba_cuda")
        np.testing.assert_allclose(nc.to_numpy(W), ref, rtol=0,
                                   atol=value_tol(23, X.dtype, _scale(X, lam * scale)))
        np.testing.assert_array_equal(info.rounds, ref_info.rounds)
        np.testing.assert_array_equal(info.clusters, ref_info.clusters)
        # a walk round has depth <= WALK_MAX + 2: deeper rounds went through the scan
        assert info.counters["round_depth"] > WALK_MAX + 2


@pytest.mark.slow
@needs_cuda_backend
@pytest.mark.parametrize("algorithm", PARALLEL + ("pava",))
def test_block_boundaries_and_bitonic_path(algorithm, monkeypatch):
    """Odd thread-block sizes (rows straddle blocks) and the bitonic sort give the same answer."""
    from wsrbench.backends.numba_cuda import launch, sort

    nc = _nc()
    X, lam = _batch(seed=2, n=3, d=10)
    ref, ref_info = wsrbench.prox_info(X, lam, algorithm=algorithm, backend="numpy")
    for tpb, method in [(3, "bitonic"), (5, "rank"), (64, "rank"), (3, "radix")]:
        monkeypatch.setattr(launch, "THREADS_PER_BLOCK", tpb)
        monkeypatch.setattr(sort, "SORT", method)
        W, info = wsrbench.prox_info(nc.from_numpy(X), lam, algorithm=algorithm,
                                     backend="numba_cuda")
        np.testing.assert_allclose(nc.to_numpy(W), ref, rtol=0, atol=value_tol(10, X.dtype, 3.0))
        np.testing.assert_array_equal(info.rounds, ref_info.rounds)
        np.testing.assert_array_equal(info.clusters, ref_info.clusters)


def _torch_cuda():
    if not _available("torch"):
        return False
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(not (_torch_cuda() and _available("numba_cuda")), reason="needs a CUDA GPU")
@pytest.mark.parametrize("algorithm", PARALLEL + ("pava",))
def test_numba_cuda_takes_torch_cuda_tensors_and_torch_sort(algorithm, monkeypatch):
    """On a GPU: a torch CUDA tensor comes back as one (same device and dtype, zero-copy wrap),
    and the zero-copy torch.sort path gives the same answer as our own sort kernels."""
    import torch

    from wsrbench.backends.numba_cuda import sort

    X, lam = _batch(d=700, dtype=np.float32)  # > RANK_SORT_MAX_D: the bitonic kernel
    x = torch.tensor(X, device="cuda")
    ref, ref_info = wsrbench.prox_info(X, lam, algorithm=algorithm, backend="numpy")
    for method in ("auto", "torch"):
        monkeypatch.setattr(sort, "SORT", method)
        w, info = wsrbench.prox_info(x, lam, algorithm=algorithm, backend="numba_cuda")
        assert isinstance(w, torch.Tensor) and w.device == x.device and w.dtype == x.dtype
        np.testing.assert_allclose(w.cpu().numpy(), ref, rtol=0,
                                   atol=value_tol(700, np.float32, _scale(X, lam)))
        np.testing.assert_array_equal(info.clusters, ref_info.clusters)


# ----------------------------------------------------------------------------------- both

def _gpu_impls():
    out = []
    for be in ("torch", "numba_cuda"):
        for alg in registry.get_backend(be).algorithms:
            marks = [] if _available(be) else [pytest.mark.skip(reason=f"{be} unavailable")]
            out.append(pytest.param(be, alg, id=f"{be}-{alg}", marks=marks))
    return out


@st.composite
def _batches(draw):
    """Small batches of rows; half of them of small integers, where every sum is exact so the
    merge decisions (hence rounds and clusters) must agree with the reference exactly."""
    n = draw(st.integers(1, 3))
    d = draw(st.integers(1, 12))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    if draw(st.booleans()):
        X = np.array(draw(st.lists(st.integers(-3, 3), min_size=n * d, max_size=n * d)), float)
        exact = True
    else:
        X = np.array(draw(st.lists(st.floats(-1, 1, width=32), min_size=n * d,
                                   max_size=n * d)), float)
        exact = False
    lam = draw(st.sampled_from([0.0, 0.05, 0.5, 2.0, 50.0]))
    return X.reshape(n, d).astype(dtype), lam, exact


@pytest.mark.slow
@pytest.mark.parametrize("backend,algorithm", _gpu_impls())
@settings(max_examples=20, deadline=None, derandomize=True)
@given(batch=_batches(), l1=st.sampled_from([0.0, 0.3]), rho=st.sampled_from([0.0, 0.4]))
def test_batches_match_reference(backend, algorithm, batch, l1, rho):
    X, lam, exact = batch
    mod = registry.get_backend(backend).load()
    W, info = wsrbench.prox_info(mod.from_numpy(X), lam, l1=l1, rho=rho, algorithm=algorithm,
                                 backend=backend)
    W = np.asarray(mod.to_numpy(W))
    ref, ref_info = wsrbench.prox_info(X, lam, l1=l1, rho=rho, algorithm=algorithm,
                                       backend="numpy")
    assert W.dtype == X.dtype and W.shape == X.shape
    np.testing.assert_allclose(W, ref, rtol=0, atol=value_tol(X.shape[1], X.dtype, _scale(X, lam)))
    if exact:
        np.testing.assert_array_equal(info.rounds, ref_info.rounds)
        np.testing.assert_array_equal(info.clusters, ref_info.clusters)
        if info.depth is not None:
            np.testing.assert_array_equal(info.depth, ref_info.depth)
    for i in range(X.shape[0]):
        cert = wsrbench.certify(X[i], W[i], lam, l1=l1) if rho == 0.0 else None
        assert cert is None or cert.ok, cert.message


@needs_cuda_backend
def test_simulator_gives_a_blocks_threads_one_shared_array(monkeypatch):
    """The simulator finds a block's shared array by call site and creates it when missing;
    unlocked, two threads that switch between the lookup and the store get different arrays (an
    occasional IndexError in hull_tiles' kernel under CI, whose barriers run with a short switch
    interval). ``simulator.enable()`` locks it: with the creation slowed down so that the other
    thread surely runs meanwhile, both threads still get the same array."""
    import threading
    import time

    from wsrbench.backends.numba_cuda import simulator

    if not simulator.SIMULATOR:
        pytest.skip("the simulator's shared arrays only")
    from numba.cuda.simulator import kernelapi

    simulator.enable()
    assert simulator.enabled() and getattr(kernelapi.FakeCUDAShared.array, "locked", False)

    class SlowNumpy:
        def __getattr__(self, name):
            return getattr(np, name)

        @staticmethod
        def empty(*args, **kwargs):
            time.sleep(0.05)
            return np.empty(*args, **kwargs)

    monkeypatch.setattr(simulator, "np", SlowNumpy())
    shared = kernelapi.FakeCUDAShared(0)
    got = []

    def thread():
        got.append(shared.array(4, np.float64))  # one call site, as in a kernel

    threads = [threading.Thread(target=thread) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 3 and all(a is got[0] for a in got)


_SIM_PROBE = """
import sys
import numpy as np
import wsrbench
from wsrbench.backends import numba_cuda as nc
from numba.cuda.simulator import kernelapi
def state():
    return getattr(kernelapi.FakeCUDAShared.array, "locked", False), sys.getswitchinterval()
before = state()
x = nc.from_numpy(np.random.default_rng(0).normal(size=(2, 32)))
wsrbench.prox(x, 0.1, backend="numba_cuda", algorithm="hull_bridges")
print((before, state()))
"""


@pytest.mark.slow
@needs_cuda_backend
def test_the_simulator_is_adjusted_at_first_use_not_at_import():
    """Importing wsrbench and its CUDA backend patches nothing and leaves the switch interval; the
    first launch of the tiled kernel on the simulator installs the shared-array lock, and restores
    the interval afterwards (a fresh process: the test run itself enables the adjustments)."""
    import ast
    import os
    import subprocess
    import sys

    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    out = subprocess.run([sys.executable, "-c", _SIM_PROBE], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    (locked0, interval0), (locked1, interval1) = ast.literal_eval(out.stdout.strip().splitlines()[-1])
    assert (locked0, locked1) == (False, True)
    assert interval1 == interval0
