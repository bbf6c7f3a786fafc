"""Figures for the foundation: oracle agreement and worst-case round counts.

    python scripts/foundation_figures.py [--max-d 100000] [--backend numpy]
    python scripts/foundation_figures.py --m1 82570,165000,330000 --backend numba

1. Max relative error |w - oracle| / (max|x| + lam) of every algorithm of a backend against SciPy's
   isotonic regression after sort and shift, per dtype, over every family at several sizes.
2. Rounds of imminent_collisions on worst_imminent_collisions for d = 64 ... max-d (the cascade
   mass m and the representability limits in float64 and float32).
With --m1: only the single-particle cascade (m = 1) in float64 at the given sizes, to see where
it really stops forcing d - 1 rounds (cases.cascade_limit is the conservative criterion).
"""
import argparse
import time

import numpy as np
from scipy.optimize import isotonic_regression

import wsrbench
from wsrbench import cases


def oracle(x, lam):
    x = np.asarray(x, dtype=np.float64)
    d = x.size
    order = np.argsort(x, kind="stable")
    v = lam * (d - 1 - 2 * np.arange(d)) / (d - 1)
    w = np.empty(d)
    w[order] = isotonic_regression(x[order] + v).x
    return w


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-d", type=int, default=100_000)
    ap.add_argument("--backend", default="numpy")
    ap.add_argument("--m1", help="comma-separated sizes: run only the m = 1 cascade check")
    args = ap.parse_args()
    if args.m1:
        print(f"m = 1 cascade, float64, backend {args.backend} (criterion: d <= {cases.cascade_limit()})")
        for d in (int(float(v)) for v in args.m1.split(",")):
            x, lam, _ = cases.cascade(d, 1)
            x = x[np.random.default_rng(0).permutation(d)]
            t = time.perf_counter()
            w, info = wsrbench.prox_info(x, lam, algorithm="imminent_collisions", backend=args.backend)
            print(f"d={d}: rounds {info.rounds} (d-1 = {d - 1}), certified {wsrbench.certify(x, w, lam).ok}, "
                  f"{time.perf_counter() - t:.1f} s", flush=True)
        return 0
    be = wsrbench.core.registry.get_backend(args.backend)
    print(f"oracle agreement, backend {args.backend}: max |w - scipy| / (max|x| + lam)")
    print(f"{'algorithm':<22}{'float64':>12}{'float32':>12}   (all families, d in 2, 17, 256, 3000)")
    for alg in be.algorithms:
        row = []
        for dtype in (np.float64, np.float32):
            worst = 0.0
            for fam in cases.names():
                for d in (2, 17, 256, 3000):
                    if alg == "end_collisions" and fam == "worst_end_collisions" and d > 256:
                        continue
                    x, lam = cases.make(fam, d, seed=0, dtype=dtype)
                    w = wsrbench.prox(x, lam, algorithm=alg, backend=args.backend)
                    err = np.max(np.abs(w.astype(np.float64) - oracle(x, lam))) / (np.abs(x).max() + lam)
                    worst = max(worst, err)
            row.append(worst)
        print(f"{alg:<22}{row[0]:>12.2e}{row[1]:>12.2e}")
    print()
    print(f"cascade limit (m = 1 representable): float64 d <= {cases.cascade_limit(np.float64)}, "
          f"float32 d <= {cases.cascade_limit(np.float32)}")
    print(f"{'d':>8} {'dtype':>8} {'m':>6} {'rounds':>8} {'d-1':>8} {'seconds':>8}")
    d = 64
    while d <= args.max_d:
        for dtype in (np.float64, np.float32):
            x, lam = cases.make("worst_imminent_collisions", d, dtype=dtype)
            t = time.perf_counter()
            w, info = wsrbench.prox_info(x, lam, algorithm="imminent_collisions", backend=args.backend)
            t = time.perf_counter() - t
            ok = wsrbench.certify(x, w, lam).ok
            print(f"{d:>8} {np.dtype(dtype).name:>8} {cases.cascade_mass(d, dtype):>6} {info.rounds:>8} "
                  f"{d - 1:>8} {t:>8.2f}{'' if ok else '  NOT CERTIFIED'}", flush=True)
        d = d * 4 if d * 4 <= args.max_d or d == args.max_d else args.max_d
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
