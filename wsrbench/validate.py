"""The exactness battery for a candidate prox (library of ``wsrbench validate``).

:func:`battery` yields the cases (every family of wsrbench.cases, typical and worst, sizes from 1
up to ``max_d``, several lam per case, float32 and float64), :func:`check_case` runs the property
checks of :mod:`wsrbench.properties` on one of them and raises :class:`CheckFailure` for the first
that fails, :func:`run_battery` gives the verdict, and :func:`time_candidate` /
:func:`time_builtins` time the candidate and the built-ins against np.argsort (the plumbing of
:mod:`wsrbench.benchtools`). What the battery checks and why is in the command's help,
:mod:`wsrbench.cli.validate`; the printing is there too.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from . import cases, properties
from .benchtools import best_time, floor_seconds
from .numerics import value_tolerance
from .properties import CheckFailure

Failure = CheckFailure  # the validator's name for it before issue 9
SMALL_SIZES = [1, 2, 3, 4, 5, 7, 8, 16, 17, 33, 64, 100, 257, 1000]
INVARIANCE_MAX_D = 10_000


@dataclass
class Case:
    family: str
    d: int
    dtype: str
    lam_name: str
    lam: float
    seed: int = 0

    def describe(self) -> str:
        return (f"family={self.family} d={self.d} dtype={self.dtype} seed={self.seed} "
                f"lam={self.lam!r} ({self.lam_name})")

    def reproduce(self) -> str:
        return (f"x, _ = wsrbench.cases.make({self.family!r}, {self.d}, seed={self.seed}, "
                f"dtype=np.{self.dtype}); lam = {self.lam!r}")


# ---------------------------------------------------------------------------------------------
# Loading the candidate

def load_candidate(spec: str):
    """MODULE:FUNCTION -> the function. MODULE may be a dotted name or a path to a .py file."""
    module, sep, func = spec.rpartition(":")
    if not sep or not module or not func:
        raise ValueError(f"candidate must be MODULE:FUNCTION (e.g. mypkg.prox:fast_prox or "
                         f"path/to/file.py:fast_prox), got {spec!r}")
    if module.endswith(".py") or os.sep in module:
        if not os.path.isfile(module):
            raise FileNotFoundError(f"no such file {module!r}")
        name = "_wsrbench_candidate_" + os.path.splitext(os.path.basename(module))[0]
        spec_ = importlib.util.spec_from_file_location(name, module)
        mod = importlib.util.module_from_spec(spec_)
        sys.modules[name] = mod
        try:
            spec_.loader.exec_module(mod)
        except Exception as exc:  # the candidate's own error, reported as one line
            raise ValueError(f"could not load {module}: {type(exc).__name__}: {exc}") from None
    else:
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            mod = importlib.import_module(module)
        except Exception as exc:
            hint = (" (is it installed, or run from the directory that holds it? a file can be "
                    "given as path/to/file.py:FUNCTION)" if isinstance(exc, ImportError) else "")
            raise ValueError(f"could not import module {module!r}: {type(exc).__name__}: "
                             f"{exc}{hint}") from None
    fn = getattr(mod, func, None)
    if fn is None or not callable(fn):
        raise ValueError(f"{module} has no callable {func!r}")
    return fn


# ---------------------------------------------------------------------------------------------
# The battery

def _lams(family: str, x: np.ndarray, fam_lam: float, full: bool):
    lc = cases.collapse_lam(x)
    out = [("family", fam_lam)]
    if full:
        out += [("zero", 0.0), ("small", fam_lam * 1e-3), ("half collapse", 0.5 * lc),
                ("collapse", lc), ("beyond collapse", 4.0 * lc + 1.0)]
    else:
        out += [("half collapse", 0.5 * lc)]
    seen, uniq = set(), []
    for name, lam in out:
        if lam not in seen:
            seen.add(lam)
            uniq.append((name, float(lam)))
    return uniq


def battery(max_d: int = 100_000, *, families=None, dtypes=("float64", "float32")):
    """Yield (Case, x) over the whole battery, smallest and most revealing cases first."""
    families = families or cases.names()
    large = []
    d = 4096
    while d <= max_d:
        large.append(d)
        d = 10_000 if d == 4096 else d * 10
    sizes = sorted(set([d for d in SMALL_SIZES if d <= max_d] + large + [max_d]))
    for d in sizes:
        full = d <= SMALL_SIZES[-1]
        for dtype in dtypes:
            for family in families:
                seeds = (0, 1) if d <= 64 else (0,)
                for seed in seeds:
                    x, fam_lam = cases.make(family, d, seed=seed, dtype=np.dtype(dtype))
                    lams = _lams(family, x, fam_lam, full) if d <= 10_000 else [("family", fam_lam)]
                    for lam_name, lam in lams:
                        yield Case(family, d, dtype, lam_name, lam, seed), x


def _tol(x, w, d):
    """(value tolerance, scale s = max|x| + max|w|, eps of x's dtype) of a case (as certify)."""
    eps_out = float(np.finfo(x.dtype).eps)
    s = float(np.max(np.abs(x)) + np.max(np.abs(w))) if d else 0.0
    return value_tolerance(d, x.dtype, s), s, eps_out


def _reference(x, lam):
    from .api import prox
    return prox(x, lam, backend="numpy", algorithm="pava")


# The checks live in wsrbench.properties (shared with the tests); the old private names stay.
_call = properties.call
_contract = properties.check_contract
_check_structure = properties.check_structure
_check_perturbation = properties.check_perturbation


def _check_invariances(fn, x, w, lam, tol, rng):
    properties.check_invariances(fn, x, w, lam, tol, rng,
                                 note="p a random permutation, seed 12345")


def check_case(fn, case: Case, x: np.ndarray, rng) -> None:
    """Raise Failure for the first check the candidate fails on this case."""
    w = properties.check_contract(fn, x, case.lam)
    d = case.d
    if d == 0:
        return
    ref = _reference(x, case.lam)
    tol, s, eps_out = _tol(x, ref, d)
    properties.check_certificate(x, w, case.lam)
    properties.check_reference(w, ref, 2.0 * tol)
    properties.check_structure(x, w, ref, case.lam, tol)
    if d <= INVARIANCE_MAX_D:
        _check_invariances(fn, x, w, case.lam, tol, rng)
        properties.check_perturbation(x, w, case.lam, rng, s, eps_out)


@dataclass
class BatteryResult:
    passed: int
    failures: list  # (Case, Failure)
    seconds: float


def run_battery(fn, *, max_d=100_000, families=None, keep_going=False, progress=None) -> BatteryResult:
    t0 = time.perf_counter()
    passed, failures = 0, []
    for case, x in battery(max_d, families=families):
        rng = np.random.default_rng(12345)
        if progress is not None:
            progress(case)
        try:
            check_case(fn, case, x, rng)
        except Failure as f:
            failures.append((case, f))
            if not keep_going:
                break
        else:
            passed += 1
    return BatteryResult(passed, failures, time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------
# Timing

def timing_sizes(max_d: int) -> list[int]:
    out, d = [], 1_000
    while d <= max_d:
        out.append(d)
        d *= 10
    return out or [max_d]


def time_candidate(fn, sizes, budget, *, family="gaussian", repeats=3):
    """[(d, seconds, argsort seconds)] for the candidate, increasing d while the budget lasts."""
    out, t_start = [], time.perf_counter()
    for d in sizes:
        x, lam = cases.make(family, d)
        t = best_time(lambda: fn(x, lam), repeats)
        floor, _ = floor_seconds(x, "cpu", repeats)
        out.append((d, t, floor))
        spent = time.perf_counter() - t_start
        if spent + 12 * t > budget:  # the next size costs about 10x this one (and repeats)
            break
    return out


def time_builtins(sizes, budget, *, family="gaussian", repeats=3):
    """{(backend, algorithm): [(d, seconds, floor)]} within the budget, under compare's caps."""
    from . import registry
    from .compare import make_plan, measure

    backends = [b.name for b in registry.backends() if b.available]
    algorithms = [a.name for a in registry.algorithms()]
    plan = make_plan(backends, algorithms, [family], sizes)
    out, t_start, floor_cache = {}, time.perf_counter(), {}
    for b, a, f, d in plan.cells:
        if time.perf_counter() - t_start > budget:
            break
        r = measure(b, a, f, d, repeats=repeats, floor_cache=floor_cache)
        if r.status == "ok":
            out.setdefault((b, a), []).append((d, r.seconds, r.floor_seconds))
    return out




def __getattr__(name):
    if name in ("add_arguments", "run"):  # moved to the command line module in issue 9
        import importlib
        import warnings

        warnings.warn(f"wsrbench.validate.{name} moved to wsrbench.cli.validate.{name}",
                      DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module("wsrbench.cli.validate"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
