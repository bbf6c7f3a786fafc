"""Sample sort of a vector sharded over ranks (docs/design.md#sample-sort).

The key of an element is (value, global index), so ties are broken by position in the
concatenation of the shards (rank order) and the global order is that of a stable sort of the
concatenation; distinct keys also keep the ranges balanced on an all-equal vector. The global
index decides the splitting only: records from rank q arrive in q's sorted order, and rank q's
indices all precede rank q+1's, so a stable sort by value of what a rank receives (concatenated
in rank order) is already the key order. Only the values travel (itemsize bytes per element).
"""
from __future__ import annotations

import torch


def samples_per_rank(p: int) -> int:
    """Regular samples each rank contributes: 4 p bounds the largest range by about (1 + 1/4) d/p
    for shards of any sizes (each sample stands for n_q / (4 p) elements of its rank)."""
    return 4 * p


def splitters(comm, vals: torch.Tensor, gidx: torch.Tensor, d: int) -> list:
    """p - 1 keys (value, global index) splitting the global order into near-equal ranges.

    One all_gather of 4p (value, index, weight) triples per rank. A splitter ``None`` means "no
    element goes past this boundary" (only when d is smaller than the number of ranks).
    """
    p, n = comm.size, vals.numel()
    s = samples_per_rank(p)
    k = min(n, s)
    buf = torch.zeros((s, 3), dtype=torch.float64, device=vals.device)
    if k:
        pos = ((2 * torch.arange(k, device=vals.device) + 1) * n) // (2 * k)
        buf[:k, 0] = vals[pos].to(torch.float64)  # float32 values are exact in float64
        buf[:k, 1] = gidx[pos].to(torch.float64)  # exact: d < 2^53
        buf[:k, 2] = n / k
    g = comm.all_gather(buf).reshape(-1, 3).cpu()
    g = g[g[:, 2] > 0]
    g = g[torch.argsort(g[:, 1], stable=True)]
    g = g[torch.argsort(g[:, 0], stable=True)]  # lexicographic (value, index)
    # Estimated global position of each sample: the weight before it plus half its own.
    est = torch.cumsum(g[:, 2], 0) - 0.5 * g[:, 2]
    out = []
    for r in range(1, p):
        j = int(torch.searchsorted(est, torch.tensor([r * d / p], dtype=torch.float64)))
        out.append(None if j >= g.shape[0] else (float(g[j, 0]), int(g[j, 1])))
    return out


def cut_points(vals: torch.Tensor, gidx: torch.Tensor, keys: list) -> list[int]:
    """For each splitter key, how many local elements have a smaller key (non-decreasing)."""
    n = vals.numel()
    cuts = []
    for key in keys:
        if key is None:
            cuts.append(n)
            continue
        v = torch.tensor([key[0]], dtype=vals.dtype, device=vals.device)  # exact: v came from x
        lo = int(torch.searchsorted(vals, v, right=False))
        hi = int(torch.searchsorted(vals, v, right=True))
        g = torch.tensor([key[1]], dtype=gidx.dtype, device=gidx.device)
        cuts.append(lo + int(torch.searchsorted(gidx[lo:hi].contiguous(), g)))
    return cuts


def sample_sort(comm, x: torch.Tensor, goff: int, d: int):
    """Sort the sharded vector: each rank ends with one contiguous range of the global order.

    Returns (xs, back) where xs is this rank's range (sorted, x's dtype and device) and ``back``
    holds what the return trip needs: the local sort order, the send/receive counts and the
    permutation of the received values.
    """
    vals, order = torch.sort(x, stable=True)
    gidx = order.to(torch.int64) + goff
    keys = splitters(comm, vals, gidx, d)
    cuts = [0] + cut_points(vals, gidx, keys) + [vals.numel()]
    send_counts = [cuts[i + 1] - cuts[i] for i in range(comm.size)]
    recv_counts = comm.all_to_all(torch.tensor(send_counts, dtype=torch.int64),
                                  [1] * comm.size, [1] * comm.size).tolist()
    got = comm.all_to_all(vals, send_counts, recv_counts)
    xs, perm = torch.sort(got, stable=True)
    return xs, {"order": order, "send": send_counts, "recv": recv_counts, "perm": perm}


def send_back(comm, w_sorted: torch.Tensor, back: dict, n: int) -> torch.Tensor:
    """The values of this rank's range, returned to the ranks (and positions) they came from."""
    w_recv = torch.empty_like(w_sorted)
    w_recv[back["perm"]] = w_sorted
    got = comm.all_to_all(w_recv, back["recv"], back["send"])
    w = torch.empty(n, dtype=w_sorted.dtype, device=got.device)
    w[back["order"].to(got.device)] = got
    return w
