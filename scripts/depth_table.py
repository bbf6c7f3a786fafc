"""Parallel depth of every algorithm on every family, d = 1e2 ... 1e6 (docs/design.md#parallel-depth).

    PYTHONPATH=. python scripts/depth_table.py                 # markdown tables on stdout
    PYTHONPATH=. python scripts/depth_table.py --sizes 100,1000 --backend numpy

Depth is counted by the backend as the NumPy reference counts it (the registry-parametrised tests
check that the backends agree), so the default backend is numba, for speed. A cell whose work is
Theta(d^2) (end_collisions with many clusters, imminent_collisions on its cascade) is counted by
other means (below) when the previous size took more than --skip-after seconds: a tenfold d would
take a hundredfold time.

Two Theta(d^2) cells are still counted, by other means, and marked:
  (r)  imminent_collisions: an event-driven replay of its rounds (``imminent_replay``): the same
       block sums, means and comparisons in the same order, but each round only revisits the
       boundaries next to blocks that merged, so O(d) work on the cascade. The script checks that
       it equals the backend's depth at every size where both ran.
  (p)  end_collisions: its depth is a function of its partition alone (wsrbench.core.depth.end_cluster
       per cluster); counted on the NumPy pava partition, which is the same canonical partition
       except at ties at rounding level.

Printed: one table per family (depth per algorithm and d), then per algorithm the fitted exponent
p of depth ~ (log2 d)^p and q of depth ~ d^q (least squares on logs over the measured sizes), and
for hull_bridges the constant c = max depth / log2(d)^2.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

import wsrbench
from wsrbench import cases
from wsrbench.core import depth as dp

ALGORITHMS = ("pava", "end_collisions", "imminent_collisions", "search_collisions", "hull_bridges")
QUADRATIC = ("end_collisions", "imminent_collisions")  # Theta(d^2) work on some families


def _replay_kernel():
    from numba import njit

    from wsrbench.backends.numba._depth import imminent_round
    from wsrbench.backends.numba.numerics import block_mean, shift_unit

    @njit(cache=True)
    def replay(xs, lam):
        """(rounds, clusters, depth) of imminent_collisions, event-driven (see the docstring)."""
        d = xs.shape[0]
        nxt = np.arange(1, d + 1)  # block ids are their start indices; d ends the list
        prv = np.arange(-1, d - 1)
        sums = xs.copy()
        means = np.empty(d)
        c = shift_unit(lam, d)
        for k in range(d):
            means[k] = block_mean(sums[k], k, k + 1, d, c)
        viol = np.zeros(d, dtype=np.bool_)  # viol[a]: the boundary after block a violates
        cand = np.empty(2 * d, dtype=np.int64)
        nc = 0
        for k in range(d - 1):
            if means[k] >= means[k + 1]:
                viol[k] = True
                cand[nc] = k
                nc += 1
        nblk = d
        rounds = 0
        depth = 0
        heads = np.empty(d, dtype=np.int64)
        while nblk > 1:
            if nc == 0:
                depth += imminent_round(nblk, False)
                break
            depth += imminent_round(nblk, True)
            rounds += 1
            nh = 0
            for t in range(nc):  # run heads: a violating boundary with none just before it
                a = cand[t]
                if viol[a] and (prv[a] < 0 or not viol[prv[a]]):
                    heads[nh] = a
                    nh += 1
            for t in range(nh):
                a = heads[t]
                s = sums[a]
                b = a
                while viol[b]:  # the run a, nxt[a], ...: sums left to right (np.add.reduceat)
                    viol[b] = False
                    b = nxt[b]
                    s += sums[b]
                    nblk -= 1
                end = nxt[b]
                sums[a] = s
                nxt[a] = end
                if end < d:
                    prv[end] = a
                means[a] = block_mean(s, a, end, d, c)
            nc = 0
            for t in range(nh):  # only boundaries next to a merged block can change
                a = heads[t]
                for left in (prv[a], a):
                    if left >= 0 and nxt[left] < d and not viol[left]:
                        if means[left] >= means[nxt[left]]:
                            viol[left] = True
                            cand[nc] = left
                            nc += 1
        return rounds, nblk, depth

    return replay


_REPLAY = None


def imminent_replay(x, lam):
    """imminent_collisions' (rounds, clusters, depth) on x by the event-driven replay."""
    global _REPLAY
    if _REPLAY is None:
        _REPLAY = _replay_kernel()
    d = x.shape[0]
    xs = np.sort(np.asarray(x, dtype=np.float64))
    xs = xs - xs[d // 2]
    if d <= 1:
        return 0, d, 0
    return _REPLAY(xs, float(lam))


def end_depth_from_pava(x, lam):
    """end_collisions' depth from the (canonical) partition of the NumPy pava."""
    from wsrbench.backends.numpy import pava

    d = x.shape[0]
    xs = np.sort(np.asarray(x, dtype=np.float64))
    xs = xs - xs[d // 2]
    starts = pava.partition(xs, lam)[0]
    return sum(dp.end_cluster(d - int(a)) for a in starts)


def fit(ds, depths, transform):
    """Slope of log(depth) against log(transform(d)) (least squares)."""
    if len(ds) < 2:
        return float("nan")
    u = np.log([transform(d) for d in ds])
    v = np.log(depths)
    return float(np.polyfit(u, v, 1)[0])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="100,1000,10000,100000,1000000")
    ap.add_argument("--families", default=",".join(cases.names()))
    ap.add_argument("--algorithms", default=",".join(ALGORITHMS))
    ap.add_argument("--backend", default="numba")
    ap.add_argument("--skip-after", type=float, default=2.0,
                    help="seconds: skip larger sizes of a cell once one size took longer")
    args = ap.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    algs = args.algorithms.split(",")
    fams = args.families.split(",")
    for alg in algs:  # compile (or load) the kernels first: the skip rule times the work only
        wsrbench.prox_info(np.arange(5.0), 0.5, algorithm=alg, backend=args.backend)
    table = {}  # (family, alg) -> {d: depth}
    for fam in fams:
        print(f"\n### {fam}\n")
        print("| algorithm | " + " | ".join(f"d = {d:.0e}" for d in sizes) + " |")
        print("| --- | " + " | ".join("---:" for _ in sizes) + " |")
        for alg in algs:
            row, slow = {}, False
            cells = []
            for d in sizes:
                x, lam = cases.make(fam, d)
                if slow and alg == "imminent_collisions":
                    row[d] = imminent_replay(x, lam)[2]
                    cells.append(f"{row[d]} (r)")
                    continue
                if slow and alg == "end_collisions":
                    row[d] = end_depth_from_pava(x, lam)
                    cells.append(f"{row[d]} (p)")
                    continue
                if slow:
                    cells.append("skipped (Theta(d^2) work)")
                    continue
                t = time.perf_counter()
                _, info = wsrbench.prox_info(x, lam, algorithm=alg, backend=args.backend)
                # only the algorithms with Theta(d^2) work are replaced at larger sizes
                slow = (alg in QUADRATIC and time.perf_counter() - t > args.skip_after)
                row[d] = info.depth
                cells.append(str(info.depth))
                if alg == "imminent_collisions":  # the replay must agree wherever both run
                    rep = imminent_replay(x, lam)
                    if rep != (info.rounds, info.clusters, info.depth):
                        raise SystemExit(f"replay {rep} != backend {info} on {fam} d={d}")
            table[(fam, alg)] = row
            print(f"| {alg} | " + " | ".join(cells) + " |", flush=True)

    print("\n### fitted exponents (depth ~ (log2 d)^p, depth ~ d^q), per family\n")
    print("| family | " + " | ".join(f"{a} p / q" for a in algs) + " |")
    print("| --- | " + " | ".join("---:" for _ in algs) + " |")
    for fam in fams:
        cells = []
        for alg in algs:
            row = table[(fam, alg)]
            ds = [d for d in sizes if d in row and row[d] > 0]
            dep = [row[d] for d in ds]
            cells.append(f"{fit(ds, dep, math.log2):.2f} / {fit(ds, dep, float):.2f}")
        print(f"| {fam} | " + " | ".join(cells) + " |")

    if "hull_bridges" in algs:
        c = max(v / math.log2(d) ** 2 for (f, a), row in table.items() if a == "hull_bridges"
                for d, v in row.items())
        print(f"\nhull_bridges: depth <= c log2(d)^2 with c = {c:.3f} (max over the cells above)")
        if "search_collisions" in algs:
            worse = [(f, d) for (f, a), row in table.items() if a == "hull_bridges"
                     for d, v in row.items() if d >= 1000 and (f, "search_collisions") in table
                     and d in table[(f, "search_collisions")]
                     and v >= table[(f, "search_collisions")][d]]
            print("hull_bridges depth < search_collisions depth at every d >= 1e3: "
                  + ("yes" if not worse else f"no, at {worse}"))


if __name__ == "__main__":
    main()
