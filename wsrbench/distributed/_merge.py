"""The merge across ranks: a tree of bridge searches over the ranks' minorants
(docs/design.md#the-merge-across-ranks).

In the cumulative sum diagram of y (points (K, S_K), S_K = sum of y over [0, K)) the fit is the
slope of the greatest convex minorant; its vertices are the cluster starts. A vertex of the global
minorant is a vertex of the minorant of any range containing it, so each rank starts from its local
PAVA blocks (their starts are its vertices) and the merge only deletes vertices.

Ownership: rank r owns the starts of its surviving blocks, a run [lo, hi) of its local blocks. A
group of ranks G = [j0, j1) has the lower hull "G's owned vertices, then G's end point offs[j1]";
the end point is the next group's first point, owned there, and every rank computes its
coordinates from the gathered range totals (a "virtual" vertex).

Level l joins neighbouring groups A = [ja, jb) and B = [jb, je) of 2^l ranks, all pairs in
lockstep. The hull of A u B is A's owned vertices up to the bridge's left end, the bridge, and B's
hull from its right end (the lower hulls of two chains separated in x), where the left hull is A's
owned vertices (all left of M = offs[jb]) and the right hull is B's owned vertices (the first is M)
then B's end point: the split between them is strict, as wsrbench.core.bridge requires. The bridge is
found by wsrbench.core.bridge.bridge_step, the simultaneous binary search of
docs/design.md#the-bridge-step: each
step probes vertex i of A and j of B, and fetches the six vertices the step
reads (l_{i-1}, l_i, l_{i+1}, r_{j-1}, r_j, r_{j+1}) in one all_gather of 6 float64 per rank
(a rank holds vertices of one side of one pair only, so at most three of them); every rank then
takes the same decision for every pair. At most floor(log2 |A|) +
floor(log2 |B|) steps per level. Afterwards ranks of A keep a prefix of their run, ranks of B a
suffix, so each rank's surviving vertices stay one contiguous run of its local blocks. Collinear
ties go to the outermost vertices (smallest i, largest j): merged blocks are maximal, as the
canonical partition (docs/design.md#the-canonical-partition) requires.

Coordinates are relative to the split M (x = K - M, S_K - S_M), so the slopes are well scaled, as
9.4 asks.
"""
from __future__ import annotations

import numpy as np
import torch

from ..core.bridge import bridge_probe, bridge_step
from ..core.numerics import shift_sum


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
    """sum of v over [M, K) (minus the sum over [K, M) when K < M): numerics.shift_sum, signed."""
    return shift_sum(M, K, d, lam)


def _span(totals, q0, q1):
    """Sum of the range totals of ranks [q0, q1), in rank order (float64)."""
    return float(np.sum(totals[q0:q1])) if q1 > q0 else 0.0


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
        steps += _level(comm, hull, pairs, offs, totals, d, lam)
        levels += 1
        g *= 2
    return levels, steps


def _coords(hull, r, pair, offs, totals, d, lam):
    """(x, S) of my surviving vertices relative to my pair's split M = offs[jb]."""
    _, jb, _ = pair
    M = offs[jb]
    k = hull.K[hull.lo:hull.hi] - hull.o
    if r >= jb:
        X = _span(totals, jb, r) + hull.prefix[k]
    else:
        X = -(hull.suffix[k] + _span(totals, r + 1, jb))
    Kv = hull.K[hull.lo:hull.hi]
    return (Kv - M).astype(np.float64), X + _shift(Kv, M, d, lam)


def _owner(counts, q0, q1, idx):
    """(rank, index within its run) of vertex ``idx`` of the concatenated runs of ranks [q0, q1)."""
    for q in range(q0, q1):
        if idx < counts[q]:
            return q, idx
        idx -= counts[q]
    return None, None


def _level(comm, hull, pairs, offs, totals, d, lam):
    """One level: every pair's bridge, in lockstep; returns the number of steps taken.

    One all_gather of (count, x, S of my last vertex) per rank, then one all_gather of 6 numbers
    per rank and step: the (x, S) of up to three probed vertices that the rank owns.
    """
    r = comm.rank
    npairs = len(pairs)
    mine = next((t for t, (ja, _, je) in enumerate(pairs) if ja <= r < je), None)
    xv = Sv = None
    if mine is not None:
        xv, Sv = _coords(hull, r, pairs[mine], offs, totals, d, lam)
    row = torch.zeros(3, dtype=torch.float64)
    row[0] = hull.count
    if mine is not None and hull.count:
        row[1], row[2] = float(xv[-1]), float(Sv[-1])
    table = comm.all_gather(row).cpu().numpy()
    counts = table[:, 0].astype(np.int64).tolist()
    n_left = [sum(counts[ja:jb]) for ja, jb, _ in pairs]
    n_right = [sum(counts[jb:je]) for _, jb, je in pairs]  # owned; the end point comes on top
    M = [offs[jb] for _, jb, _ in pairs]
    # the virtual last vertex of each right hull: B's end point, (x, S) relative to M
    ends = [(float(offs[je] - offs[jb]),
             _span(totals, jb, je) + float(_shift(offs[je], offs[jb], d, lam)))
            for _, jb, je in pairs]
    # a pair merges when both sides hold points: A some owned vertex, B some element
    active = [n_left[t] > 0 and offs[pairs[t][2]] > M[t] for t in range(npairs)]
    # the split: midway between A's last vertex (on the last rank of A holding one) and M (x = 0)
    split = []
    for ja, jb, _ in pairs:
        q = max((q for q in range(ja, jb) if counts[q]), default=None)
        split.append(0.5 * table[q, 1] if q is not None else -0.5)
    role = pre = None
    if mine is not None:
        ja, jb, je = pairs[mine]
        role = "A" if r < jb else "B"
        pre = sum(counts[ja:r]) if role == "A" else sum(counts[jb:r])

    ranges = [[0, n_left[t] - 1, 0, n_right[t]] for t in range(npairs)]  # j = n_right: end point
    steps = 0
    while True:
        todo = [t for t in range(npairs)
                if active[t] and (ranges[t][0] < ranges[t][1] or ranges[t][2] < ranges[t][3])]
        if not todo:
            break
        want = []  # per pair: A-indices (i-1, i, i+1), B-indices (j-1, j, j+1), clamped
        for t in range(npairs):
            if t not in todo:
                want.append(None)
                continue
            il, ih, jl, jh = ranges[t]
            i, j = bridge_probe(il, ih, jl, jh)
            want.append(([max(i - 1, 0), i, min(i + 1, n_left[t] - 1)],
                         [max(j - 1, 0), j, min(j + 1, n_right[t])]))
        buf = torch.zeros(6, dtype=torch.float64)
        if mine is not None and want[mine] is not None:
            for s, idx in enumerate(want[mine][0 if role == "A" else 1]):
                if 0 <= idx - pre < hull.count:
                    buf[2 * s], buf[2 * s + 1] = float(xv[idx - pre]), float(Sv[idx - pre])
        got = comm.all_gather(buf).cpu().numpy()
        for t in todo:
            ja, jb, je = pairs[t]
            v = []
            for side, (q0, q1) in enumerate(((ja, jb), (jb, je))):
                for s, idx in enumerate(want[t][side]):
                    if side == 1 and idx == n_right[t]:  # B's end point: known to every rank
                        v += ends[t]
                    else:
                        q, _ = _owner(counts, q0, q1, idx)
                        v += [got[q, 2 * s], got[q, 2 * s + 1]]
            ranges[t] = list(bridge_step(*ranges[t], *v, split[t]))
        steps += 1

    if mine is not None and active[mine]:
        i_star, _, j_star, _ = ranges[mine]
        if role == "A":
            keep = min(max(i_star - pre + 1, 0), hull.count)
            hull.hi = hull.lo + keep
        else:
            hull.lo += min(max(j_star - pre, 0), hull.count)
    return steps
