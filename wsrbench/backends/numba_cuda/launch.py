"""Launch geometry shared by every numba-cuda kernel.

THREADS_PER_BLOCK is read at each launch (not at compile time), so tests and benchmarks may change
it. Under the CUDA simulator (every thread a Python thread) blocks are small, so that even the tiny
test vectors span several thread blocks and every kernel meets block boundaries (and row boundaries
inside a block: the prox kernels index the flattened (row, column) space). On a GPU, 256 threads
keep an SM busy with float64 work.

Two launch shapes: ``grid(n)`` gives one thread per element (the prox kernels); ``blocks(n)`` a
capped grid for the grid-stride loops of the elementwise operations (projection, gates, checks),
whose reductions use blocks of REDUCE_THREADS (a power of two) threads.
"""
from __future__ import annotations

from numba.cuda.core import config

SIMULATOR = bool(config.ENABLE_CUDASIM)
GPU_THREADS_PER_BLOCK = 256
THREADS_PER_BLOCK = 8 if SIMULATOR else GPU_THREADS_PER_BLOCK
THREADS = 32 if SIMULATOR else 256  # threads per block of the grid-stride kernels
REDUCE_THREADS = 16 if SIMULATOR else 128  # power of two: block size of shared-memory reductions
MAX_BLOCKS = 4 if SIMULATOR else 4096  # grid-stride loops cover the rest


def grid(n_threads: int) -> tuple[int, int]:
    """(blocks, threads per block) for a 1-D launch of at least n_threads threads."""
    tpb = THREADS_PER_BLOCK
    return max(1, (n_threads + tpb - 1) // tpb), tpb


def blocks(n: int) -> int:
    """Number of blocks of THREADS threads for a grid-stride loop over n elements."""
    return max(1, min(MAX_BLOCKS, (n + THREADS - 1) // THREADS))
