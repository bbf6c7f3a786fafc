"""The first run on a GPU: one command, a time budget per step, one directory of dated results
(docs/design.md#calibrating-the-cost-model-on-a-gpu).

    scripts/gpu_first_run.sh [--out DIR] [--steps tests,compare,...] [--budget STEP=SECONDS ...]
    python -m wsrbench.bench.gpu_first_run --help

Steps (each in its own process group, killed and recorded as ``timeout`` when it overruns its
budget; the others still run):

1. ``tests``: the registry test suite restricted to the GPU backends (pytest ``-k "numba_cuda or
   torch or test_gpu_backends"``) on real kernels (JIT-compiled here once, cached on disk for the
   later steps), then every numba_cuda and torch algorithm at sizes that reach the GPU geometry
   (tiles of 2^GPU_TILE_BITS points in ``tile_levels`` with its real block size and shared
   memory, ``bridge_pairs`` above them, with their registers and shared memory as compiled),
   each answer checked against the CPU reference within ``core.numerics.value_tolerance`` and
   certified, hull_bridges' launch and sync counts compared with the dry-run counts of the model.
2. ``compare``: ``wsrbench compare`` over the GPU backends (float32, quick families and sizes)
   and ``--gpu-speed``; every record gets its modelled time (``bench.gpu_model``).
3. ``calibrate``: single kernel launches, launch + host sync, dependent global-memory steps (a
   pointer chase through a random cycle larger than L2), dependent shared-memory steps and a
   device copy; ``fit_constants`` fits the model's constants by least squares.
4. ``train``: the prox step of a training iteration (``WeightSharingProx`` over SGD) for the
   paper's large layer, d = 5e7 float32, on the device; the bare prox and ``torch.sort`` too.
5. ``sharded``: ``wsrbench.distributed.prox_info`` with NCCL, one process per GPU present.

The directory ``gpu-first-run-<UTC date>`` under ``--out`` holds ``run.json`` (environment:
machine, driver, CUDA, torch, numba-cuda versions, git commit; steps; records; calibration),
``summary.md`` (measured vs modelled time per backend, algorithm and size) and ``log.txt``
(every step's output), plus ``compare/`` (the compare command's own results). Without a CUDA GPU
(or under NUMBA_ENABLE_CUDASIM=1) it refuses with exit status 2: these are real-kernel figures.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

#: Step names in run order, with their default budgets in seconds: 460 s in all, so that the
#: whole run stays under 8 minutes with the environment probe and the summary.
STEPS = {"tests": 150.0, "compare": 120.0, "calibrate": 60.0, "train": 70.0, "sharded": 60.0}
TOTAL_LIMIT_S = 480.0
#: The paper's large layer.
TRAIN_D = 50_000_000
#: imminent_collisions records with more rounds get no modelled time (as in gpu_model.model_table).
IMMINENT_MAX_ROUNDS = 20_000
#: torch-backend calls are counted by running them on CPU tensors: up to this d only.
TORCH_COUNT_MAX_D = 10_000
REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------- arguments

def parse_budgets(items, steps) -> dict:
    """{step: seconds} from the defaults and ``STEP=SECONDS`` overrides."""
    budgets = {s: STEPS[s] for s in steps}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--budget {item!r}: write STEP=SECONDS, e.g. --budget tests=120")
        if name not in STEPS:
            raise ValueError(f"--budget {item!r}: unknown step {name!r}; steps are "
                             f"{', '.join(STEPS)}")
        try:
            seconds = float(value)
        except ValueError:
            raise ValueError(f"--budget {item!r}: {value!r} is not a number of seconds") from None
        if not (seconds > 0 and math.isfinite(seconds)):
            raise ValueError(f"--budget {item!r}: the budget must be a positive number of seconds")
        if name in budgets:
            budgets[name] = seconds
    total = sum(budgets.values())
    if total > TOTAL_LIMIT_S:
        raise ValueError(f"budgets add up to {total:.0f} s, over the run's {TOTAL_LIMIT_S:.0f} s "
                         f"(a device command may run 10 minutes, starts included); lower some "
                         f"with --budget STEP=SECONDS or run fewer --steps")
    return budgets


def parse_steps(text: str | None) -> list[str]:
    """Steps to run, in the canonical order, from a comma-separated list (default: all)."""
    if not text:
        return list(STEPS)
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in STEPS]
    if unknown or not names:
        raise ValueError(f"--steps {text!r}: unknown step(s) {unknown}; choose from "
                         f"{', '.join(STEPS)}")
    return [s for s in STEPS if s in names]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gpu_first_run", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=".", help="parent folder of the dated results directory")
    ap.add_argument("--steps", help=f"comma-separated steps (default all: {','.join(STEPS)})")
    ap.add_argument("--budget", action="append", metavar="STEP=SECONDS",
                    help="a step's time budget (repeatable); defaults: " +
                    ", ".join(f"{k}={v:.0f}" for k, v in STEPS.items()))
    ap.add_argument("--run-step", help=argparse.SUPPRESS)  # the child process of one step
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    return ap


def results_dir(parent, now: datetime.datetime | None = None) -> Path:
    """A new dated directory ``gpu-first-run-YYYYmmddTHHMMSSZ`` under ``parent`` (created)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    base = Path(parent) / f"gpu-first-run-{now.strftime('%Y%m%dT%H%M%SZ')}"
    path, k = base, 1
    while path.exists():  # two runs within one second
        path, k = Path(f"{base}-{k}"), k + 1
    path.mkdir(parents=True)
    return path


# ------------------------------------------------------------------------------- the runner

@dataclass
class Step:
    """A step: a command run in its own process group within ``budget_s`` seconds. The command
    may write its records as JSON to ``<dir>/_<name>.json``."""
    name: str
    budget_s: float
    argv: list


@dataclass
class StepResult:
    name: str
    status: str  # "ok", "failed" (non-zero exit), "timeout" (killed at its budget), "error"
    seconds: float
    budget_s: float
    returncode: int | None = None
    message: str = ""
    records: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def run_step(step: Step, out_dir: Path, log) -> StepResult:
    """Run one step; its output goes to ``log`` (a text file), its records are collected."""
    log.write(f"\n===== step {step.name} (budget {step.budget_s:.0f} s): "
              f"{' '.join(map(str, step.argv))}\n")
    log.flush()
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen([str(a) for a in step.argv], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=REPO)
    except OSError as exc:
        return StepResult(step.name, "error", 0.0, step.budget_s, None,
                          f"could not start: {type(exc).__name__}: {exc}")
    try:
        rc = proc.wait(timeout=step.budget_s)
        status = "ok" if rc == 0 else "failed"
        message = "" if rc == 0 else f"exit status {rc}"
    except subprocess.TimeoutExpired:
        # The step's own process group (its pytest or NCCL children too): killed as one.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        rc, status = None, "timeout"
        message = f"killed after its budget of {step.budget_s:.0f} s"
    seconds = time.monotonic() - t0
    res = StepResult(step.name, status, seconds, step.budget_s, rc, message)
    part = out_dir / f"_{step.name}.json"
    if part.exists():  # what the step wrote before it ended (or was killed)
        try:
            data = json.loads(part.read_text())
            res.records = list(data.get("records", []))
            res.extra = {k: v for k, v in data.items() if k != "records"}
        except (ValueError, AttributeError) as exc:
            res.message = (res.message + "; " if res.message else "") + \
                f"unreadable records: {exc}"
        part.unlink()
    log.write(f"===== step {step.name}: {status} in {seconds:.1f} s {message}\n")
    log.flush()
    return res


def run_steps(steps, out_dir: Path) -> list[StepResult]:
    out_dir = Path(out_dir)
    with open(out_dir / "log.txt", "a") as log:
        return [run_step(s, out_dir, log) for s in steps]


def default_steps(names, budgets, out_dir: Path) -> list[Step]:
    return [Step(n, budgets[n], [sys.executable, "-m", "wsrbench.bench.gpu_first_run",
                                 "--run-step", n, "--dir", out_dir, "--seconds", budgets[n]])
            for n in names]


# ------------------------------------------------------------------------- refusing without a GPU

def gpu_missing_reason() -> str | None:
    """None when real CUDA kernels can run here, else why not (and what to do)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        return ("NUMBA_ENABLE_CUDASIM is set: this run measures real kernels, not the simulator; "
                "unset it and run on a machine with an NVIDIA GPU")
    try:
        import torch
    except ImportError:
        return "torch is not installed: install a CUDA build of torch on the GPU machine"
    if not torch.cuda.is_available():
        return ("no CUDA GPU visible to torch: run this on a machine with an NVIDIA GPU, its "
                "driver and a CUDA build of torch")
    return None


# ------------------------------------------------------------------------------- environment

def _cmd(argv) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def _version(dist: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment() -> dict:
    """Machine, GPU, driver, CUDA and package versions, git commit, load: what makes a figure
    reproducible."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor()
    env = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": os.environ.get("WSRBENCH_COMMIT") or _cmd(["git", "-C", str(REPO),
                                                                   "rev-parse", "HEAD"]) or "unknown",
        "host": platform.node(), "cpu": cpu, "cores": os.cpu_count(),
        "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else [],
        "python": platform.python_version(),
        "gpus": _cmd(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                      "--format=csv,noheader"]).splitlines(),
        "torch": _version("torch"), "numba": _version("numba"),
        "numba_cuda": _version("numba-cuda"), "numpy": _version("numpy"),
    }
    try:
        import torch

        env["torch_cuda"] = torch.version.cuda
        env["torch_cuda_available"] = bool(torch.cuda.is_available())
        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            env["device"] = {"name": p.name, "multiprocessors": p.multi_processor_count,
                             "memory_bytes": p.total_memory,
                             "capability": f"{p.major}.{p.minor}"}
            env["gpu_count"] = torch.cuda.device_count()
    except Exception as exc:  # the record says what failed; the run goes on
        env["torch_error"] = f"{type(exc).__name__}: {exc}"
    if env.get("torch_cuda_available"):
        try:
            from numba import cuda

            env["cuda_driver"] = ".".join(map(str, cuda.cudadrv.driver.driver.get_version()))
            env["cuda_runtime_numba"] = ".".join(map(str, cuda.runtime.get_version()))
        except Exception as exc:
            env["numba_cuda_error"] = f"{type(exc).__name__}: {exc}"
    return env


# ------------------------------------------------------------------------------- calibration

#: The cost model's constants that the calibration fits (names as in ``bench.gpu_model``).
CONSTANTS = ("HBM_BYTES_PER_S", "LAUNCH_S", "SYNC_S", "STEP_S", "SHARED_STEP_S")


def _slope(points) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line through (x, seconds) points."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(np.unique(pts[:, 0])) < 2:
        raise ValueError(f"a fit needs (x, seconds) points at two or more distinct x; got "
                         f"{pts.tolist()}")
    slope, intercept = np.polyfit(pts[:, 0], pts[:, 1], 1)
    return float(slope), float(intercept)


def fit_constants(samples: dict) -> dict:
    """The model's constants from timings (lists of (x, seconds) points):

    * ``launch``: (n launches back to back, host seconds): LAUNCH_S = slope;
    * ``sync``: (n iterations of launch + 1-element copy to the host, seconds):
      SYNC_S = slope - LAUNCH_S;
    * ``global``: (dependent global-memory loads of one thread, kernel seconds): STEP_S = slope;
    * ``shared``: (dependent shared-memory loads, kernel seconds): SHARED_STEP_S = slope;
    * ``copy``: (bytes read + written by a device copy, seconds): HBM_BYTES_PER_S = 1 / slope.

    Fitting slopes (not ratios) drops every fixed cost (the launch around a chase, the event
    pair around a copy) into the intercepts, which are returned as ``<key>_intercept_s``.
    """
    need = ("launch", "sync", "global", "shared", "copy")
    missing = [k for k in need if k not in samples]
    if missing:
        raise ValueError(f"fit_constants: samples lack {missing}; give (x, seconds) points for "
                         f"each of {need}")
    fits = {k: _slope(samples[k]) for k in need}
    out = {"LAUNCH_S": fits["launch"][0], "SYNC_S": fits["sync"][0] - fits["launch"][0],
           "STEP_S": fits["global"][0], "SHARED_STEP_S": fits["shared"][0],
           "HBM_BYTES_PER_S": 1.0 / fits["copy"][0] if fits["copy"][0] > 0 else math.inf}
    out.update({f"{k}_intercept_s": fits[k][1] for k in need})
    return out


#: The calibration's sizes on a GPU: launches, syncs, log2 of the global cycle's length (2^26
#: int32 = 256 MiB, several times the 50-60 MB L2 of an H100/H200), its chase lengths, the
#: shared-memory chase lengths, the copies in MiB.
CALIBRATION = {"launches": (200, 400, 800, 1600), "syncs": (50, 100, 200, 400), "global_log2": 26,
               "global_steps": (256, 512, 1024, 2048),
               "shared_steps": (4096, 8192, 16384, 32768), "copy_mib": (256, 512, 1024)}


def _calibration_samples(repeats: int = 5, sizes: dict | None = None,
                         device: str = "cuda") -> dict:
    """Time the five microbenchmarks of ``fit_constants`` (numba-cuda kernels; the copy through
    torch on ``device``). Kernel times come from CUDA events, host costs from the wall clock.
    ``sizes``: ``CALIBRATION``'s keys (the tests pass tiny ones and run the simulator)."""
    sz = dict(CALIBRATION, **(sizes or {}))
    import torch
    from numba import cuda

    from .gpu_calibration import SHARED_N, chase_global, chase_shared, empty

    def cycle(n, seed):
        """One random cycle through 0..n-1 (each entry points at the next one of a random
        permutation): a chase visits every entry, in an order no prefetcher predicts."""
        perm = np.random.default_rng(seed).permutation(n).astype(np.int32)
        nxt = np.empty(n, dtype=np.int32)
        nxt[perm[:-1]] = perm[1:]
        nxt[perm[-1]] = perm[0]
        return nxt

    def kernel_seconds(launch):
        ts = []
        for _ in range(repeats):
            a, b = cuda.event(), cuda.event()
            a.record()
            launch()
            b.record()
            b.synchronize()
            ts.append(a.elapsed_time(b) * 1e-3)
        return float(np.median(ts))

    small = cuda.device_array(1, dtype=np.int32)
    empty[1, 1](small)
    cuda.synchronize()
    samples = {"launch": [], "sync": [], "global": [], "shared": [], "copy": []}

    def host_seconds(body):
        """Median host time of body() (the host's view: launches queue, syncs wait)."""
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            body()
            ts.append(time.perf_counter() - t0)
        return float(np.median(ts))

    def launches(n, sync_each):
        for _ in range(n):
            empty[1, 1](small)
            if sync_each:
                small.copy_to_host()
        cuda.synchronize()

    for n in sz["launches"]:  # n queued launches, one synchronize (the fit's intercept)
        samples["launch"].append((n, host_seconds(lambda n=n: launches(n, False))))
    for n in sz["syncs"]:  # n launches, each waited for by a one-int copy to the host
        samples["sync"].append((n, host_seconds(lambda n=n: launches(n, True))))
    nxt_g = cuda.to_device(cycle(1 << sz["global_log2"], 0))
    nxt_s = cuda.to_device(cycle(SHARED_N, 1))
    out = cuda.device_array(1, dtype=np.int32)
    chase_global[1, 1](nxt_g, 1, out)
    chase_shared[1, 128](nxt_s, 1, out)
    cuda.synchronize()
    for steps in sz["global_steps"]:
        samples["global"].append(
            (steps, kernel_seconds(lambda s=steps: chase_global[1, 1](nxt_g, s, out))))
    for steps in sz["shared_steps"]:
        samples["shared"].append(
            (steps, kernel_seconds(lambda s=steps: chase_shared[1, 128](nxt_s, s, out))))

    for mib in sz["copy_mib"]:
        n = int(mib * (1 << 18))  # float32 elements
        src = torch.empty(n, device=device, dtype=torch.float32).fill_(1.0)
        dst = torch.empty_like(src)
        dst.copy_(src)
        ts = []
        for _ in range(repeats):
            if device == "cpu":
                t0 = time.perf_counter()
                dst.copy_(src)
                ts.append(time.perf_counter() - t0)
                continue
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            dst.copy_(src)
            b.record()
            b.synchronize()
            ts.append(a.elapsed_time(b) * 1e-3)
        samples["copy"].append((2 * n * 4, float(np.median(ts))))
        del src, dst
    return samples


# ------------------------------------------------------------------------------- the model

def model_of(counts: dict, constants: dict | None = None) -> float:
    """Modelled seconds of a call's counters (``bench.gpu_model.modelled_seconds``), with the
    model's own constants or with fitted ones."""
    from . import gpu_model

    return gpu_model.modelled_seconds(counts, constants=constants)


def _counts_numba_cuda(x, lam, algorithm, dtype, validation=True):
    """Dry-run counters of a numba_cuda call on the row x at the GPU geometry; ``validation``:
    with the input check's launch and sync (a call's full cost, what the wall clock sees), or
    without (what the call reports in ``info.counters``)."""
    from . import gpu_model

    x = np.asarray(x)
    viol = ()
    if algorithm == "imminent_collisions":  # its host loop follows the data's rounds
        viol = gpu_model.imminent_violations(x, lam, max_rounds=IMMINENT_MAX_ROUNDS)
        if viol is None:
            return None  # a Theta(d)-round cascade: counting it would take minutes
    if validation:
        return gpu_model.numba_cuda_counts(x, lam, algorithm, dtype=dtype, violations=viol,
                                           sort_method=_sort_method(x.shape[-1]))
    from ..core import registry

    nc = registry.backend_module("numba_cuda")

    with gpu_model.gpu_geometry():
        return nc.count_call(1, x.shape[-1], dtype, lam, algorithm, violations=viol or (),
                             sort_method=_sort_method(x.shape[-1]), validation=False)


def _sort_method(d: int) -> str:
    """What numba_cuda's SORT="auto" resolves to at this d on this machine."""
    from ..core import registry

    nc_sort = registry.backend_module("numba_cuda", "sort")

    return nc_sort.choose(d)


def _record(step, backend, algorithm, family, d, dtype, measured_s, counts=None, **extra):
    rec = {"step": step, "backend": backend, "algorithm": algorithm, "family": family,
           "d": int(d), "dtype": str(np.dtype(dtype)), "measured_s": measured_s,
           "counts": counts, "model_s": None if counts is None else model_of(counts)}
    rec.update(extra)
    return rec


# ------------------------------------------------------------------------------- the steps

class _Writer:
    """Records of a step, rewritten to ``<dir>/_<step>.json`` after each one, so that a step
    killed at its budget still leaves what it measured."""

    def __init__(self, out_dir, name):
        self.path = Path(out_dir) / f"_{name}.json"
        self.data = {"records": []}

    def add(self, rec=None, **extra):
        if rec is not None:
            self.data["records"].append(rec)
        self.data.update(extra)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, default=_json_default))
        tmp.replace(self.path)


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _sync():
    import torch
    from numba import cuda

    if torch.cuda.is_available():
        torch.cuda.synchronize()
    cuda.synchronize()


def _median_time(fn, repeats=3):
    fn()
    _sync()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def _kernel_resources() -> dict:
    """Registers, shared memory and block size of the kernels whose GPU geometry differs most
    from the simulator's (tile_levels, bridge_pairs), as compiled on this device."""
    from ..core import registry

    hb = registry.backend_module("numba_cuda", "hull_bridges")
    ht = registry.backend_module("numba_cuda", "hull_tiles")
    launch = registry.backend_module("numba_cuda", "launch")

    out = {"TILE_BITS": ht.TILE_BITS, "GPU_TILE_BITS": ht.GPU_TILE_BITS,
           "tile_levels_threads": ht.MAX_THREADS, "GPU_MAX_THREADS": ht.GPU_MAX_THREADS,
           "THREADS_PER_BLOCK": launch.THREADS_PER_BLOCK}
    for name, k in (("tile_levels", ht.tile_levels), ("bridge_pairs", hb.bridge_pairs)):
        for what in ("get_regs_per_thread", "get_shared_mem_per_block", "get_local_mem_per_thread"):
            try:
                out[f"{name}.{what[4:]}"] = getattr(k, what)()
            except Exception as exc:
                out[f"{name}.{what[4:]}"] = f"{type(exc).__name__}: {exc}"
    return out


def _junit_summary(path: Path) -> str:
    """'N tests, F failures, E errors, S skipped' from pytest's JUnit XML."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        return f"no JUnit report ({type(exc).__name__})"
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    a = suite.attrib if suite is not None else {}
    return (f"{a.get('tests', '?')} tests, {a.get('failures', '?')} failures, "
            f"{a.get('errors', '?')} errors, {a.get('skipped', '?')} skipped")


def geometry_check(w, sizes, *, torch_bridges_max_d, counts_of=None,
                   backends=("numba_cuda", "torch"),
                   families=("gaussian", "worst_hull_bridges", "quantized"), repeats=2) -> int:
    """Every algorithm of the GPU backends (but pava, one thread per row) on rows of the given
    sizes and families, float32 and float64: the answer within ``value_tolerance`` of the CPU
    pava and certified, and hull_bridges' launches and syncs equal to ``counts_of`` (default: the
    model's dry run at the GPU geometry); the time is the median of ``repeats`` calls. One record
    each through ``w``; returns the number of mismatches and errors."""
    import wsrbench

    from ..core import registry
    from ..core.numerics import value_tolerance
    from . import cases

    counts_of = counts_of or _counts_numba_cuda
    bad = 0
    for d in sizes:
        for family in families:
            for dtype in (np.float32, np.float64):
                x, lam = cases.make(family, d, seed=3, dtype=dtype)
                ref = wsrbench.prox(x.astype(np.float64), lam, algorithm="pava", backend="auto")
                tol = value_tolerance(d, np.dtype(dtype), float(np.max(np.abs(x)) + lam), lam)
                for backend in backends:
                    entry = registry.get_backend(backend)
                    mod = entry.load()
                    for alg in entry.algorithms:
                        if alg == "pava" or (backend == "torch" and alg == "hull_bridges"
                                             and d > torch_bridges_max_d):
                            continue  # pava is one thread per row; torch's bridges ~1e5 ops
                        xb = mod.from_numpy(x)
                        try:
                            t = _median_time(lambda: wsrbench.prox(
                                xb, lam, algorithm=alg, backend=backend), repeats=repeats)
                            out, info = wsrbench.prox_info(xb, lam, algorithm=alg,
                                                           backend=backend)
                            wn = np.asarray(mod.to_numpy(out), dtype=np.float64)
                            err = float(np.max(np.abs(wn - ref)))
                            cert = wsrbench.certify(x, mod.to_numpy(out), lam)
                            ok = err <= tol and bool(cert.ok)
                            hull = backend == "numba_cuda" and alg == "hull_bridges"
                            counts = counts_of(x, lam, alg, dtype) if hull else None
                            # info.counters leave out the input check: compare like with like
                            own = counts_of(x, lam, alg, dtype, validation=False) if hull else None
                            got = dict(getattr(info, "counters", {}) or {})
                            same = (None if own is None else all(
                                got.get(k) == own[k] for k in ("launches", "syncs")))
                            ok = ok and same is not False
                            w.add(_record("tests", backend, alg, family, d, dtype, t, counts,
                                          status="ok" if ok else "mismatch", max_error=err,
                                          tolerance=tol, certified=bool(cert.ok),
                                          counts_match=same))
                        except Exception as exc:  # record and go on: one failure hides nothing
                            ok = False
                            w.add(_record("tests", backend, alg, family, d, dtype, None,
                                          status="error", message=f"{type(exc).__name__}: {exc}"))
                        bad += not ok
    return bad


def step_tests(out_dir, seconds):
    """Step 1: the GPU backends' part of the registry suite, then the GPU geometry check."""
    from ..core import registry

    ht = registry.backend_module("numba_cuda", "hull_tiles")

    w = _Writer(out_dir, "tests")
    t0 = time.monotonic()
    # The geometry check keeps 45 s (an estimate: JIT of the kernels not compiled by then, then
    # about a hundred calls); pytest gets the rest.
    py_budget = max(10.0, seconds - 45.0)
    # -k also matches module names: tests/test_gpu_backends.py is the GPU backends' own file.
    junit = Path(out_dir) / "_pytest.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--maxfail=20",
           "--no-header", f"--junitxml={junit}", "-k", "numba_cuda or torch or test_gpu_backends",
           "tests"]
    sys.stdout.flush()
    try:  # its output goes straight to the log, so a kill loses none of it
        rc = subprocess.run(cmd, cwd=REPO, timeout=py_budget, check=False).returncode
        summary = _junit_summary(junit)
    except subprocess.TimeoutExpired:
        rc, summary = None, f"killed after {py_budget:.0f} s"
    junit.unlink(missing_ok=True)
    w.add(pytest={"returncode": rc, "summary": summary, "seconds": time.monotonic() - t0})
    pytest_ok = rc == 0

    P = 1 << ht.GPU_TILE_BITS
    # several tiles, then bridge_pairs over six global levels
    bad = geometry_check(w, (3 * P + 5, 64 * P + 1), torch_bridges_max_d=10 * P)
    w.add(kernels=_kernel_resources())
    return 0 if pytest_ok and bad == 0 else 1


def step_compare(out_dir, seconds):
    """Step 2: ``wsrbench compare`` over the GPU backends with ``--gpu-speed``."""
    from . import cases

    def cli_main(argv):  # the command line in a child process: bench does not import cli
        return subprocess.run([sys.executable, "-m", "wsrbench", *argv], check=False).returncode

    w = _Writer(out_dir, "compare")
    cdir = Path(out_dir) / "compare"
    # --gpu-speed runs only the speed table (printed to the log), so the records come from a
    # plain compare first: a step killed during the speed table keeps them.
    rc = cli_main(["compare", "--backends", "numba_cuda,torch", "--dtype", "float32", "--quick",
                   "--no-plot", "--no-progress", "--repeats", "3", "--out", str(cdir)])
    path = cdir / "results.json"
    recs = json.loads(path.read_text()) if path.exists() else []
    if isinstance(recs, dict):
        recs = recs.get("records", [])
    for r in recs:
        counts = None
        if r.get("status") == "ok" and r["backend"] in ("numba_cuda", "torch"):
            x, lam = cases.make(r["family"], int(r["d"]), seed=0, dtype=np.float32)
            try:
                if r["backend"] == "numba_cuda":
                    counts = _counts_numba_cuda(x, lam, r["algorithm"], np.float32)
                elif int(r["d"]) <= TORCH_COUNT_MAX_D:
                    from . import gpu_model

                    counts = gpu_model.torch_counts(x, lam, r["algorithm"], dtype=np.float32)
            except Exception as exc:
                print(f"model of {r['backend']}/{r['algorithm']}: {exc}", flush=True)
        w.add(_record("compare", r["backend"], r["algorithm"], r["family"], r["d"], r["dtype"],
                      r.get("seconds") if r.get("status") == "ok" else None, counts,
                      status=r.get("status"), floor_s=r.get("floor_seconds")))
    sys.stdout.flush()
    rc_speed = cli_main(["compare", "--gpu-speed"])
    return int(rc or rc_speed or 0)


def step_calibrate(out_dir, seconds):
    """Step 3: the microbenchmarks and the fitted constants."""
    from . import gpu_model

    w = _Writer(out_dir, "calibrate")
    samples = _calibration_samples()
    fitted = fit_constants(samples)
    w.add(calibration={"samples": samples, "fitted": fitted,
                       "model": {k: getattr(gpu_model, k) for k in CONSTANTS}})
    return 0


def step_train(out_dir, seconds):
    """Step 4: one training iteration's prox step at d = 5e7 float32 on the device."""
    import torch

    import wsrbench

    from .. import nn as wnn

    w = _Writer(out_dir, "train")
    d, lam, lr = TRAIN_D, 1e-3, 0.1
    g = torch.Generator(device="cuda").manual_seed(0)
    p = torch.nn.Parameter(torch.randn(d, device="cuda", generator=g))
    p.grad = torch.randn(d, device="cuda", generator=g)
    opt = wnn.WeightSharingProx(torch.optim.SGD([p], lr=lr), [p], lam=lam)
    torch.cuda.reset_peak_memory_stats()
    t_step = _median_time(opt.step, repeats=3)
    x = p.detach().clone()
    t_prox = _median_time(lambda: wsrbench.prox(x, lr * lam), repeats=3)
    t_sort = _median_time(lambda: torch.sort(x, stable=True), repeats=3)
    _, info = wsrbench.prox_info(x, lr * lam)
    counts = _counts_numba_cuda(np.zeros(d, np.float32), lr * lam,
                                getattr(info, "algorithm", "hull_bridges"), np.float32)
    peak = torch.cuda.max_memory_allocated()
    w.add(_record("train", getattr(info, "backend", "auto"),
                  getattr(info, "algorithm", "auto"), "gaussian", d, np.float32, t_prox, counts,
                  status="ok", optimizer_step_s=t_step, torch_sort_s=t_sort,
                  peak_memory_bytes=peak))
    return 0


def _sharded_rank(sizes, seed, device="cuda"):
    """One rank of the sharded step: for each d its shard on its device (under NCCL its GPU),
    timed and checked against the whole vector's prox on the CPU."""
    import torch
    import torch.distributed as dist

    import wsrbench

    from .. import distributed as wdist
    from ..core.numerics import value_tolerance
    from . import cases

    r, p = dist.get_rank(), dist.get_world_size()

    def sync():
        if device != "cpu":
            torch.cuda.synchronize()

    out = []
    for d in sizes:
        x, lam = cases.make("gaussian", d, seed=seed, dtype=np.float32)
        lo, hi = (d * r) // p, (d * (r + 1)) // p
        shard = torch.as_tensor(x[lo:hi], device=device)
        wdist.prox_info(shard, lam)  # warm: JIT, communicators
        sync()
        dist.barrier()
        t0 = time.perf_counter()
        w, info = wdist.prox_info(shard, lam)
        sync()
        t = time.perf_counter() - t0
        ref = wsrbench.prox(x.astype(np.float64), lam, algorithm="pava", backend="auto")[lo:hi]
        err = float(np.max(np.abs(w.cpu().numpy().astype(np.float64) - ref), initial=0.0))
        tol = value_tolerance(d, np.dtype(np.float32), float(np.max(np.abs(x)) + lam), lam)
        out.append({"d": d, "rank": r, "world": p, "seconds": t, "max_error": err,
                    "tolerance": tol, "bytes_sent": info.bytes_sent,
                    "collectives": info.collectives, "rounds": info.rounds})
    return out


def step_sharded(out_dir, seconds):
    """Step 5: the sharded prox with NCCL, one process per GPU present."""
    import torch

    from . import launch

    # by its module's name: this process may run the module as __main__, which spawned ranks
    # would not find
    from .gpu_first_run import _sharded_rank as rank_fn

    w = _Writer(out_dir, "sharded")
    world = torch.cuda.device_count()
    sizes = (1_000_000, 10_000_000)
    name = f"distributed[nccl x{world}]"
    try:
        per_rank = launch.run(rank_fn, world, sizes, 0, "cuda", timeout=max(10.0, seconds - 5),
                              collective_timeout=max(10.0, seconds - 5), backend="nccl")
    except Exception as exc:
        w.add(_record("sharded", name, "sample_sort+pava+bridge", "gaussian", sizes[0],
                      np.float32, None, status="error", message=f"{type(exc).__name__}: {exc}"))
        return 1
    bad = 0
    for i, d in enumerate(sizes):
        ranks = [rows[i] for rows in per_rank]
        ok = all(rk["max_error"] <= rk["tolerance"] for rk in ranks)
        bad += not ok
        w.add(_record("sharded", name, "sample_sort+pava+bridge", "gaussian", d, np.float32,
                      max(rk["seconds"] for rk in ranks), status="ok" if ok else "mismatch",
                      ranks=ranks))
    return 1 if bad else 0


STEP_FUNCTIONS = {"tests": step_tests, "compare": step_compare, "calibrate": step_calibrate,
                  "train": step_train, "sharded": step_sharded}


# ------------------------------------------------------------------------------- the summary

def _ms(s) -> str:
    return "—" if s is None or not isinstance(s, (int, float)) or not math.isfinite(s) \
        else f"{s * 1e3:.3f}"


def summary_markdown(run: dict) -> str:
    """The summary of a run (``run.json``'s content): environment, steps, measured vs modelled
    time per (step, backend, algorithm, family, size, dtype), and the calibration."""
    env = run.get("environment", {})
    calib = (run.get("calibration") or {})
    fitted = calib.get("fitted")
    lines = [f"# First GPU run, {env.get('date_utc', '?')}", ""]
    if run.get("fixture"):
        lines += [f"**{run['fixture']}**", ""]
    dev = env.get("device", {})
    lines += [
        f"- commit: `{env.get('git_commit', '?')}`",
        f"- machine: {env.get('host', '?')}, {env.get('cpu', '?')}, {env.get('cores', '?')} cores, "
        f"load average {' '.join(f'{v:.2f}' for v in env.get('loadavg', []))}",
        f"- GPU: {dev.get('name', '?')} ({env.get('gpu_count', '?')} present), "
        f"nvidia-smi: {'; '.join(env.get('gpus', [])) or '?'}",
        f"- CUDA: driver {env.get('cuda_driver', '?')}, torch built for {env.get('torch_cuda', '?')}"
        f"; torch {env.get('torch', '?')}, numba {env.get('numba', '?')}, numba-cuda "
        f"{env.get('numba_cuda', '?')}, numpy {env.get('numpy', '?')}",
        "", "## Steps", "", "| step | status | seconds | budget s | note |", "|---|---|---|---|---|"]
    for s in run.get("steps", []):
        note = s.get("message", "")
        if s["name"] == "tests" and "pytest" in s.get("extra", {}):
            note = (note + "; " if note else "") + "pytest: " + s["extra"]["pytest"]["summary"]
        lines.append(f"| {s['name']} | {s['status']} | {s['seconds']:.1f} | "
                     f"{s['budget_s']:.0f} | {note} |")
    lines += ["", "## Measured vs modelled", "",
              "Measured: wall time of a synchronised call, data on the device, JIT excluded. "
              "Modelled: `wsrbench.bench.gpu_model` on the call's dry-run counters with the "
              "model's constants" + (", and with the constants fitted by this run's calibration"
                                      if fitted else "") + "; — where the model has no counter.",
              ""]
    head = "| step | backend | algorithm | family | d | dtype | status | measured ms | model ms | " \
           "measured / model |"
    rule = "|---|---|---|---|---|---|---|---|---|---|"
    if fitted:
        head += " fitted model ms | measured / fitted |"
        rule += "---|---|"
    lines += [head, rule]
    for r in sorted(run.get("records", []), key=lambda r: (r["step"], r["backend"], r["algorithm"],
                                                            r["family"], r["d"], r["dtype"])):
        m, mod = r.get("measured_s"), r.get("model_s")
        ratio = f"{m / mod:.2f}" if m is not None and mod else "—"
        row = (f"| {r['step']} | {r['backend']} | {r['algorithm']} | {r['family']} | {r['d']:,} "
               f"| {r['dtype']} | {r.get('status', '')} | {_ms(m)} | {_ms(mod)} | {ratio} |")
        if fitted:
            fm = model_of(r["counts"], fitted) if r.get("counts") else None
            row += f" {_ms(fm)} | " + (f"{m / fm:.2f}" if m is not None and fm else "—") + " |"
        lines.append(row)
    if calib:
        lines += ["", "## Calibration of the cost model", "",
                  "| constant | model | fitted | fitted / model |", "|---|---|---|---|"]
        model = calib.get("model", {})
        for k in CONSTANTS:
            a, b = model.get(k), (fitted or {}).get(k)
            lines.append(f"| {k} | " + " | ".join(
                f"{v:.4g}" if v is not None else "—"
                for v in (a, b, b / a if a and b is not None else None)) + " |")
    kernels = next((s.get("extra", {}).get("kernels") for s in run.get("steps", [])
                    if s.get("extra", {}).get("kernels")), None)
    if kernels:
        lines += ["", "## Kernels as compiled", ""] + [f"- {k}: {v}" for k, v in kernels.items()]
    return "\n".join(lines) + "\n"


def write_results(out_dir: Path, env: dict, results: list[StepResult]) -> dict:
    """``run.json`` and ``summary.md`` of a run from its step results."""
    run = {"environment": env, "steps": [], "records": [], "calibration": None}
    for res in results:
        d = asdict(res)
        run["records"] += d.pop("records")
        run["steps"].append(d)
        if "calibration" in res.extra:
            run["calibration"] = res.extra["calibration"]
    (Path(out_dir) / "run.json").write_text(json.dumps(run, indent=1, default=_json_default))
    (Path(out_dir) / "summary.md").write_text(summary_markdown(run))
    return run


# ------------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    if args.run_step:  # a step's own process
        if args.run_step not in STEP_FUNCTIONS or not args.dir:
            ap.error(f"--run-step {args.run_step!r}: needs a known step and --dir")
        return STEP_FUNCTIONS[args.run_step](Path(args.dir), args.seconds or STEPS[args.run_step])
    try:
        steps = parse_steps(args.steps)
        budgets = parse_budgets(args.budget, steps)
    except ValueError as exc:
        ap.error(str(exc))
    reason = gpu_missing_reason()
    if reason is not None:
        print(f"gpu_first_run: refusing to run: {reason}", file=sys.stderr)
        return 2
    out_dir = results_dir(args.out)
    print(f"results in {out_dir}", flush=True)
    env = environment()
    results = run_steps(default_steps(steps, budgets, out_dir), out_dir)
    write_results(out_dir, env, results)
    for r in results:
        print(f"{r.name:10s} {r.status:8s} {r.seconds:7.1f} s {r.message}")
    print(f"summary: {out_dir / 'summary.md'}")
    return 0 if all(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
