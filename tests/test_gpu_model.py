"""The GPU cost counts and model (docs/design.md#cost-counted-without-a-gpu): dry runs count exactly what a real call
does, the imminent rounds feeding them are the reference's, and the counts scale as designed."""
from __future__ import annotations

import math

import numpy as np
import pytest

import wsrbench
from wsrbench import cases
from wsrbench.bench import gpu_model
from wsrbench.core import registry

needs_cuda_backend = pytest.mark.skipif(
    registry.get_backend("numba_cuda").unavailable_reason() is not None,
    reason="numba_cuda backend unavailable")

COUNTED = ("launches", "syncs", "d2h_copies", "d2h_bytes", "bytes", "serial_steps",
           "shared_steps", "depth", "round_depth", "partition_syncs")


@needs_cuda_backend
@pytest.mark.parametrize("algorithm", ["imminent_collisions", "search_collisions", "pava",
                                       "hull_bridges"])
@pytest.mark.parametrize("family,scale", [
    ("gaussian", 1.0), pytest.param("worst_imminent_collisions", 1.0, marks=pytest.mark.slow),
    pytest.param("gaussian", 40.0, marks=pytest.mark.slow)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dry_run_counts_equal_a_real_call(algorithm, family, scale, dtype):
    """count_call (nothing launched, imminent's stopping test scripted by the NumPy rounds)
    equals the counters of a real simulator call, key by key."""
    from wsrbench.backends import numba_cuda as nc

    d = 24
    x, lam = cases.make(family, d, seed=2, dtype=dtype)
    lam *= scale
    _, info = wsrbench.prox_info(nc.from_numpy(x), lam, algorithm=algorithm,
                                 backend="numba_cuda")
    viol = gpu_model.imminent_violations(x, lam)
    dry = nc.count_call(1, d, dtype, lam, algorithm, violations=viol, validation=False)
    assert {k: dry[k] for k in COUNTED} == {k: info.counters[k] for k in COUNTED}
    if algorithm == "imminent_collisions":
        assert len(viol) == info.rounds  # the scripted rounds are the reference's
        assert sum(viol) == d - info.clusters  # every violation merges one block


@needs_cuda_backend
def test_host_syncs_are_constant_in_d_for_search_and_pava():
    from wsrbench.backends import numba_cuda as nc

    for alg in ("search_collisions", "pava"):
        syncs = {nc.count_call(1, d, np.float32, 1.0, alg)["syncs"] for d in (10, 10**3, 10**7)}
        assert syncs == {2}  # the input check and the final copy of the counters


@needs_cuda_backend
@pytest.mark.parametrize("d", [24, 10**5, 10**7])
def test_pipeline_without_partition_is_every_algorithms_floor(d):
    """Every algorithm's call costs at least the pipeline without a partition (14.7): the
    partition only adds kernels. The floor has the check, the sort, the centring, the finish and
    the counters' copy, and nothing that depends on the data."""
    from wsrbench.backends import numba_cuda as nc

    for sort in ("radix", "torch"):
        floor = gpu_model.pipeline_counts(1, d, sort_method=sort)
        assert floor["syncs"] == 2 and floor["partition_syncs"] == 0
        for alg in registry.get_backend("numba_cuda").algorithms:
            with gpu_model.gpu_geometry():  # as pipeline_counts counts
                c = nc.count_call(1, d, np.float32, 0.01, alg, sort_method=sort,
                                  violations=[1] if alg == "imminent_collisions" else ())
            for k in ("launches", "syncs", "bytes", "depth"):
                assert c[k] >= floor[k], (alg, sort, k)
            assert gpu_model.modelled_seconds(c) > gpu_model.modelled_seconds(floor)
    rows = gpu_model.model_table(("gaussian",), (d,), torch_max_d=0)
    floors = [r for r in rows if r["algorithm"] == gpu_model.PIPELINE]
    assert [r["backend"] for r in floors] == ["numba_cuda[radix sort]", "numba_cuda[torch sort]"]


@needs_cuda_backend
def test_the_model_counts_a_gpu_call_whatever_this_process_runs():
    """Under the simulator the scan chunk, the tile and the block sizes are shrunk for test
    speed; the model's dry runs swap in the GPU's values (and put them back), so that
    `wsrbench compare --gpu-model` gives a GPU's counts in any process."""
    import importlib

    from wsrbench.backends.numba_cuda import hull_tiles, segscan

    def geometry():
        return [getattr(importlib.import_module(f"wsrbench.backends.numba_cuda.{m}"), a)
                for m, a, _ in gpu_model.GPU_GEOMETRY]

    before = geometry()
    x, lam = cases.make("gaussian", 10**5, seed=0, dtype=np.float32)
    c = gpu_model.numba_cuda_counts(x, lam, "hull_bridges", sort_method="torch")
    assert c["shared_steps"] == hull_tiles.shared_steps(hull_tiles.GPU_TILE_BITS)
    floor = gpu_model.pipeline_counts(1, 10**7, sort_method="torch")
    # torch.sort 5, the check 1, the centres 1, the stand-in partition 1, the tie pooling 1,
    # the clusters' fill 1, values_tail 1, the counters' copy 1, and the finishing scan in
    # chunks of 32 (under the simulator's chunk of 4: 2 x 11 + 1)
    levels = math.ceil(math.log(10**7, segscan.GPU_CHUNK)) - 1
    assert floor["launches"] == 12 + 2 * levels + 1
    assert geometry() == before


def test_model_formula_and_radix_reference():
    c = {"launches": 10, "syncs": 2, "bytes": 3.35e9, "serial_steps": 4, "shared_steps": 30}
    want = (1e-3 + 10 * gpu_model.LAUNCH_S + 2 * gpu_model.SYNC_S + 4 * gpu_model.STEP_S
            + 30 * gpu_model.SHARED_STEP_S)
    assert gpu_model.modelled_seconds(c) == pytest.approx(want, rel=1e-12)
    # a step on shared memory is charged, but far less than a global-memory round trip
    assert 0 < gpu_model.SHARED_STEP_S <= gpu_model.STEP_S / 4
    r = gpu_model.radix_sort_counts(1, 10**7, 4)
    assert r["launches"] == 5 and r["bytes"] == 10**7 * (4 + 4 * 2 * 12)


@needs_cuda_backend
def test_radix_sort_is_linear_and_imminent_depth_logarithmic():
    """The radix sort's launches do not grow with d and its bytes grow linearly; a round of
    imminent_collisions that merges a whole row has depth O(log d), not d."""
    from wsrbench.backends import numba_cuda as nc
    from wsrbench.backends.numba_cuda.cost import Cost, Phantom
    from wsrbench.backends.numba_cuda.sort import sort_rows

    counts = []
    for d in (10**5, 10**6, 10**7):
        c = Cost(dry=True)
        sort_rows(Phantom((1, d), np.float32), c, "radix")
        counts.append(c)
    assert counts[0].launches == counts[2].launches == 4 * 4 + 2  # 4 digits x 4 kernels + 2
    # O(d) bytes: 100x the data moves 80-100x the bytes (fixed per-tile histograms shrink in
    # relative terms); a bitonic network would move 100 x (24/17)^2 ~ 200x
    assert 80 <= counts[2].bytes / counts[0].bytes <= 100
    from wsrbench.backends.numba_cuda.segscan import CHUNK

    for d in (10**3, 10**5, 10**7):  # one round in which d - 1 blocks merge into one
        c = nc.count_call(1, d, np.float32, 1e9, "imminent_collisions", violations=[d - 1])
        R = next(R for R in range(64) if CHUNK ** (R + 1) >= d)  # reduce levels of the scan
        # mark_keep, then 2 R + 1 scan launches whose threads each fold CHUNK elements
        assert c["round_depth"] == 1 + (2 * R + 1) * (1 + CHUNK)
        assert c["round_depth"] <= 1 + (2 * math.log(d, CHUNK) + 1) * (1 + CHUNK) < d


@needs_cuda_backend
def test_model_table_rows_and_labelled_markdown():
    rows = gpu_model.model_table(("gaussian", "worst_imminent_collisions"), (64, 2048),
                                 backends=("numba_cuda",), max_rounds=50)
    algs = set(registry.get_backend("numba_cuda").algorithms) | {gpu_model.PIPELINE}
    assert {r["algorithm"] for r in rows} == algs
    skipped = [r for r in rows if "skipped" in r]
    assert skipped and all(r["algorithm"] == "imminent_collisions" for r in skipped)
    for r in rows:
        if "skipped" not in r:
            assert r["model_s"] == pytest.approx(gpu_model.modelled_seconds(r))
    text = gpu_model.format_table(rows)
    assert text.startswith("MODELLED H100 time (not measured)")
    assert text.count("\n| numba_cuda") == len(rows)
