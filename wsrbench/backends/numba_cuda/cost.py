"""Per-call GPU cost counters of the numba-cuda prox (docs/design.md#what-a-backend-provides and
docs/design.md#cost-counted-without-a-gpu).

Every kernel launch of a prox call goes through one ``Cost`` object created by that call, and its
totals are returned in the call's ``stats`` (the same call-level figures in every row's dict),
never kept in module globals:

* ``launches``: kernel launches;
* ``syncs``: host synchronisations (in this backend every one is a blocking device-to-host copy);
* ``d2h_copies``: device-to-host copies (``copy_to_host``), and ``d2h_bytes`` their size;
* ``bytes``: an estimate of the global-memory traffic: for each launch and each array argument,
  min(array bytes, threads x item size), i.e. "each thread reads or writes at most one element of
  each array it is given", except for kernels launched with ``full=True`` (a thread that loops
  over a whole row, e.g. batched PAVA), where every array argument counts in full;
* ``serial_steps``: the longest chain of dependent steps one thread runs, summed over launches
  whose threads loop (PAVA's stack walk): what the bandwidth term cannot see;
* ``shared_steps``: dependent steps whose loads hit shared memory (a thread block's search in a
  tile it loaded once, hull_tiles.py): tens of cycles each instead of a DRAM round trip, so kept
  apart from ``serial_steps`` and charged less by the model (``gpu_model.SHARED_STEP_S``);
* ``depth``: the critical path in dependent steps: every launch is one step (one stream, each
  launch waits for the previous one) plus its ``serial``, ``shared`` and ``loop`` steps (a thread
  folding a chunk of consecutive elements, segscan.py: dependent additions on independent loads,
  so on the critical path but not memory round trips: not in ``serial_steps``; the bytes term
  charges their traffic);
* ``round_depth``: for iterative algorithms (imminent_collisions), the largest depth of one round.

The counts are exact (they count what the code does, in the simulator as on a GPU); ``bytes`` is
a model. ``wsrbench.bench.gpu_model`` turns them into a modelled H100 time.

Dry runs (``Cost(dry=True, script=...)``): the host code runs as usual but launches nothing and
allocates nothing (``empty`` hands out ``Phantom`` arrays that have only a shape and a dtype), so
the counts of a call at d = 1e7 take milliseconds and no memory. The only data-dependent host
decision, imminent_collisions' stopping test, reads its counter from ``script``: the number of
new violations of each round, as the NumPy reference finds them.
"""
from __future__ import annotations

import numpy as np

KEYS = ("launches", "syncs", "d2h_copies", "d2h_bytes", "bytes", "serial_steps", "shared_steps",
        "depth", "round_depth")


def _nbytes(a, threads: int, full: bool) -> int:
    if not hasattr(a, "shape") or not getattr(a, "ndim", 0):
        return 0  # a scalar argument travels in the launch parameters
    size = 1
    for s in a.shape:
        size *= int(s)
    item = a.dtype.itemsize
    return size * item if full else min(size, threads) * item


class Cost:
    """Counters of one prox call; ``cost(kernel, grid)(*args)`` launches and counts."""

    __slots__ = KEYS + ("dry", "_script", "_total")

    def __init__(self, dry: bool = False, script=()):
        for k in KEYS:
            setattr(self, k, 0)
        self.dry = dry
        self._script = iter(script)
        self._total = 0

    def empty(self, shape, dtype):
        """``cuda.device_array(shape, dtype)``, or a ``Phantom`` in a dry run."""
        if self.dry:
            return Phantom(shape, dtype)
        from numba import cuda

        return cuda.device_array(shape, dtype=dtype)

    def __call__(self, kernel, config, *, full: bool = False, serial: int = 0, loop: int = 0,
                 shared: int = 0):
        """The launcher of ``kernel[config]``; ``serial``: dependent global-memory steps of its
        longest thread; ``shared``: its dependent steps on shared memory; ``loop``: steps of a
        thread's loop over consecutive elements (module docstring)."""
        blocks, tpb = config[0], config[1]
        threads = int(blocks) * int(tpb)

        def launch(*args):
            self.launches += 1
            self.bytes += sum(_nbytes(a, threads, full) for a in args)
            self.serial_steps += int(serial)
            self.shared_steps += int(shared)
            self.depth += 1 + int(serial) + int(shared) + int(loop)
            if not self.dry:
                kernel[config](*args)

        return launch

    def to_host(self, arr):
        """``arr.copy_to_host()``, counted as one host sync and one device-to-host copy."""
        self.syncs += 1
        self.d2h_copies += 1
        self.d2h_bytes += int(arr.nbytes)
        if not self.dry:
            return arr.copy_to_host()
        if arr.shape == (1,):  # imminent's violation counter: the running total of the script
            self._total += int(next(self._script, 0))
            return np.array([self._total], dtype=np.int64)
        return np.zeros(arr.shape, dtype=arr.dtype)

    def add(self, **counts):
        """Count work done outside our kernels (e.g. torch.sort's)."""
        for k, v in counts.items():
            setattr(self, k, getattr(self, k) + int(v))

    def as_dict(self) -> dict:
        return {k: int(getattr(self, k)) for k in KEYS}


class Phantom:
    """A device array of a dry run: shape and dtype only (views and slices keep it so)."""

    def __init__(self, shape, dtype):
        self.shape = tuple(int(s) for s in (shape if isinstance(shape, tuple) else (shape,)))
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self.size = int(np.prod(self.shape, dtype=np.int64))
        self.nbytes = self.size * self.dtype.itemsize

    def view(self, dtype):
        return Phantom(self.shape, dtype)

    def reshape(self, *shape):
        return Phantom(shape[0] if len(shape) == 1 else shape, self.dtype)

    def __getitem__(self, key):
        probe = np.broadcast_to(np.empty((), dtype=np.int8), self.shape)[key]
        return Phantom(probe.shape, self.dtype)

    def copy_to_device(self, other) -> None:
        """A dry run moves no data. The device-to-device copy of the lam = l1 = 0 path is not
        counted in a real run either (it goes past ``Cost``), so both count alike."""
        if tuple(getattr(other, "shape", ())) != self.shape:
            raise ValueError(f"copy_to_device: shape {getattr(other, 'shape', None)} into "
                             f"{self.shape}")
