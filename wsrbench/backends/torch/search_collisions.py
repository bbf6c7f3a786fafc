"""Search collisions with torch tensor ops, every pair of every row of a batch in lockstep.

Same algorithm as ``wsrbench.backends.numpy.search_collisions`` (read that first for the math):
level by level (halves of 1, 2, 4, ... elements) each pair of resolved halves L = [lo, mid),
R = [mid, hi) creates at most one cluster [a*, b*) across mid; a* is found by a binary search
over L's cluster starts (predicate: mean of the L-cluster ending at a < min over b of
mean(y[a:b])), b* is the largest argmin of those cumulative means.

Batching: a level is a set of (n, P, ...) tensors, n rows times P pairs, so there is no Python
loop over rows or pairs; only over levels (log2 d) and binary-search steps.

Host synchronisation: none inside the loops. A binary search over at most h + 1 candidates needs
at most ceil(log2(h + 1)) = h.bit_length() steps, so every level runs exactly that many steps
with finished pairs masked out; a row's ``rounds`` counts only the steps in which one of its pairs
was still active, plus one for the final argmin, which is exactly the reference's count (the
reference stops a level when no pair of the row is active, and a finished pair stays finished).

x-sums over [a, b) come from prefix sums local to each pair (``cumsum`` over the pair's own 2h
elements), as in the reference, never from prefix sums over the whole row.
"""
from __future__ import annotations

import torch

from ...core import depth as dp
from ...core.numerics import shift_sum


def partition(xs: torch.Tensor, lam: float):
    """(is_start (n, d) bool, rounds (n,) int64, host syncs, depth (n,) int64) for sorted, centred
    float64 rows (depth: ``wsrbench.core.depth.search_level`` per level, as the reference counts it)."""
    n, d = xs.shape
    dev = xs.device
    is_start = torch.ones(n, d, dtype=torch.bool, device=dev)
    rounds = torch.zeros(n, dtype=torch.int64, device=dev)
    depth = torch.zeros(n, dtype=torch.int64, device=dev)
    inf = torch.full((), float("inf"), dtype=torch.float64, device=dev)  # no host copy
    half = 1
    while half < d:
        W = 2 * half
        P = (d - half + W - 1) // W  # pairs that have a right half: lo in range(0, d - half, W)
        L = P * W
        lo = torch.arange(P, device=dev) * W  # (P,)
        mid = lo + half
        hi = torch.clamp(lo + W, max=d)
        offs = torch.arange(half, device=dev)

        # local[r, p, j] = signed sum of xs[r] from mid_p to lo_p + j (zero padded past d):
        # anchored at mid as in the reference, so a sum over [a, b) with a <= mid <= b adds only
        # the data inside it (an outlier at lo stays out).
        seg = xs[:, :min(L, d)]
        if L > d:
            seg = torch.cat([seg, seg.new_zeros(n, L - d)], dim=1)
        seg = seg.reshape(n, P, W)
        local = torch.zeros(n, P, W + 1, dtype=torch.float64, device=dev)
        local[:, :, half + 1:] = torch.cumsum(seg[:, :, half:], dim=2)
        local[:, :, :half] = -torch.flip(torch.cumsum(torch.flip(seg[:, :, :half], dims=[2]), dim=2),
                                         dims=[2])
        lo3 = lo.reshape(1, P, 1)

        def mean_y(a, b):  # a, b: (n, P, k) int64 absolute columns, lo <= a < b <= hi
            xsum = torch.gather(local, 2, b - lo3) - torch.gather(local, 2, a - lo3)
            return (xsum + shift_sum(a, b, d, lam)) / (b - a)

        # Cluster starts of each left half packed to the left, then mid as the last candidate.
        left = (lo[:, None] + offs[None, :]).expand(n, P, half)  # (n, P, h)
        flags = torch.gather(is_start, 1, left.reshape(n, L // 2)).reshape(n, P, half)
        n_left = flags.sum(dim=2)  # (n, P)
        pos = torch.cumsum(flags, dim=2) - 1
        cand = mid.reshape(1, P, 1).expand(n, P, half + 2).clone()
        cand.scatter_(2, torch.where(flags, pos, torch.full_like(pos, half + 1)), left)
        cand = cand[:, :, :half + 1]  # column n_left holds mid (never overwritten)

        # Right ends b in (mid, hi]; positions beyond hi are masked out.
        right = (mid[:, None] + 1 + offs[None, :]).reshape(1, P, half)
        valid = right <= hi.reshape(1, P, 1)
        right = torch.minimum(right, hi.reshape(1, P, 1)).expand(n, P, half)

        def cumulative_means(a):  # a (n, P) -> (n, P, h)
            m = mean_y(a[:, :, None].expand(n, P, half), right)
            return torch.where(valid, m, inf)

        def cand_at(i):  # i (n, P) -> (n, P)
            return torch.gather(cand, 2, i[:, :, None]).squeeze(2)

        i_lo = torch.zeros_like(n_left)
        i_hi = n_left.clone()
        level_steps = torch.zeros(n, dtype=torch.int64, device=dev)
        for _ in range(half.bit_length()):  # = ceil(log2(half + 1)): enough for every pair
            active = i_lo < i_hi
            i_mid = (i_lo + i_hi + 1) // 2
            probe = torch.where(active, i_mid, torch.ones_like(i_mid))  # dummy for finished pairs
            a = cand_at(probe)
            into = mean_y(cand_at(probe - 1)[:, :, None], a[:, :, None]).squeeze(2)
            ok = into < cumulative_means(a).amin(dim=2)
            i_lo = torch.where(active & ok, i_mid, i_lo)
            i_hi = torch.where(active & ~ok, i_mid - 1, i_hi)
            level_steps += active.any(dim=1).to(torch.int64)
        rounds += level_steps
        depth += dp.search_level(half, P, 0) + level_steps * (3 + dp.lg(half))  # linear in steps

        a_star = cand_at(i_lo)
        m = cumulative_means(a_star)
        last_argmin = half - 1 - torch.argmin(torch.flip(m, dims=[2]), dim=2)  # largest argmin
        b_star = torch.gather(right, 2, last_argmin[:, :, None]).squeeze(2)
        rounds += 1

        # Everything strictly inside (a*, b*) stops being a cluster start.
        cols = (lo[:, None] + torch.arange(W, device=dev)[None, :]).reshape(1, P, W)
        inside = (cols > a_star[:, :, None]) & (cols < b_star[:, :, None])
        inside = inside.reshape(n, L)[:, :min(L, d)]
        is_start[:, :min(L, d)] &= ~inside
        half *= 2
    return is_start, rounds, 0, depth
