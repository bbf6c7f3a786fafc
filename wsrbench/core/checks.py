"""Input checks shared by every public function, for every array kind
(docs/design.md#the-backend-contract-and-the-registry).

Every error names the argument and says how to fix it; nothing here mutates its input. The rules:

- float32 and float64 keep their dtype; integers and booleans become float64 (NumPy, torch and
  CUDA arrays alike); other dtypes (float16, complex, object, strings, ...) are a TypeError;
- NaN and Inf are a ValueError giving the first bad index; range checks (u in (0, 1), sigma > 0,
  ...) give the first offending index and value;
- scalars (lam, l1, rho, ...) are finite real numbers in their interval.

A checked array keeps its kind (``wsrbench.core.arrays``): torch tensors are checked with tensor ops on
their device, CUDA arrays by one kernel and a one-int copy (the CUDA backend's ``ArrayPrimitives``,
through the registry); the data come to the host only to word an error message.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .arrays import array_kind, device_array, dtype_of, primitives, to_host
from .numerics import safe_bound

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_CAST_HINT = {
    "numpy": "{name}.astype(np.float32) or np.float64",
    "torch": "{name}.float() or {name}.double()",
    "cuda": "{name}.astype(np.float32) or np.float64",
}


def as_float(x: Any, name: str = "x", *, max_ndim: int = 64, in_range: bool = False) -> Any:
    """``x`` as a finite float32/float64 array of its own kind (a view unless it must be cast).

    Parameters
    ----------
    x : array_like, torch.Tensor or CUDA array
        The input. NumPy input may be anything ``np.asarray`` accepts.
    name : str
        The argument's name, used in error messages.
    max_ndim : int
        Most dimensions allowed.
    in_range : bool
        Also return whether every entry is within ``numerics.safe_bound(d)`` (d the last axis),
        found in the same pass as the finiteness check.

    Returns
    -------
    array of x's kind, or (array, bool) with ``in_range``
        float32/float64 (integers and booleans converted to float64). May be a read-only view of
        the input: callers never write into it.

    Raises
    ------
    TypeError
        For a non-numeric or unsupported dtype (float16, complex, ...).
    ValueError
        For too many dimensions, or a NaN or Inf entry (the first is named).
    """
    kind = array_kind(x)
    if kind == "numpy":
        if isinstance(x, (str, bytes)):
            raise TypeError(f"{name} must be a numeric array, got {type(x).__name__}")
        try:
            x = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be a numeric array (could not convert: {exc})") from None
    elif kind == "cuda" and not getattr(x, "__cuda_ndarray__", False):
        x = _cuda_view(x)  # a foreign CUDA array (CuPy, ...): a zero-copy numba view of it
    elif kind == "torch" and x.is_neg():
        # A lazily negated view (z.conj().imag): resolved once here, so that every backend and
        # every conversion (.numpy(), DLPack) sees ordinary memory.
        x = x.resolve_neg()
    dtype = _numpy_dtype(x)
    if dtype is not None and dtype.kind == "f" and not dtype.isnative:
        # Data written on a machine of the other byte order (np.load): same values, native order.
        x = x.astype(dtype.newbyteorder("="))
        dtype = x.dtype
    if dtype is not None and dtype.kind in "biu":
        out = _cast(x, kind, np.dtype(np.float64))
    elif dtype is not None and dtype in FLOAT_DTYPES:
        out = x if kind != "cuda" else _contiguous_cuda(x)
    elif (dtype is not None and dtype.kind == "f") or _is_low_float(x, kind):
        # float16 and bfloat16 (no NumPy equivalent) are the same mistake: one message
        hint = _CAST_HINT[kind].format(name=name)
        raise TypeError(f"{name} has dtype {x.dtype}; only float32 and float64 are supported "
                        f"(cast with {hint})")
    else:
        raise TypeError(f"{name} must be a real numeric array, got dtype {x.dtype} "
                        f"(convert it to float32 or float64)")
    if out.ndim > max_ndim:
        hint = ("; reshape it to (n_rows, d) so that each row is one vector" if max_ndim == 2
                else "")
        raise ValueError(f"{name} must be at most {max_ndim}-D, got shape {tuple(out.shape)}{hint}")
    if not in_range:
        check_range(out, name)
        return out
    # One pass answers both questions: an entry beyond the safe bound
    # (docs/design.md#the-whole-floating-point-range)
    # is either non-finite (an error, worded by check_range) or finite and large (solve scaled).
    d = int(tuple(out.shape)[-1]) if out.ndim else 1
    bound = safe_bound(d)
    if kind == "torch" and out.numel():
        # One reduction for both questions (aminmax propagates NaN to both ends): a NaN/Inf
        # entry fails the first test and is worded by check_range; the rest is finite.
        lo, hi = _torch_min_max(out)
        inside = -bound <= lo and hi <= bound
        if not inside and not (math.isfinite(lo) and math.isfinite(hi)):
            check_range(out, name)
        return out, inside
    if bound >= float(np.finfo(_numpy_dtype(out)).max):
        check_range(out, name)  # float32 data (< 2^128) are always within the bound
        inside = True
    else:
        inside = _first_outside(out, -bound, bound, False, False) < 0
        if not inside:
            check_range(out, name)
    return out, inside


def as_float_array(x: Any, name: str = "x", *, max_ndim: int = 2) -> np.ndarray:
    """:func:`as_float` as a NumPy array (tensors and CUDA arrays are copied to the host)."""
    if array_kind(x) != "numpy":
        x = to_host(x)
    return as_float(x, name, max_ndim=max_ndim)


def as_rows(arr: Any) -> Any:
    """View a 1-D or 2-D array of any kind as 2-D rows (a 1-D vector is one row)."""
    if arr.ndim == 0:
        raise ValueError("x must be 1-D or 2-D, got a scalar; wrap it as [x]")
    return arr.reshape(1, arr.shape[0]) if arr.ndim == 1 else arr


def as_prox_input(x: Any, name: str = "x") -> tuple[Any, Any]:
    """(arr, X): a prox input checked (:func:`as_float`, at most 2-D) and its 2-D row view."""
    arr = as_float(x, name, max_ndim=2)
    return arr, as_rows(arr)


def as_prox_rows(x: Any, name: str = "x") -> tuple[Any, Any, bool]:
    """(arr, X, in_range): :func:`as_prox_input` and whether every entry is within
    ``numerics.safe_bound(d)`` (found in the same pass as the finiteness check)."""
    arr, inside = as_float(x, name, max_ndim=2, in_range=True)
    return arr, as_rows(arr), inside


def check_range(x: Any, name: str, low: float = -math.inf, high: float = math.inf, *,
                low_open: bool = True, high_open: bool = True, what: str | None = None) -> None:
    """Every entry finite and in the interval; else a ValueError naming ``name`` and the index.

    NaN fails every comparison, so one "inside the interval" test also catches NaN; Inf is caught
    because the default interval is open at +-inf.
    """
    first = _first_outside(x, low, high, low_open, high_open)
    if first < 0:
        return
    shape = tuple(x.shape)
    where = tuple(int(i) for i in np.unravel_index(first, shape))
    value = float(to_host(x).reshape(-1)[first]) if array_kind(x) != "numpy" else \
        float(np.asarray(x)[where])
    at = where[0] if len(where) == 1 else where
    if not np.isfinite(value):
        bad = "NaN" if np.isnan(value) else "Inf"
        raise ValueError(f"{name} contains {bad} at index {at}; every entry must be finite")
    lo = ("(" if low_open else "[") + f"{low:g}"
    hi = f"{high:g}" + (")" if high_open else "]")
    need = what or f"in {lo}, {hi}"
    raise ValueError(f"{name} must be {need}; {name}[{at}] = {value!r}")


def check_scalar(value: Any, name: str, *, low: float = 0.0, high: float | None = None) -> float:
    """A finite real number in [low, high]; returned as a Python float."""
    if type(value) is float and math.isfinite(value) and value >= low and (
            high is None or value <= high):
        return value  # the common case, without the generic checks below
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not isinstance(value, numbers.Real):
        given = type(value).__name__
        if array_kind(value) != "numpy":  # a tensor (requiring grad or not) or a CUDA array
            value = to_host(value)
        try:
            arr = np.asarray(value)
        except Exception:
            arr = np.asarray(None)
        if arr.ndim != 0 or arr.dtype.kind not in "iuf":
            shape = f" of shape {arr.shape}" if arr.ndim else ""
            raise TypeError(f"{name} must be a real number (a scalar), got "
                            f"{given}{shape}")
        value = arr.item()
    try:
        value = float(value)
    except OverflowError:
        raise ValueError(f"{name} must be finite; got an integer of {len(str(abs(value)))} digits, "
                         f"beyond the float64 range (about 1.8e308)") from None
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if value < low or (high is not None and value > high):
        rng = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {rng}, got {value}")
    return value


def check_same_shape(a: Any, a_name: str, b: Any, b_name: str) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"{b_name} must have the shape of {a_name}: {a_name} has shape "
                         f"{tuple(a.shape)}, {b_name} has shape {tuple(b.shape)}")


def as_labels(groups: Any, name: str = "groups") -> np.ndarray:
    """Integer labels as a host int64 array (labels are small and fixed; relabelling is a sort).

    Any integer values are allowed (not necessarily 0..k-1, negatives included); floats, booleans
    and anything else are a TypeError: a float label like 0.1 + 0.2 would tie weights by accident.
    """
    if array_kind(groups) == "numpy":
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
    if (arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.size
            and arr.max() > np.iinfo(np.int64).max):
        raise ValueError(f"{name} has labels above 2**63 - 1; relabel them")
    return arr.astype(np.int64, copy=False)


# ---------------------------------------------------------------------------------------------
# Per-kind primitives: the dtype, a cast, and the first entry outside an interval.

def _is_low_float(x: Any, kind: str) -> bool:
    """A floating dtype narrower than float32 that NumPy cannot name (torch.bfloat16, ...)."""
    dt = getattr(x, "dtype", None)
    return kind == "torch" and bool(getattr(dt, "is_floating_point", False)) and \
        getattr(dt, "itemsize", 4) < 4


def _numpy_dtype(x: Any) -> np.dtype | None:
    """x's dtype as a NumPy dtype, or None when NumPy has no equivalent (torch.bfloat16, ...)."""
    try:
        return dtype_of(x)
    except TypeError:
        return None


def _cast(x: Any, kind: str, dtype: np.dtype) -> Any:
    if kind == "torch":
        import torch

        return x.to(getattr(torch, dtype.name))
    if kind == "cuda":
        device = primitives("cuda")
        return device.same_kind(x, device.converted(device_array(x), dtype))
    return x.astype(dtype)


def _cuda_view(x: Any) -> Any:
    device = primitives("cuda")
    return device.same_kind(x, device_array(x))


def _contiguous_cuda(x: Any) -> Any:
    device = primitives("cuda")
    dev = device_array(x)
    if dev.is_c_contiguous() or dev.ndim > 2:
        return x
    return device.same_kind(x, device.contiguous(dev))


def _torch_min_max(x: Any) -> tuple[float, float]:
    """(min, max) of a non-empty tensor as Python floats, NaN if any entry is NaN; one sync."""
    import torch

    lo, hi = torch.aminmax(x)
    if x.device.type == "cpu":
        return lo.item(), hi.item()
    return tuple(torch.stack((lo, hi)).tolist())  # one device-to-host copy, not two


def torch_isfinite_all(x: Any) -> Any:
    import torch

    return torch.isfinite(x).all()


def _inside(x: Any, low: float, high: float, low_open: bool, high_open: bool) -> Any:
    lo = (x > low) if low_open else (x >= low)
    hi = (x < high) if high_open else (x <= high)
    return lo & hi


def _first_outside(x: Any, low: float, high: float, low_open: bool, high_open: bool) -> int:
    """Flat index of the first entry outside the interval (NaN always is), or -1."""
    kind = array_kind(x)
    if kind == "cuda":
        return primitives("cuda").first_outside(x, low, high, low_open, high_open)
    if kind == "torch":
        if x.numel() == 0:
            return -1
        if low == -math.inf and high == math.inf and bool(torch_isfinite_all(x)):
            return -1  # the finiteness check in 2 ops and one sync (the prox's hot path)
        outside = ~_inside(x, low, high, low_open, high_open).reshape(-1)
        if not bool(outside.any()):  # one host sync
            return -1
        return int(outside.nonzero()[0, 0])
    arr = np.asarray(x)
    if arr.size == 0:
        return -1
    if arr.dtype.kind == "f":
        # min and max propagate NaN, so when both lie inside the interval every entry does: two
        # vectorised reductions and no boolean temporaries (this check runs on every prox call and
        # cost about a tenth of a sort at d = 1e6 as three full-size masks)
        with np.errstate(invalid="ignore"):
            ends = np.array([arr.min(), arr.max()])
            if _inside(ends, low, high, low_open, high_open).all():
                return -1
    with np.errstate(invalid="ignore"):
        inside = _inside(arr, low, high, low_open, high_open)
    if inside.all():
        return -1
    return int(np.flatnonzero(~inside.reshape(-1))[0])
