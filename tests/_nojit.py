"""Python twins of the Numba backend's compiler-level primitives, for runs with NUMBA_DISABLE_JIT=1.

With the JIT disabled (the coverage job, ``.ci/coverage.sh``) every ``@njit`` function is its own
Python source, so coverage can see it; ``prange`` is ``range``. Two kinds of definitions have no
Python body, because they only exist inside the compiler:

* ``@intrinsic`` bit casts (``sort.f64_bits``, ``bits_f64``, ``f32_bits``, ``bits_f32``): LLVM
  bitcasts. Their twin is a NumPy ``view`` of the same bits, which is the same operation.
  ``numerics.fma`` (llvm.fma): its twin rounds the exact rational a * b + c once.
* ``@overload`` dispatch on a type (``_core.src_value``, ``src_index``, ``is_split``,
  ``run_of``, ``heavy_block``, ``sort.sort_records``, ``sort_split_records``, ``sort.bits_summary``):
  the stubs raise by design. Their twin asks the overload itself for its implementation with
  ``numba.typeof`` of the arguments, so the branch that runs is the one the compiler would pick.

:func:`install` replaces every module-level reference to those objects in the imported
``wsrbench.backends.numba`` modules (jitted callers look them up at call time once the JIT is off).
Nothing else changes: the kernels, their loops and their arithmetic run as written.
"""
from __future__ import annotations

import importlib
import pkgutil

import numpy as np


def _bitcast(src, dst):
    def cast(v):
        return np.asarray(v, dtype=src).reshape(()).view(dst)[()]
    return cast


def _fma(a, b, c):
    from fractions import Fraction

    return float(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)))


def _via_overload(impl):
    import numba

    def call(*args):
        return impl(*(numba.typeof(a) for a in args))(*args)
    return call


def install() -> None:
    """Bind the Python twins in every module of the Numba backend (call with the JIT disabled)."""
    import numba

    if not numba.config.DISABLE_JIT:
        raise RuntimeError("the Python twins are for NUMBA_DISABLE_JIT=1 runs only")
    import wsrbench.backends.numba as pkg
    from wsrbench.backends.numba import _core, numerics, sort

    pairs = [
        (sort.f64_bits, _bitcast(np.float64, np.uint64)),
        (sort.bits_f64, _bitcast(np.uint64, np.float64)),
        (sort.f32_bits, _bitcast(np.float32, np.uint32)),
        (sort.bits_f32, _bitcast(np.uint32, np.float32)),
        (_core.src_value, _via_overload(_core._src_value)),
        (_core.src_index, _via_overload(_core._src_index)),
        (numerics.fma, _fma),
        (_core.is_split, _via_overload(_core._is_split)),
        (_core.run_of, _via_overload(_core._run_of)),
        (_core.heavy_block, _via_overload(_core._heavy_block)),
        (sort.sort_records, _via_overload(sort._sort_records_impl)),
        (sort.sort_split_records, _via_overload(sort._sort_split_records_impl)),
        (sort.bits_summary, _via_overload(sort._bits_summary_impl)),
    ]
    twins = {id(orig): twin for orig, twin in pairs}  # pairs keeps the originals alive
    mods = [pkg] + [importlib.import_module(i.name)
                    for i in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + ".")]
    for mod in mods:
        for name, obj in list(vars(mod).items()):
            if id(obj) in twins:
                setattr(mod, name, twins[id(obj)])
