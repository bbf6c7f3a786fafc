"""Shared pieces of the torch backend: the finishing step (block values, L1, rho, un-sort).

Everything here works on a batch of rows at once, as (rows, d) tensors on any device, so the same
code runs on CPU and CUDA tensors. It mirrors ``wsrbench.core.sorted_space`` operation by operation
(same formulas, same order of float64 operations) so that merge decisions agree with the NumPy
reference bit for bit on the CPU and to rounding of the sums on a GPU (where ``index_add_`` and
``cumsum`` may add in another order). Block bounds are float64 holding exact integers.
"""
from __future__ import annotations

import torch

from ...core.numerics import shift_sum, shift_unit


def pool_ties(vals: torch.Tensor, is_start: torch.Tensor, lam: float) -> torch.Tensor:
    """``sorted_space.pool_ties`` on (n, d) rows: no block starts inside a run of equal sorted
    values ``vals`` (as given, not centred); at lam = 0 the blocks are exactly those runs
    (docs/design.md#ties). Returns a new mask."""
    new = vals[:, 1:] != vals[:, :-1]
    out = torch.ones_like(is_start, dtype=torch.bool)
    out[:, 1:] = new if lam == 0.0 else new & is_start[:, 1:].bool()
    return out


def finish(X: torch.Tensor, order: torch.Tensor, xs: torch.Tensor, center: torch.Tensor,
           is_start: torch.Tensor, lam: float, l1: float, rho: float,
           vals: torch.Tensor | None = None) -> torch.Tensor:
    """Weights in X's dtype and original order from a partition of every sorted row.

    X: (n, d) input (dtype and device of the output); order: its stable argsort along dim 1;
    xs: the sorted rows in float64, centred at ``center`` (n, 1); is_start: (n, d) bool, True where
    a block starts (column 0 always). Block value = mean(x over block) + shift_sum / size
    (``sorted_space.block_values``), then soft-threshold by l1 and the rho interpolation on the
    uncentred values (``sorted_space.finish``). Block sums add original data in float64.
    vals: the sorted rows as given; a block of equal values t gets centroid t and value
    t + shift_sum / size (``sorted_space.block_values``).
    """
    n, d = xs.shape
    if lam == 0.0 and l1 == 0.0:
        # x itself: -0.0 and 0.0 share a run but keep their own signs (docs/design.md#ties)
        return X.clone(memory_format=torch.contiguous_format)
    dev = xs.device
    flat = is_start.reshape(-1)
    # Each row starts a block at column 0, so one running count over the flattened rows numbers
    # the blocks of all rows at once (no loop over rows, no host sync to learn their number).
    gid = torch.cumsum(flat, 0) - 1
    N = n * d
    sums = torch.zeros(N, dtype=torch.float64, device=dev).index_add_(0, gid, xs.reshape(-1))
    sizes = torch.zeros(N, dtype=torch.int64, device=dev).index_add_(
        0, gid, torch.ones(N, dtype=torch.int64, device=dev))
    col = torch.arange(d, device=dev).repeat(n)
    a = torch.zeros(N, dtype=torch.int64, device=dev).index_add_(
        0, gid, torch.where(flat, col, torch.zeros_like(col)))
    b = a + sizes
    safe = sizes.clamp(min=1)  # slots past the last block are never read; avoid 0/0 there
    centroid = sums / safe
    shift = shift_sum(a, b, d, lam) / safe
    value = centroid + shift
    c = center.reshape(n, 1)
    cen = centroid[gid].reshape(n, d) + c
    val = value[gid].reshape(n, d) + c
    if vals is not None:
        v = vals.reshape(-1).to(torch.float64)
        row0 = torch.arange(n, device=dev).repeat_interleave(d) * d
        first = v[(row0 + a[gid])]
        tied = (first == v[row0 + b[gid] - 1]).reshape(n, d)
        first = first.reshape(n, d)
        cen = torch.where(tied, first, cen)
        sh = shift[gid].reshape(n, d)
        # a zero shift keeps t bit for bit (-0.0 + 0.0 is +0.0)
        val = torch.where(tied, torch.where(sh == 0.0, first, first + sh), val)
    if l1 > 0.0:
        val = torch.sign(val) * torch.clamp(torch.abs(val) - l1, min=0.0)
    if rho > 0.0:
        moved = torch.where(val == cen, val, cen + (1.0 - rho) * (val - cen))
        val = torch.where((val == 0.0) & (l1 > 0.0), torch.zeros_like(val), moved)
    W = torch.empty_like(X, memory_format=torch.contiguous_format)
    W.scatter_(1, order, val.to(X.dtype))
    return W


def finish_blocks(X: torch.Tensor, order: torch.Tensor, center: torch.Tensor, blocks, lam: float,
                  l1: float, rho: float) -> torch.Tensor:
    """``finish`` from a flat block list (``imminent_collisions.Blocks``) instead of a dense mask.

    The block values are computed once per block (``sorted_space.block_values``: centroid =
    x-sum / size, value = centroid + shift_sum / size, both moved back by the row's centre),
    then spread over the block's elements with ``repeat_interleave`` (output size given: no
    host sync) and scattered back to the original order: about 10 ops, 4 of them of size n * d
    (the shift sums and sizes come from the partition's last round when it had one).
    """
    n, d = X.shape
    N = n * d
    shift, size = blocks.shift, blocks.size
    if shift is None:  # the partition's last round did not cover these blocks: form them
        G = blocks.bounds[:-1]
        E = blocks.bounds[1:]
        size = E - G
        if n == 1:  # global bounds are the columns
            a, b = G, E
        else:
            a = torch.remainder(G, d)
            b = a + size
        # c (b - a)(d - a - b), the sign moved onto c as in imminent_collisions.partition (the
        # same rounded product); bounds are float64 holding exact integers
        shift = torch.add(a, b).sub_(d).mul_(size).mul_(-shift_unit(lam, d))
    centroid = blocks.sums / size
    value = torch.div(shift, size).add_(centroid)  # shift_sum / size + centroid
    row_c = center[0] if n == 1 else center[
        torch.div(blocks.bounds[:-1], d, rounding_mode="floor").long(), 0]
    val_b = value.add_(row_c)
    cen_b = centroid.add_(row_c) if rho > 0.0 else None
    if l1 > 0.0:
        val_b = torch.sign(val_b) * torch.clamp(torch.abs(val_b) - l1, min=0.0)
    if rho > 0.0:
        moved = cen_b + (1.0 - rho) * (val_b - cen_b)
        val_b = torch.where((val_b == 0.0) & (l1 > 0.0), torch.zeros_like(val_b), moved)
    val = torch.repeat_interleave(val_b.to(X.dtype), size.to(torch.int64),
                                  output_size=N).reshape(n, d)
    W = torch.empty_like(X, memory_format=torch.contiguous_format)
    W.scatter_(1, order, val)
    return W
