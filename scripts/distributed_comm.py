"""Communication of the sharded prox per rank, beside the gather-to-rank-0 baseline.

    python scripts/distributed_comm.py                          # d = 1e4..1e7, p = 2, 4
    python scripts/distributed_comm.py --sizes 1e4,1e5 --worlds 2 --dtypes float32

For each world size p, p local gloo processes (wsrbench.bench.launch) run every (d, dtype):
the vector of ``wsrbench.bench.cases.make(family, d)`` split evenly, the sharded prox
(wsrbench.distributed.prox_info) and the baseline (gather_prox_info: the whole vector through rank
0). Printed per rank: bytes sent and received (payload to / from other ranks), collective calls,
and the merge's bridge steps (rounds) and levels, against the target of
docs/design.md#crossing-blocks-values-the-way-back-the-communication-bound,

    bytes per rank <= 2 (d/p) (itemsize + 8) + O(p log d) small messages,

whose first term is the column ``target``. Wall time is not measured: the p processes share the
machine's cores. The answer is checked against the baseline's (same values to rounding).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1e4,1e5,1e6,1e7")
    ap.add_argument("--worlds", default="2,4")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--family", default="gaussian")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=1800.0)
    args = ap.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    worlds = [int(s) for s in args.worlds.split(",")]
    dtypes = args.dtypes.split(",")

    from wsrbench.bench.sharded import table

    print(f"family {args.family}, even shards, gloo on one machine; bytes are payload to/from "
          f"other ranks; target = 2 (d/p) (itemsize + 8)")
    head = (f"{'p':>2} {'d':>9} {'dtype':>7} {'rank':>4} | {'sent':>11} {'received':>11} "
            f"{'target':>11} {'max/target':>10} {'small':>7} {'coll':>5} {'rounds':>6} "
            f"{'levels':>6} | {'base sent':>11} {'base recv':>11}")
    print(head)
    print("-" * len(head))
    ok = True
    results = table(worlds, sizes, dtypes, args.family, args.seed, timeout=args.timeout)
    for (p, _, _), rows in sorted(results.items(), key=lambda kv: (kv[0][0], kv[0][1],
                                                                   dtypes.index(kv[0][2]))):
        for d, dtype, r, info, base, diff, scale in rows:
            item = np.dtype(dtype).itemsize
            target = 2 * (d / p) * (item + 8)
            small = info["bytes_sent"] - info["sent_by_kind"].get("all_to_all", 0)
            worst = max(info["bytes_sent"], info["bytes_received"]) / target
            print(f"{p:>2} {d:>9} {dtype:>7} {r:>4} | {info['bytes_sent']:>11} "
                  f"{info['bytes_received']:>11} {target:>11.0f} {worst:>10.3f} {small:>7} "
                  f"{info['collectives']:>5} {info['rounds']:>6} {info['levels']:>6} | "
                  f"{base['bytes_sent']:>11} {base['bytes_received']:>11}")
            # both answers are the prox to rounding (docs: tests/conftest.py value_tol)
            eps = float(np.finfo(np.dtype(dtype)).eps)
            tol = 2 * scale * (2 * eps + 4 * (d + 1) * float(np.finfo(np.float64).eps))
            if diff > tol:
                ok = False
                print(f"   answer differs from the baseline by {diff:.3g} > {tol:.3g}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
