"""GPU speed table for the prox: prox time / torch.sort time, float32, on one GPU.

Run on a machine with an NVIDIA GPU, torch (CUDA build) and numba-cuda:

    wsrbench compare --gpu-speed                # d = 1e5, 1e6, 1e7 and the 4096 x 512 batch
    python scripts/gpu_speed.py --sizes 100000  # the same table; quicker
    python scripts/gpu_speed.py --all           # also imminent_collisions on its worst case at
                                                # d > 1e6 (Theta(d) rounds: very long) and torch's
                                                # hull_bridges at d > 1e5 (~1e5 ops a call)

For each input (``gaussian`` and ``worst_imminent_collisions`` from wsrbench.bench.cases, float32,
plus a 4096 x 512 batch of gaussian rows) and each GPU implementation (torch backend on CUDA
tensors; numba_cuda backend with its own radix sort and with the zero-copy torch.sort), it
prints the median wall time of a prox call (data already on the device, warm: JIT compiled and
cached allocator primed), the median time of ``torch.sort(x, dim=-1, stable=True)`` on the same
tensor (the floor: every algorithm sorts once), their ratio, rounds and clusters, and the
maximum deviation from the CPU answer (pava in float64 on the float32 input). The device name
is printed first: absolute times mean nothing without it (docs/design.md).
"""
from __future__ import annotations

import argparse
import math
import statistics

import numpy as np

from wsrbench.bench.benchtools import time_calls


def _timeit(fn, sync, repeat):
    """Median seconds of ``repeat`` calls of fn() + sync(), after one untimed warm-up (JIT,
    allocator)."""
    def run():
        fn()
        sync()

    run()
    return statistics.median(time_calls(run, repeat, budget=math.inf))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=float, nargs="*", default=[1e5, 1e6, 1e7])
    ap.add_argument("--batch", type=int, nargs=2, default=[4096, 512], metavar=("ROWS", "D"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--all", action="store_true",
                    help="run imminent_collisions on its worst case beyond d = 1e6, and torch's "
                         "hull_bridges beyond d = 1e5, too")
    ap.add_argument("--no-reference", action="store_true", help="skip the NumPy comparison")
    ap.add_argument("--dry-run", action="store_true",
                    help="check the script without a GPU: CPU tensors, the CUDA simulator, "
                         "tiny sizes (times meaningless)")
    args = ap.parse_args(argv)
    if args.dry_run:
        import os

        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"  # before numba is imported
        args.sizes, args.batch, args.repeat = [16], [3, 8], 1

    import torch
    from numba import cuda

    import wsrbench
    from wsrbench import cases
    from wsrbench.core import registry

    nc = registry.backend_module("numba_cuda")
    nc_sort = registry.backend_module("numba_cuda", "sort")

    device = "cpu" if args.dry_run else "cuda"
    if args.dry_run:
        print("DRY RUN: CPU tensors and the CUDA simulator; the times below mean nothing")
    elif not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU visible to torch: this script only measures on a GPU "
                         "(--dry-run checks it without one)")
    else:
        print(f"device: {torch.cuda.get_device_name()} (torch {torch.__version__}, "
              f"CUDA {torch.version.cuda})")
    print(f"numba_cuda threads/block: {nc.launch.THREADS_PER_BLOCK}")

    def sync():
        if not args.dry_run:
            torch.cuda.synchronize()
            cuda.synchronize()

    inputs = []
    for d in (int(s) for s in args.sizes):
        for fam in ("gaussian", "worst_imminent_collisions"):
            x, lam = cases.make(fam, d, seed=0, dtype=np.float32)
            inputs.append((f"{fam} d={d}", x, lam, fam))
    n, d = args.batch
    rows = np.stack([cases.make("gaussian", d, seed=s, dtype=np.float32)[0] for s in range(n)])
    lam_b = cases.make("gaussian", d, seed=0, dtype=np.float32)[1]
    inputs.append((f"batch {n}x{d} gaussian", rows, lam_b, "gaussian"))

    impls = [("torch", "search_collisions", None), ("torch", "imminent_collisions", None),
             ("torch", "hull_bridges", None)]
    for alg in ("hull_bridges", "search_collisions", "imminent_collisions", "pava"):
        impls += [("numba_cuda", alg, "radix")]
        if not args.dry_run:  # torch.sort on our device arrays needs CUDA tensors
            impls += [("numba_cuda", alg, "torch")]

    from wsrbench.bench.gpu_model import modelled_seconds

    print(f"{'input':34s} {'backend/algorithm [sort]':42s} {'prox ms':>10s} {'sort ms':>9s} "
          f"{'ratio':>8s} {'rounds':>9s} {'clusters':>9s} {'max|w-ref|':>11s} {'launches':>8s} "
          f"{'syncs':>5s} {'model ms':>9s}")
    for label, x, lam, fam in inputs:
        xt = torch.as_tensor(x, device=device)
        t_sort = _timeit(lambda: torch.sort(xt, dim=-1, stable=True), sync, args.repeat)
        ref = {}
        for backend, alg, method in impls:
            dd = x.shape[-1]
            if alg == "pava" and x.ndim == 1 and dd > 4096:
                continue  # one thread per row: meant for batches of short rows
            if (alg == "imminent_collisions" and fam.startswith("worst") and dd > 1_000_000
                    and not args.all):
                print(f"{label:34s} {backend + '/' + alg:42s} skipped: Theta(d) rounds "
                      f"(--all to run)")
                continue
            if backend == "torch" and alg == "hull_bridges" and dd > 100_000 and not args.all:
                print(f"{label:34s} {backend + '/' + alg:42s} skipped: ~10^5 tensor ops a call "
                      f"at this d (--all to run)")
                continue
            if backend == "torch":
                arg = xt
            else:
                nc_sort.SORT = method
                arg = nc.from_numpy(x) if args.dry_run else cuda.as_cuda_array(xt)
            name = f"{backend}/{alg}" + (f" [{method}]" if method else "")
            try:
                t = _timeit(lambda: wsrbench.prox(arg, lam, algorithm=alg, backend=backend),
                            sync, args.repeat)
                w, info = wsrbench.prox_info(arg, lam, algorithm=alg, backend=backend)
            except Exception as exc:  # report and go on (e.g. out of memory at 1e7)
                print(f"{label:34s} {name:42s} failed: {type(exc).__name__}: {exc}")
                continue
            w = w.cpu().numpy() if backend == "torch" else nc.to_numpy(w)
            err = float("nan")
            if not args.no_reference:
                if "w" not in ref:  # the prox is unique: pava on the CPU (numba when installed)
                    ref["w"] = wsrbench.prox(x.astype(np.float64), lam, algorithm="pava",
                                             backend="auto")
                err = float(np.max(np.abs(w.astype(np.float64) - ref["w"])))
            rounds = np.max(info.rounds)
            clusters = np.max(info.clusters)
            c = dict(getattr(info, "counters", {}) or {})
            launches = c.get("launches", -1)
            syncs = c.get("syncs", -1)
            model = modelled_seconds(c) * 1e3 if "bytes" in c else float("nan")
            print(f"{label:34s} {name:42s} {t * 1e3:10.3f} {t_sort * 1e3:9.3f} "
                  f"{t / t_sort:8.2f} {rounds:9d} {clusters:9d} {err:11.2e} {launches:8d} "
                  f"{syncs:5d} {model:9.3f}")
    nc_sort.SORT = "auto"


if __name__ == "__main__":
    main()
