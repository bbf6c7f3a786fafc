"""Hull bridges with torch tensor ops: every pair of every row of a batch in lockstep.

Same algorithm, partition, rounds and depth as ``wsrbench.backends.numpy.hull_bridges`` (read that
first, and docs/design.md#hull_bridges): level by level, each pair of neighbouring segments merges its two
lower hulls of the cumulative-sum diagram through their bridge, found by the simultaneous binary
search of ``wsrbench.core.bridge.bridge_step``, here written once more as elementwise tensor ops
(``bridge_step_tensor``: the same subtractions, divisions and comparisons, so the same decisions).

Batching: a level is a set of (n, P) tensors (rows times pairs) and (n, P, 2h) tensors for the
local sums and the merge, so the only Python loops are over levels (log2 d) and bridge steps.

Host synchronisation: none inside the partition. A bridge between hulls of at most h + 1 and h
vertices takes at most floor(log2(h + 1)) + floor(log2 h) steps, so every level runs that many with
finished pairs left unchanged (a step on collapsed ranges is masked out). A row's rounds and depth
use the largest step bound over its own pairs, as the reference does, computed on the device.
"""
from __future__ import annotations

import torch

from ...core import depth as dp
from ...core.numerics import shift_sum


def bridge_step_tensor(il, ih, jl, jh, xl0, sl0, xl1, sl1, xl2, sl2, xr0, sr0, xr1, sr1, xr2, sr2,
                       split):
    """``wsrbench.core.bridge.bridge_step`` elementwise; entries with il == ih and jl == jh unchanged."""
    i = (il + ih) // 2
    j = (jl + jh) // 2
    active = (il < ih) | (jl < jh)
    m = (sr1 - sl1) / (xr1 - xl1)
    # A neighbour outside the range may be the probe itself (0/0): masked by the range test.
    go_left = (i > il) & ((sl1 - sl0) / (xl1 - xl0) >= m)
    go_right = (j < jh) & ((sr2 - sr1) / (xr2 - xr1) <= m)
    first = go_left | go_right
    p = (sl2 - sl1) / (xl2 - xl1)
    q = (sr1 - sr0) / (xr1 - xr0)
    left_below = (i < ih) & (p < m)
    right_below = (j > jl) & (q > m)
    t = (q - m) / (q - p)
    u = (split - xl1) / (xr1 - xl1)
    # Without a first-stage move: tangent/tangent -> done; one side below -> that side moves;
    # both below -> compare where the edge lines meet with the split.
    move_right = right_below & (~left_below | (t > u))  # jh = j - 1
    move_left = left_below & ~move_right  # il = i + 1
    done = ~left_below & ~right_below
    second = active & ~first
    new_il = torch.where(second & done, i, torch.where(second & move_left, i + 1, il))
    new_ih = torch.where(active & go_left, i - 1, torch.where(second & done, i, ih))
    new_jl = torch.where(active & go_right, j + 1, torch.where(second & done, j, jl))
    new_jh = torch.where(second & done, j, torch.where(second & move_right, j - 1, jh))
    return new_il, new_ih, new_jl, new_jh


def partition(xs: torch.Tensor, lam: float):
    """(is_start (n, d) bool, rounds (n,), host syncs, depth (n,)) for sorted, centred float64 rows."""
    n, d = xs.shape
    dev = xs.device
    cols = torch.arange(d, device=dev)
    hull = cols.expand(n, d).clone()  # segment [k, k+1) stores vertex P_k
    count = torch.ones(n, d, dtype=torch.int64, device=dev)  # read at segment starts only
    F, G = xs, xs  # x sums local to the current segments (see the reference's combine)
    rounds = torch.zeros(n, dtype=torch.int64, device=dev)
    depth = torch.zeros(n, dtype=torch.int64, device=dev)
    half = 1
    while half < d:
        W = 2 * half
        P = (d - half + W - 1) // W  # pairs that have a right half
        L = P * W
        lo = (torch.arange(P, device=dev) * W).reshape(1, P)
        mid = lo + half
        hi = torch.clamp(lo + W, max=d)

        cnt_l = torch.gather(count, 1, lo.expand(n, P))
        cnt_r = torch.gather(count, 1, mid.expand(n, P))
        a, b = cnt_l + 1, cnt_r

        def left_vertex(t):  # hull[lo + t] for t < cnt_l, else mid
            at = torch.clamp(lo + t, max=d - 1)
            return torch.where(t < cnt_l, torch.gather(hull, 1, at), mid.expand(n, P))

        def right_vertex(t):  # hull[mid + 1 + t] for t < cnt_r - 1, else hi
            at = torch.clamp(mid + 1 + t, max=d - 1)
            return torch.where(t < cnt_r - 1, torch.gather(hull, 1, at), hi.expand(n, P))

        def point(k):  # (x, S) of point k local to mid: the reference's local_point
            mid_e = mid.expand(n, P)
            f = torch.gather(F, 1, torch.clamp(k - 1, min=0))
            g = torch.gather(G, 1, torch.clamp(k, max=d - 1))
            s_right = f + shift_sum(mid_e, k, d, lam)
            s_left = -(g + shift_sum(k, mid_e, d, lam))
            s = torch.where(k > mid_e, s_right, torch.where(k == mid_e, torch.zeros_like(f), s_left))
            return (k - mid_e).to(torch.float64), s

        split = 0.5 * (0.0 + (right_vertex(torch.zeros_like(b)) - mid).to(torch.float64))
        il, ih = torch.zeros_like(a), a - 1
        jl, jh = torch.zeros_like(b), b - 1
        zero = torch.zeros_like(a)
        # Already convex at the junction (wsrbench.core.bridge.junction_is_bridge): no search.
        xa, sa = point(left_vertex(torch.maximum(a - 2, zero)))
        xm, sm = point(mid.expand(n, P))
        xb0, sb0 = point(right_vertex(zero))
        xb1, sb1 = point(right_vertex(torch.minimum(b - 1, torch.ones_like(b))))
        m0 = (sb0 - sm) / (xb0 - xm)
        trivial = (~((a > 1) & ((sm - sa) / (xm - xa) >= m0))
                   & ~((b > 1) & ((sb1 - sb0) / (xb1 - xb0) <= m0)))
        il = torch.where(trivial, a - 1, il)
        jh = torch.where(trivial, zero, jh)
        for _ in range(dp.bridge_bound(half + 1, min(half, d - half))):
            i, j = (il + ih) // 2, (jl + jh) // 2
            xl0, sl0 = point(left_vertex(torch.maximum(i - 1, zero)))
            xl1, sl1 = point(left_vertex(i))
            xl2, sl2 = point(left_vertex(torch.minimum(i + 1, a - 1)))
            xr0, sr0 = point(right_vertex(torch.maximum(j - 1, zero)))
            xr1, sr1 = point(right_vertex(j))
            xr2, sr2 = point(right_vertex(torch.minimum(j + 1, b - 1)))
            il, ih, jl, jh = bridge_step_tensor(il, ih, jl, jh, xl0, sl0, xl1, sl1, xl2, sl2,
                                                xr0, sr0, xr1, sr1, xr2, sr2, split)
        i, j = il, jl

        # Merge: position t of the pair gets left[t] for t <= i, then hull_r[j + 1 + (t - i - 1)].
        t = torch.arange(W, device=dev).reshape(1, 1, W)
        left_t = torch.where(t < cnt_l[:, :, None],
                             torch.gather(hull, 1, torch.clamp(lo[:, :, None] + t, max=d - 1)
                                          .expand(n, P, W).reshape(n, L)).reshape(n, P, W),
                             mid[:, :, None].expand(n, P, W))
        src = torch.clamp(mid[:, :, None] + j[:, :, None] + t - i[:, :, None], max=d - 1)
        right_t = torch.gather(hull, 1, src.reshape(n, L)).reshape(n, P, W)
        merged = torch.where(t <= i[:, :, None], left_t, right_t).reshape(n, L)[:, :min(L, d)]
        hull = hull.clone()
        hull[:, :min(L, d)] = merged
        count = count.clone()
        count.scatter_(1, lo.expand(n, P), i + cnt_r - j)

        # Join the sums local to each half (the reference's combine).
        kmid = (cols // W) * W + half
        paired = kmid < d
        kmid_c = torch.clamp(kmid, max=d - 1).expand(n, d)
        F = torch.where(paired & (cols >= kmid), torch.gather(F, 1, kmid_c - 1) + F, F)
        G = torch.where(paired & (cols < kmid), G + torch.gather(G, 1, kmid_c), G)

        bound = (_floor_log2(a) + _floor_log2(b)).amax(dim=1)  # wsrbench.core.depth.bridge_bound
        rounds += bound
        depth += bound + dp.hull_level(half, P, 0)
        half *= 2
    nblk = count[:, 0]
    # Mark the stored vertices of the whole row (the first nblk entries) without a host sync.
    flat = torch.zeros(n * d, dtype=torch.int64, device=dev)
    valid = (cols[None, :] < nblk[:, None]).to(torch.int64)
    flat.index_add_(0, (torch.arange(n, device=dev)[:, None] * d + hull).reshape(-1),
                    valid.reshape(-1))
    return flat.reshape(n, d) > 0, rounds, 0, depth


def _floor_log2(a: torch.Tensor) -> torch.Tensor:
    """floor(log2 a) for integer tensors a >= 1, exactly (a count of powers of two <= a)."""
    out = torch.zeros_like(a)
    for s in range(1, 63):
        if (1 << s) > 2 ** 40:
            break
        out += (a >= (1 << s)).to(a.dtype)
    return out
