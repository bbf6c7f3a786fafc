"""Adjustments to numba-cuda's CUDA simulator (NUMBA_ENABLE_CUDASIM=1), opt-in.

Importing wsrbench changes nothing in numba-cuda or in the interpreter. :func:`enable` installs
both adjustments below; the test suite turns it on (tests/conftest.py), and the numba_cuda backend
turns it on itself at the first launch of a kernel that needs it (``hull_tiles``) when, and only
when, it runs on the simulator. On a GPU neither applies.

1. ``cuda.shared.array`` under a lock. The simulator (``simulator/kernelapi.py``,
   ``FakeCUDAShared.array``, numba-cuda 0.30) finds a block's array by the call site's file and line
   and creates it when missing, without a lock: two threads that switch between the lookup and the
   store each create one, and one of them then reads shared memory that no other thread writes (an
   occasional IndexError on a garbage count in ``hull_tiles``' kernel, once in CI).
2. Quick barriers (:func:`running`): the simulator runs a block's threads as Python threads, and a
   barrier waits for the interpreter to switch threads (every 5 ms by default); a switch interval
   of :data:`SWITCH_S` while a kernel with barriers runs makes them ~10x cheaper. The interval is
   restored afterwards.
"""
from __future__ import annotations

import contextlib
import sys
import threading
import traceback

import numpy as np

from .launch import SIMULATOR

#: The interpreter's thread switch interval while a kernel with barriers runs in the simulator, s.
SWITCH_S = 1e-5

_ENABLED = False


def enabled() -> bool:
    return _ENABLED


def enable() -> None:
    """Install the adjustments (idempotent). A RuntimeError when not running on the simulator."""
    global _ENABLED
    if not SIMULATOR:
        raise RuntimeError("wsrbench.backends.numba_cuda.simulator.enable() is for the CUDA "
                           "simulator only: set NUMBA_ENABLE_CUDASIM=1 before importing numba")
    if not _ENABLED:
        _lock_shared_arrays()
        _ENABLED = True


def _lock_shared_arrays() -> None:
    """The simulator's ``FakeCUDAShared.array``, with the lookup and the creation under one lock."""
    from numba.cuda.simulator import kernelapi

    cls = kernelapi.FakeCUDAShared
    if getattr(cls.array, "locked", False):
        return
    original = cls.array
    lock = threading.Lock()

    def array(self, shape, dtype, alignment=None):
        if shape == 0 or alignment is not None:  # dynamic shared memory: no lookup
            return original(self, shape, dtype, alignment)
        caller = traceback.extract_stack(sys._getframe(1), limit=1)[-1][0:2]
        with lock:
            res = self._allocations.get(caller)
            if res is None:
                dt = (kernelapi.numpy_support.as_dtype(dtype)
                      if isinstance(dtype, kernelapi.types.Type) else dtype)
                res = self._allocations[caller] = np.empty(shape, dt)
        return res

    array.locked = True
    cls.array = array


@contextlib.contextmanager
def running():
    """Around a launch of a kernel with shared arrays and barriers: on the simulator, enable the
    adjustments (first use) and shorten the switch interval while it runs; on a GPU, nothing."""
    if not SIMULATOR:
        yield
        return
    enable()
    old = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_S)
    try:
        yield
    finally:
        sys.setswitchinterval(old)
