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

import numpy as np

from .. import cases
from ..benchtools import fit_exponent, fmt_time
from ..compare import resolve_families
from ..validate import (
    load_candidate,
    run_battery,
    time_builtins,
    time_candidate,
    timing_sizes,
)

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


def run(args) -> int:
    if args.max_d < 1:
        raise ValueError(f"--max-d must be >= 1, got {args.max_d}")
    if args.budget <= 0:
        raise ValueError(f"--budget must be > 0, got {args.budget}")
    families = None
    if args.families:
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
    rows = [("candidate", cand)] + [(f"{b}/{a}", v) for (b, a), v in builtins.items()]
    width = max(len(n) for n, _ in rows)
    print(f"  {'algorithm':<{width}}  exponent  {'time at largest d':<22} x np.argsort")
    for name, pts in rows:
        ds = [p[0] for p in pts]
        p, _ = fit_exponent(ds, [p[1] for p in pts])
        d, t, fl = pts[-1]
        p_s = f"{p:8.2f}" if np.isfinite(p) else "       -"
        print(f"  {name:<{width}}  {p_s}  {fmt_time(t) + f' (d={d})':<22} {t / fl:.3g}")
    return 0
