"""Imminent collisions: in each round every group of particles about to collide merges at once.

Blocks hold consecutive particles; a block's value is the mean of its y. In one round, every maximal
run of neighbouring blocks with non-increasing values (value_i >= value_{i+1}) merges into one block
(momentum is conserved: the new block's x-sum is the sum of its parts' x-sums, and its value adds the
closed-form shift sum). Rounds repeat until the values strictly increase, which is the isotonic fit
(pooling adjacent violators in any order gives the same answer).

Each round is O(number of blocks) data-parallel work. Few rounds when lam is small; Theta(d) rounds
on a cascade where one heavy block swallows one neighbour per round (``worst_imminent_collisions``).
"""
from __future__ import annotations

import numpy as np

from ...core import depth as dp
from ...core.numerics import block_means


def partition(xs: np.ndarray, lam: float):
    d = xs.shape[0]
    starts = np.arange(d, dtype=np.int64)
    sums = xs.astype(np.float64, copy=True)
    rounds = depth = 0
    while starts.shape[0] > 1:
        ends = np.append(starts[1:], d)
        means = block_means(sums, starts, ends, d, lam)
        violates = means[:-1] >= means[1:]
        merging = bool(violates.any())
        depth += dp.imminent_round(starts.shape[0], merging)
        if not merging:
            break
        # A boundary survives only where the blocks on both sides are in order.
        keep = np.flatnonzero(np.concatenate(([True], ~violates)))
        sums = np.add.reduceat(sums, keep)
        starts = starts[keep]
        rounds += 1
    return starts, rounds, {"depth": depth}
