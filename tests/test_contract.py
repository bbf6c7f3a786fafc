"""Conformance to the backend contract (wsrbench.core.contract), one test per registered backend.

A new backend is held to the same checks by registering it: its module is a ProxBackend, its
algorithm table is what the registry lists for it, prox_rows returns a well-formed RowsResult for
every algorithm, and its operations have the signatures of their Protocols.
"""
from __future__ import annotations

import importlib
import inspect

import numpy as np
import pytest

from wsrbench.core import contract, registry


def _backend_params():
    out = []
    for b in registry.backends():
        marks = [] if b.available else [pytest.mark.skip(reason=f"{b.name}: {b.reason}")]
        out.append(pytest.param(b.name, id=b.name, marks=marks))
    return out


@pytest.fixture(params=_backend_params())
def backend(request):
    return registry.get_backend(request.param)


def _own_algorithms(entry) -> set[str]:
    """The algorithms the backend's module implements (plugins add theirs elsewhere)."""
    extra = set(registry._IMPLEMENTATIONS.get(entry.name, {}))
    return set(entry.algorithms) - extra


def test_module_is_a_prox_backend(backend):
    mod = importlib.import_module(backend.module)
    assert isinstance(mod, contract.ProxBackend)
    assert set(mod.ALGORITHMS) == _own_algorithms(backend), (
        "the module's ALGORITHMS table and the registry entry must list the same algorithms")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prox_rows_returns_a_rows_result(backend, dtype):
    mod = backend.load()
    X = np.array([[0.3, -1.0, 0.3, 2.0, 0.0], [5.0, 4.0, 3.0, 2.0, 1.0]], dtype=dtype)
    for alg in backend.algorithms:
        res = mod.prox_rows(mod.from_numpy(X), 0.7, l1=0.0, rho=0.0, algorithm=alg)
        assert isinstance(res, contract.RowsResult), alg
        W = mod.to_numpy(res.W)
        assert W.shape == X.shape and W.dtype == X.dtype, alg
        for counts in (res.rounds, res.clusters):
            assert isinstance(counts, np.ndarray) and counts.dtype == np.int64
            assert counts.shape == (2,), alg
        assert np.all(res.clusters >= 1) and np.all(res.clusters <= 5)
        assert isinstance(res.stats, list) and len(res.stats) == 2
        assert all(isinstance(s, dict) for s in res.stats)
        assert res.depth is None or (res.depth.dtype == np.int64 and res.depth.shape == (2,))
        assert isinstance(res.counters, dict)


def test_operations_have_the_protocol_signatures(backend):
    for op, impls in registry.OPERATIONS.items():
        if backend.name not in impls:
            continue
        module, _, func = impls[backend.name].partition(":")
        fn = getattr(importlib.import_module(module), func)
        proto = getattr(contract.OPERATION_PROTOCOLS[op], op)
        want = [p for p in inspect.signature(proto).parameters if p != "self"]
        assert list(inspect.signature(fn).parameters) == want, (backend.name, op)


def test_every_operation_has_a_protocol():
    assert set(registry.OPERATIONS) == set(contract.OPERATION_PROTOCOLS)
