"""The merge across ranks: a tree of bridge searches over the ranks' minorants (docs/design.md 15.3).

In the cumulative sum diagram of y (points (K, S_K), S_K = sum of y over [0, K)) the fit is the
slope of the greatest convex minorant; its vertices are the cluster starts. A vertex of the global
minorant is a vertex of the minorant of any range containing it, so each rank starts from its local
PAVA blocks (their starts are its vertices) and the merge only deletes vertices. Ownership: rank r
owns the starts of its blocks; the end point of a group of ranks (the next group's first point) is
a "virtual" vertex whose coordinates every rank computes from the gathered range totals.

Level l joins neighbouring groups A = ranks [ja, jb) and B = [jb, je) of 2^l ranks each, all pairs
in lockstep, exactly as one level of search_collisions (wsrbench/backends/numpy/search_collisions.py)
joins two halves: with M the first point of B, candidates a are A's vertices then M itself, and

    in(a) = slope of the A-edge ending at a (-inf for A's first vertex),
    T(a)  = min over B's vertices v beyond M (and B's end point) of slope(a, v),
    P(a)  = in(a) < T(a) holds up to the bridge's left end a* and fails after it (convexity),

so a* is found by binary search over the candidate index, and the right end b* is the largest
argmin of slope(a*, v). Vertices strictly between a* and b* are deleted: ranks of A lose a suffix,
ranks of B a prefix, ranks in between everything, so each rank's surviving vertices stay one
contiguous run of its local blocks. Strict < and the largest argmin make the merged block maximal
(equal slopes pool), as the canonical partition (docs/design.md 9.2) requires.

Communication per binary-search step: one all_reduce (SUM) that fetches the candidate and its
predecessor (4 float64 per pair, filled by their owners) and one all_reduce (MIN) of T(a), which
each rank of B evaluates over its own vertices. Coordinates are relative to the split M (positions
K - M, sums S_K - S_M), so the slopes are well scaled, as 9.4 asks of the bridge step.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist

INF = float("inf")


class RankHull:
    """This rank's piece of the minorant: its local blocks and which of their starts survive."""

    def __init__(self, o: int, starts: np.ndarray, xs: np.ndarray):
        self.o = o
        self.K = o + starts  # global positions of the local block starts
        self.lo = 0
        self.hi = starts.shape[0]
        # Sums of the centred x before / from each local position, for coordinates relative to a
        # split anywhere: prefix for splits at or before the range, suffix for splits after it.
        self.prefix = np.concatenate([[0.0], np.cumsum(xs)])
        self.suffix = np.concatenate([np.cumsum(xs[::-1])[::-1], [0.0]])

    @property
    def count(self) -> int:
        return self.hi - self.lo


def _shift(K, M, d, lam):
    """sum of v over [M, K) (negative of the sum over [K, M) when K < M), closed form."""
    K = np.asarray(K, dtype=np.int64)
    return lam * ((K - M) * (d - K - M)).astype(np.float64) / max(d - 1, 1)


def merge(comm, hull: RankHull, offs: list[int], totals: list[float], d: int, lam: float):
    """Delete the vertices that are not on the global minorant. Returns (levels, steps).

    offs: p + 1 global range starts (offs[p] = d); totals: each range's sum of the centred x.
    """
    p = comm.size
    totals = np.asarray(totals, dtype=np.float64)
    levels = steps = 0
    g = 1
    while g < p:
        pairs = [(ja, ja + g, min(ja + 2 * g, p)) for ja in range(0, p - g, 2 * g)]
        counts = comm.all_gather(torch.tensor([hull.count], dtype=torch.int64)).reshape(-1).tolist()
        steps += _level(comm, hull, pairs, counts, offs, totals, d, lam)
        levels += 1
        g *= 2
    return levels, steps


def _span(totals, q0, q1):
    """Sum of the range totals of ranks [q0, q1), in rank order (float64)."""
    return float(np.sum(totals[q0:q1])) if q1 > q0 else 0.0


def _level(comm, hull, pairs, counts, offs, totals, d, lam):
    r = comm.rank
    npairs = len(pairs)
    mine, role = None, None
    for t, (ja, jb, je) in enumerate(pairs):
        if ja <= r < je:
            mine, role = t, ("A" if r < jb else "B")
    nA = [sum(counts[ja:jb]) for ja, jb, _ in pairs]
    M = [offs[jb] for _, jb, _ in pairs]

    # My surviving vertices in the coordinates of my pair's split.
    Kv = Sv = None
    if mine is not None:
        ja, jb, je = pairs[mine]
        k = hull.K[hull.lo:hull.hi] - hull.o
        if role == "B":
            X = _span(totals, jb, r) + hull.prefix[k]
        else:
            X = -(hull.suffix[k] + _span(totals, r + 1, jb))
        Kv = hull.K[hull.lo:hull.hi]
        Sv = X + _shift(Kv, M[mine], d, lam)
        pre = sum(counts[ja:r])  # index of my first surviving vertex among A's candidates
    # B's candidates for T: its vertices beyond M, and its end point (added by B's last rank).
    Kt = St = None
    if role == "B":
        ja, jb, je = pairs[mine]
        keep = Kv > M[mine]
        Kt, St = Kv[keep], Sv[keep]
        if r == je - 1 and offs[je] > M[mine]:
            e = offs[je]
            Se = _span(totals, jb, je) + float(_shift(e, M[mine], d, lam))
            Kt, St = np.append(Kt, e), np.append(St, Se)

    def fetch(indices):
        """Coordinates (K, S) of A-candidate indices, one list per slot; M itself is (M, 0)."""
        buf = np.zeros((npairs, 2 * len(indices)))
        if role == "A":
            for slot, idx in enumerate(indices):
                i = idx[mine]
                if i is not None and 0 <= i - pre < hull.count:
                    buf[mine, 2 * slot] = Kv[i - pre]
                    buf[mine, 2 * slot + 1] = Sv[i - pre]
        got = comm.all_reduce(torch.from_numpy(buf)).cpu().numpy()
        out = []
        for slot, idx in enumerate(indices):
            pts = []
            for t in range(npairs):
                if idx[t] is None:
                    pts.append(None)
                elif idx[t] == nA[t]:
                    pts.append((float(M[t]), 0.0))
                else:
                    pts.append((got[t, 2 * slot], got[t, 2 * slot + 1]))
            out.append(pts)
        return out

    def tangent_min(points):
        """min over B's candidates of slope(a, v) for each pair's point a (MIN all_reduce)."""
        buf = np.full(npairs, INF)
        if role == "B" and points[mine] is not None and Kt.shape[0]:
            Ka, Sa = points[mine]
            buf[mine] = np.min((St - Sa) / (Kt - Ka))
        return comm.all_reduce(torch.from_numpy(buf), op=dist.ReduceOp.MIN).cpu().numpy()

    i_lo = [0] * npairs
    i_hi = list(nA)
    steps = 0
    while any(lo < hi for lo, hi in zip(i_lo, i_hi)):
        i_mid = [(lo + hi + 1) // 2 if lo < hi else None for lo, hi in zip(i_lo, i_hi)]
        cand, prev = fetch([i_mid, [None if i is None else i - 1 for i in i_mid]])
        T = tangent_min(cand)
        for t in range(npairs):
            if i_mid[t] is None:
                continue
            (Ka, Sa), (Kp, Sp) = cand[t], prev[t]
            if (Sa - Sp) / (Ka - Kp) < T[t]:
                i_lo[t] = i_mid[t]
            else:
                i_hi[t] = i_mid[t] - 1
        steps += 1

    merging = [i_lo[t] < nA[t] for t in range(npairs)]
    if not any(merging):
        return steps
    # The bridge: a* = the last candidate with P true; b* = the largest argmin of slope(a*, v).
    (a_star,) = fetch([[i_lo[t] if merging[t] else None for t in range(npairs)]])
    T = tangent_min(a_star)
    buf = np.full(npairs, -1.0)
    if role == "B" and merging[mine] and Kt.shape[0]:
        Ka, Sa = a_star[mine]
        at_min = (St - Sa) / (Kt - Ka) == T[mine]
        if at_min.any():
            buf[mine] = float(Kt[at_min].max())
    b_star = comm.all_reduce(torch.from_numpy(buf), op=dist.ReduceOp.MAX).cpu().numpy()
    steps += 1

    if mine is not None and merging[mine]:
        if role == "A":
            i_star = i_lo[mine]
            if i_star < pre:
                hull.hi = hull.lo  # every vertex of mine lies between a* and M
            elif i_star < pre + hull.count:
                hull.hi = hull.lo + (i_star - pre) + 1
        else:
            hull.lo += int(np.count_nonzero(Kv < b_star[mine]))
    return steps
