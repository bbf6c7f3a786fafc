"""Numba hull_bridges against Numba pava and np.argsort, interleaved
(docs/design.md#what-the-parallel-algorithm-pays-on-a-cpu).

    NUMBA_NUM_THREADS=1 PYTHONPATH=. python scripts/hull_speed.py          # single-threaded
    PYTHONPATH=. python scripts/hull_speed.py --sizes 1e4,1e5,1e6 --repeats 15

For every family and d, the three calls (pava, hull_bridges, np.argsort of the same input) take
turns, --repeats times, and each keeps its minimum: on a shared machine every contender sees the
same load. Prints the times as ratios to np.argsort, hull_bridges / pava, and per family the time
exponent p of hull_bridges (t ~ d^p, least squares on log-log over the sizes).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import wsrbench
from wsrbench import cases

FAMILIES = "gaussian,uniform,heavy_tailed,trained_layer,quantized,worst_hull_bridges,worst_pava," \
           "worst_imminent_collisions"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="1e4,1e5,1e6")
    ap.add_argument("--families", default=FAMILIES)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    import numba

    print(f"numba threads: {numba.get_num_threads()}")
    print("| family | d | np.argsort | pava / argsort | hull_bridges / argsort | hull / pava |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    exps = {}
    for fam in args.families.split(","):
        hull_t, floor_t = [], []
        for d in sizes:
            x, lam = cases.make(fam, d)
            for alg in ("pava", "hull_bridges"):
                wsrbench.prox_info(x, lam, algorithm=alg, backend="numba")  # compile, warm up
            best = {"pava": np.inf, "hull_bridges": np.inf, "argsort": np.inf}
            for _ in range(args.repeats):
                for alg in ("pava", "hull_bridges"):
                    t = time.perf_counter()
                    wsrbench.prox_info(x, lam, algorithm=alg, backend="numba")
                    best[alg] = min(best[alg], time.perf_counter() - t)
                t = time.perf_counter()
                np.argsort(x)
                best["argsort"] = min(best["argsort"], time.perf_counter() - t)
            f = best["argsort"]
            hull_t.append(best["hull_bridges"])
            floor_t.append(f)
            print(f"| {fam} | {d:.0e} | {f * 1e3:.2f} ms | {best['pava'] / f:.2f} | "
                  f"{best['hull_bridges'] / f:.2f} | {best['hull_bridges'] / best['pava']:.2f} |",
                  flush=True)
        if len(sizes) > 1:
            exps[fam] = (float(np.polyfit(np.log(sizes), np.log(hull_t), 1)[0]),
                         float(np.polyfit(np.log(sizes), np.log(floor_t), 1)[0]))
    if exps:
        print("\ntime exponents (t ~ d^p over the sizes), hull_bridges / np.argsort in the same run: "
              + ", ".join(f"{f} {p:.2f} / {q:.2f}" for f, (p, q) in exps.items()))


if __name__ == "__main__":
    main()
