"""Launch configuration shared by every numba-cuda kernel of the prox.

THREADS_PER_BLOCK is read at each launch (not at compile time), so tests and benchmarks may change
it. Under the CUDA simulator it is small, so that even the tiny test vectors span several thread
blocks and every kernel meets block boundaries (and row boundaries inside a block: kernels index
the flattened (row, column) space). On a GPU, 256 threads keep an SM busy with float64 work.
"""
from __future__ import annotations

from numba.cuda.core import config

SIMULATOR = bool(config.ENABLE_CUDASIM)
THREADS_PER_BLOCK = 8 if SIMULATOR else 256


def grid(n_threads: int) -> tuple[int, int]:
    """(blocks, threads per block) for a 1-D launch of at least n_threads threads."""
    tpb = THREADS_PER_BLOCK
    return max(1, (n_threads + tpb - 1) // tpb), tpb
