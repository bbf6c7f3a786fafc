"""``wsrbench.numerics``' scalar formulas as numba-cuda device functions (docs/design.md section 3).

Compiled from the same source as every other backend's (``numerics.compile_scalars``); ``inline``
so that compiling a kernel never asks a driver for the device's compute capability.
"""
from numba import cuda

from ...numerics import compile_scalars

_compiled = compile_scalars(cuda.jit(device=True, inline=True))
shift_unit = _compiled.shift_unit
shift_sum = _compiled.shift_sum
block_mean = _compiled.block_mean
