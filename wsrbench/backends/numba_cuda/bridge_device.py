"""The bridge step of docs/design.md#the-bridge-step (``wsrbench.core.bridge``) as numba-cuda device
functions.

Shared by ``hull_bridges`` (the levels run globally, a thread per pair) and ``hull_tiles`` (the
lowest levels, run in shared memory by a thread block per tile), so that both decide with the
same compiled code, and neither imports the other's module for it.
"""
from __future__ import annotations

from numba import cuda

from ...core.bridge import bridge_step as _bridge_step_py
from ...core.bridge import junction_is_bridge as _junction_py
from .numerics import depth as _dev_depth

bridge_step = cuda.jit(device=True, inline=True)(_bridge_step_py)
junction_is_bridge = cuda.jit(device=True, inline=True)(_junction_py)
bridge_bound = _dev_depth.bridge_bound


@cuda.jit(device=True, inline=True)
def level_size(d, lev):
    """Blocks of 2^lev points in a row of d: ceil(d / 2^lev)."""
    return (d + (1 << lev) - 1) >> lev
