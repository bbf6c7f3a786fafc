"""Imminent collisions with torch tensor ops, every row of a batch at once.

Same algorithm as ``wsrbench.backends.numpy.imminent_collisions`` (read that first): each round,
every maximal run of neighbouring blocks with value_i >= value_{i+1} merges into one block, until
the block values strictly increase.

Batching: the blocks of all rows live in one flat list (block start column, row id, x-sum), in row
order, so a round is a handful of whole-tensor ops over all rows: block ends from the next entry
(or d at the end of a row), block means from the closed-form shift sums, the violations between
neighbours of the same row, and the merge as a segment sum ``index_add_`` onto new block ids
(``cumsum`` of the blocks that survive). x-sums of a merged block add the x-sums of its parts:
sums of original data, never averages.

Host synchronisation: exactly one per round, reading the number of surviving blocks. It is both
the stopping test (no block merged: done) and the length of the next round's flat list, so the
list shrinks with the work left (O(blocks) per round, as in the reference) and no boolean-mask
indexing (which would sync again) is needed. Rows that converge early just stop merging; a row's
``rounds`` counts the rounds in which it had a violation, which is the reference's count.
"""
from __future__ import annotations

import torch

from ...numerics import shift_sum


def _lg(n: torch.Tensor) -> torch.Tensor:
    """ceil(log2 n) elementwise (0 for n <= 1): exact in float64 for n < 2^40."""
    return torch.ceil(torch.log2(torch.clamp(n, min=1).to(torch.float64))).to(torch.int64)


def partition(xs: torch.Tensor, lam: float):
    """(is_start (n, d) bool, rounds (n,) int64, host syncs, depth (n,) int64) for sorted, centred
    float64 rows. depth adds ``wsrbench.depth.imminent_round`` for each round a row takes, as the
    reference does (a row that converged takes no more rounds)."""
    n, d = xs.shape
    dev = xs.device
    starts = torch.arange(d, device=dev).repeat(n)
    rows = torch.arange(n, device=dev).repeat_interleave(d)
    sums = xs.reshape(-1).clone()
    rounds = torch.zeros(n, dtype=torch.int64, device=dev)
    depth = torch.zeros(n, dtype=torch.int64, device=dev)
    running = torch.full((n,), d > 1, dtype=torch.bool, device=dev)  # the reference's loop test
    m = n * d
    syncs = 0
    while m > 1:
        same_row = rows[1:] == rows[:-1]
        nxt = torch.cat([same_row, same_row.new_zeros(1)])
        ends = torch.where(nxt, torch.roll(starts, -1), torch.full_like(starts, d))
        means = (sums + shift_sum(starts, ends, d, lam)) / (ends - starts)
        violates = (means[:-1] >= means[1:]) & same_row
        # A block survives (starts a merged block) unless it violates order with its left neighbour.
        keep = torch.cat([violates.new_ones(1), ~violates])
        # Per row: its blocks this round, whether it merges, and the round's depth.
        nblk = torch.zeros(n, dtype=torch.int64, device=dev).index_add_(
            0, rows, torch.ones_like(rows))
        changed = torch.zeros(n, dtype=torch.int64, device=dev).index_add_(
            0, rows[1:], violates.to(torch.int64))
        merging = changed > 0
        running &= nblk > 1
        depth += torch.where(running, 2 + _lg(nblk - 1) + 2 * _lg(nblk) * merging,
                             torch.zeros_like(depth))
        running &= merging
        count = int(keep.sum())  # the one host sync of the round
        syncs += 1
        if count == m:
            break
        # Rows with a violation did one more round.
        rounds += merging.to(torch.int64)
        newid = torch.cumsum(keep, 0) - 1
        sums = torch.zeros(count, dtype=torch.float64, device=dev).index_add_(0, newid, sums)
        k = keep.to(torch.int64)  # only the surviving first block of each run contributes
        starts = torch.zeros(count, dtype=torch.int64, device=dev).index_add_(0, newid, starts * k)
        rows = torch.zeros(count, dtype=torch.int64, device=dev).index_add_(0, newid, rows * k)
        m = count
    is_start = torch.zeros(n * d, dtype=torch.bool, device=dev)
    is_start[rows * d + starts] = True
    return is_start.reshape(n, d), rounds, syncs, depth
