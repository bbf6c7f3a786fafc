"""Array kinds and conversions between them (docs/design.md#the-backend-contract-and-the-registry).

wsrbench accepts three kinds of arrays, and every result comes back in the kind (and on the device)
it came from:

- ``"numpy"``: NumPy arrays and anything ``np.asarray`` takes;
- ``"torch"``: torch tensors, on any device;
- ``"cuda"``: other GPU arrays: numba device arrays (real or simulated) and anything exposing
  ``__cuda_array_interface__`` (CuPy, ...).

"Kind" means only this in wsrbench (an input family's typical/worst-case label is its *regime*).
torch and numba are imported only when an array of their kind shows up. The CUDA array primitives
(:class:`wsrbench.core.contract.ArrayPrimitives`) belong to the backend that handles CUDA arrays:
the registry names it and installs the loader (:func:`set_primitives_loader`), so that this module
imports no backend.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


def array_kind(x) -> str:
    """'torch' for torch tensors, 'cuda' for other GPU arrays, 'numpy' for everything else."""
    mod = type(x).__module__.split(".")[0]
    if mod == "torch":
        return "torch"
    # numba's simulator device arrays expose __cuda_ndarray__ but no __cuda_array_interface__
    if hasattr(x, "__cuda_array_interface__") or getattr(x, "__cuda_ndarray__", False):
        return "cuda"
    return "numpy"


_PRIMITIVES_LOADER: list[Callable[[str], object]] = []


def set_primitives_loader(loader: Callable[[str], object]) -> None:
    """Install ``loader(kind) -> ArrayPrimitives`` (the registry does, at its import)."""
    _PRIMITIVES_LOADER[:] = [loader]


def primitives(kind: str):
    """The array primitives (``wsrbench.core.contract.ArrayPrimitives``) for arrays of ``kind``."""
    if not _PRIMITIVES_LOADER:
        raise RuntimeError(f"no array primitives for {kind} arrays: import wsrbench (its registry "
                           f"installs them) before handling such arrays")
    return _PRIMITIVES_LOADER[0](kind)


def _device():
    return primitives("cuda")


def device_array(x):
    """x as a numba device array, zero-copy (itself if it already is one)."""
    return _device().device_array(x)


#: torch dtype -> NumPy dtype, filled on first sight (every checked call asks).
_TORCH_DTYPES: dict = {}


def dtype_of(x) -> np.dtype:
    """The NumPy dtype of an array of any kind (torch.float32 -> float32)."""
    if array_kind(x) == "torch":
        dt = _TORCH_DTYPES.get(x.dtype)
        if dt is None:  # TypeError for dtypes NumPy lacks (bfloat16): never cached
            dt = _TORCH_DTYPES[x.dtype] = np.dtype(str(x.dtype).replace("torch.", ""))
        return dt
    return np.dtype(x.dtype)


def to_host(x) -> np.ndarray:
    """A NumPy copy (or view, for NumPy input and CPU tensors) of any supported array."""
    k = array_kind(x)
    if k == "torch":
        return x.detach().cpu().resolve_neg().resolve_conj().numpy()
    if k == "cuda":
        return device_array(x).copy_to_host()
    return np.asarray(x)


def like(a: np.ndarray, ref):
    """NumPy array ``a`` moved to the kind (and device) of ``ref``."""
    k = array_kind(ref)
    if k == "torch":
        import torch

        return torch.as_tensor(np.ascontiguousarray(a), device=ref.device)
    if k == "cuda":
        from numba import cuda

        return cuda.to_device(np.ascontiguousarray(a))
    return a


def match_kind(out, like_this):
    """A result in the array type of the input it came from.

    Only the CUDA simulator needs this: its plain device arrays lack ``__cuda_array_interface__``,
    so the numba_cuda backend hands out a subclass that has it (and that ``array_kind`` therefore
    sees as a CUDA array); results made by ``cuda.device_array`` or ``reshape`` are re-wrapped in the
    input's subclass (zero-copy) so that they can be fed back in.
    """
    if (type(out) is not type(like_this) and isinstance(like_this, type(out))
            and hasattr(out, "_ary") and array_kind(like_this) == "cuda"):
        return type(like_this)(out._ary)
    return out


def device_key(x) -> tuple:
    """Where an array lives, for caching converted constants (factorisations, labels)."""
    k = array_kind(x)
    if k == "torch":
        return ("torch", str(x.device))
    if k == "cuda":
        from numba import cuda

        return ("cuda", getattr(cuda.get_current_device(), "id", 0))
    return ("numpy",)


def flat(x):
    """A contiguous 1-D view (or copy) of x, in x's kind."""
    k = array_kind(x)
    if k == "torch":
        return x.reshape(-1)
    if k == "cuda":
        arr = _device().contiguous(device_array(x))
        return arr.reshape(arr.size)
    return np.ascontiguousarray(x).reshape(-1)
