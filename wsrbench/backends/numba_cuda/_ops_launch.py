"""Launch geometry shared by this package's kernels for projection, gates and validation.

In the CUDA simulator (NUMBA_ENABLE_CUDASIM=1, where every thread is a Python thread) blocks are
kept small so that tests still run several blocks, exercising the grid-stride loops and atomics.
"""
from __future__ import annotations

from numba import config

SIMULATED = bool(config.ENABLE_CUDASIM)
THREADS = 32 if SIMULATED else 256  # threads per block of the elementwise kernels
REDUCE_THREADS = 16 if SIMULATED else 128  # power of two: block size of shared-memory reductions
MAX_BLOCKS = 4 if SIMULATED else 4096  # grid-stride loops cover the rest


def blocks(n: int) -> int:
    return max(1, min(MAX_BLOCKS, (n + THREADS - 1) // THREADS))
