"""Check a candidate prox MODULE:FUNCTION for exactness, then time it beside the built-ins.

The candidate is FUNCTION(x: np.ndarray, lam: float) -> np.ndarray, computing
prox_{lam R}(x) = argmin_w 1/2 ||w - x||^2 + lam/(d-1) sum_{i<j} |w_i - w_j| for a 1-D x.
MODULE is an importable module (the current directory is on the path) or a path to a .py file.

The battery (a wrong algorithm cannot pass it): every input family of wsrbench.cases, typical and
worst case, including exact ties; sizes from 1 up to --max-d; lam = 0, the family's lam, small
ones, half the collapsing lam, exactly the collapsing lam and beyond; float32 and float64. For
each case:
  contract     an ndarray of x's shape and dtype, finite, x not modified
  certificate  wsrbench.certify (the optimality conditions, no re-solve)
  reference    every value within the derived rounding tolerance of the NumPy reference
  structure    equal inputs get bitwise-equal outputs; a reference cluster is not split into
               different values unless the split point is a numerical tie of the fit
  invariances  translation, permutation, mean preservation, order (sizes <= 10^4)
  perturbation the objective 1/2 ||w - x||^2 + lam R(w) does not decrease under small random,
               coordinate and cluster moves of the answer (beyond its evaluation error)
Tolerances follow wsrbench.certificate: with s = max|x| + max|w|, each value is trusted to
s (2 eps_out + 4 (d+1) eps_64). Where the certificate cannot decide (the reference answer fails
it too: distinct clusters closer than that tolerance chain together, as in dense float32 data at
lam = 0), the reference and structure checks decide. The first failing case is printed with the
lines that rebuild it.

Then, if everything passed, the candidate and every available built-in (backend, algorithm) are
timed on the gaussian family at d = 10^3, 10^4, ... up to --max-d, within --budget seconds; the
report shows each one's fitted scaling exponent and its time relative to np.argsort.
Exit status: 0 only if the candidate is exact on every case, 1 otherwise, 2 on usage errors.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from . import cases
from .certificate import certify
from .sorted_space import shift_sum

EPS64 = float(np.finfo(np.float64).eps)
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


class Failure(Exception):
    def __init__(self, check: str, detail: str):
        super().__init__(f"{check}: {detail}")
        self.check, self.detail = check, detail


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
        spec_.loader.exec_module(mod)
    else:
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())
        mod = importlib.import_module(module)
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
    eps_out = float(np.finfo(x.dtype).eps)
    s = float(np.max(np.abs(x)) + np.max(np.abs(w))) if d else 0.0
    return s * (2.0 * eps_out + 4.0 * (d + 1) * EPS64), s, eps_out


def _call(fn, x, lam, label="candidate"):
    try:
        return fn(x, lam)
    except Exception as exc:
        raise Failure("raised", f"{label} raised {type(exc).__name__}: {exc}") from None


def _contract(fn, x, lam) -> np.ndarray:
    x_in = x.copy()
    w = _call(fn, x_in, lam)
    if not np.array_equal(x_in.view(np.uint8), x.view(np.uint8)):
        k = int(np.flatnonzero(x_in != x)[0]) if np.any(x_in != x) else 0
        raise Failure("mutation", f"the candidate modified its input x (first change at index {k})")
    if not isinstance(w, np.ndarray):
        raise Failure("type", f"returned {type(w).__name__}, expected a numpy.ndarray")
    if w.shape != x.shape:
        raise Failure("shape", f"returned shape {w.shape}, expected {x.shape}")
    if w.dtype != x.dtype:
        raise Failure("dtype", f"returned dtype {w.dtype} for {x.dtype} input (float32 in must "
                               f"give float32 out, float64 in float64 out)")
    if w.size and not np.all(np.isfinite(w)):
        raise Failure("finite", f"returned a non-finite value at index {int(np.flatnonzero(~np.isfinite(w))[0])}")
    return w


def _reference(x, lam):
    from .api import prox
    return prox(x, lam, backend="numpy", algorithm="pava")


def _check_structure(x, w, ref, lam, tol):
    """Equal inputs -> bitwise-equal outputs; no unjustified split of a reference cluster."""
    d = x.shape[0]
    if d < 2:
        return
    order = np.argsort(x, kind="stable")
    xs, ws, rs = x[order], w[order], ref[order]
    same_x = xs[1:] == xs[:-1]
    diff_w = ws[1:] != ws[:-1]
    bad = np.flatnonzero(same_x & diff_w)
    if bad.size:
        k = int(bad[0])
        i, j = int(order[k]), int(order[k + 1])
        raise Failure("ties", f"x[{i}] == x[{j}] == {xs[k]!r} but w[{i}] = {ws[k]!r} != w[{j}] = "
                              f"{ws[k + 1]!r} (equal inputs must get equal outputs)")
    # Splits inside a reference cluster [a, b): allowed only where the fit is numerically tied,
    # i.e. where the prefix sum of residuals y - m of the cluster vanishes within tolerance.
    split = np.flatnonzero((rs[1:] == rs[:-1]) & diff_w)
    if not split.size:
        return
    new = np.concatenate([[True], rs[1:] != rs[:-1]])
    starts = np.flatnonzero(new)
    gid = np.cumsum(new) - 1
    xs64 = xs.astype(np.float64)
    for k in split[:64]:  # a handful decide it; a broken algorithm fails at the first
        a = int(starts[gid[k]])
        end = int(np.append(starts[1:], d)[gid[k]])
        m = float(np.mean(xs64[a:end])) + float(shift_sum(a, end, d, lam)) / (end - a)
        pre = float(np.sum(xs64[a:k + 1]) - m * (k + 1 - a) + shift_sum(a, k + 1, d, lam))
        if abs(pre) > (k + 1 - a) * 4.0 * tol:
            i, j = int(order[k]), int(order[k + 1])
            raise Failure("structure", f"w[{i}] = {ws[k]!r} and w[{j}] = {ws[k + 1]!r} differ but belong "
                                       f"to one cluster of the prox (its value is {rs[k]!r}); the "
                                       f"split is not a numerical tie of the fit")


def _objective(x64, w64, lam):
    from .api import penalty
    return 0.5 * float(np.sum((w64 - x64) ** 2)) + lam * float(penalty(w64))


def _check_perturbation(x, w, lam, rng, s, eps_out):
    """F(w + t u) >= F(w) - ftol for random, coordinate and whole-cluster directions u.

    At the exact minimiser F(w* + t u) - F(w*) >= t^2 |u|^2 / 2 > 0 (strong convexity). The
    returned w is w* rounded to its dtype, each cluster moving as a whole (so its first-order
    change vanishes by the balance condition): F(w) - F(w*) <= d (eps_out s)^2 / 2. F is summed
    in float64 over d terms of size up to s^2 + lam s: 4 (d+1) eps_64 times that scale.
    """
    d = x.shape[0]
    if d < 2 or s == 0.0:
        return
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    f0 = _objective(x64, w64, lam)
    fscale = 0.5 * float(np.sum((w64 - x64) ** 2)) + lam * float(np.max(w64) - np.min(w64)) * d + s * s
    ftol = 0.5 * d * (eps_out * s) ** 2 + 8.0 * (d + 1) * EPS64 * fscale
    dirs = [rng.standard_normal(d) for _ in range(3)]
    dirs += [np.eye(1, d, int(k)).ravel() for k in rng.choice(d, size=min(d, 3), replace=False)]
    vals, inv = np.unique(w64, return_inverse=True)
    for c in rng.choice(vals.size, size=min(vals.size, 3), replace=False):
        dirs.append((inv == c).astype(np.float64))
    for u in dirs:
        u = u / np.max(np.abs(u))
        for t in (1e-3 * s, 1e-6 * s):
            for sign in (1.0, -1.0):
                f1 = _objective(x64, w64 + sign * t * u, lam)
                if f1 < f0 - ftol:
                    raise Failure("perturbation", f"moving w by {sign * t:.3g} along a test "
                                                  f"direction lowers the objective from {f0!r} to "
                                                  f"{f1!r} (beyond the evaluation error {ftol:.3g})")


def _check_invariances(fn, x, w, lam, tol, rng):
    d = x.shape[0]
    if d == 0:
        return
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    # order: x_i < x_j implies w_i <= w_j (within the value tolerance)
    order = np.argsort(x, kind="stable")
    drop = w64[order][:-1] - w64[order][1:]
    if d > 1 and np.max(drop) > tol:
        k = int(np.argmax(drop))
        raise Failure("order", f"x[{order[k]}] <= x[{order[k + 1]}] but w[{order[k]}] = {w[order[k]]!r} > "
                               f"w[{order[k + 1]}] = {w[order[k + 1]]!r}")
    # mean preservation: sum of the shifts is 0
    dm = abs(float(np.mean(w64)) - float(np.mean(x64)))
    if dm > tol:
        raise Failure("mean", f"mean(w) - mean(x) = {dm:.3e} exceeds the tolerance {tol:.3e}")
    # permutation: prox(P x) = P prox(x)
    p = rng.permutation(d)
    wp = np.asarray(_call(fn, x[p].copy(), lam, "candidate (permuted input)"), dtype=np.float64)
    err = np.abs(wp - w64[p])
    if err.size and np.max(err) > 2.0 * tol:
        k = int(np.argmax(err))
        raise Failure("permutation", f"prox(x[p])[{k}] = {wp[k]!r} but prox(x)[p][{k}] = {w64[p][k]!r} "
                                     f"(p a random permutation, seed 12345)")
    # translation: prox(x + c) = prox(x) + c. x + c is rounded to the dtype: the prox is
    # non-expansive in the max norm, so that rounding (half an ulp of |x| + c) adds to the bound.
    c = float(np.max(np.abs(x64))) + 1.0
    xc = (x64 + c).astype(x.dtype)
    wc = np.asarray(_call(fn, xc, lam, "candidate (translated input)"), dtype=np.float64)
    eps_out = float(np.finfo(x.dtype).eps)
    ttol = 2.0 * tol + 4.0 * eps_out * (c + float(np.max(np.abs(x64)))) \
        + 4.0 * (d + 1) * EPS64 * 3.0 * c
    err = np.abs((wc - c) - w64)
    if np.max(err) > ttol:
        k = int(np.argmax(err))
        raise Failure("translation", f"prox(x + c) - c differs from prox(x) by {err[k]:.3e} at index "
                                     f"{k} (c = {c!r}; tolerance {ttol:.3e})")


def check_case(fn, case: Case, x: np.ndarray, rng) -> None:
    """Raise Failure for the first check the candidate fails on this case."""
    w = _contract(fn, x, case.lam)
    d = case.d
    if d == 0:
        return
    ref = _reference(x, case.lam)
    tol, s, eps_out = _tol(x, ref, d)
    cert = certify(x, w, case.lam)
    if not cert.ok:
        raise Failure("certificate", cert.message)
    err = np.abs(w.astype(np.float64) - ref.astype(np.float64))
    if np.max(err) > 2.0 * tol:
        k = int(np.argmax(err))
        raise Failure("reference", f"w[{k}] = {w[k]!r} but the NumPy reference gives {ref[k]!r} "
                                   f"(difference {err[k]:.3e} > tolerance {2 * tol:.3e})")
    _check_structure(x, w, ref, case.lam, tol)
    if d <= INVARIANCE_MAX_D:
        _check_invariances(fn, x, w, case.lam, tol, rng)
        _check_perturbation(x, w, case.lam, rng, s, eps_out)


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
    from .compare import time_calls

    out, t_start = [], time.perf_counter()
    for d in sizes:
        x, lam = cases.make(family, d)
        fn(x.copy(), lam)  # warm-up (JIT)
        t = min(time_calls(lambda: fn(x, lam), repeats))
        np.argsort(x)
        floor = min(time_calls(lambda: np.argsort(x), repeats))
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


# ---------------------------------------------------------------------------------------------
# Command line

def add_arguments(p) -> None:
    import argparse

    p.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the docstring's layout
    p.add_argument("candidate", help="MODULE:FUNCTION (or path/to/file.py:FUNCTION) computing "
                                     "FUNCTION(x: np.ndarray, lam: float) -> np.ndarray")
    p.add_argument("--max-d", type=int, default=100_000,
                   help="largest d in the battery and the timing (default 100000)")
    p.add_argument("--budget", type=float, default=60.0,
                   help="seconds for the timing phase, candidate and built-ins together "
                        "(default 60; the battery always runs in full)")
    p.add_argument("--families", help="comma-separated families for the battery (default: all)")
    p.add_argument("--keep-going", action="store_true",
                   help="run every case and count the failures instead of stopping at the first")
    p.add_argument("--no-timing", action="store_true", help="only the battery")


def _fmt(t):
    from .compare import _fmt_time
    return _fmt_time(t)


def run(args) -> int:
    if args.max_d < 1:
        raise ValueError(f"--max-d must be >= 1, got {args.max_d}")
    if args.budget <= 0:
        raise ValueError(f"--budget must be > 0, got {args.budget}")
    families = None
    if args.families:
        from .compare import resolve_families
        families = resolve_families(args.families, cases.names())
    fn = load_candidate(args.candidate)
    print(f"validating {args.candidate}: battery up to d={args.max_d} "
          f"({'every family' if families is None else ', '.join(families)}, float32 and float64)")
    res = run_battery(fn, max_d=args.max_d, families=families, keep_going=args.keep_going)
    if res.failures:
        case, f = res.failures[0]
        print(f"FAIL after {res.passed} passing cases ({res.seconds:.1f} s)")
        print(f"  first failing case: {case.describe()}")
        print(f"  check: {f.check}: {f.detail}")
        print(f"  reproduce: import numpy as np, wsrbench; {case.reproduce()}; "
              f"w = {args.candidate.rpartition(':')[2]}(x, lam)")
        if args.keep_going and len(res.failures) > 1:
            kinds = {}
            for _, ff in res.failures:
                kinds[ff.check] = kinds.get(ff.check, 0) + 1
            print(f"  {len(res.failures)} failing cases in all: "
                  + ", ".join(f"{k} x{n}" for k, n in kinds.items()))
        return 1
    print(f"EXACT on all {res.passed} cases ({res.seconds:.1f} s): contract, certificate, reference, "
          f"structure, invariances, perturbation")
    if args.no_timing:
        return 0

    sizes = timing_sizes(args.max_d)
    half = args.budget / 2
    print(f"timing on the gaussian family, d in {sizes} (budget {args.budget:g} s) ...")
    cand = time_candidate(fn, sizes, half)
    builtins = time_builtins(sizes, half)
    from .compare import fit_exponent
    rows = [("candidate", cand)] + [(f"{b}/{a}", v) for (b, a), v in builtins.items()]
    width = max(len(n) for n, _ in rows)
    print(f"  {'algorithm':<{width}}  exponent  {'time at largest d':<22} x np.argsort")
    for name, pts in rows:
        ds = [p[0] for p in pts]
        p, _ = fit_exponent(ds, [p[1] for p in pts])
        d, t, fl = pts[-1]
        p_s = f"{p:8.2f}" if np.isfinite(p) else "       -"
        print(f"  {name:<{width}}  {p_s}  {_fmt(t) + f' (d={d})':<22} {t / fl:.3g}")
    return 0
