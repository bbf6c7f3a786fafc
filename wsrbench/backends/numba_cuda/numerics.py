"""``wsrbench.core.numerics``' scalar formulas as numba-cuda device functions
(docs/design.md#numerics-and-range).

Compiled from the same source as every other backend's (``numerics.compile_scalars``); ``inline``
so that compiling a kernel never asks a driver for the device's compute capability. The one
device-specific piece is ``mul_rn``: NVVM contracts a multiply and a following add into an FMA by
default, so the product c P of a shift sum is ``libdevice.dmul_rn`` (rounded on its own, as on the
CPU) and every merge decision (block means compared) is the CPU's, bit for bit
(docs/design.md#no-fused-multiply-add-in-a-decision; the compile check fails if a kernel's PTX holds
an unexplained float64 FMA).
"""
from numba import cuda

from ...core.depth import compile_depth
from ...core.numerics import compile_scalars
from .launch import SIMULATOR

_device = cuda.jit(device=True, inline=True)

if SIMULATOR:  # Python floats: every product is rounded on its own already
    _primitives = {}
else:
    from numba.cuda import libdevice

    @_device
    def _dmul_rn(x, y):
        return libdevice.dmul_rn(x, y)

    _primitives = {"mul_rn_scalar": _dmul_rn}

_compiled = compile_scalars(_device, _primitives)
shift_unit = _compiled.shift_unit
mul_rn = _compiled.mul_rn
shift_sum = _compiled.shift_sum
block_mean = _compiled.block_mean
#: ``wsrbench.core.depth``'s formulas as device functions (the kernels count depth as the reference).
depth = compile_depth(_device)
