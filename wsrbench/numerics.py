r"""The numerics every backend shares: shift sums, block means, epsilons and tolerances.

One formula per idea (docs/design.md section 3). The vectorised functions take NumPy arrays or
torch tensors; the ``*_scalar`` functions use only arithmetic and comparisons on scalars, so the
Numba backend compiles them with ``njit`` and the numba_cuda backend as inline device functions
(``backends/numba/numerics.py``, ``backends/numba_cuda/numerics.py``): every backend evaluates the
same operations in the same order.

Shift sums. With v_k = lam (d-1-2k)/(d-1) for rank k = 0..d-1,

    sum_{k=a}^{b-1} v_k = lam (b-a)(d-a-b) / (d-1),

evaluated as ``c * float(P)`` with c = lam / (d-1) (``shift_unit``, once per row: hot loops pay a
multiplication, not a division) and the integer product P = (b-a)(d-a-b) exact (|P| <= d^2/4 <
2^53 for every d that fits in memory). c P overflows only where the true sum does. The sum over
the whole row is exactly 0, so a collapsing lam of 1e30 still returns mean(x).

Tolerances. A careful solver rounds each value once to the output dtype (eps_out/2 relative)
after float64 sums of at most d terms ((d-1) eps64 relative, worst case); a check that re-sums
adds the same again. So a value of magnitude ``scale`` is trusted to

    value_tolerance = scale (2 eps_out + 4 (d+1) eps64) + lam 4 (d+1) eps64

(the lam term covers solvers that form y_k = x_k + v_k element by element). The certificate,
``wsrbench validate`` and the tests all use this one formula.
"""
from __future__ import annotations

import types

import numpy as np

#: Machine epsilons (spacing of floats at 1.0).
EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)


def eps(dtype) -> float:
    """Machine epsilon of a float dtype (NumPy dtype, torch dtype or their names)."""
    if type(dtype).__module__.split(".")[0] == "torch":
        dtype = str(dtype).replace("torch.", "")
    return float(np.finfo(np.dtype(dtype)).eps)


def value_tolerance(d: int, dtype, scale: float, lam: float = 0.0) -> float:
    """How far a correctly computed prox value of magnitude ``scale`` may be from the exact one.

    Parameters
    ----------
    d : int
        Length of the row (the number of terms a value's sums may hold).
    dtype : dtype or float
        The output dtype, or its machine epsilon directly.
    scale : float
        Bound on the magnitudes involved (e.g. max|x| + max|w| + l1).
    lam : float, optional
        Shift strength; adds the rounding of per-element shifts (module docstring).

    Returns
    -------
    float
        ``scale (2 eps_out + 4 (d+1) eps64) + lam 4 (d+1) eps64``.
    """
    eps_out = float(dtype) if isinstance(dtype, float) else eps(dtype)
    return scale * (2.0 * eps_out + 4.0 * (d + 1) * EPS64) + lam * 4.0 * (d + 1) * EPS64


def shift_unit(lam, d):
    """c = lam / (d - 1), the factor of every shift sum of a row (0.0 when d <= 1)."""
    if d <= 1:
        return 0.0
    return lam / (d - 1)


def shift_sum_scalar(a, b, d, c):
    """sum of v_k over [a, b) for scalars: c (b-a)(d-a-b) with c = shift_unit(lam, d).

    Compiled as-is by Numba and numba-cuda (only arithmetic), so all backends share the order.
    """
    return c * float((b - a) * (d - a - b))


def block_mean_scalar(xsum, a, b, d, c):
    """Mean of y = x + v over the block [a, b) given the sum of x over it; c = shift_unit(lam, d)."""
    return (xsum + shift_sum_scalar(a, b, d, c)) / float(b - a)


SCALARS = ("shift_unit", "shift_sum_scalar", "block_mean_scalar")


def compile_scalars(decorator) -> types.SimpleNamespace:
    """The ``*_scalar`` functions compiled by ``decorator`` (``njit`` or a CUDA device jit).

    Each function is rebuilt with its calls to the other scalar functions bound to their compiled
    versions (a compiled function cannot call a plain Python one), so the backends compile this
    module's source and never restate a formula. Returns a namespace without the ``_scalar``
    suffix: ``compile_scalars(njit).shift_sum``.
    """
    out = {}
    env = dict(globals())
    for name in SCALARS:  # callees first
        f = globals()[name]
        clone = types.FunctionType(f.__code__, env, f.__name__, f.__defaults__, f.__closure__)
        clone.__module__, clone.__qualname__, clone.__doc__ = f.__module__, f.__qualname__, f.__doc__
        env[name] = out[name.removesuffix("_scalar")] = decorator(clone)
    return types.SimpleNamespace(**out)


def shift_sum(a, b, d: int, lam: float):
    """Vectorised :func:`shift_sum_scalar` over NumPy arrays or torch tensors (float64 result).

    a and b broadcast; the integer product is formed in int64 (exact), then multiplied by
    c = shift_unit(lam, d): the same float operations as the scalar version.
    """
    c = shift_unit(lam, d)
    if _is_torch(a) or _is_torch(b):
        import torch

        a_t = a if _is_torch(a) else torch.as_tensor(a, device=b.device)
        return c * ((b - a_t) * (d - a_t - b)).to(torch.float64)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    return c * ((b - a) * (d - a - b)).astype(np.float64)


def block_means(xsum, a, b, d: int, lam: float):
    """Mean of y over blocks [a, b) given the sums of x over them (vectorised, float64)."""
    return (xsum + shift_sum(a, b, d, lam)) / (b - a)


def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"
