"""Input checks on the device: is every entry of a CUDA array inside an interval (NaN never is)?

Used by ``wsrbench._kinds.check_range`` so that validating a CUDA array costs one kernel and a
one-int copy instead of a full host copy (the host copy happens only to word an error message).
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from ._ops_launch import THREADS, blocks


@cuda.jit
def _outside(x, low, high, low_open, high_open, flag):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.shape[0], stride):
        v = x[i]
        lo_ok = v > low if low_open else v >= low
        hi_ok = v < high if high_open else v <= high
        if not (lo_ok and hi_ok):  # NaN fails both comparisons
            flag[0] = 1  # every writer writes 1: the race is benign


def count_outside(x, low: float, high: float, low_open: bool, high_open: bool) -> int:
    """0 if every entry is inside the interval, else 1 (a flag, not a count)."""
    from ..._kinds import device_array

    arr = device_array(x)
    if arr.size == 0:
        return 0
    if not arr.is_c_contiguous():
        arr = cuda.to_device(np.ascontiguousarray(arr.copy_to_host()))
    arr = arr.reshape(arr.size)
    flag = cuda.to_device(np.zeros(1, dtype=np.int32))
    _outside[blocks(arr.size), THREADS](arr, float(low), float(high), bool(low_open),
                                       bool(high_open), flag)
    return int(flag.copy_to_host()[0])
