"""Counters of the sharded prox and of the gather baseline, shared by scripts/distributed_comm.py
and the asv suite benchmarks/bench_distributed.py
(docs/design.md#crossing-blocks-values-the-way-back-the-communication-bound)."""
from __future__ import annotations

import numpy as np


def measure(sizes, dtypes, family="gaussian", seed=0):
    """Run in every rank (wsrbench.bench.launch.run): for each d and dtype, the vector of
    ``wsrbench.bench.cases.make(family, d)`` split evenly over the ranks, through the sharded prox and
    through the gather baseline. Returns [(d, dtype, rank, info, baseline info, max |w - w_base|,
    scale)] with the infos as dicts; scale = max|x| + lam bounds the values (for tolerances)."""
    import torch.distributed as dist

    from ..distributed import gather_prox_info, prox_info
    from . import cases

    r, p = dist.get_rank(), dist.get_world_size()
    rows = []
    for d in sizes:
        for dtype in dtypes:
            x, lam = cases.make(family, int(d), seed=seed, dtype=dtype)
            shard = x[(d * r) // p: (d * (r + 1)) // p]
            w, info = prox_info(shard, lam)
            wb, base = gather_prox_info(shard, lam)
            diff = float(np.max(np.abs(w.astype(np.float64) - wb), initial=0.0))
            rows.append((int(d), str(np.dtype(dtype)), r, vars(info), vars(base), diff,
                         float(np.max(np.abs(x), initial=0.0)) + lam))
    return rows


def table(worlds, sizes, dtypes, family="gaussian", seed=0, timeout=1800.0):
    """{(p, d, dtype): [row of rank 0, ..., row of rank p-1]} over the world sizes (one group of
    local gloo processes per p)."""
    from . import launch

    out = {}
    for p in worlds:
        per_rank = launch.run(measure, p, list(sizes), list(dtypes), family, seed,
                              timeout=timeout, collective_timeout=timeout)
        for rows in per_rank:
            for row in rows:
                out.setdefault((p, row[0], row[1]), []).append(row)
    for rows in out.values():
        rows.sort(key=lambda row: row[2])
    return out


def summarize(tab):
    """{(p, d, dtype): per-call figures}: the largest over the ranks of bytes sent and received,
    small-message bytes (everything but the all-to-alls) and collectives; the merge rounds (the same
    on every rank); and the baseline's rank-0 traffic (the larger direction)."""
    out = {}
    for key, rows in tab.items():
        out[key] = {
            "sent": max(row[3]["bytes_sent"] for row in rows),
            "received": max(row[3]["bytes_received"] for row in rows),
            "small": max(row[3]["bytes_sent"] - row[3]["sent_by_kind"].get("all_to_all", 0)
                         for row in rows),
            "collectives": max(row[3]["collectives"] for row in rows),
            "rounds": rows[0][3]["rounds"],
            "baseline_rank0": max(rows[0][4]["bytes_sent"], rows[0][4]["bytes_received"]),
        }
    return out
