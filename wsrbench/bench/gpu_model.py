"""GPU cost counted without a GPU, and a modelled H100 time
(docs/design.md#cost-counted-without-a-gpu). A MODEL.

For every GPU backend x algorithm, the counts of one prox call: kernel launches, host
synchronisations, device-to-host copies, an estimate of global-memory bytes moved and the serial
steps of threads that loop. numba_cuda: exact counts of the backend's own host code in a dry run
(``numba_cuda.count_call``: nothing launched, nothing allocated), equal to those of a real call
(tests/test_gpu_model.py checks them against simulator runs). torch: every ATen operation of a
call on CPU tensors, counted by a ``TorchDispatchMode`` (one operation ~ one CUDA kernel; sort,
cumsum and nonzero are several on a GPU, so torch launches are a lower bound), bytes = sizes of
the operation's tensor inputs and outputs, syncs = operations that read a value back to the host.

The modelled time is

    t = bytes / HBM_BYTES_PER_S + launches * LAUNCH_S + syncs * SYNC_S + serial_steps * STEP_S
        + shared_steps * SHARED_STEP_S

with the constants below, and the reference is the same model applied to one radix sort of the
same data (CUB onesweep: a histogram launch plus one pass per 8-bit digit, each reading and
writing (key, int64 index)). It is a model, not a measurement: it ignores caches, occupancy,
atomics and the Python cost of numba-cuda's launches; ``scripts/gpu_speed.py`` measures on a GPU.
"""
from __future__ import annotations

import contextlib

import numpy as np

#: H100 SXM5 HBM3 bandwidth, bytes/s (NVIDIA H100 Tensor Core GPU datasheet: 3.35 TB/s).
HBM_BYTES_PER_S = 3.35e12
#: Cost of one kernel launch, s: the CPU-side submission of a launch, 4-6 us (NVIDIA technical
#: blog "Getting Started with CUDA Graphs", 2019, measures ~3.8 us per back-to-back kernel of a
#: 2.9 us body; PyTorch's eager dispatch adds a few us). Python-side numba-cuda launches cost more.
LAUNCH_S = 5e-6
#: Cost of one host synchronisation with a small device-to-host copy, s (same blog: a
#: cudaStreamSynchronize after each kernel raises 3.8 us to 9.6 us per kernel; plus the copy).
SYNC_S = 10e-6
#: One dependent step of a looping thread, s: a global-memory round trip of several hundred
#: cycles at ~1.7 GHz (order of magnitude, not a measured figure).
STEP_S = 0.5e-6
#: One dependent step of a thread block's search in shared memory (hull_tiles.py), s. Shared
#: memory answers in ~20-30 cycles where global memory takes ~400-500 (Jia et al., "Dissecting
#: the NVIDIA Volta GPU Architecture via Microbenchmarking", 2018: 19 vs ~400 cycles on V100;
#: Luo et al., "Benchmarking and Dissecting the Nvidia Hopper GPU Architecture", IPDPS 2024: the
#: same order on H800). A bridge step makes two dependent rounds of loads (vertex index, then its
#: S value) and up to three float64 divisions (a dependent sequence of some tens of cycles each,
#: mostly overlapping): ~150 cycles, ~0.1 us at ~1.7 GHz, i.e. STEP_S / 5 (order of magnitude,
#: not a measured figure; chosen high rather than low).
SHARED_STEP_S = STEP_S / 5

GPU_BACKENDS = ("torch", "numba_cuda")
#: The model table's name for the numba_cuda pipeline without a partition (``pipeline_counts``).
PIPELINE = "(no partition)"


def modelled_seconds(c: dict, constants: dict | None = None) -> float:
    """The modelled time of a call from its counters (module docstring). ``constants``: values
    of HBM_BYTES_PER_S, LAUNCH_S, SYNC_S, STEP_S, SHARED_STEP_S replacing this module's (e.g.
    those fitted on a GPU by ``wsrbench.bench.gpu_first_run.fit_constants``)."""
    k = dict(HBM_BYTES_PER_S=HBM_BYTES_PER_S, LAUNCH_S=LAUNCH_S, SYNC_S=SYNC_S, STEP_S=STEP_S,
             SHARED_STEP_S=SHARED_STEP_S)
    if constants:
        k.update({name: constants[name] for name in k if name in constants})
    return (c["bytes"] / k["HBM_BYTES_PER_S"] + c["launches"] * k["LAUNCH_S"]
            + c["syncs"] * k["SYNC_S"] + c.get("serial_steps", 0) * k["STEP_S"]
            + c.get("shared_steps", 0) * k["SHARED_STEP_S"])


def radix_sort_counts(n: int, d: int, itemsize: int) -> dict:
    """One stable radix sort of (n, d) keys with an int64 index payload (CUB onesweep model)."""
    passes = itemsize  # 8-bit digits
    return {"launches": passes + 1, "syncs": 0, "d2h_copies": 0,
            "bytes": n * d * itemsize + passes * 2 * n * d * (itemsize + 8), "serial_steps": 0}


def _sorted_centred(x: np.ndarray) -> np.ndarray:
    xs = np.sort(np.asarray(x, dtype=np.float64))
    return xs - xs[len(xs) // 2]


def imminent_violations(x: np.ndarray, lam: float, max_rounds: int | None = None):
    """New violations found by each round of imminent_collisions on the row x (its merges).

    The reference's rounds on the sorted, centred row: block means from float64 x-sums plus the
    closed-form shift sums; a block merges into its left neighbour when that one's mean is >=.
    O(blocks) per round. None if it takes more than ``max_rounds`` rounds (or the rounds would
    touch more than 50 x max_rounds x sqrt(d) blocks in all: a Theta(d)-round cascade at large d).
    """
    from ..core.numerics import block_means

    xs = _sorted_centred(x)
    d = len(xs)
    starts = np.arange(d)
    sums = xs.copy()
    out = []
    work, budget = 0, (None if max_rounds is None else 50 * max_rounds * int(np.sqrt(d) + 1))
    while len(starts) > 1:
        work += len(starts)
        if budget is not None and work > budget:
            return None
        ends = np.append(starts[1:], d)
        means = block_means(sums, starts, ends, d, lam)
        viol = means[:-1] >= means[1:]
        v = int(viol.sum())
        if v == 0:
            break
        out.append(v)
        if max_rounds is not None and len(out) > max_rounds:
            return None
        keep = np.concatenate([[True], ~viol])
        head = np.flatnonzero(keep)
        sums = np.add.reduceat(sums, head)
        starts = starts[head]
    return out


#: What the simulator shrinks so that tiny test rows cross every boundary, with the GPU's value:
#: (module of wsrbench.backends.numba_cuda, attribute, attribute holding the GPU's value).
GPU_GEOMETRY = (("launch", "THREADS_PER_BLOCK", "GPU_THREADS_PER_BLOCK"),
                ("segscan", "CHUNK", "GPU_CHUNK"),
                ("sort", "RADIX_MIN_TILE", "GPU_RADIX_MIN_TILE"),
                ("hull_tiles", "MAX_TILE_BITS", "GPU_TILE_BITS"),
                ("hull_tiles", "TILE_BITS", "GPU_TILE_BITS"),
                ("hull_tiles", "MAX_THREADS", "GPU_MAX_THREADS"))


@contextlib.contextmanager
def gpu_geometry():
    """The GPU's chunk, tile and block sizes while a dry run counts, whatever this process runs:
    under the simulator (NUMBA_ENABLE_CUDASIM=1) they are shrunk for test speed, and the counts
    of a model must be those of a GPU call. Nothing is compiled or launched in a dry run."""
    from ..core import registry

    mods = {m: registry.backend_module("numba_cuda", m) for m, _, _ in GPU_GEOMETRY}
    saved = [(mods[m], a, getattr(mods[m], a)) for m, a, _ in GPU_GEOMETRY]
    try:
        for m, a, g in GPU_GEOMETRY:
            setattr(mods[m], a, getattr(mods[m], g))
        yield
    finally:
        for mod, a, v in saved:
            setattr(mod, a, v)


def numba_cuda_counts(x: np.ndarray, lam: float, algorithm: str, *, dtype=np.float32,
                      sort_method: str = "radix", violations=None) -> dict:
    """Counters of a numba_cuda call on the row x (dry run with the GPU's geometry, whatever
    this process runs; see module docstring)."""
    from ..core import registry

    nc = registry.backend_module("numba_cuda")

    if algorithm == "imminent_collisions" and violations is None:
        violations = imminent_violations(x, lam)
    with gpu_geometry():
        return nc.count_call(1, len(x), dtype, lam, algorithm, violations=violations or (),
                             sort_method=sort_method)


def pipeline_counts(n: int, d: int, *, dtype=np.float32, sort_method: str = "radix") -> dict:
    """Counters of the numba_cuda pipeline without a partition (``count_call`` with
    algorithm=None): the floor every numba_cuda algorithm adds its own kernels to, 14.7."""
    from ..core import registry

    nc = registry.backend_module("numba_cuda")

    with gpu_geometry():
        return nc.count_call(n, d, dtype, 0.0, None, sort_method=sort_method)


def torch_counts(x: np.ndarray, lam: float, algorithm: str, *, dtype=np.float32) -> dict:
    """Counters of a torch-backend call on the row x (CPU tensors under a counting dispatch mode,
    plus the final copy of the counters to the host, which is free on CPU)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    import wsrbench

    sync_ops = {"_local_scalar_dense", "nonzero", "item", "is_nonzero", "equal"}

    class Counting(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.c = {"launches": 0, "syncs": 0, "d2h_copies": 0, "bytes": 0, "serial_steps": 0}

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            name = func.__name__.split(".")[0]
            if name in ("empty", "empty_like", "detach", "view", "_unsafe_view", "alias",
                        "as_strided", "t", "transpose", "expand", "slice", "select",
                        "unsqueeze", "squeeze", "reshape", "lift_fresh"):
                return out  # no kernel: allocation or metadata only
            self.c["launches"] += 1
            if name in sync_ops:
                self.c["syncs"] += 1
                self.c["d2h_copies"] += 1
            flat = list(args) + list((kwargs or {}).values()) + (
                list(out) if isinstance(out, (tuple, list)) else [out])
            for a in flat:
                if isinstance(a, torch.Tensor):
                    self.c["bytes"] += a.numel() * a.element_size()
            return out

    t = torch.as_tensor(np.asarray(x, dtype=dtype))
    wsrbench.prox(t, lam, algorithm=algorithm, backend="torch")  # warm (lazy imports)
    mode = Counting()
    with mode:
        wsrbench.prox(t, lam, algorithm=algorithm, backend="torch")
    c = mode.c
    c["syncs"] += 1  # the final .cpu() of rounds/clusters: a copy and a sync on a GPU
    c["d2h_copies"] += 1
    return c


def model_table(families=("gaussian", "worst_imminent_collisions", "worst_pava"),
                sizes=(10**3, 10**4, 10**5, 10**6, 10**7), dtype=np.float32, seed=0,
                torch_max_d=10**7, max_rounds=20000, backends=GPU_BACKENDS,
                progress=None) -> list[dict]:
    """One record per GPU backend x algorithm x family x d with counts and modelled times.

    The input is the family's row in ``dtype`` (float32 rounding changes the cascade of
    worst_imminent_collisions: far fewer than d - 1 rounds). imminent_collisions runs needing
    more than ``max_rounds`` rounds are listed as skipped (each round costs at least one launch
    and one sync: the model is then >= rounds x (LAUNCH_S + SYNC_S)). torch is counted on CPU
    tensors up to ``torch_max_d`` (the counting runs the call). The numba_cuda rows named
    ``PIPELINE`` are the pipeline without a partition (``pipeline_counts``): no algorithm's row
    can be below them. ``progress``: called with a label before each (family, d), when given.
    """
    from ..core import registry
    from . import cases

    have_torch = "torch" in backends and registry.get_backend("torch").unavailable_reason() is None
    item = np.dtype(dtype).itemsize
    rows = []
    for fam in families:
        for d in sizes:
            if progress is not None:
                progress(f"gpu model {fam} d={d:.0e}")
            x, lam = cases.make(fam, d, seed=seed, dtype=dtype)
            ref = radix_sort_counts(1, d, item)
            t_ref = modelled_seconds(ref)
            viol = imminent_violations(x, lam, max_rounds)
            impls = [("numba_cuda", a, s) for a in registry.get_backend("numba_cuda").algorithms
                     for s in ("radix", "torch")]
            impls += [("numba_cuda", PIPELINE, s) for s in ("radix", "torch")]
            if have_torch and d <= torch_max_d:
                impls += [("torch", a, None) for a in registry.get_backend("torch").algorithms
                          if a != "pava"]  # torch's pava on a GPU is numba_cuda's kernel
            for backend, alg, sort in impls:
                name = backend + (f"[{sort} sort]" if sort else "")
                if alg == "imminent_collisions" and viol is None:
                    rows.append({"backend": name, "algorithm": alg, "family": fam, "d": d,
                                 "skipped": f"more than {max_rounds} rounds"})
                    continue
                if backend == "torch":
                    c = torch_counts(x, lam, alg, dtype=dtype)
                elif alg == PIPELINE:
                    c = pipeline_counts(1, d, dtype=dtype, sort_method=sort)
                else:
                    c = numba_cuda_counts(x, lam, alg, dtype=dtype, sort_method=sort,
                                          violations=viol)
                t = modelled_seconds(c)
                rows.append({"backend": name, "algorithm": alg, "family": fam, "d": d, **c,
                             "model_s": t, "radix_sort_model_s": t_ref, "ratio": t / t_ref})
    return rows


def format_table(rows) -> str:
    """The model table as Markdown, labelled as a model."""
    head = ("MODELLED H100 time (not measured): bytes / 3.35 TB/s + launches x 5 us + syncs x "
            "10 us + serial steps x 0.5 us + shared-memory steps x 0.1 us (wsrbench.bench.gpu_model); "
            "ratio = model / model of one radix sort of the same data.\n\n")
    lines = ["| backend | algorithm | family | d | launches | syncs | d2h | MB moved | "
             "serial steps | shared steps | model ms | radix-sort ms | ratio |",
             "|" + "---|" * 13]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['backend']} | {r['algorithm']} | {r['family']} | {r['d']:.0e} | "
                         f"skipped: {r['skipped']} |" + " |" * 8)
            continue
        lines.append(f"| {r['backend']} | {r['algorithm']} | {r['family']} | {r['d']:.0e} | "
                     f"{r['launches']} | {r['syncs']} | {r['d2h_copies']} | "
                     f"{r['bytes'] / 1e6:.1f} | {r['serial_steps']} | {r.get('shared_steps', 0)} | "
                     f"{r['model_s'] * 1e3:.3f} | "
                     f"{r['radix_sort_model_s'] * 1e3:.3f} | {r['ratio']:.1f} |")
    return head + "\n".join(lines) + "\n"


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description="modelled H100 cost of the GPU backends (a model)")
    ap.add_argument("--families", default="gaussian,worst_imminent_collisions,worst_pava")
    ap.add_argument("--sizes", default="1e3,1e4,1e5,1e6,1e7")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    args = ap.parse_args(argv)
    rows = model_table(tuple(args.families.split(",")),
                       tuple(int(float(s)) for s in args.sizes.split(",")),
                       dtype=np.dtype(args.dtype))
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
