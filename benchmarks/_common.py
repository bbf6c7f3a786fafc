"""Shared by the asv suites: the size grid, the explicit cap table, inputs and device handling.

Only stable public names of wsrbench are used here (registry, cases, prox_info), because asv runs
this directory's benchmarks against older commits of the package too.
"""
from __future__ import annotations

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
    """The tightest cap that applies, or None."""
    hits = [c for c in CAPS if _match(c.backend, backend) and _match(c.algorithm, algorithm)
            and _match(c.family, family) and _match(c.device, device)]
    return min(hits, key=lambda c: c.max_d) if hits else None


def backend_names() -> list[str]:
    return [b.name for b in registry.backends()]


def algorithm_names() -> list[str]:
    return [a.name for a in registry.algorithms()]


def load_backend(name: str):
    """The backend module, or NotImplementedError (asv: skip) when it cannot run here."""
    info = {b.name: b for b in registry.backends()}[name]
    if not info.available:
        raise NotImplementedError(f"backend {name} unavailable here: {info.reason}")
    return registry.get_backend(name).load()


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
    mod = load_backend(backend)
    if be.max_test_d is not None and d > be.max_test_d:
        raise NotImplementedError(f"backend {backend} is capped at d={be.max_test_d} (slow simulator)")
    probe = mod.from_numpy(np.zeros(2, dtype=dtype))
    cap = cap_for(backend, algorithm, family, device_of(probe))
    if cap is not None and d > cap.max_d:
        raise NotImplementedError(f"capped at d={cap.max_d}: {cap.reason}")
    x, lam = cases.make(family, d, seed=SEED, dtype=dtype)
    # JIT warm-up on a small input of the same family and dtype: compiles every specialisation
    # the timed call uses, so the first timed call never includes compilation.
    xw, lamw = cases.make(family, min(d, 256), seed=SEED, dtype=dtype)
    from wsrbench import prox_info
    w, _ = prox_info(mod.from_numpy(xw), lamw, algorithm=algorithm, backend=backend)
    sync(w)
    return mod.from_numpy(x), lam
