"""Imminent collisions with torch tensor ops, every row of a batch at once.

Same algorithm as ``wsrbench.backends.numpy.imminent_collisions`` (read that first): each round,
every maximal run of neighbouring blocks with value_i >= value_{i+1} merges into one block, until
the block values strictly increase.

Batching: the blocks of all rows live in one flat list of global starts ``G`` (row * d + column)
with their x-sums, in row order, followed by the sentinel n * d. The end of block i is then
simply ``G[i + 1]`` (the next row's first start is this row's end, in global coordinates), so a
round needs no row ids: block sizes are ``G[1:] - G[:-1]``, columns are ``G % d`` (just ``G`` for
one row), and a block may merge into its left neighbour unless it starts a row (column 0).

A round is about 14 whole-tensor ops over the current blocks
(docs/design.md#the-torch-backends-imminent_collisions-and-the-papers-torch-code): the block
means (x-sum plus the closed-form shift sum c (b-a)(d-a-b), over the size: the reference's
float64 operations in the reference's order, so decisions agree bit for bit on the CPU),
``keep = mean_{i-1} < mean_i`` (a block survives unless it violates order with its left
neighbour), ``cumsum(keep)`` numbering the surviving blocks, a segment sum ``scatter_add_`` of the
x-sums onto them (sums of original data, never averages) and a gather of the surviving starts
into the next round's list (``masked_select`` on the CPU; on a GPU ``nonzero_static`` with the
known count, so no second sync).

Host synchronisation: exactly one per round, reading the number of surviving blocks (the last
entry of the cumsum). It is both the stopping test (no block merged: done) and the length of the
next round's list, so the list shrinks with the work left and no boolean-mask indexing (which
would sync again on a GPU) is needed. A row's ``rounds`` counts the rounds in which it had a
violation (a converged row never merges again), which is the reference's count.

``partition`` returns the blocks themselves (``Blocks``), so the finishing step reads the block
values from them instead of rebuilding the blocks from a dense mask (``_common.finish_blocks``).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from ...core import depth as dp
from ...core.numerics import shift_unit


def _lg(n: torch.Tensor) -> torch.Tensor:
    """ceil(log2 n) elementwise (0 for n <= 1): exact in float64 for n < 2^40."""
    return torch.ceil(torch.log2(torch.clamp(n, min=1).to(torch.float64))).to(torch.int64)


class Blocks(NamedTuple):
    """The partition of every row as a flat block list (see the module docstring)."""

    bounds: torch.Tensor  # int64 (count + 1,): global starts of the blocks, then n * d
    sums: torch.Tensor  # float64 (count,): x-sum of each block
    rounds: object  # int64 (n,): a tensor, or for one row a NumPy array (known on the host)
    clusters: object  # likewise
    # float64 (count,) each, from the round that found no violation (None when the loop ended
    # on one block): the blocks' shift sums c (b-a)(d-a-b) and sizes, which the finishing step
    # would otherwise recompute with the same operations
    shift: torch.Tensor | None = None
    size: torch.Tensor | None = None


def partition(xs: torch.Tensor, lam: float):
    """(Blocks, rounds (n,) int64, host syncs, depth (n,) int64) for sorted, centred float64 rows.

    depth adds ``wsrbench.core.depth.imminent_round`` for each round a row takes, as the reference
    does (a row that converged takes no more rounds): on the host for one row, per row on the
    device for a batch."""
    n, d = xs.shape
    dev = xs.device
    N = n * d
    c = shift_unit(lam, d)
    # Starts and the sentinel end n * d, as float64: exact integers (n * d < 2^53), so sizes and
    # the shift-sum product (b - a)(d - a - b) < d^2 are exact too, with no int -> float copy.
    bounds = torch.arange(N + 1, dtype=torch.float64, device=dev)
    sums = xs.reshape(-1)
    m = N
    syncs = 0
    rounds_one = 0  # one row: a Python count (no tensor op per round)
    last = torch.zeros(n, dtype=torch.int64, device=dev) if n > 1 else None
    depth_one = 0
    if n > 1:
        depth = torch.zeros(n, dtype=torch.int64, device=dev)
        running = torch.full((n,), d > 1, dtype=torch.bool, device=dev)
    on_cpu = dev.type == "cpu"
    t = 0
    final = (None, None)
    while m > 1:
        t += 1
        G = bounds[:m]
        E = bounds[1:m + 1]
        size = E - G
        if n == 1:
            a, b = G, E
        else:
            a = torch.remainder(G, d)
            b = a + size
        # c * (b - a)(d - a - b), formed as (-c) * ((a + b - d)(b - a)): the product is an exact
        # integer and rounding is symmetric in sign, so this is the reference's value with one
        # pass fewer; then the reference's float ops, mean = (xsum + shift sum) / size.
        shift = torch.add(a, b).sub_(d).mul_(size).mul_(-c)
        means = torch.add(shift, sums).div_(size)
        # keep[i]: block i survives; keep[0] and keep[m] (the sentinel) are always True
        keep_ext = torch.ones(m + 1, dtype=torch.bool, device=dev)
        keep = keep_ext[:m]
        torch.lt(means[:-1], means[1:], out=keep[1:])
        if n > 1:
            keep[1:] |= a[1:] == 0  # a row's first block never merges into the previous row
        if n > 1:  # per row: its blocks in the current round, whether it merges, the round's depth
            rid = torch.div(G, d, rounding_mode="floor").long()
            nblk = torch.bincount(rid, minlength=n)
            merging = torch.zeros(n, dtype=torch.int64, device=dev).index_add_(
                0, rid[1:], (~keep[1:]).to(torch.int64)) > 0
            running &= nblk > 1
            depth += torch.where(running, 2 + _lg(nblk - 1) + 2 * _lg(nblk) * merging,
                                 torch.zeros_like(depth))
            running &= merging
        newid = torch.cumsum(keep, 0, dtype=torch.int64)
        count = int(newid[-1])  # the one host sync of the round
        syncs += 1
        if n == 1:
            depth_one += dp.imminent_round(m, count < m)
        if count == m:
            final = (shift, size)  # the final blocks' shift sums and sizes
            break
        if n > 1:  # rows with a violation in the current round: their rounds count is t
            merged = (~keep[1:]).to(torch.int64).mul_(t)
            last.scatter_reduce_(0, torch.div(G[1:], d, rounding_mode="floor").long(), merged, "amax")
        else:
            rounds_one = t
        # segment sums onto the surviving blocks (newid is 1-based: slot 0 stays empty), added
        # in index order as index_add_ does; scatter_add_ is the faster of the two on the CPU
        sums = torch.zeros(count + 1, dtype=torch.float64, device=dev).scatter_add_(
            0, newid, sums)[1:]
        # The surviving starts and the sentinel (index m) form the next list.
        if on_cpu:  # masked_select is the fastest gather on the CPU (and syncs nothing there)
            bounds = bounds.masked_select(keep_ext)
        else:  # on a GPU: indices padded with m to the known size, so no second sync
            heads = torch.nonzero_static(keep, size=count + 1, fill_value=m).view(-1)
            bounds = bounds.index_select(0, heads)
        m = count
    if n == 1:
        rounds, clusters = np.array([rounds_one], np.int64), np.array([m], np.int64)
        depth = np.array([depth_one], np.int64)
        return Blocks(bounds[:m + 1], sums, rounds, clusters, *final), rounds, syncs, depth
    clusters = torch.bincount(torch.div(bounds[:m], d, rounding_mode="floor").long(), minlength=n)
    return Blocks(bounds[:m + 1], sums, last, clusters, *final), last, syncs, depth
