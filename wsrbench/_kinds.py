"""Array-kind plumbing for the operations beyond the prox (projection, gates, soft sharing).

The public functions accept three kinds of arrays (``wsrbench.registry.array_kind``): NumPy arrays
(and anything ``np.asarray`` takes), torch tensors (any device) and CUDA arrays (numba device
arrays or anything with ``__cuda_array_interface__``). Everything here validates or converts
without leaving the input's kind, except where a host copy is stated (error messages, integer
group labels). torch and numba are imported only when an array of their kind shows up.

Validation rules shared by every operation (errors name the argument):
- float32 and float64 keep their dtype; NumPy/torch integers (and booleans) become float64; other
  dtypes (float16, complex, object, ...) are a TypeError;
- NaN and Inf are a ValueError giving the first bad index;
- range checks (u in (0, 1), sigma > 0, ...) give the first offending index and value.
"""
from __future__ import annotations

import math

import numpy as np

from . import registry
from ._validate import as_float_array

NUMPY_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def kind(x) -> str:
    """The registry's array kind ("numpy", "torch", "cuda"): the one that dispatch also uses."""
    return registry.array_kind(x)


def device_array(x):
    """x as a numba device array (itself if it already is one; a zero-copy view otherwise)."""
    if getattr(x, "__cuda_ndarray__", False) and hasattr(x, "copy_to_host"):
        return x  # a numba device array, real or simulated
    from numba import cuda

    return cuda.as_cuda_array(x)


def match_kind(out, like):
    """A result in the array type of the input it came from.

    Only the CUDA simulator needs this: its plain device arrays lack ``__cuda_array_interface__``,
    so the numba_cuda backend hands out a subclass that has it (and that ``array_kind`` therefore
    sees as a CUDA array); results made by ``cuda.device_array`` or ``reshape`` are re-wrapped in the
    input's subclass (zero-copy) so that they can be fed back in.
    """
    if (type(out) is not type(like) and isinstance(like, type(out)) and hasattr(out, "_ary")
            and kind(like) == "cuda"):
        return type(like)(out._ary)
    return out


def _torch():
    import torch

    return torch


# --------------------------------------------------------------------------------------------
# Conversions


def to_host(x) -> np.ndarray:
    """A NumPy copy (or view) of any supported array."""
    k = kind(x)
    if k == "torch":
        return x.detach().cpu().numpy()
    if k == "cuda":
        return device_array(x).copy_to_host()
    return np.asarray(x)


def like(a: np.ndarray, ref):
    """NumPy array ``a`` moved to the kind (and device) of ``ref``."""
    k = kind(ref)
    if k == "torch":
        torch = _torch()
        return torch.as_tensor(np.ascontiguousarray(a), device=ref.device)
    if k == "cuda":
        from numba import cuda

        return cuda.to_device(np.ascontiguousarray(a))
    return a


def device_key(x) -> tuple:
    """Identifies where an array lives, for caching converted constants (factorisations, labels)."""
    k = kind(x)
    if k == "torch":
        return ("torch", str(x.device))
    if k == "cuda":
        from numba import cuda

        return ("cuda", getattr(cuda.get_current_device(), "id", 0))
    return ("numpy",)


def flat(x):
    """A contiguous 1-D view (or copy) of x, in x's kind."""
    k = kind(x)
    if k == "torch":
        return x.reshape(-1)
    if k == "cuda":
        from numba import cuda

        arr = device_array(x)
        if not arr.is_c_contiguous():
            arr = cuda.to_device(arr.copy_to_host())  # rare: numba cannot copy strided device arrays
        return arr.reshape(arr.size)
    return np.ascontiguousarray(x).reshape(-1)


def reshape(x, shape):
    return x.reshape(shape)


def dtype_name(x) -> str:
    return str(x.dtype).replace("torch.", "")


def eps_of(x) -> float:
    """Machine epsilon of x's float dtype."""
    return float(np.finfo(np.dtype(dtype_name(x))).eps)


# --------------------------------------------------------------------------------------------
# Validation


def as_float(x, name: str, *, max_ndim: int = 64):
    """x as a float32/float64 array of its own kind, finite, never copied unless cast."""
    k = kind(x)
    if k == "torch":
        torch = _torch()
        if x.dtype in (torch.float32, torch.float64):
            out = x
        elif not x.dtype.is_floating_point and not x.dtype.is_complex:
            out = x.to(torch.float64)  # integers and booleans, like NumPy input
        else:
            raise TypeError(f"{name} has dtype {x.dtype}; only float32 and float64 are supported "
                            f"(cast with {name}.float() or {name}.double())")
    elif k == "cuda":
        out = device_array(x)
        if np.dtype(out.dtype) not in NUMPY_FLOATS:
            raise TypeError(f"{name} has dtype {out.dtype}; CUDA arrays must be float32 or float64")
    else:
        return as_float_array(x, name, max_ndim=max_ndim)
    if out.ndim > max_ndim:
        raise ValueError(f"{name} must be at most {max_ndim}-D, got shape {tuple(out.shape)}")
    check_range(out, name)
    return out


def check_range(x, name: str, low: float = -math.inf, high: float = math.inf, *,
                low_open: bool = True, high_open: bool = True, what: str | None = None) -> None:
    """Every entry finite and in the interval; else a ValueError naming ``name`` and the index.

    NaN fails every comparison, so one "inside the interval" test also catches NaN; Inf is caught
    because the default interval is open at +-inf.
    """
    k = kind(x)
    if k == "cuda":
        from .backends.numba_cuda.validate import count_outside

        if count_outside(x, low, high, low_open, high_open) == 0:
            return
        x = to_host(x)  # the error path only: find the index on the host
    elif k == "torch":
        if x.numel() == 0:
            return
        inside = _inside(x, low, high, low_open, high_open)
        if bool(inside.all()):
            return
        x = to_host(x)
    arr = np.asarray(x)
    if arr.size == 0:
        return
    with np.errstate(invalid="ignore"):
        inside = _inside(arr, low, high, low_open, high_open)
    if inside.all():
        return
    where = tuple(int(i) for i in np.argwhere(~inside)[0])
    value = arr[where]
    at = where[0] if len(where) == 1 else where
    if not np.isfinite(value):
        kind_ = "NaN" if np.isnan(value) else "Inf"
        raise ValueError(f"{name} contains {kind_} at index {at}; every entry must be finite")
    lo = ("(" if low_open else "[") + f"{low:g}"
    hi = f"{high:g}" + (")" if high_open else "]")
    need = what or f"in {lo}, {hi}"
    raise ValueError(f"{name} must be {need}; {name}[{at}] = {float(value)!r}")


def _inside(x, low, high, low_open, high_open):
    lo = (x > low) if low_open else (x >= low)
    hi = (x < high) if high_open else (x <= high)
    return lo & hi


def check_same_shape(a, a_name: str, b, b_name: str) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{b_name} must have the shape of {a_name}: {a_name} has shape "
                         f"{tuple(a.shape)}, {b_name} has shape {tuple(b.shape)}")


def as_labels(groups, name: str = "groups") -> np.ndarray:
    """Integer labels as a host int64 array (labels are small and fixed; relabelling is a sort).

    Any integer values are allowed (not necessarily 0..k-1, negatives included); floats, booleans
    and anything else are a TypeError: a float label like 0.1 + 0.2 would tie weights by accident.
    """
    k = kind(groups)
    if k == "numpy":
        if isinstance(groups, (str, bytes)):
            raise TypeError(f"{name} must be an integer array, got {type(groups).__name__}")
        try:
            arr = np.asarray(groups)
        except Exception as exc:
            raise TypeError(f"{name} must be an integer array (could not convert: {exc})") from None
    else:
        arr = to_host(groups)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array (one label per weight), got dtype "
                        f"{arr.dtype}; convert with np.asarray({name}, dtype=np.int64) if the "
                        f"values are whole numbers")
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.size and arr.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} has labels above 2**63 - 1; relabel them")
    return arr.astype(np.int64, copy=False)
