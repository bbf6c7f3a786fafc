"""Benchmark plumbing shared by ``wsrbench compare``, ``wsrbench validate``, scripts/ and the asv
suite: the one cap table, timing, device handling, the sort floor and the scaling-exponent fit
(docs/design.md#names).

Speed is always a ratio measured in one run against a floor (np.argsort of the same input on the
CPU, torch.sort on the same GPU), so the functions here time a function and its floor the same way:
one untimed warm-up call (JIT compilation, allocator priming), then the minimum over repeated
calls, each followed by a device synchronisation, stopping early once the calls used up a budget.

Stability contract. asv runs the *current* ``benchmarks/`` directory against *older* commits of
the package, whose installed ``wsrbench`` may not have this module. ``benchmarks/_common.py``
therefore loads this file by path from the checkout it sits in
(``importlib.util.spec_from_file_location`` on ``<repo>/wsrbench/bench/benchtools.py``), so every commit
is benchmarked with the same caps and the same timing. For that to work this module must stay
importable on its own:

- no imports from ``wsrbench`` (no relative imports at all);
- only numpy and the standard library at import time; torch and numba are imported lazily,
  inside the functions that need them, and only when the array at hand is theirs;
- arrays are recognised by duck typing (``is_cuda``, ``__cuda_array_interface__``), the same
  rules as ``wsrbench.core.registry.array_kind``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

REPEAT_BUDGET_S = 1.0  # stop repeating a measurement once its calls took this long in total


# ---------------------------------------------------------------------------------------------
# The cap table

@dataclass(frozen=True)
class Cap:
    """Run (backend, algorithm, family) only up to ``max_d``; "*" matches anything.

    ``device`` "cpu" limits the cap to runs whose arrays live in host memory (a GPU run of the
    same backend is not capped).
    """
    backend: str
    algorithm: str
    family: str
    max_d: int
    reason: str
    device: str = "*"


_MANY_CLUSTERS = ("gaussian", "uniform", "heavy_tailed", "trained_layer", "worst_end_collisions")

# Every slow combination is listed with its reason; nothing is dropped silently. The bounds keep
# `wsrbench compare` to a couple of minutes on a 2-core laptop and each asv benchmark well inside
# its timeout. The reasons give orders of magnitude of one call on a 2-core CPU; measured figures
# are `wsrbench compare`'s own output (docs/figures holds the dated ones).
CAPS = [
    # NumPy reference: its speed is not a target (it is the readable reference); d <= 1e5 shows
    # its scaling.
    Cap("numpy", "*", "*", 100_000,
        "the reference is for reading: PAVA is a Python loop (seconds per call at d=1e6)"),
    # minutes per call at d=1e7; not capped on a GPU.
    Cap("torch", "*", "*", 100_000,
        "torch on CPU runs the GPU-shaped algorithms as many small kernels (seconds at d=1e6)",
        device="cpu"),
    # tens of seconds at d=1e5, in numba and in the reference.
    *[Cap("*", "end_collisions", f, 10_000,
          "about d clusters, one O(d) scan each: Theta(d^2) work") for f in _MANY_CLUSTERS],
    # minutes in numba at d=1e6.
    Cap("*", "end_collisions", "nearly_sorted", 100_000,
        "about d/18 clusters, one O(d) scan each: Theta(d^2) work"),
    # tens of seconds at d=1e5, in numba and (more) in the reference.
    Cap("*", "imminent_collisions", "worst_imminent_collisions", 10_000,
        "its worst case: d - m rounds of O(d) work each"),
    # the cascade with m = d/2; seconds in numba at d=1e5.
    Cap("*", "imminent_collisions", "worst_pava", 10_000, "d/2 rounds of O(d) work each"),
    # tens of seconds at d=1e6, in numba and in the reference.
    Cap("*", "imminent_collisions", "nearly_sorted", 100_000, "about d/17 rounds of O(d) work each"),
    # near the collapsing lam; tens of seconds in numba at d=1e7.
    Cap("*", "imminent_collisions", "gaussian_collapse", 1_000_000, "about d^0.95 rounds"),
    Cap("numpy", "hull_bridges", "*", 10_000,
        "the reference merges each pair in Python (one bridge() call per pair): about a minute "
        "at d=1e5"),
    Cap("torch", "hull_bridges", "*", 10_000,
        "on CPU every bridge step is some 60 small tensor ops per level (tens of seconds at d=1e5); on a GPU "
        "it is not capped", device="cpu"),
]


def _match(pattern: str, value: str) -> bool:
    return pattern == "*" or pattern == value


def cap_for(backend: str, algorithm: str, family: str, device: str, caps=None) -> Cap | None:
    """The tightest cap of ``caps`` (default CAPS) that applies, or None.

    ``device`` is "cpu" or "gpu"; "any" matches only the device-independent caps (to skip a
    combination before its backend is loaded).
    """
    hits = [c for c in (CAPS if caps is None else caps)
            if _match(c.backend, backend) and _match(c.algorithm, algorithm)
            and _match(c.family, family) and _match(c.device, device)]
    return min(hits, key=lambda c: c.max_d) if hits else None


# ---------------------------------------------------------------------------------------------
# Devices

def _is_torch(arr) -> bool:
    return type(arr).__module__.split(".")[0] == "torch"


def _is_numba_cuda(arr) -> bool:
    # numba's simulator device arrays expose __cuda_ndarray__ but no __cuda_array_interface__
    return not _is_torch(arr) and (hasattr(arr, "__cuda_array_interface__")
                                   or bool(getattr(arr, "__cuda_ndarray__", False)))


def device_of(arr) -> str:
    """'gpu' for CUDA arrays (numba, CuPy, ...) and CUDA torch tensors, else 'cpu'."""
    if _is_numba_cuda(arr) or getattr(arr, "is_cuda", False):
        return "gpu"
    return "cpu"


def sync(arr) -> None:
    """Wait for queued GPU work (no-op on the CPU) so that a timing covers it."""
    if getattr(arr, "is_cuda", False):
        import torch
        torch.cuda.synchronize(arr.device)
    elif _is_numba_cuda(arr):
        from numba import cuda
        cuda.synchronize()


def simulated(mod) -> bool:
    """True when a backend module runs in a simulator (it sets SIMULATOR, e.g. the CUDA simulator)."""
    return bool(getattr(mod, "SIMULATOR", False))


def torch_cuda() -> bool:
    """Whether torch is installed with a usable CUDA device."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


# ---------------------------------------------------------------------------------------------
# Timing

def time_calls(fn, repeats: int, budget: float = REPEAT_BUDGET_S) -> list[float]:
    """Seconds of up to ``repeats`` calls of fn(); stops early once they took ``budget`` in total.

    No warm-up here: the caller makes one untimed call first (see :func:`best_time`).
    """
    out = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
        if sum(out) >= budget:
            break
    return out


def best_time(fn, repeats: int, budget: float = REPEAT_BUDGET_S) -> float:
    """min over :func:`time_calls` after one untimed warm-up call of fn()."""
    fn()
    return min(time_calls(fn, repeats, budget))


def floor_seconds(x: np.ndarray, device: str, repeats: int) -> tuple[float, str]:
    """(min time, name) of the floor: np.argsort on the CPU, torch.sort on the GPU.

    A GPU backend without a CUDA build of torch (or under the CUDA simulator) falls back to
    np.argsort, and the floor's name says so.
    """
    if device == "gpu" and torch_cuda():
        import torch
        t = torch.tensor(x, device="cuda")

        def run():
            torch.sort(t, stable=True)
            torch.cuda.synchronize()
        return best_time(run, repeats), "torch.sort (cuda)"
    name = "np.argsort" if device == "cpu" else "np.argsort (no CUDA torch)"
    return best_time(lambda: np.argsort(x), repeats), name


def interleaved_times(f, g, runs: int) -> tuple[list[float], list[float]]:
    """Seconds of ``runs`` calls of f and of g, alternated so that a load change hits both,
    after one untimed warm-up call of each."""
    tf, tg = interleaved_rounds([f, g], runs)
    return tf, tg


def interleaved_rounds(fs, runs: int) -> list[list[float]]:
    """Seconds of ``runs`` calls of each function of ``fs``, taken in turn (f0, f1, ..., f0, ...)
    after one untimed warm-up call of each: the i-th timings of any two of them ran back to back,
    so their ratio pairs for :func:`ratio_spread`."""
    if runs < 1:
        raise ValueError(f"runs must be at least 1; got {runs}")
    for f in fs:
        f()
    out: list[list[float]] = [[] for _ in fs]
    for _ in range(runs):
        for f, ts in zip(fs, out):
            t = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t)
    return out


def fmt_spread(r: tuple[float, float, float]) -> str:
    """A :func:`ratio_spread` result as ``median [q25, q75]``."""
    m, lo, hi = r
    return f"{m:.2f} [{lo:.2f}, {hi:.2f}]"


def ratio_spread(tf, tg) -> tuple[float, float, float]:
    """Median and interquartile range (q25, q75) of the paired ratios tf[i] / tg[i].

    The pairs come from :func:`interleaved_times`: the two calls of a pair ran back to back, so
    a load change hits both and their ratio keeps less of it than the ratio of two medians; the
    IQR says how much was left.
    """
    tf = np.asarray(tf, dtype=np.float64)
    tg = np.asarray(tg, dtype=np.float64)
    if tf.shape != tg.shape or tf.size == 0:
        raise ValueError(f"tf and tg must be paired, non-empty timings; got {tf.size} and "
                         f"{tg.size} values")
    q25, med, q75 = np.percentile(tf / tg, [25, 50, 75])
    return float(med), float(q25), float(q75)


# ---------------------------------------------------------------------------------------------
# Scaling

def fit_exponent(ds, ts, min_d: int = 10_000) -> tuple[float, int]:
    """Least-squares slope p of log t = a + p log d, and the number of points it used.

    Uses the sizes >= min_d when at least two were measured (small sizes are dominated by fixed
    per-call costs), else all of them; nan with fewer than two distinct sizes.
    """
    ds = np.asarray(ds, dtype=np.float64)
    ts = np.asarray(ts, dtype=np.float64)
    keep = (ts > 0) & np.isfinite(ts)
    ds, ts = ds[keep], ts[keep]
    big = ds >= min_d
    if np.unique(ds[big]).size >= 2:
        ds, ts = ds[big], ts[big]
    if np.unique(ds).size < 2:
        return math.nan, int(ds.size)
    p = np.polyfit(np.log(ds), np.log(ts), 1)[0]
    return float(p), int(ds.size)


def fmt_time(t: float) -> str:
    """'1.23 s', '4.56 ms', '7.89 us'; '-' for a missing time."""
    if not np.isfinite(t):
        return "-"
    if t >= 1.0:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    return f"{t * 1e6:.3g} us"


def fmt_d(d: int) -> str:
    """1000 -> '1e3'; sizes that are not powers of ten as they are."""
    e = math.log10(d) if d > 0 else 0
    return f"1e{int(e)}" if d > 0 and float(e).is_integer() else str(d)
