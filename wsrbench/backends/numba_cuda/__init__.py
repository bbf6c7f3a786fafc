"""The numba-cuda backend: the prox as CUDA kernels written with numba-cuda.

Pipeline for all rows of a (n, d) device array, without a host round trip of the data:
``sort.sort_rows`` (stable, per row), ``finish.center_rows`` (float64, centred at the median
element), the partition kernels of the chosen algorithm (``imminent_collisions``,
``search_collisions``, ``pava``: one module each, so each kernel is found by its name), then
``finish.finish`` (block values from float64 sums of the original data, L1, rho, un-sort).
Only the per-row ``rounds``/``clusters`` counters come back to the host, in one copy at the end.

Accepted input: numba device arrays, torch CUDA tensors, and any object exposing
``__cuda_array_interface__`` (used zero-copy). Output: a numba device array, or a torch tensor
on the same device for torch input (zero-copy wrap of our result). For other foreign kinds
(CuPy, ...) the result is a numba device array, which itself exposes
``__cuda_array_interface__`` and so converts zero-copy (``cupy.asarray(w)``).

Under the CUDA simulator (NUMBA_ENABLE_CUDASIM=1, used by CI without a GPU) a numba device array
is a host array in disguise without ``__cuda_array_interface__``; ``from_numpy`` then returns a
``SimDeviceArray`` that exposes one (its data pointer is host memory, which is what "device
memory" is in the simulator), so ``array_kind`` classifies it as a CUDA array like a real one.

Host synchronisations per call (``HOST_SYNCS``): one for input validation (the finiteness test
of ``as_rows``), the algorithm's own (imminent: one per round + 1; search, pava: none) and one
for the final rounds/clusters copy.
"""
from __future__ import annotations

import math

import numpy as np
from numba import cuda

from . import finish as _finish
from . import imminent_collisions, pava, search_collisions
from .launch import SIMULATOR, grid
from .sort import sort_rows

PARTITIONERS = {
    "imminent_collisions": imminent_collisions.partition,
    "search_collisions": search_collisions.partition,
    "pava": pava.partition,
}

HOST_SYNCS = {
    "imminent_collisions": "one per merge round plus one for the round that finds no violation",
    "search_collisions": "none (every level runs its worst-case number of search steps)",
    "pava": "none",
}

# Host syncs made inside the partition step by the last prox_rows call (tests read it).
last_partition_syncs = 0


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

    def _wrap_sim(a):
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

    def _from_cai(obj):
        return cuda.as_cuda_array(obj)


def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _device_array(x):
    """x as a numba device array, zero-copy."""
    if getattr(x, "__cuda_ndarray__", False) and hasattr(x, "copy_to_host"):
        return x  # a numba device array (real or simulated)
    if hasattr(x, "__cuda_array_interface__"):
        return _from_cai(x)
    raise TypeError(f"x must be a CUDA array (a numba device array, a torch CUDA tensor or an "
                    f"object with __cuda_array_interface__), got {type(x).__name__}")


def _same_kind(like, W):
    """Our result W (numba device array) in the kind of ``like``, zero-copy."""
    if _is_torch(like):
        import torch

        return torch.as_tensor(W, device=like.device)
    if SIMULATOR and type(like) is not type(W):
        # SimDeviceArray in, or a foreign object: give the result the interface a real numba
        # device array has (a plain simulator array in gets a plain one back).
        return _wrap_sim(W)
    return W


@cuda.jit(cache=True)
def _first_nonfinite(X, bad):
    t = cuda.grid(1)
    n, d = X.shape
    if t >= n * d:
        return
    r = t // d
    k = t - r * d
    v = X[r, k]
    if not math.isfinite(v):
        cuda.atomic.min(bad, 0, t)


@cuda.jit(cache=True)
def _copy_rows(src, dst):
    """dst (n, d) <- src cast to dst's dtype (integers -> float64)."""
    t = cuda.grid(1)
    n, d = dst.shape
    if t < n * d:
        r = t // d
        dst[r, t - r * d] = src[r, t - r * d]


@cuda.jit(cache=True)
def _copy_1d(src, dst):
    """dst (1, d) <- src (d,) (strided or integer vectors)."""
    t = cuda.grid(1)
    if t < dst.shape[1]:
        dst[0, t] = src[t]


def as_rows(x):
    """Validate a CUDA array like ``_validate.as_float_array`` (same messages) -> (arr, 2-D rows).

    arr keeps x's kind (used for the output shape); rows is a 2-D view (or a converted copy for
    integer input or a strided 1-D vector). One host sync: the finiteness test.
    """
    dev = _device_array(x)
    dtype = np.dtype(dev.dtype)
    if dev.ndim > 2:
        raise ValueError(f"x must be at most 2-D, got shape {tuple(dev.shape)}; "
                         f"reshape it to (n_rows, d) so that each row is one vector")
    if dev.ndim == 0:
        raise ValueError("x must be 1-D or 2-D, got a scalar; wrap it as [x]")
    if dtype.kind in "biu" or (dtype.kind == "f" and dtype.itemsize in (4, 8)):
        pass
    elif dtype.kind == "f":
        raise TypeError(f"x has dtype {dtype}; only float32 and float64 are supported "
                        f"(cast with x.astype(np.float32) or np.float64)")
    else:
        raise TypeError(f"x must be a real numeric array, got dtype {dtype} "
                        f"(convert it with x.astype(float))")
    convert = dtype.kind in "biu"
    if convert or (dev.ndim == 1 and not dev.is_c_contiguous()):
        # A new contiguous (rows, d) array: float64 for integer input (as NumPy input would be).
        rows = cuda.device_array((1, dev.shape[0]) if dev.ndim == 1 else dev.shape,
                                 "float64" if convert else dtype)
        if rows.size:
            (_copy_1d if dev.ndim == 1 else _copy_rows)[grid(rows.size)](dev, rows)
        new = rows.reshape(dev.shape[0]) if dev.ndim == 1 else rows
        arr = _same_kind(x, new)
    else:
        rows = dev.reshape(1, dev.shape[0]) if dev.ndim == 1 else dev
        arr = x if (_is_torch(x) or getattr(x, "__cuda_ndarray__", False)) else dev
    if rows.size:
        bad = _finish.full(1, rows.size, "int64")
        _first_nonfinite[grid(rows.size)](rows, bad)
        t = int(bad.copy_to_host()[0])  # the validation's host sync
        if t < rows.size:
            r, k = divmod(t, rows.shape[1])
            where = (k,) if dev.ndim == 1 else (r, k)
            v = float(rows[r:r + 1, k:k + 1].copy_to_host()[0, 0])
            kind = "NaN" if v != v else "Inf"
            at = where if len(where) != 1 else where[0]
            raise ValueError(f"x contains {kind} at index {at}; every entry must be finite")
    return arr, _same_kind(x, rows)


def prox_rows(X, lam: float, *, l1: float, rho: float, algorithm: str):
    """Backend contract on a 2-D float32/float64 CUDA array; see wsrbench.registry."""
    global last_partition_syncs
    partition = PARTITIONERS[algorithm]
    like = X
    X = _device_array(X)
    n, d = X.shape
    W = cuda.device_array((n, d), dtype=X.dtype)
    stats = [{} for _ in range(n)]
    last_partition_syncs = 0
    if n == 0 or d == 0:
        z = np.zeros(n, dtype=np.int64)
        return _same_kind(like, W), z, z.copy(), stats
    g = grid(n * d)
    keys, order = sort_rows(X)
    xs = cuda.device_array((n, d), "float64")
    center = cuda.device_array(n, "float64")
    _finish.center_rows[g](keys, xs, center)
    extra = None
    if d == 1:
        is_start = _finish.full((n, 1), 1, "int8")
        rounds = _finish.full(n, 0, "int64")
    else:
        out = partition(xs, lam)
        is_start, rounds, last_partition_syncs = out[:3]
        extra = out[3] if len(out) > 3 else None
    clusters = _finish.full(n, 0, "int64")
    _finish.finish(is_start, xs, order, center, lam, l1, rho, W, clusters)
    # The one transfer back: every counter in a single copy.
    k = 2 + (len(extra) if extra else 0)
    counts = cuda.device_array((k, n), "int64")
    more = tuple(extra.values()) if extra else (rounds, rounds, rounds)  # unused rows: k = 2
    _stack_rows[grid(k * n)](rounds, clusters, *more, counts)
    host = counts.copy_to_host()
    if extra:
        stats = [{name: int(host[2 + i, r]) for i, name in enumerate(extra)} for r in range(n)]
    return _same_kind(like, W), host[0].copy(), host[1].copy(), stats


@cuda.jit(cache=True)
def _stack_rows(a, b, c, e, f, out):
    t = cuda.grid(1)
    k, n = out.shape
    if t >= k * n:
        return
    i = t // n
    r = t - i * n
    if i == 0:
        out[i, r] = a[r]
    elif i == 1:
        out[i, r] = b[r]
    elif i == 2:
        out[i, r] = c[r]
    elif i == 3:
        out[i, r] = e[r]
    else:
        out[i, r] = f[r]


def from_numpy(a: np.ndarray):
    """A device copy of ``a`` (``cuda.to_device``); under the simulator a SimDeviceArray."""
    if isinstance(a, (str, bytes)):  # the simulator would store it as a 0-d string array
        raise TypeError(f"a device array cannot hold a {type(a).__name__}")
    a = np.asarray(a)
    if not (a.flags.c_contiguous or a.flags.f_contiguous):
        a = np.ascontiguousarray(a)
    dev = cuda.to_device(a)
    return _wrap_sim(dev) if SIMULATOR else dev


def to_numpy(a) -> np.ndarray:
    if _is_torch(a):
        return a.detach().cpu().numpy()
    return _device_array(a).copy_to_host()
