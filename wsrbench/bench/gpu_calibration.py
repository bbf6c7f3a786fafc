"""The calibration kernels of the first GPU run (docs/design.md#calibrating-the-cost-model-on-a-gpu).

Three numba-cuda kernels whose timings are the GPU cost model's constants
(``wsrbench.bench.gpu_model``): ``empty`` (a launch and nothing else: ``LAUNCH_S``, with a copy
to the host ``SYNC_S``), ``chase_global`` (one thread following ``steps`` links of a cycle in
global memory: each load's address is the previous load's value, so the loads cannot overlap and
the time per step is one DRAM round trip, ``STEP_S``) and ``chase_shared`` (the same in shared
memory after the block loaded the cycle: ``SHARED_STEP_S``). Importing this module imports
numba.cuda; ``wsrbench.bench.gpu_first_run`` imports it only in its calibration step. Their
signatures are in ``wsrbench.backends.numba_cuda.signatures``, so CI compiles them for real.
"""
from __future__ import annotations

from numba import cuda, int32

#: Entries of the shared-memory cycle (16 KiB of int32: fits every block's default 48 KiB).
SHARED_N = 4096


@cuda.jit
def empty(a):
    pass


@cuda.jit
def chase_global(nxt, steps, out):
    j = 0
    for _ in range(steps):
        j = nxt[j]
    out[0] = j  # the result is stored, so the chase is not optimised away


@cuda.jit
def chase_shared(nxt, steps, out):
    buf = cuda.shared.array(SHARED_N, int32)
    t = cuda.threadIdx.x
    for i in range(t, SHARED_N, cuda.blockDim.x):
        buf[i] = nxt[i]
    cuda.syncthreads()
    if t == 0:
        j = 0
        for _ in range(steps):
            j = buf[j]
        out[0] = j
