"""Time prox algorithms x backends x input families x sizes against the sort floor.

Every answer is certified (wsrbench.certify, the optimality conditions) before its time counts.
Each time is the minimum over --repeats calls after one untimed warm-up call (JIT compilation
never counts); the floor is np.argsort of the same input (torch.sort on the same GPU for GPU
backends). For each backend, algorithm and family the table shows the time per size, the scaling
exponent fitted by least squares to log t = a + p log d (over d >= 1e4 when two such sizes were
measured, so that fixed per-call overheads do not flatten it), and the ratio to the floor at the
largest size. Slow (backend, algorithm, family) combinations are capped at an explicit size, listed
at the start of the run (--no-caps lifts the caps).

Writes to --out:
  results.md    the tables (time per size, exponent, ratio to the floor; parallel depth)
  results.csv   raw figures, one record per measurement
  results.json  the same with the run's metadata, summary and caps
  scaling.png   log-log time vs d, one panel per family, floor drawn dashed
  depth.png     parallel depth vs d on a log2 d axis, each algorithm's fitted law in the
                legend, x where a line stops at a cap (scaling.png and depth.png need matplotlib:
                pip install "wsrbench[bench]"; --no-plot skips both)
  gpu_model.md  with --gpu-model: the modelled GPU table, with date, command and machine
Exit status 1 if any answer failed its certificate.
"""
from __future__ import annotations

import datetime
import os
import platform
import sys
import time

import numpy as np

from ..bench.benchtools import REPEAT_BUDGET_S, fmt_d, fmt_time
from ..bench.compare import (
    DEFAULT_FAMILIES,
    DEFAULT_SIZES,
    QUICK_FAMILIES,
    QUICK_SIZES,
    make_plan,
    measure,
    parse_sizes,
    resolve_algorithms,
    resolve_backends,
    resolve_families,
    summarize,
)
from ..bench.report import caps_applied, floor_rows, markdown_table, plural, write_outputs
from ..core import provenance

# ---------------------------------------------------------------------------------------------
# Progress

class _Progress:
    """tqdm when installed (pip install "wsrbench[bench]"), else one rewritten stderr line."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.n, self.enabled = total, 0, enabled
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, file=sys.stderr, unit="run", leave=False,
                                dynamic_ncols=True)
            except ImportError:
                pass

    def update(self, label: str) -> None:
        self.n += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_description(label, refresh=False)
            self.bar.update(1)
        else:
            sys.stderr.write(f"\r[{self.n}/{self.total}] {label:<70.70}")
            sys.stderr.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.close()
        else:
            sys.stderr.write("\r" + " " * 80 + "\r")
            sys.stderr.flush()


# ---------------------------------------------------------------------------------------------
# Command line

def add_arguments(p) -> None:
    import argparse

    p.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the docstring's layout
    p.add_argument("--backends", help="comma-separated backends (default: every available one)")
    p.add_argument("--algorithms", help="comma-separated algorithms (default: all registered)")
    p.add_argument("--families", help=f"comma-separated families, or all / typical / worst "
                                      f"(default: {','.join(DEFAULT_FAMILIES)})")
    p.add_argument("--sizes", help="comma-separated d values, e.g. 1e3,1e4,1e5 (default: "
                                   + ",".join(fmt_d(d) for d in DEFAULT_SIZES) + ")")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed calls per measurement, min reported (default 3, 1 with --quick; "
                        f"fewer once they took {REPEAT_BUDGET_S:g} s)")
    p.add_argument("--quick", action="store_true",
                   help=f"under a minute: sizes {','.join(fmt_d(d) for d in QUICK_SIZES)}, families "
                        f"{','.join(QUICK_FAMILIES)}, 1 repeat (explicit options still win)")
    p.add_argument("--seed", type=int, default=0, help="seed of the input families (default 0)")
    p.add_argument("--out", default="wsrbench-out", help="output directory (default wsrbench-out)")
    p.add_argument("--no-plot", action="store_true", help="skip scaling.png and depth.png")
    p.add_argument("--no-caps", action="store_true", help="lift the size caps of slow combinations")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--gpu-model", action="store_true",
                   help="print the GPU backends' counted launches, syncs and bytes and their "
                        "MODELLED H100 time (no GPU needed; wsrbench.bench.gpu_model), write "
                        "gpu_model.md to --out, then time as usual only if a GPU is present")
    p.add_argument("--gpu-speed", action="store_true",
                   help="run the GPU speed table (wsrbench.bench.gpu_speed; needs a CUDA GPU)")


def _run_meta() -> dict:
    """The command, date and machine that every file this command writes carries."""
    return {
        "command": " ".join(["wsrbench compare"] + (sys.argv[2:] if sys.argv[1:2] == ["compare"]
                                                     else [])),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.node() or 'host'}: {platform.processor() or platform.machine()}, "
                   f"{os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}",
    }


def _gpu_model(args) -> None:
    from ..bench.benchtools import torch_cuda
    from ..bench.gpu_model import format_table, model_table

    fams = tuple(args.families.split(",")) if args.families else (
        "gaussian", "worst_imminent_collisions", "worst_pava")
    sizes = tuple(parse_sizes(args.sizes)) if args.sizes else (10**3, 10**4, 10**5, 10**6, 10**7)
    progress = _Progress(len(fams) * len(sizes), enabled=not getattr(args, "no_progress", False))
    try:
        with provenance.LoadMonitor() as load:
            rows = model_table(fams, sizes, dtype=np.dtype(args.dtype), torch_max_d=10**6,
                               progress=progress.update)
    finally:
        progress.close()
    text = format_table(rows)
    print(text)
    os.makedirs(args.out, exist_ok=True)
    # the counts and the modelled times do not depend on the machine; the header is the common
    # one all the same, so that every figures file can be checked alike
    header = provenance.header(f"GPU model ({args.dtype})", load, _run_meta()["command"])
    with open(os.path.join(args.out, "gpu_model.md"), "w") as f:
        f.write(header + "\n" + text)
    if not torch_cuda():
        print("no CUDA GPU here: the figures above are a model only")


def run(args) -> int:
    if getattr(args, "gpu_speed", False):
        from ..bench.gpu_speed import main as gpu_speed_main

        gpu_speed_main([])
        return 0
    if getattr(args, "gpu_model", False):
        _gpu_model(args)
        from ..bench.benchtools import torch_cuda

        if not torch_cuda():
            return 0
    quick = getattr(args, "quick", False)
    sizes = parse_sizes(args.sizes) if args.sizes else (QUICK_SIZES if quick else DEFAULT_SIZES)
    families = resolve_families(args.families, QUICK_FAMILIES if quick else DEFAULT_FAMILIES)
    backends = resolve_backends(args.backends)
    algorithms = resolve_algorithms(args.algorithms)
    repeats = args.repeats if args.repeats is not None else (1 if quick else 3)
    if repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {repeats}")
    dtype = np.dtype(args.dtype)

    plan = make_plan(backends, algorithms, families, sizes, use_caps=not args.no_caps)
    if args.backends is not None and plan.skipped_backends:
        b, why = plan.skipped_backends[0]
        raise RuntimeError(f"backend {b!r} is unavailable here: {why}")
    for b, why in plan.skipped_backends:
        print(f"skipping backend {b}: {why}")
    if plan.capped:
        print("caps (backend/algorithm/family; sizes above them are not run; --no-caps lifts them):")
        for c, n in caps_applied(plan):
            where = " on CPU" if c.device == "cpu" else ""
            print(f"  {c.backend}/{c.algorithm}/{c.family}{where}: d <= {c.max_d} "
                  f"({plural(n, 'combination')}): {c.reason}")
    if not plan.cells:
        raise ValueError("nothing to run: no available backend implements the chosen algorithms")

    t_start = time.perf_counter()
    records, floor_cache = [], {}
    progress = _Progress(len(plan.cells), enabled=not args.no_progress)
    try:
        for b, a, f, d in plan.cells:
            progress.update(f"{b} {a} {f} d={d}")
            records.append(measure(b, a, f, d, dtype=dtype, repeats=repeats, seed=args.seed,
                                   floor_cache=floor_cache))
    finally:
        progress.close()
    elapsed = time.perf_counter() - t_start

    summary = summarize(records)
    meta = {
        **_run_meta(),
        "dtype": dtype.name, "repeats": repeats, "seed": args.seed, "sizes": sizes,
        "families": families, "elapsed_seconds": elapsed,
    }
    written = write_outputs(args.out, records, summary, sizes, plan, meta, plot=not args.no_plot)
    print(markdown_table(summary, sizes))
    print()
    print("sort floor (np.argsort on the CPU, torch.sort on a GPU), min time:")
    for fam, d, name, t in floor_rows(records):
        print(f"  {fam:<26} d={fmt_d(d):<6} {name:<18} {fmt_time(t)}")
    print()
    print("scaling exponent p (t ~ d^p, least squares on log-log) and time / floor at the largest d:")
    for s in summary:
        p, ratio = s["exponent"], s["ratio_to_floor"]
        p_s = f"p = {p:.2f}" if np.isfinite(p) else "p = - (fewer than two sizes)"
        r_s = f", {ratio:.3g}x floor at d={fmt_d(s['ratio_d'])}" if np.isfinite(ratio) else ""
        print(f"  {s['backend']}/{s['algorithm']} on {s['family']}: {p_s}{r_s}")
    bad = [r for r in records if r.status != "ok"]
    for r in bad:
        print(f"{r.status.upper()}: {r.backend}/{r.algorithm}/{r.family}/d={r.d}: {r.message}")
    print(f"\n{len(records)} measurements in {elapsed:.1f} s; wrote {', '.join(written)}")
    return 1 if bad else 0
