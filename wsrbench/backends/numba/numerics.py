"""``wsrbench.core.numerics``' scalar formulas compiled for the Numba kernels
(docs/design.md#numerics-and-range).

Compiled from the same source as every other backend's (``numerics.compile_scalars``), inlined
into the hot loops.
"""
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from ...core.numerics import compile_scalars

_compiled = compile_scalars(njit(cache=True, inline="always"))
shift_unit = _compiled.shift_unit
shift_sum = _compiled.shift_sum
block_mean = _compiled.block_mean


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c rounded once (llvm.fma). Never used for a value: only the sign of an exact
    residual, which decides a comparison of rounded quantities without a division
    (docs/design.md#ties-in-pava)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, sig, args):
        dbl = ir.DoubleType()
        fn = builder.module.declare_intrinsic("llvm.fma", [dbl], ir.FunctionType(dbl, [dbl] * 3))
        return builder.call(fn, args)
    return sig, codegen
