"""Parallel depth: dependent steps with unlimited processors, counted the same way for every algorithm.

The rule (docs/design.md#parallel-depth): a reduction or a prefix sum over n items costs lg(n) = ceil(log2 n)
(0 for n <= 1), every other data-parallel sweep costs 1, and a sequential step costs 1. Depth counts
the partition only: the sort before it and the block values after it are the same for every
algorithm. Each algorithm's NumPy reference adds these terms as it runs (stats["depth"]); the other
backends add the same terms where they run the same steps, and are tested to agree.

The functions are plain integer arithmetic, so Numba kernels call them compiled (``njit``) too.
"""
from __future__ import annotations


def lg(n):
    """ceil(log2 n) for n >= 1 (0 for n <= 1): the depth of a tree reduction or scan of n items."""
    k = 0
    while (1 << k) < n:
        k += 1
    return k


def imminent_round(nblk, merged):
    """One round of imminent_collisions over nblk blocks: means (1), compare neighbours (1), the
    any-violation test (a reduction over nblk - 1 pairs); a merging round also compacts the
    surviving starts (a prefix sum over nblk) and sums the runs (a segmented scan over nblk)."""
    depth = 2 + lg(nblk - 1)
    if merged:
        depth += 2 * lg(nblk)
    return depth


def end_cluster(n):
    """One cluster of end_collisions over the n unresolved items: the running sums (a scan), the
    means (1), the last argmin (a reduction) and the jump (1)."""
    return 2 * lg(n) + 2


def search_level(half, npairs, steps):
    """One level of search_collisions: pair-local prefix sums of x (a scan over 2 half), the packed
    cluster starts of each left half (a prefix sum over half), one bound on the binary-search
    steps for all pairs (a reduction over the pairs), ``steps`` binary-search steps (probe and its
    incoming mean 1, cumulative means 1, their min over the right half lg(half), compare 1), the
    final argmin (1 + lg(half)) and the unmarking of merged starts (1 + a scan over 2 half)."""
    return (lg(2 * half) + lg(half) + lg(npairs) + steps * (3 + lg(half))
            + 1 + lg(half) + 1 + lg(2 * half))


def hull_level(half, npairs, steps):
    """One level of hull_bridges: the sums local to each half, joined for the next level (1), the
    per-pair step bound and its max over the pairs (1 + lg(npairs)), ``steps`` bridge steps (1
    each: six vertex reads and O(1) arithmetic), and the merge (1: each output vertex knows its
    source). ``half`` is unused: no term grows with the pairs' size."""
    return 1 + 1 + lg(npairs) + steps + 1


def floor_log2(n):
    """floor(log2 n) for n >= 1."""
    k = 0
    while (2 << k) <= n:
        k += 1
    return k


def bridge_bound(a, b):
    """Steps of the bridge search between hulls of a and b vertices: floor(log2 a) + floor(log2 b)
    (docs/design.md#the-bridge-step). hull_bridges runs every pair of a level for the largest bound."""
    return floor_log2(a) + floor_log2(b)


FUNCTIONS = ("lg", "floor_log2", "imminent_round", "end_cluster", "search_level", "hull_level",
             "bridge_bound")


def compile_depth(decorator):
    """This module's functions compiled by ``decorator`` (``njit`` for the Numba kernels, a CUDA
    device jit for numba-cuda's): the same formulas, never restated (``numerics.compile_functions``).
    Returns a namespace: ``compile_depth(njit).imminent_round``."""
    import types

    from .numerics import compile_functions

    return types.SimpleNamespace(**compile_functions(globals(), FUNCTIONS, decorator))
