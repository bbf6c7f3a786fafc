"""The local exact fit of one rank's range of the global order (docs/design.md#the-local-fit).

A rank holds the sorted, centred values of positions [o, o + n) of the whole sorted vector
(length d). Their shifts are the global ones, v_K = lam (d - 1 - 2K)/(d - 1) for K = o + k, so the
fit is PAVA over the range with the global positions in the closed-form shift sums: the mean of y
over the global positions [a, b) is

    (S + lam/(d-1) (b - a)(d - a - b)) / (b - a),     S = sum of the centred x over [a, b),

exactly the reference's formula (wsrbench.core.numerics.block_mean_scalar, as in
wsrbench/backends/numpy/pava.py), so inside a range the
decisions are the reference's own. The blocks found are those of the range alone; the merge across
ranks (``_merge``) only ever joins some of them (a vertex of the global minorant is a vertex of
the range's minorant).
"""
from __future__ import annotations

import types

import numpy as np

from ..core.numerics import block_mean_scalar as block_mean
from ..core.numerics import compile_scalars, shift_unit

# Below this many elements the interpreted loop is faster than loading the compiled kernel
# (a spawned process pays the load once per kernel).
JIT_MIN_N = 4096


def _pava_offset_py(xs, o, d, lam, starts, sums):
    """PAVA over xs (sorted, centred, float64) at global offset o; returns the number of blocks.

    starts[j] (local index) and sums[j] (float64 sum of xs over the block, pooled sums added left
    + right as in the reference) for j < nblk. Equal means pool, so blocks are maximal (9.2).
    The block means are wsrbench.core.numerics.block_mean_scalar, the reference's formula.
    """
    n = len(xs)
    c = shift_unit(lam, d)
    means = np.empty(n)
    top = -1
    for k in range(n):
        a = o + k
        s = xs[k]
        st = a
        m = block_mean(s, a, a + 1, d, c)
        while top >= 0 and means[top] >= m:
            s = sums[top] + s
            st = starts[top] + o
            top -= 1
            m = block_mean(s, st, a + 1, d, c)
        top += 1
        starts[top] = st - o
        sums[top] = s
        means[top] = m
    return top + 1


def _compile():
    """The same source compiled by Numba, its scalar formulas bound to their compiled versions
    (as wsrbench.core.numerics.compile_scalars does for the backends)."""
    from numba import njit

    scalars = compile_scalars(njit(cache=True, inline="always"))
    env = dict(globals(), block_mean=scalars.block_mean, shift_unit=scalars.shift_unit)
    f = _pava_offset_py
    clone = types.FunctionType(f.__code__, env, "_pava_offset", f.__defaults__, f.__closure__)
    clone.__module__, clone.__qualname__ = f.__module__, "_pava_offset"
    return njit(cache=True)(clone)


_jit_kernel = None


def local_fit(xs: np.ndarray, o: int, d: int, lam: float, *, jit: bool | None = None):
    """(starts, sums): the maximal PAVA blocks of the range, local starts (int64) and x sums.

    ``jit`` None picks the compiled kernel for ranges of at least JIT_MIN_N elements.
    """
    n = xs.shape[0]
    starts = np.empty(n, dtype=np.int64)
    sums = np.empty(n, dtype=np.float64)
    if n == 0:
        return starts, sums
    use_jit = n >= JIT_MIN_N if jit is None else jit
    if use_jit:
        global _jit_kernel
        if _jit_kernel is None:
            _jit_kernel = _compile()
        nblk = _jit_kernel(np.ascontiguousarray(xs, dtype=np.float64), np.int64(o), np.int64(d),
                           np.float64(lam), starts, sums)
    else:
        nblk = _pava_offset_py(xs.tolist(), int(o), int(d), float(lam), starts, sums)
    return starts[:nblk].copy(), sums[:nblk].copy()
