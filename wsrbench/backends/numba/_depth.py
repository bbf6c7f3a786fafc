"""``wsrbench.depth`` compiled for the Numba kernels (the same formulas; the registry-parametrised
tests check that every backend's depth equals the NumPy reference's)."""
from __future__ import annotations

from numba import njit

from ... import depth as _dp

lg = njit(cache=True, inline="always")(_dp.lg)


@njit(cache=True, inline="always")
def imminent_round(nblk, merged):
    """wsrbench.depth.imminent_round."""
    return 2 + lg(nblk - 1) + (2 * lg(nblk) if merged else 0)


@njit(cache=True, inline="always")
def end_cluster(n):
    """wsrbench.depth.end_cluster."""
    return 2 * lg(n) + 2


@njit(cache=True, inline="always")
def search_level(half, npairs, steps):
    """wsrbench.depth.search_level."""
    return (lg(2 * half) + lg(half) + lg(npairs) + steps * (3 + lg(half))
            + 1 + lg(half) + 1 + lg(2 * half))
