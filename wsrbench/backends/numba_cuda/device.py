"""CUDA array primitives: zero-copy views, the simulator's array type, casts and the range check.

This module implements ``wsrbench.core.contract.ArrayPrimitives``: ``wsrbench.core.arrays`` and
``wsrbench.core.checks`` use it for CUDA arrays through the registry (its backend entry names this
module), and it imports neither of them. Checking a CUDA array costs one kernel and a one-int copy;
the host sees the data only to word an error message.

Under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1, used by CI without a GPU) a numba device array
is a host array in disguise without ``__cuda_array_interface__``; ``SimDeviceArray`` exposes one
(its data pointer is host memory, which is what "device memory" is in the simulator), so
``wsrbench.core.arrays.array_kind`` classifies it as a CUDA array like a real one.
"""
from __future__ import annotations

import numpy as np
from numba import cuda

from .launch import SIMULATOR, THREADS, blocks, grid

if SIMULATOR:
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray as _DeviceArrayBase

    class SimDeviceArray(_DeviceArrayBase):
        """A simulator device array that also exposes ``__cuda_array_interface__``."""

        @property
        def __cuda_array_interface__(self):
            iface = dict(self._ary.__array_interface__)
            return {"shape": iface["shape"], "typestr": iface["typestr"],
                    "strides": iface.get("strides"), "data": iface["data"], "version": 3}

        def reshape(self, *args, **kwargs):  # keep the class (the base returns a plain array)
            return SimDeviceArray(self._ary.reshape(*args, **kwargs))

    def wrap_sim(a):
        return a if isinstance(a, SimDeviceArray) else SimDeviceArray(a._ary)

    class _HostView:
        def __init__(self, iface):
            self.__array_interface__ = {"shape": tuple(iface["shape"]), "typestr": iface["typestr"],
                                        "strides": iface.get("strides"), "data": iface["data"],
                                        "version": 3}

    def _from_cai(obj):
        # In the simulator "device" memory is host memory: view it zero-copy as a NumPy array.
        return _DeviceArrayBase(np.asarray(_HostView(obj.__cuda_array_interface__)))
else:
    SimDeviceArray = None

    def wrap_sim(a):
        return a

    def _from_cai(obj):
        return cuda.as_cuda_array(obj)


def is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def device_array(x):
    """x as a numba device array, zero-copy (itself if it already is one)."""
    if getattr(x, "__cuda_ndarray__", False) and hasattr(x, "copy_to_host"):
        return x  # a numba device array (real or simulated)
    if hasattr(x, "__cuda_array_interface__"):
        return _from_cai(x)
    raise TypeError(f"expected a CUDA array (a numba device array, a torch CUDA tensor or an "
                    f"object with __cuda_array_interface__), got {type(x).__name__}")


def same_kind(like, W):
    """Our result W (a numba device array) in the kind of ``like``, zero-copy."""
    if is_torch(like):
        import torch

        return torch.as_tensor(W, device=like.device)
    if SIMULATOR and type(like) is not type(W):
        # SimDeviceArray in, or a foreign object: give the result the interface a real numba
        # device array has (a plain simulator array in gets a plain one back).
        return wrap_sim(W)
    return W


@cuda.jit(cache=True)
def _copy_rows(src, dst):
    """dst (n, d) <- src cast to dst's dtype."""
    t = cuda.grid(1)
    n, d = dst.shape
    if t < n * d:
        r = t // d
        dst[r, t - r * d] = src[r, t - r * d]


@cuda.jit(cache=True)
def _copy_1d(src, dst):
    """dst (d,) <- src (d,), any strides, cast to dst's dtype."""
    t = cuda.grid(1)
    if t < dst.shape[0]:
        dst[t] = src[t]


def converted(dev, dtype) -> object:
    """A new C-contiguous device array with dev's values in ``dtype`` (1-D or 2-D input)."""
    out = cuda.device_array(dev.shape, dtype)
    if out.size:
        (_copy_1d if dev.ndim == 1 else _copy_rows)[grid(out.size)](dev, out)
    return out


def contiguous(dev):
    """dev itself when C-contiguous, else a contiguous device copy of it."""
    if dev.is_c_contiguous():
        return dev
    if dev.ndim <= 2:
        return converted(dev, dev.dtype)
    return cuda.to_device(np.ascontiguousarray(dev.copy_to_host()))  # rare: >2-D strided


@cuda.jit(cache=True)
def _first_outside(x, low, high, low_open, high_open, first):
    start, stride = cuda.grid(1), cuda.gridsize(1)
    for i in range(start, x.shape[0], stride):
        v = x[i]
        lo_ok = v > low if low_open else v >= low
        hi_ok = v < high if high_open else v <= high
        if not (lo_ok and hi_ok):  # NaN fails both comparisons
            cuda.atomic.min(first, 0, i)


def first_outside(x, low: float, high: float, low_open: bool, high_open: bool) -> int:
    """Flat (C-order) index of the first entry outside the interval (NaN always is), or -1."""
    arr = contiguous(device_array(x))
    if arr.size == 0:
        return -1
    arr = arr.reshape(arr.size)
    first = cuda.to_device(np.array([arr.size], dtype=np.int64))
    _first_outside[blocks(arr.size), THREADS](arr, float(low), float(high), bool(low_open),
                                              bool(high_open), first)
    i = int(first.copy_to_host()[0])  # the check's one host sync
    return -1 if i == arr.size else i
