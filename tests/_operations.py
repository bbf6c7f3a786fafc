"""Parametrisation over the implementations of a non-prox operation (``registry.OPERATIONS``).

``op_impls(op)`` gives one pytest param per backend listed for ``op``, skipped with the reason when
the backend is not registered or not usable here, so registering a backend's implementation is all
it takes to have it tested. ``OpImpl`` feeds it NumPy data through the backend's own array kind.
"""
from __future__ import annotations

import numpy as np
import pytest

from wsrbench.core import registry
from wsrbench.core.numerics import EPS64, eps  # noqa: F401  (re-exported for the tests)


class OpImpl:
    def __init__(self, backend: str):
        self.backend = backend
        self.entry = registry.get_backend(backend)
        self.mod = self.entry.load()

    def __repr__(self):
        return self.backend

    def cap(self, n: int) -> int:
        """Sizes for slow backends (the CUDA simulator runs one Python thread per CUDA thread)."""
        m = self.entry.max_test_d
        return n if m is None else min(n, 8 * m)

    def put(self, a):
        return self.mod.from_numpy(np.ascontiguousarray(a))

    def get(self, a) -> np.ndarray:
        return np.asarray(self.mod.to_numpy(a))


def op_impls(*ops: str):
    """pytest params for every backend implementing all of ``ops``."""
    names = [n for n in registry.OPERATIONS.get(ops[0], {})
             if all(n in registry.OPERATIONS.get(o, {}) for o in ops)]
    params = []
    for name in names:
        try:
            reason = registry.get_backend(name).unavailable_reason()
        except ValueError:
            reason = "backend not registered"
        marks = [] if reason is None else [pytest.mark.skip(reason=f"{name}: {reason}")]
        params.append(pytest.param(name, id=name, marks=marks))
    return params
