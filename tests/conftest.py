"""Shared fixtures: every (backend, algorithm) pair of the registry, and derived tolerances."""
from __future__ import annotations

import functools
import importlib.util
import os
import shutil

# Without an NVIDIA GPU, run numba-cuda kernels in its simulator. This must happen before numba.cuda
# is first imported; the variable is read once, at that import.
if shutil.which("nvidia-smi") is None:
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.statistics import collector, describe_statistics

from wsrbench.core import registry
from wsrbench.core.numerics import value_tolerance

# On the simulator, its adjustments (a lock on cuda.shared.array, quick barriers) for the whole run,
# not only from the first hull_tiles launch on: wsrbench.backends.numba_cuda.simulator.
if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" and importlib.util.find_spec("numba_cuda"):
    from wsrbench.backends.numba_cuda import simulator as _cuda_simulator

    _cuda_simulator.enable()

# The coverage job (.ci/coverage.sh) runs the Numba kernels as Python; a few compiler-level
# primitives need Python twins there (see tests/_nojit.py).
if os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
    from ._nojit import install as _install_nojit

    _install_nojit()

settings.register_profile(
    "ci", max_examples=60, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# The long profile (not in CI): HYPOTHESIS_PROFILE=long runs 10,000 examples per property and per
# CPU (backend, algorithm); docs/design.md#the-long-profile records a run's counts.
settings.register_profile(
    "long", max_examples=10_000, deadline=None, derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# A backend with a size cap (a simulator) also gets fewer generated examples per property.
SLOW_BACKEND_EXAMPLES = 8

def value_tol(d: int, dtype, scale: float) -> float:
    """How far two correct answers may differ, in value units: wsrbench.core.numerics.value_tolerance."""
    return value_tolerance(d, np.dtype(dtype), scale)


class Impl:
    """One (backend, algorithm) pair, fed NumPy arrays through the backend's own array kind."""

    def __init__(self, backend: str, algorithm: str):
        self.backend = backend
        self.algorithm = algorithm
        self.entry = registry.get_backend(backend)
        self.max_d = self.entry.max_test_d
        self.examples = settings.default.max_examples if self.max_d is None else SLOW_BACKEND_EXAMPLES

    def __repr__(self):
        return f"{self.backend}-{self.algorithm}"

    def cap(self, d: int) -> int:
        return d if self.max_d is None else min(d, self.max_d)

    def run(self, x, lam, **kw):
        """(w as NumPy, info) for NumPy input x."""
        import wsrbench

        mod = self.entry.load()
        w, info = wsrbench.prox_info(mod.from_numpy(np.asarray(x)), lam, algorithm=self.algorithm,
                                     backend=self.backend, **kw)
        return np.asarray(mod.to_numpy(w)), info

    def prox(self, x, lam, **kw):
        return self.run(x, lam, **kw)[0]


def _impl_params():
    params = []
    for b in registry.backends():
        for alg in b.algorithms:
            marks = [] if b.available else [pytest.mark.skip(reason=f"{b.name}: {b.reason}")]
            params.append(pytest.param((b.name, alg), id=f"{b.name}-{alg}", marks=marks))
    return params


@pytest.fixture(scope="session", params=_impl_params())
def impl(request) -> Impl:
    return Impl(*request.param)


def _backend_params():
    return [pytest.param((b.name, b.algorithms[0]), id=b.name,
                         marks=[] if b.available else [pytest.mark.skip(reason=f"{b.name}: {b.reason}")])
            for b in registry.backends()]


@pytest.fixture(scope="session", params=_backend_params())
def backend_impl(request) -> Impl:
    """One Impl per registered backend, with its default algorithm: for properties of a backend's
    driver (rows, scaling), not of an algorithm."""
    return Impl(*request.param)


def given_impl(capped_examples: int | None = None, *, per_backend: bool = False, **strategies):
    """Like hypothesis.given for a test ``fn(impl, **drawn)``, with the example budget of impl.

    The property runs once per registered (backend, algorithm), or once per backend with its
    default algorithm (``per_backend``: the ``backend_impl`` fixture); slow backends get fewer
    examples (``capped_examples``, where given, for a backend with a size cap: a simulator).
    The inner @given is not what pytest collects, so its statistics are handed to the pytest item
    here: ``--hypothesis-show-statistics`` then reports the examples each pair ran.
    """
    def deco(fn):
        @functools.wraps(fn, assigned=("__module__", "__name__", "__qualname__", "__doc__"))
        def test(impl, request):
            n = impl.examples if capped_examples is None or impl.max_d is None else capped_examples
            @settings(max_examples=n)
            @given(**strategies)
            def run(**drawn):
                fn(impl, **drawn)

            def note(stats):
                stats["nodeid"] = request.node.nodeid
                request.node.hypothesis_statistics = describe_statistics(stats)

            with collector.with_value(note):
                run()

        del test.__wrapped__  # pytest must see test(impl), not fn's drawn arguments
        if per_backend:
            @functools.wraps(test)
            def test_backend(backend_impl, request):
                test(backend_impl, request)

            del test_backend.__wrapped__
            return test_backend
        return test
    return deco


# Every numba-cuda kernel launch of the session must be in the real-compilation check's signature
# table (docs/design.md#real-compilation-in-ci): record them, and fail the run at the end if one is missing.
_LAUNCHES: set = set()


def pytest_sessionstart(session):
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        from ._gpu_launches import recording

        session.config._wsr_launch_recorder = recording(_LAUNCHES)
        session.config._wsr_launch_recorder.__enter__()


def pytest_sessionfinish(session, exitstatus):
    rec = getattr(session.config, "_wsr_launch_recorder", None)
    if rec is None:
        return
    rec.__exit__(None, None, None)
    from ._gpu_launches import missing

    lines = missing(_LAUNCHES)
    if lines:
        print("\nnumba-cuda launches missing from wsrbench/backends/numba_cuda/signatures.py "
              "(paste into SIGNATURES):\n  " + "\n  ".join(lines))
        session.exitstatus = 1
