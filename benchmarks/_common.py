"""Shared by the asv suites: the size grid, the explicit cap table, inputs and device handling.

Only stable public names of wsrbench are used here (registry, cases, prox_info), because asv runs
this directory's benchmarks against older commits of the package too.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass

import numpy as np

from wsrbench import cases, registry

SIZES = [1_000, 10_000, 100_000, 1_000_000, 10_000_000]
SEED = 0  # fixed: same input on every machine and every commit


@dataclass(frozen=True)
class Cap:
    """Benchmark (backend, algorithm, family) only up to ``max_d``; "*" matches anything.

    ``device`` "cpu" limits the cap to runs whose arrays live in host memory (a GPU run of the
    same backend is not capped).
    """
    backend: str
    algorithm: str
    family: str
    max_d: int
    reason: str
    device: str = "*"


_QUADRATIC_END = ("gaussian", "uniform", "heavy_tailed", "trained_layer", "worst_end_collisions")

# The cap table: every slow pair is listed here with its reason; nothing is dropped silently.
# Figures are single calls on a 2-core laptop-class CPU.
CAPS = [
    Cap("numpy", "*", "*", 1_000_000,
        "the NumPy reference is for reading, not speed: PAVA is a Python loop and the parallel "
        "algorithms allocate per round (1-5 s at d=1e6, 10-80 s at 1e7)"),
    Cap("torch", "*", "*", 100_000,
        "torch on CPU runs the GPU-shaped algorithms as many small kernels (1-10 s at d=1e6, "
        "up to 220 s at 1e7); on a GPU it is not capped", device="cpu"),
    *[Cap("*", "end_collisions", f, 10_000,
          "about d clusters, one O(d) scan each: Theta(d^2) work (15 s in numba, 35-56 s in the "
          "reference at d=1e5)") for f in _QUADRATIC_END],
    Cap("*", "end_collisions", "nearly_sorted", 100_000,
        "about d/18 clusters, one O(d) scan each: Theta(d^2) work (112 s in numba at d=1e6)"),
    Cap("*", "imminent_collisions", "worst_imminent_collisions", 10_000,
        "its worst case: d - m rounds of O(d) work (13 s in numba, 70 s in the reference at 1e5)"),
    Cap("*", "imminent_collisions", "worst_pava", 10_000,
        "the cascade with m = d/2: d/2 rounds of O(d) work (4 s in numba at 1e5)"),
    Cap("*", "imminent_collisions", "nearly_sorted", 100_000,
        "about d/17 rounds of O(d) work (32 s in numba, 74 s in the reference at d=1e6)"),
    Cap("*", "imminent_collisions", "gaussian_collapse", 1_000_000,
        "about d^0.95 rounds near the collapsing lam (40 s in numba at d=1e7)"),
]


def _match(pattern: str, value: str) -> bool:
    return pattern == "*" or pattern == value


def cap_for(backend: str, algorithm: str, family: str, device: str) -> Cap | None:
    """The tightest cap that applies on ``device`` ("cpu", "gpu"; "any": device-independent caps
    only), or None."""
    hits = [c for c in CAPS if _match(c.backend, backend) and _match(c.algorithm, algorithm)
            and _match(c.family, family) and (c.device == "*" or c.device == device)]
    return min(hits, key=lambda c: c.max_d) if hits else None


# Availability is probed once, when asv's forkserver imports the suites; every forked benchmark
# process inherits it instead of probing drivers again.
_AVAILABLE = {b.name: (b.available, b.reason) for b in registry.backends()}


def _preimport() -> None:
    """Import the CPU-side backend modules (torch, numba) once, here.

    asv's forkserver imports the suites once and forks one process per benchmark and parameter
    combination; importing torch in each of them would cost seconds apiece. Nothing is run: no
    JIT thread pool or GPU context exists before the fork (neither survives a fork). Backends
    whose arrays live on a GPU are left alone.
    """
    for name, (available, _) in _AVAILABLE.items():
        be = registry.get_backend(name)
        if available and "cuda" not in be.kinds:
            try:
                be.load()
            except Exception:  # reported by the benchmarks themselves
                pass


_preimport()


def backend_names() -> list[str]:
    return list(_AVAILABLE)


def algorithm_names() -> list[str]:
    return [a.name for a in registry.algorithms()]


def load_backend(name: str):
    """The backend module, or NotImplementedError (asv: skip) when it cannot run here."""
    available, reason = _AVAILABLE.get(name, (False, "not registered in this version"))
    if not available:
        raise NotImplementedError(f"backend {name} unavailable here: {reason}")
    return registry.get_backend(name).load()


def _cases_digest() -> str:
    """Hash of wsrbench/cases.py: cached inputs are reused only while the families are unchanged."""
    with open(cases.__file__, "rb") as fh:
        return hashlib.sha1(fh.read()).hexdigest()[:12]


_CACHE_DIR = os.environ.get("WSRBENCH_ASV_CACHE",
                            os.path.join(tempfile.gettempdir(), "wsrbench-asv-inputs"))


def make_input(family: str, d: int, dtype=np.float64):
    """``cases.make(family, d, seed=SEED, dtype=dtype)``, cached on disk for d >= 1e5.

    asv builds the input in every benchmark process (one per parameter combination and method);
    some families cost seconds at d=1e7, reading them back costs milliseconds. The cache key
    includes a hash of cases.py, so a change of the families never reuses stale inputs.
    Set WSRBENCH_ASV_CACHE to choose the directory.
    """
    dtype = np.dtype(dtype)
    if d < 100_000:
        return cases.make(family, d, seed=SEED, dtype=dtype)
    path = os.path.join(_CACHE_DIR, f"{family}-{d}-{SEED}-{dtype.name}-{_cases_digest()}.npz")
    try:
        with np.load(path) as z:
            return z["x"], float(z["lam"])
    except (OSError, KeyError, ValueError):
        pass
    x, lam = cases.make(family, d, seed=SEED, dtype=dtype)
    try:
        os.makedirs(_CACHE_DIR, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp.npz"
        np.savez(tmp, x=x, lam=np.float64(lam))
        os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    except OSError:
        pass  # a read-only temp dir only costs speed
    return x, lam


def simulated(mod) -> bool:
    """True when a backend module runs in a simulator (it sets SIMULATOR, e.g. the CUDA simulator)."""
    return bool(getattr(mod, "SIMULATOR", False))


def device_of(arr) -> str:
    """'gpu' for CUDA arrays and CUDA torch tensors, else 'cpu'."""
    if registry.array_kind(arr) == "cuda" or getattr(arr, "is_cuda", False):
        return "gpu"
    return "cpu"


def sync(arr) -> None:
    """Wait for queued GPU work so that a timing covers it (no-op on the CPU)."""
    if getattr(arr, "is_cuda", False):
        import torch
        torch.cuda.synchronize(arr.device)
    elif registry.array_kind(arr) == "cuda":
        from numba import cuda
        cuda.synchronize()


def prepare(backend: str, algorithm: str, family: str, d: int, dtype=np.float64):
    """Check the combination, build the input on the backend's device and warm up any JIT.

    Returns (x_backend, lam). Raises NotImplementedError (asv's skip) for combinations that do not
    run here, naming the reason (cap table above).
    """
    be = registry.get_backend(backend)
    if algorithm not in be.algorithms:
        raise NotImplementedError(f"backend {backend} does not implement {algorithm}")
    cap = cap_for(backend, algorithm, family, "any")  # device-independent caps: skip before loading
    if cap is not None and d > cap.max_d:
        raise NotImplementedError(f"capped at d={cap.max_d}: {cap.reason}")
    mod = load_backend(backend)
    if simulated(mod) and d > (be.max_test_d or 0):
        raise NotImplementedError(f"backend {backend} runs in a simulator here: only d <= "
                                  f"{be.max_test_d or 0}, the sizes of its tests")
    probe = mod.from_numpy(np.zeros(2, dtype=dtype))
    cap = cap_for(backend, algorithm, family, device_of(probe))
    if cap is not None and d > cap.max_d:
        raise NotImplementedError(f"capped at d={cap.max_d}: {cap.reason}")
    x, lam = make_input(family, d, dtype)
    # JIT warm-up on a small input of the same family and dtype: compiles every specialisation
    # the timed call uses, so the first timed call never includes compilation.
    xw, lamw = cases.make(family, min(d, 256), seed=SEED, dtype=dtype)
    from wsrbench import prox_info
    w, _ = prox_info(mod.from_numpy(xw), lamw, algorithm=algorithm, backend=backend)
    sync(w)
    return mod.from_numpy(x), lam
