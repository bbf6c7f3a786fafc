"""Code that runs inside the gloo processes of tests/test_distributed.py (kept free of pytest and
hypothesis so that each spawned process imports only numpy, torch and wsrbench.distributed)."""
from __future__ import annotations

import numpy as np


def shard_of(case, rank, world):
    """This rank's shard and parameters, with the case's deliberate fault (if any) applied."""
    b = case["bounds"]
    x = case["x"][b[rank]:b[rank + 1]]
    lam, l1, rho = case["lam"], case["l1"], case["rho"]
    bad = case.get("bad")
    last = world - 1
    if bad == "dtype" and rank == last:
        x = x.astype(np.float32)
    elif bad == "lam" and rank == last:
        lam = 2.0 * lam + 1.0
    elif bad == "nan" and rank == last:
        x = x.copy()
        x[x.shape[0] // 2] = np.nan
    elif bad == "negative_lam" and rank == 0:
        lam = -1.0
    elif bad == "ndim" and rank == last:
        x = x.reshape(1, -1)
    elif bad == "float16_tensor" and rank == last:
        import torch
        x = torch.zeros(x.shape[0], dtype=torch.float16)
    if case.get("torch") and not bad:
        import torch
        x = torch.from_numpy(np.array(x))
    return x, lam, l1, rho


def run_cases(cases):
    """Every case on this rank, in order: ("ok", w, info dict) or ("error", type name, message).

    A case that fails on some ranks only would leave the others waiting in its collectives; the
    next case's collectives would then time out, so the launcher reports it instead of hanging.
    """
    import torch
    import torch.distributed as dist

    from wsrbench import distributed

    rank, world = dist.get_rank(), dist.get_world_size()
    out = []
    for case in cases:
        if case.get("measure"):  # the benchmark's measurement (scripts, asv), at a small size
            from wsrbench.bench import sharded as benchmark
            out.append(("measure", benchmark.measure(*case["measure"])))
            continue
        if case.get("subgroup"):  # ranks 1..p-1 only: the vector is their shards in group order
            members = list(range(1, world))
            sub = dist.new_group(members)  # every rank takes part in creating it
            if rank not in members:
                out.append(("ok", None, None))
                continue
            x, lam, l1, rho = shard_of(case, members.index(rank), world - 1)
            w, info = distributed.prox_info(x, lam, l1=l1, rho=rho, group=sub)
            out.append(("ok", w, dict(vars(info), kind="numpy")))
            continue
        x, lam, l1, rho = shard_of(case, rank, world)
        fn = distributed.gather_prox_info if case.get("gather") else distributed.prox_info
        kw = {"backend": "numpy"} if case.get("gather") else {}
        before = x.clone() if isinstance(x, torch.Tensor) else np.array(x, copy=True)
        try:
            w, info = fn(x, lam, l1=l1, rho=rho, **kw)
        except (TypeError, ValueError) as exc:
            out.append(("error", type(exc).__name__, str(exc)))
            continue
        kind = "torch" if isinstance(w, torch.Tensor) else "numpy"
        w = w.numpy() if kind == "torch" else w
        unchanged = bool((x == before).all()) if isinstance(x, torch.Tensor) else \
            np.array_equal(x, before)
        out.append(("ok", w, dict(vars(info), kind=kind, input_unchanged=unchanged)))
    return out
