"""Record the signature of every numba-cuda kernel launch the simulator runs.

Used by tests/conftest.py for the whole session (a launch whose signature is missing from
``wsrbench.backends.numba_cuda.signatures`` fails the run) and by tests/test_gpu_signatures.py.
"""
from __future__ import annotations

import contextlib


def signature(args) -> str:
    """The table form of the argument types of a simulator launch."""
    import numba

    from wsrbench.backends.numba_cuda.signatures import format_type

    out = []
    for a in args:
        ary = getattr(a, "_ary", None)  # a simulator device array wraps a NumPy array
        out.append(format_type(numba.typeof(ary if ary is not None else a)))
    return ", ".join(out)


@contextlib.contextmanager
def recording(seen: set):
    """Add (table key, signature) of every kernel launch inside the block to ``seen``."""
    from numba.cuda.simulator import kernel as simkernel

    from wsrbench.backends.numba_cuda.signatures import key_of

    original = simkernel.FakeCUDAKernel.__call__

    def call(self, *args):
        if not self._device and not simkernel._kernel_context:  # a launch from the host
            if self.fn.__module__.startswith("wsrbench."):  # not the tests' own kernels
                seen.add((key_of(self.fn.__module__, self.fn.__name__), signature(args)))
        return original(self, *args)

    simkernel.FakeCUDAKernel.__call__ = call
    try:
        yield seen
    finally:
        simkernel.FakeCUDAKernel.__call__ = original


def missing(seen) -> list[str]:
    """The recorded launches that the signature table lacks, as lines to paste into it."""
    from wsrbench.backends.numba_cuda.signatures import table

    have = table()
    return sorted(f'"{k}": ["{s}"],' for k, s in seen if s not in have.get(k, ()))
