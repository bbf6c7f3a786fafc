"""Input checking shared by every public function.

Every error names the argument and says how to fix it; nothing here mutates its input.
"""
from __future__ import annotations

import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_float_array(x, name: str = "x", *, max_ndim: int = 2) -> np.ndarray:
    """Return ``x`` as a float32/float64 NumPy array of at most ``max_ndim`` dimensions.

    Integers and booleans become float64; float32 and float64 keep their dtype; anything
    else (strings, objects, complex, float16, longdouble) is a TypeError. The array may be a
    read-only view of the input: callers never write into it.
    """
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array, got {type(x).__name__}")
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be a numeric array (could not convert: {exc})") from None
    if arr.dtype.kind in "biu":
        arr = arr.astype(np.float64)
    elif arr.dtype.kind == "f":
        if arr.dtype not in FLOAT_DTYPES:
            raise TypeError(
                f"{name} has dtype {arr.dtype}; only float32 and float64 are supported "
                f"(cast with {name}.astype(np.float32) or np.float64)"
            )
    else:
        raise TypeError(
            f"{name} must be a real numeric array, got dtype {arr.dtype} "
            f"(convert it with np.asarray({name}, dtype=float))"
        )
    if arr.ndim > max_ndim:
        raise ValueError(
            f"{name} must be at most {max_ndim}-D, got shape {arr.shape}; "
            f"reshape it to (n_rows, d) so that each row is one vector"
        )
    check_finite(arr, name)
    return arr


def check_finite(arr: np.ndarray, name: str) -> None:
    if arr.size and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        where = tuple(int(i) for i in bad)
        kind = "NaN" if np.isnan(arr[where]) else "Inf"
        raise ValueError(f"{name} contains {kind} at index {where if len(where) != 1 else where[0]}; "
                         f"every entry must be finite")


def check_scalar(value, name: str, *, low: float = 0.0, high: float | None = None) -> float:
    """A finite real number in [low, high]; returned as a Python float."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not isinstance(value, numbers.Real):
        arr = np.asarray(value)
        if arr.ndim != 0 or arr.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be a real number (a scalar), got {type(value).__name__}")
        value = arr.item()
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if value < low or (high is not None and value > high):
        rng = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {rng}, got {value}")
    return value


def as_rows(arr: np.ndarray) -> np.ndarray:
    """View a 0/1/2-D array as 2-D rows (a 1-D vector is one row)."""
    if arr.ndim == 0:
        raise ValueError("x must be 1-D or 2-D, got a scalar; wrap it as [x]")
    return arr.reshape(1, -1) if arr.ndim == 1 else arr
