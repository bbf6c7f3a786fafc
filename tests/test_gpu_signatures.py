"""The real-compilation check of the numba_cuda kernels (docs/design.md#real-compilation-in-ci) and what it rests on.

* every kernel of the package has an entry in the signature table;
* the table covers every launch the simulator makes on a workload that walks every code path
  (every algorithm, both dtypes, every input layout, every sort, both merge kernels); the whole
  session is also recorded by tests/conftest.py;
* the committed resource table (benchmarks/gpu_kernel_resources.txt) lists every entry;
* a kernel the simulator runs happily can fail the real compiler, and the check catches it.
"""
from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import wsrbench
from wsrbench import cases
from wsrbench.core import registry

from ._gpu_launches import missing, recording

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "benchmarks" / "gpu_kernel_resources.txt"

needs_cuda_backend = pytest.mark.skipif(
    registry.get_backend("numba_cuda").unavailable_reason() is not None,
    reason="numba_cuda backend unavailable")


def _importable(name: str) -> bool:
    """find_spec of a dotted name imports its parents, and raises where the parent (the
    ``nvidia`` namespace of the CUDA wheels) is absent: that is "not installed" too."""
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


needs_nvcc = pytest.mark.skipif(not _importable("nvidia.cuda_nvcc"),
                                reason="nvidia-cuda-nvcc-cu12 not installed (extra gpucheck)")


@needs_cuda_backend
def _real_compiler(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a process with numba-cuda's real compiler (no simulator, JIT on)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_ENABLE_CUDASIM", "NUMBA_DISABLE_JIT")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=300)


def test_every_kernel_has_a_signature_entry():
    from wsrbench.backends.numba_cuda.signatures import discover, table

    found = discover()
    kernels = sorted(k for k, (_, device) in found.items() if not device)
    assert len(kernels) >= 40  # discovery sees the package (not an empty list passing vacuously)
    tab = table()
    assert [k for k in kernels if k not in tab] == []
    assert [k for k in tab if k not in found and not k.startswith("wsrbench.")] == []


def _workload():
    """Every path of the prox pipeline that can launch a distinct signature."""
    from wsrbench.backends import numba_cuda as nc
    from wsrbench.backends.numba_cuda import sort

    rng = np.random.default_rng(0)
    x, lam = cases.make("worst_imminent_collisions", 9, seed=1)  # merges in every round
    X = np.stack([x, cases.make("gaussian", 9, seed=1)[0]])
    for dtype in (np.float32, np.float64):
        Xd = X.astype(dtype)
        inputs = [nc.from_numpy(Xd), nc.from_numpy(np.asfortranarray(Xd)),
                  nc.from_numpy(np.concatenate([Xd, Xd], 1))[:, ::2],  # a strided ('A') view
                  nc.from_numpy(Xd[0])]
        for method in ("rank", "radix", "bitonic"):
            sort.SORT = method
            # the partitions launch the same signatures after any sort: every algorithm after
            # one sort, pava alone after the others (the same 64 signatures, 40 calls not 72)
            algs = ("imminent_collisions", "search_collisions", "pava") if method == "rank" else ("pava",)
            try:
                for arr in inputs:
                    for alg in algs:
                        wsrbench.prox_info(arr, lam, l1=0.01, rho=0.1, algorithm=alg,
                                           backend="numba_cuda", labels=True)
            finally:
                sort.SORT = "auto"
    wsrbench.prox(nc.from_numpy(np.arange(7)), 0.3, backend="numba_cuda")  # integer input
    wsrbench.prox(nc.from_numpy(rng.integers(-3, 3, size=(2, 5)).astype(np.int32)), 0.3,
                  backend="numba_cuda")
    wsrbench.prox(nc.from_numpy(np.zeros((2, 1))), 0.3, backend="numba_cuda")  # d = 1
    wsrbench.prox(nc.from_numpy(np.arange(20.0)), 50.0, algorithm="imminent_collisions",
                  backend="numba_cuda")  # round 1 merges 19 blocks: the scan over xs
    wsrbench.prox(nc.from_numpy(np.tile(x, (10, 1))), lam, algorithm="imminent_collisions",
                  backend="numba_cuda")  # 10 merges in every later round: the scan's merge_down


@pytest.mark.slow
@needs_cuda_backend
def test_signature_table_covers_the_simulator_launches():
    seen: set = set()
    with recording(seen):
        _workload()
    keys = {k for k, _ in seen}
    for must in ("sort.radix_count", "sort.bitonic_stage", "sort.bitonic_unpad", "sort.rank_sort",
                 "imminent_collisions.merge_down", "imminent_collisions.merge_runs",
                 "imminent_collisions.merge_first", "imminent_collisions.init_blocks",
                 "pava.pava_rows", "search_collisions.probe_min", "device._copy_rows",
                 "device._copy_1d", "finish.labels_down", "segscan.reduce_level"):
        assert must in keys  # the workload really walks these paths
    assert missing(seen) == []


def test_resource_table_lists_every_signature():
    """benchmarks/gpu_kernel_resources.txt is the check's output for the current table
    (regenerate: python -m wsrbench.backends.numba_cuda.compile_check --write <that file>)."""
    from wsrbench.backends.numba_cuda.compile_check import ARCHS
    from wsrbench.backends.numba_cuda.signatures import table

    rows = set()
    for line in RESOURCES.read_text().splitlines()[2:]:
        key, arch, *_ = line.split()
        rows.add((key, arch, line[line.index("(") + 1:-1]))
    want = {(k, a, s) for k, sigs in table().items() for s in sigs for a in ARCHS}
    assert want - rows == set()
    assert rows - want == set()


@needs_cuda_backend
@pytest.mark.parametrize("family", cases.names())
@pytest.mark.parametrize("scale", [1.0, 30.0])
def test_imminent_round_depth_is_logarithmic(family, scale):
    """Per round: mark + walk (<= WALK_MAX + 1 steps), or mark + the run-merging scan (2 R + 1
    launches, R + 1 = ceil(log_CHUNK d), each thread folding CHUNK elements), so the depth of one
    round is <= max(WALK_MAX + 2, 1 + (2 log_CHUNK(d) + 1)(CHUNK + 1)) whatever the runs; the
    one-thread walk of a whole row (the first kernel) took d."""
    from wsrbench.backends import numba_cuda as nc
    from wsrbench.backends.numba_cuda.imminent_collisions import WALK_MAX
    from wsrbench.backends.numba_cuda.segscan import CHUNK

    d = 32
    x, lam = cases.make(family, d, seed=3)
    W, info = wsrbench.prox_info(nc.from_numpy(x), lam * scale, algorithm="imminent_collisions",
                                 backend="numba_cuda")
    ref, ref_info = wsrbench.prox_info(x, lam * scale, algorithm="imminent_collisions",
                                       backend="numpy")
    st = info.counters
    assert st["round_depth"] <= max(WALK_MAX + 2, 1 + (2 * math.log(d, CHUNK) + 1) * (CHUNK + 1))
    assert st["syncs"] == info.rounds + 2  # one per round, the final stopping test, the counters
    assert info.clusters == ref_info.clusters


BROKEN = textwrap.dedent('''
    from numba import cuda

    def helper(v):  # a plain Python function: the simulator calls it, NVVM cannot
        return [v, v][0] + 1.0

    @cuda.jit
    def kernel(x, out):
        i = cuda.grid(1)
        if i < x.shape[0]:
            out[i] = helper(x[i])
''')


FUSED = textwrap.dedent('''
    from numba import cuda

    from wsrbench.backends.numba_cuda.numerics import block_mean


    @cuda.jit
    def fused(x, out, c):  # the block mean with c P written inline: NVVM contracts it
        out[0] = (x[0] + c * float((2 - 0) * (7 - 0 - 2))) / 2.0


    @cuda.jit
    def unfused(x, out, c):  # the package's block mean: c P rounded on its own (dmul_rn)
        out[0] = block_mean(x[0], 0, 2, 7, c)


    @cuda.jit(fastmath=True)
    def approx(x, out, c):  # fastmath: an approximate float32 division
        out[0] = x[0] / c
''')


def _simulated(mod_path, name):
    spec = importlib.util.spec_from_file_location(name, mod_path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
@needs_nvcc
def test_what_the_simulator_hides_the_real_compile_catches(tmp_path):
    """Kernels that the simulator runs correctly, and the real compiler (one process without the
    simulator, as compile_check runs) rejects or flags:
    - a kernel calling a plain Python function: a TypingError, while a package kernel compiles
      through the same machinery (``compile_one``);
    - the block mean with c P written inline: NVVM fuses it into an FMA (one rounding instead of
      two: a tie between two block means could go the other way than on the CPU), and the FMA
      rule sees it; the package's block mean and imminent's decision kernel compile without one;
    - a fastmath division: the approximate-division rule sees it (the check compiles a kernel
      with the options it was declared with).
    """
    (tmp_path / "broken_kernel.py").write_text(BROKEN)
    (tmp_path / "fused_kernel.py").write_text(FUSED)
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        from numba import cuda

        broken = _simulated(tmp_path / "broken_kernel.py", "broken_kernel")
        x = np.arange(4.0)
        out = cuda.to_device(np.zeros(4))
        broken.kernel[1, 4](cuda.to_device(x), out)
        np.testing.assert_array_equal(out.copy_to_host(), x + 1.0)
        fk = _simulated(tmp_path / "fused_kernel.py", "fused_kernel")
        outs = []
        for kernel in (fk.fused, fk.unfused):
            out = cuda.to_device(np.zeros(1))
            kernel[1, 1](cuda.to_device(np.array([0.1])), out, 0.3)
            outs.append(out.copy_to_host()[0])
        assert outs[0] == outs[1] == (0.1 + 0.3 * 10.0) / 2.0
    code = textwrap.dedent(f'''
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import broken_kernel, fused_kernel
        from numba import cuda
        from wsrbench.backends.numba_cuda import compile_check as cc
        from wsrbench.backends.numba_cuda.signatures import parse, table
        res = cc.compile_one("finish.fill1", "int64[::1], int64")
        assert "error" not in res and res["sm_90"]["registers"] > 0, res
        try:
            cuda.compile_ptx(broken_kernel.kernel.py_func,
                             parse("float64[::1], float64[::1]"), cc=cc.PTX_CC)
        except Exception as exc:
            print("broken", "REJECTED", type(exc).__name__)
        else:
            print("broken", "COMPILED", "-")
        sig = parse("float64[::1], float64[::1], float64")
        for name in ("fused", "unfused"):
            ptx, _ = cuda.compile_ptx(getattr(fused_kernel, name).py_func, sig, cc=cc.PTX_CC)
            print(name, len(cc._FMA64.findall(ptx)), len(cc._DIV_APPROX.findall(ptx)))
        ptx = cc.ptx_of(fused_kernel.approx, parse("float32[::1], float32[::1], float32"))
        print("approx", len(cc._FMA64.findall(ptx)), len(cc._DIV_APPROX.findall(ptx)))
        key = "imminent_collisions.mark_keep"
        r = cc.compile_one(key, table()[key][0])["sm_90"]
        print("mark_keep", r["fma64"], r["div_approx"])
    ''')
    res = _real_compiler(code)
    assert res.returncode == 0, res.stderr[-2000:]
    got = {line.split()[0]: line.split()[1:] for line in res.stdout.splitlines() if line.strip()}
    assert got["broken"] == ["REJECTED", "TypingError"], res.stdout + res.stderr[-2000:]
    assert int(got["fused"][0]) >= 1
    assert got["unfused"] == ["0", "0"]
    assert int(got["approx"][1]) >= 1
    assert got["mark_keep"] == ["0", "0"]  # imminent's decision kernel, as the check compiles it
