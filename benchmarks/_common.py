"""Shared by the asv suites: the size grid, inputs and backend handling.

The cap table, device handling (``device_of``, ``sync``, ``simulated``) and timing live in
``wsrbench/bench/benchtools.py``, shared with ``wsrbench compare``. asv runs this directory's benchmarks
against older commits of the package too, whose installed ``wsrbench`` may lack ``benchtools`` (or
hold an older table); so it is loaded here BY FILE PATH from the checkout this directory belongs to
(``importlib.util.spec_from_file_location`` on ``<repo>/wsrbench/bench/benchtools.py``), and every commit
is benchmarked under the same caps. ``benchtools`` imports nothing from wsrbench for that reason.
Only if that file is missing (this directory copied elsewhere) is the installed module used.
Otherwise only stable public names of wsrbench are used here (registry, cases, prox_info).
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile

import numpy as np

from wsrbench import cases
from wsrbench.core import registry


def _load_benchtools():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "wsrbench",
                        "benchtools.py")
    if not os.path.isfile(path):
        from wsrbench.bench import benchtools
        return benchtools
    name = "_wsrbench_checkout_benchtools"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # before exec: dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


benchtools = _load_benchtools()
Cap, CAPS, cap_for = benchtools.Cap, benchtools.CAPS, benchtools.cap_for
device_of, sync, simulated = benchtools.device_of, benchtools.sync, benchtools.simulated

SIZES = [1_000, 10_000, 100_000, 1_000_000, 10_000_000]
SEED = 0  # fixed: same input on every machine and every commit


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
    """Hash of wsrbench/bench/cases.py: cached inputs are reused only while the families are unchanged."""
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
