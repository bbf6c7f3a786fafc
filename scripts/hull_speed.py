"""Numba hull_bridges against Numba pava and np.argsort, interleaved
(docs/design.md#what-the-parallel-algorithm-pays-on-a-cpu).

    NUMBA_NUM_THREADS=1 PYTHONPATH=. python scripts/hull_speed.py          # single-threaded
    NUMBA_NUM_THREADS=1 PYTHONPATH=. python scripts/hull_speed.py --sizes 1e5,1e6 --repeats 30 \\
        --out docs/figures/hull_speed.md                                  # the dated table

For every family and d, the three calls (pava, hull_bridges, np.argsort of the same input) take
turns, --repeats times after a warm-up call of each, so that a load change hits all three; each
ratio is the median of the ratios of the calls of one turn, with its interquartile range. Prints
(and with --out writes as Markdown under the provenance header: date, commit, machine, load
through the run, command) pava / argsort, hull_bridges / argsort and hull_bridges / pava, and per
family the time exponent p of hull_bridges and of np.argsort (t ~ d^p, least squares on log-log of
the medians over the sizes).
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import wsrbench
from wsrbench import cases
from wsrbench.bench.benchtools import fit_exponent, fmt_spread, interleaved_rounds, ratio_spread
from wsrbench.core import provenance

FAMILIES = "gaussian,uniform,heavy_tailed,trained_layer,quantized,worst_hull_bridges,worst_pava," \
           "worst_imminent_collisions"


def measure(sizes, families, repeats):
    """{family: [(d, argsort median s, pava/argsort, hull/argsort, hull/pava) per size]}, each
    ratio (median, q25, q75) of the paired ratios of one turn."""
    res = {}
    print("| family | d | np.argsort | pava / argsort | hull_bridges / argsort | hull / pava |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for fam in families:
        res[fam] = []
        for d in sizes:
            x, lam = cases.make(fam, d)
            tp, th, ta = interleaved_rounds(
                [lambda: wsrbench.prox_info(x, lam, algorithm="pava", backend="numba"),
                 lambda: wsrbench.prox_info(x, lam, algorithm="hull_bridges", backend="numba"),
                 lambda: np.argsort(x)], repeats)
            row = (d, float(np.median(ta)), ratio_spread(tp, ta), ratio_spread(th, ta),
                   ratio_spread(th, tp), float(np.median(th)))
            res[fam].append(row)
            print(f"| {fam} | {d:.0e} | {row[1] * 1e3:.2f} ms | "
                  + " | ".join(fmt_spread(r) for r in row[2:5]) + " |", flush=True)
    return res


def exponents(res):
    """{family: (p of hull_bridges, p of np.argsort)}: t ~ d^p over the sizes (two at least)."""
    out = {}
    for fam, rows in res.items():
        if len(rows) > 1:
            ds = [r[0] for r in rows]
            out[fam] = (fit_exponent(ds, [r[5] for r in rows], min_d=0)[0],
                        fit_exponent(ds, [r[1] for r in rows], min_d=0)[0])
    return out


def write(path, res, exps, repeats, threads, command, load):
    lines = [provenance.header("Numba hull_bridges against pava and np.argsort", load, command),
             f"Numba threads: {threads}. pava, hull_bridges (both including the sort) and "
             f"np.argsort of the same input, float64, took {repeats} turns after a warm-up call of "
             "each; every cell is the median of the ratios of one turn's calls with their "
             "interquartile range in brackets; np.argsort is the median time of one call.", "",
             "| family | d | np.argsort | pava / argsort | hull_bridges / argsort | "
             "hull_bridges / pava |", "|---|---:|---:|---:|---:|---:|"]
    for fam, rows in res.items():
        lines += [f"| {fam} | {d:.0e} | {ta * 1e3:.2f} ms | "
                  + " | ".join(fmt_spread(r) for r in (p, h, hp)) + " |"
                  for d, ta, p, h, hp, _ in rows]
    if exps:
        lines += ["", "Time exponents over the sizes (t ~ d^p, least squares on log-log of the "
                  "medians), hull_bridges / np.argsort in the same run: "
                  + ", ".join(f"{f} {p:.2f} / {q:.2f}" for f, (p, q) in exps.items()) + "."]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="1e4,1e5,1e6", help="comma-separated d values")
    ap.add_argument("--families", default=FAMILIES)
    ap.add_argument("--repeats", type=int, default=15, help="interleaved turns per family and d")
    ap.add_argument("--out", default="", help="also write the table as Markdown to this file")
    args = ap.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    if args.repeats < 1:
        ap.error(f"--repeats must be at least 1; got {args.repeats}")
    import numba

    threads = numba.get_num_threads()
    print(f"numba threads: {threads}")
    with provenance.LoadMonitor() as load:
        res = measure(sizes, args.families.split(","), args.repeats)
    exps = exponents(res)
    if exps:
        print("\ntime exponents (t ~ d^p over the sizes), hull_bridges / np.argsort in the same run: "
              + ", ".join(f"{f} {p:.2f} / {q:.2f}" for f, (p, q) in exps.items()))
    if args.out:
        env = f"NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']} " \
            if "NUMBA_NUM_THREADS" in os.environ else ""
        command = env + "python scripts/hull_speed.py " + " ".join(sys.argv[1:] if argv is None
                                                                   else argv)
        write(args.out, res, exps, args.repeats, threads, command, load)


if __name__ == "__main__":
    main()
