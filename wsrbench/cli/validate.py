"""Check a candidate prox MODULE:FUNCTION for exactness, then time it beside the built-ins.

The candidate is FUNCTION(x: np.ndarray, lam: float) -> np.ndarray, computing
prox_{lam R}(x) = argmin_w 1/2 ||w - x||^2 + lam/(d-1) sum_{i<j} |w_i - w_j| for a 1-D x.
MODULE is an importable module (the current directory is on the path) or a path to a .py file.

What the candidate offers is tested against the NumPy reference too:
  l1, rho      keyword parameters in its signature (def f(x, lam, l1=0.0, rho=0.0)): cases
               with l1 > 0 (a tenth and 0.6 of max|x|) and rho in {0.5, 1}, compared with
               wsrbench.prox(x, lam, l1=l1, rho=rho, backend="numpy"); a candidate that takes
               them and ignores them is WRONG ("ignores l1")
  --rows       it takes (n, d) rows and returns (n, d): every case goes in as one row, and
               batches of rows (one per family, scaled by powers of two and shifted, so
               they differ in scale and place) at each size are checked row by row against
               the prox of that row alone; an answer that mixes rows is WRONG ("rows mixed")
  --array torch  it takes and returns torch tensors (CPU, x's dtype); needs PyTorch

The battery (a wrong algorithm cannot pass it): every input family of wsrbench.bench.cases, typical and
worst case, including exact ties, and two wide rows (wide_outlier: one entry 2/eps times the
others; wide_binades: magnitudes over 2^-250 .. 2^250, 2^-60 .. 2^60 in float32); sizes from 1
up to --max-d; lam = 0, the family's lam, small ones, half the collapsing lam, exactly the
collapsing lam and beyond, and on rows with ties or wide ones, lam = ulp(max|x|)/4 (below the
resolution of x) and a subnormal lam; float32 and float64. For each case:
  contract     an ndarray of x's shape and dtype, finite, x not modified
  certificate  wsrbench.certify (the optimality conditions, no re-solve)
  reference    every value within the derived rounding tolerance of the NumPy reference
  structure    equal inputs get bitwise-equal outputs; a reference cluster is not split into
               different values unless the split point is a numerical tie of the fit
  invariances  translation, permutation, mean preservation, order (sizes <= 10^4)
  perturbation the objective 1/2 ||w - x||^2 + lam R(w) does not decrease under small random,
               coordinate and cluster moves of the answer (beyond its evaluation error)
Tolerances follow wsrbench.core.certificate: with s = max|x| + max|w|, each value is trusted to
s (2 eps_out + 4 (d+1) eps_64). Where the certificate cannot decide (the reference answer fails
it too: distinct clusters closer than that tolerance chain together, as in dense float32 data at
lam = 0), the reference and structure checks decide. The first failing case is printed with the
lines that rebuild it.

Then, if everything passed, the candidate and every available built-in (backend, algorithm) are
timed on the gaussian family at d = 10^3, 10^4, ... up to --max-d, within --budget seconds; the
report shows each one's fitted scaling exponent and its time relative to np.argsort.
Verdicts are graded (docs/design.md#graded-verdicts-in-wsrbench-validate):
  EXACT              every check passed, equal weights bitwise equal
  EXACT TO ROUNDING  every value right to rounding, but structural findings: equal inputs or one
                     cluster carrying values a few ulps apart (weight sharing wants them bitwise
                     equal); listed with the largest spread in ulps
  WRONG              a certificate, reference, invariance or perturbation failure, with a
                     diagnosis of the typical cause (the precision class of the error, e.g.
                     "consistent with float32 arithmetic"; translation dependence; split ties)
Each dtype stops at its first WRONG case unless --keep-going, which runs every case and tallies
them by dtype x family x check; --dtype runs one dtype only.
Exit status: 0 for EXACT and EXACT TO ROUNDING (1 for the latter with --strict), 1 for WRONG,
2 on usage errors.
"""
from __future__ import annotations

import numpy as np

from ..bench.benchtools import fit_exponent, fmt_time
from ..bench.compare import resolve_families
from ..bench.validate import (
    ROUNDING,
    WRONG,
    adapted,
    all_families,
    candidate_options,
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
    p.add_argument("--dtype", choices=["both", "float64", "float32"], default="both",
                   help="run the battery in this dtype only (default both)")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 for EXACT TO ROUNDING too (equal weights not bitwise equal)")
    p.add_argument("--rows", action="store_true",
                   help="the candidate takes (n, d) rows and returns (n, d): test batches of "
                        "rows, each against its own reference")
    p.add_argument("--array", choices=["numpy", "torch"], default="numpy",
                   help="pass torch tensors (CPU) and require tensors of x's dtype back "
                        "(default numpy)")


# ---------------------------------------------------------------------------------------------
# The verdict

def print_verdict(res, dtypes, args) -> None:
    """The graded verdict: overall, per dtype, structural findings, and (with --keep-going or when
    something failed) the tally by dtype x family x check."""
    name = args.candidate.rpartition(":")[2]
    per = {dt: res.grade(dt) for dt in dtypes}
    print(f"verdict: {res.grade()}  (" + ", ".join(f"{dt}: {g}" for dt, g in per.items())
          + f"; {res.passed} cases passed in {res.seconds:.1f} s)")
    for dt in dtypes:
        fails = [(c, f) for c, f in res.failures if c.dtype == dt]
        n_ok = sum(n for (d, _, chk), n in res.tally.items() if d == dt and chk == "ok")
        n_round = sum(1 for c, _ in res.findings if c.dtype == dt)
        if not fails:
            print(f"  {dt}: {per[dt]}: no wrong answer ({n_ok} cases exact, {n_round} "
                  f"right to rounding with structural findings)")
            continue
        case, f = fails[0]
        stop = " (stopped there; --keep-going runs the rest)" if dt in res.stopped else ""
        print(f"  {dt}: WRONG: {len(fails)} failing case(s){stop}")
        print(f"    first failing case: {case.describe()}")
        print(f"    check: {f.check}: {f.detail}")
        if getattr(f, "diagnosis", ""):
            print(f"    diagnosis: {f.diagnosis}")
        x_in = "; x = torch.from_numpy(x)" if args.array == "torch" else ""
        imp = "import numpy as np, wsrbench" + (", torch" if args.array == "torch" else "")
        print(f"    reproduce: {imp}; {case.reproduce()}{x_in}; {case.call(name, args.rows)}")
    if res.findings:
        print("structural findings (values right to rounding; for weight sharing equal weights "
              "must be bitwise equal, --strict makes these fail):")
        by: dict = {}
        for case, g in res.findings:
            cnt, worst = by.get(g.check, (0, None))
            if worst is None or g.ulps > worst[1].ulps:
                worst = (case, g)
            by[g.check] = (cnt + 1, worst)
        for check, (cnt, (case, g)) in by.items():
            what = {"ties": "ties not bitwise shared",
                    "clusters": "clusters not bitwise constant"}.get(check, check)
            print(f"  {what} in {cnt} case(s); largest spread {g.ulps:.0f} ulps: {g.detail} "
                  f"({case.describe()})")
    causes = sorted({f.diagnosis.split(":")[0] for _, f in res.failures
                     if getattr(f, "diagnosis", "")})
    if causes:
        print("typical causes: " + "; ".join(causes))
    if args.keep_going or res.failures:
        print_tally(res.tally)


def print_tally(tally: dict) -> None:
    """Cases by dtype x family x check ("ok": exact)."""
    if not tally:
        return
    print("tally (cases by dtype, family and outcome):")
    keys = sorted(tally)
    width = max(len(f) for _, f, _ in keys)
    for dt in sorted({k[0] for k in keys}, reverse=True):
        for fam in sorted({k[1] for k in keys if k[0] == dt}):
            parts = [f"{chk} {tally[(dt, fam, chk)]}" for (d, f, chk) in keys if d == dt and f == fam]
            print(f"  {dt}  {fam:<{width}}  " + ", ".join(parts))


def run(args) -> int:
    if args.max_d < 1:
        raise ValueError(f"--max-d must be >= 1, got {args.max_d}")
    if args.budget <= 0:
        raise ValueError(f"--budget must be > 0, got {args.budget}")
    families = None
    if args.families:
        families = resolve_families(args.families, all_families())
    dtypes = ("float64", "float32") if args.dtype == "both" else (args.dtype,)
    fn = load_candidate(args.candidate)
    offered = [k for k, v in candidate_options(fn).items() if v]
    offered += (["(n, d) rows"] if args.rows else []) + (["torch tensors"] if args.array == "torch"
                                                         else [])
    print(f"validating {args.candidate}: battery up to d={args.max_d} "
          f"({'every family' if families is None else ', '.join(families)}, {' and '.join(dtypes)}"
          f"{'; also ' + ', '.join(offered) if offered else ''})")
    res = run_battery(fn, max_d=args.max_d, families=families, keep_going=args.keep_going,
                      dtypes=dtypes, rows=args.rows, array=args.array)
    verdict = res.grade()
    print_verdict(res, dtypes, args)
    if verdict == WRONG or (verdict == ROUNDING and args.strict):
        return 1
    if args.no_timing:
        return 0

    sizes = timing_sizes(args.max_d)
    half = args.budget / 2
    print(f"timing on the gaussian family, d in {sizes} (budget {args.budget:g} s) ...")
    cand = time_candidate(adapted(fn, rows=args.rows, array=args.array), sizes, half)
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
