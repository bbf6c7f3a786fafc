"""``wsrbench.core.numerics``' scalar formulas compiled for the Numba kernels
(docs/design.md#numerics-and-range).

Compiled from the same source as every other backend's (``numerics.compile_scalars``), inlined
into the hot loops.
"""
from numba import njit

from ...core.numerics import compile_scalars

_compiled = compile_scalars(njit(cache=True, inline="always"))
shift_unit = _compiled.shift_unit
shift_sum = _compiled.shift_sum
block_mean = _compiled.block_mean
