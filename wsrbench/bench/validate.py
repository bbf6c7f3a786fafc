"""The exactness battery for a candidate prox (library of ``wsrbench validate``).

:func:`battery` yields the cases (every family of wsrbench.bench.cases, typical and worst, sizes from 1
up to ``max_d``, several lam per case, float32 and float64), :func:`check_case` runs the property
checks of :mod:`wsrbench.bench.properties` on one of them and grades it (EXACT; EXACT TO ROUNDING
with structural
findings; WRONG, raising :class:`CheckFailure` with a diagnosis), :func:`run_battery` tallies the
grades by dtype x family x check, and :func:`time_candidate` /
:func:`time_builtins` time the candidate and the built-ins against np.argsort (the plumbing of
:mod:`wsrbench.bench.benchtools`). What the battery checks and why is in the command's help,
:mod:`wsrbench.cli.validate`; the printing is there too.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ..core.numerics import EPS32, EPS64, value_tolerance
from . import cases, properties
from .benchtools import best_time, floor_seconds
from .properties import CheckFailure

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
        return (f"x, _ = wsrbench.bench.cases.make({self.family!r}, {self.d}, seed={self.seed}, "
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
    from ..api import prox
    return prox(x, lam, backend="numpy", algorithm="pava")


# The checks live in wsrbench.bench.properties (shared with the tests); the old private names stay.
_call = properties.call
_contract = properties.check_contract
_check_structure = properties.check_structure
_check_perturbation = properties.check_perturbation


def _check_invariances(fn, x, w, lam, tol, rng):
    properties.check_invariances(fn, x, w, lam, tol, rng,
                                 note="p a random permutation, seed 12345")


# ---------------------------------------------------------------------------------------------
# Graded verdicts (docs/design.md#graded-verdicts-in-wsrbench-validate)

EXACT, ROUNDING, WRONG = "EXACT", "EXACT TO ROUNDING", "WRONG"


@dataclass
class Finding:
    """A structural defect that is not a wrong answer: values right to rounding, but equal weights
    not bitwise equal (which weight sharing needs). ``ulps``: the largest spread, in units in the
    last place of the dtype at the value."""
    check: str  # "ties" (equal inputs) or "clusters" (one cluster of the prox)
    detail: str
    ulps: float


def ulp_spread(values: np.ndarray) -> float:
    """(max - min) of values that should be equal, in ulps of their dtype at the largest |value|."""
    hi, lo = float(np.max(values)), float(np.min(values))
    unit = float(np.spacing(values.dtype.type(max(abs(hi), abs(lo)))))
    return (hi - lo) / unit if unit > 0 else 0.0


def _structure_findings(x, w, ref, lam, tol) -> list[Finding]:
    """Structural checks graded: a split within the value tolerance is a Finding, beyond it a
    CheckFailure (a wrong answer)."""
    found = []
    try:
        properties.check_ties(x, w)
    except CheckFailure:
        properties.check_ties(x, w, tol)  # values further apart than rounding: wrong
        order = np.argsort(x, kind="stable")
        xs, ws = x[order], w[order]
        starts = np.flatnonzero(np.concatenate([[True], xs[1:] != xs[:-1]]))
        spread, at = max((ulp_spread(g), i) for i, g in zip(starts, np.split(ws, starts[1:])))
        found.append(Finding("ties", f"equal inputs (x = {float(xs[at])!r}) got values up to "
                                     f"{spread:.0f} ulps apart", spread))
    try:
        properties.check_clusters(x, w, ref, lam, tol)
    except CheckFailure as exc:
        order = np.argsort(x, kind="stable")
        rs, ws = ref[order], w[order]
        starts = np.flatnonzero(np.concatenate([[True], rs[1:] != rs[:-1]]))
        groups = np.split(ws.astype(np.float64), starts[1:])
        if max(float(np.max(g) - np.min(g)) for g in groups) > 2.0 * tol:
            raise exc
        spread = max(ulp_spread(g.astype(w.dtype)) for g in groups)
        found.append(Finding("clusters", f"a cluster of the prox holds values up to {spread:.0f} "
                                         f"ulps apart (rounding noise, not a split)", spread))
    return found


def _group_spread(x, w, ref) -> float:
    """The largest (max - min) of w over a group that must be one value: equal inputs, or one
    cluster of the reference."""
    w64 = np.asarray(w, dtype=np.float64)
    out = 0.0
    for keys in (np.asarray(x), np.asarray(ref)):
        _, inv = np.unique(keys, return_inverse=True)
        inv = inv.reshape(-1)
        hi = np.full(inv.max() + 1, -np.inf)
        lo = np.full(inv.max() + 1, np.inf)
        np.maximum.at(hi, inv, w64)
        np.minimum.at(lo, inv, w64)
        out = max(out, float(np.max(hi - lo)))
    return out


def structural_difference(x, w, ref, tol: float) -> str | None:
    """Where w's clusters differ from the canonical partition of the reference ``ref``, beyond
    rounding: a boundary (in sorted order) where w steps by more than 2 tol and ref does not is a
    split, the converse a merge. None when the partitions agree."""
    order = np.argsort(x, kind="stable")
    xs = np.asarray(x)[order]
    ws = np.asarray(w, dtype=np.float64)[order]
    rs = np.asarray(ref, dtype=np.float64)[order]
    w_step = np.abs(np.diff(ws)) > 2.0 * tol
    r_step = np.diff(rs) != 0
    split = np.flatnonzero(w_step & ~r_step)
    merge = np.flatnonzero(r_step & ~w_step & (np.diff(rs) > 2.0 * tol))
    if split.size:
        k = int(split[0])
        return (f"structural: a cluster of the prox is split between x = {float(xs[k])!r} and "
                f"x = {float(xs[k + 1])!r} ({split.size} such boundaries)")
    if merge.size:
        k = int(merge[0])
        return (f"structural: two clusters of the prox are merged between x = {float(xs[k])!r} "
                f"and x = {float(xs[k + 1])!r} ({merge.size} such boundaries)")
    return None


def precision_class(err: float, d: int, scale: float) -> str | None:
    """The arithmetic whose rounding explains an error ``err`` at value scale ``scale``: the
    narrowest of float64, float32, bfloat16 whose tolerance (sums of d terms, then a rounding,
    numerics.value_tolerance with that epsilon for every operation) covers it; None if none does."""
    for name, e in (("float64", EPS64), ("float32", EPS32), ("float16/bfloat16", 2.0 ** -7)):
        if err <= scale * 4.0 * (d + 2) * e:
            return name
    return None


def diagnose(failure: CheckFailure, x, w, ref, lam) -> str:
    """One sentence on the typical cause of a wrong answer (precision class, translation, ...)."""
    if failure.check == "translation":
        return ("translation-dependent: the answer changes with a constant shift of x, as when "
                "sums are formed without centring x (docs/design.md#float64-inside-centring-at-the-median)")
    if failure.check in ("certificate", "reference") and w is not None:
        d = x.shape[0]
        w64 = np.asarray(w, dtype=np.float64)
        err = float(np.max(np.abs(w64 - ref))) if d else 0.0
        scale = float(np.max(np.abs(x)) + np.max(np.abs(ref))) + lam
        tol = value_tolerance(d, x.dtype, scale - lam, lam)
        # structure first: a split or merged cluster is not a precision class
        where = structural_difference(x, w64, ref, tol)
        if where is not None:
            return where
        cls = precision_class(err, d, scale)
        if cls is not None and cls != "float64":
            return (f"precision lost (the clusters are right, their values are off): error "
                    f"{err:.2g} against a {x.dtype} tolerance of {tol:.2g}, consistent with "
                    f"{cls} arithmetic")
        if cls is None:
            return (f"not a rounding error: off by {err:.2g} at scale {scale:.2g} (a wrong "
                    f"cluster, shift or sum)")
    if failure.check == "ties":
        return "equal inputs get different outputs beyond rounding (ties broken by position?)"
    return ""


def check_case(fn, case: Case, x: np.ndarray, rng) -> list[Finding]:
    """Grade one case: raise :class:`CheckFailure` (WRONG) for the first failing check, else return
    the structural findings (empty: EXACT; non-empty: EXACT TO ROUNDING)."""
    w = properties.check_contract(fn, x, case.lam)
    d = case.d
    if d == 0:
        return []
    ref = _reference(x, case.lam)
    tol, s, eps_out = _tol(x, ref, d)
    try:
        properties.check_certificate(x, w, case.lam)
        properties.check_reference(w, ref, 2.0 * tol)
        findings = _structure_findings(x, w, ref, case.lam, tol)
        if d <= INVARIANCE_MAX_D:
            _check_invariances(fn, x, w, case.lam, tol, rng)
            properties.check_perturbation(x, w, case.lam, rng, s, eps_out,
                                          _group_spread(x, w, ref) if findings else 0.0)
    except CheckFailure as exc:
        why = diagnose(exc, x, w, ref.astype(np.float64), case.lam)
        if why:
            exc.diagnosis = why
        raise
    return findings


@dataclass
class BatteryResult:
    """What the battery found. ``failures``: (Case, CheckFailure) of WRONG cases; ``findings``:
    (Case, Finding) of EXACT TO ROUNDING ones; ``tally``: (dtype, family, check) -> cases, with
    check "ok" for exact cases; ``stopped``: dtypes whose run stopped at their first WRONG."""
    passed: int
    failures: list
    seconds: float
    findings: list = field(default_factory=list)
    tally: dict = field(default_factory=dict)
    stopped: tuple = ()

    def grade(self, dtype: str | None = None) -> str:
        """The worst grade over the cases (of one dtype if given)."""
        def mine(items):
            return [c for c, _ in items if dtype is None or c.dtype == dtype]
        if mine(self.failures):
            return WRONG
        return ROUNDING if mine(self.findings) else EXACT


def run_battery(fn, *, max_d=100_000, families=None, keep_going=False, progress=None,
                dtypes=("float64", "float32")) -> BatteryResult:
    """Run the battery. Without ``keep_going`` each dtype stops at its first WRONG case (so a
    float64 failure does not hide how float32 fares); with it every case runs and is tallied."""
    t0 = time.perf_counter()
    res = BatteryResult(0, [], 0.0)
    stopped: set = set()
    for case, x in battery(max_d, families=families, dtypes=dtypes):
        if case.dtype in stopped:
            continue
        rng = np.random.default_rng(12345)
        if progress is not None:
            progress(case)
        try:
            found = check_case(fn, case, x, rng)
        except CheckFailure as f:
            res.failures.append((case, f))
            key = (case.dtype, case.family, f.check)
            if not keep_going:
                stopped.add(case.dtype)
        else:
            res.passed += 1
            res.findings += [(case, g) for g in found]
            key = (case.dtype, case.family, f"{found[0].check} (rounding)" if found else "ok")
        res.tally[key] = res.tally.get(key, 0) + 1
    res.seconds = time.perf_counter() - t0
    res.stopped = tuple(sorted(stopped))
    return res


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
    from ..core import registry
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
