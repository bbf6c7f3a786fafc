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


def test_declared_capabilities_are_implemented(backend):
    """A capability in a backend's registry entry is a promise its module keeps (the Protocol)."""
    mod = importlib.import_module(backend.module)
    for cap in backend.capabilities:
        assert cap in registry.CAPABILITIES, (backend.name, cap)
        assert isinstance(mod, registry.CAPABILITIES[cap]), (backend.name, cap)


def test_declared_array_primitives_implement_the_protocol(backend):
    if backend.array_primitives is None:
        pytest.skip(f"{backend.name} declares no array primitives")
    mod = importlib.import_module(backend.array_primitives)
    members = [(n, f) for n, f in inspect.getmembers(contract.ArrayPrimitives, inspect.isfunction)
               if not n.startswith("_")]
    assert {"device_array", "first_outside"} <= dict(members).keys()
    for name, fn in members:
        assert callable(getattr(mod, name, None)), (backend.array_primitives, name)
        want = list(inspect.signature(fn).parameters)[1:]  # without self
        assert list(inspect.signature(getattr(mod, name)).parameters) == want, name


def test_warm_start_goes_to_the_backend_that_declares_it():
    have = [b.name for b in map(registry.get_backend, registry.backend_names())
            if "warm_start" in b.capabilities and b.unavailable_reason() is None]
    x = np.zeros(4)
    if not have:
        with pytest.raises(RuntimeError, match="no available backend implements warm_start"):
            registry.capable("warm_start", x)
        return
    mod, name = registry.capable("warm_start", x)
    assert name in have and isinstance(mod, contract.WarmStart)
    lacking = next(b for b in registry.backend_names() if b not in have
                   and "warm_start" not in registry.get_backend(b).capabilities)
    with pytest.raises(ValueError, match=rf"does not implement warm_start; backends that do: .*{name}"):
        registry.capable("warm_start", x, lacking)


@pytest.mark.parametrize("chooser", ["resolve", "operation"])
def test_one_chooser_one_error_style(chooser, monkeypatch):
    """resolve() and operation() share choose(): an unknown backend is a ValueError naming the known
    ones; an array the backend does not take is a TypeError saying how to fix the call; an array
    kind no backend handles is a RuntimeError."""
    x = np.zeros(3)
    call = ((lambda b, arr: registry.resolve(b, "auto", arr)) if chooser == "resolve"
            else (lambda b, arr: registry.operation("project_ties", b, arr)))
    with pytest.raises(ValueError, match=r"unknown backend 'nope'; choose one of \["):
        call("nope", x)
    with pytest.raises(TypeError, match=r"backend 'torch' takes torch arrays.*pass backend='auto'"):
        call("torch", x)

    class Odd:  # an array kind with no entry in the orders
        pass

    orig = registry.array_kind
    monkeypatch.setattr(registry, "array_kind",
                        lambda arr: "odd" if isinstance(arr, Odd) else orig(arr))
    with pytest.raises(RuntimeError, match=r"no available backend .* for odd arrays here"):
        call("auto", Odd())


def test_operation_auto_and_resolve_auto_follow_their_orders():
    x = np.zeros(3)
    avail = [n for n in registry.AUTO_ORDER["numpy"]
             if registry.get_backend(n).unavailable_reason() is None]
    assert registry.operation("project_ties", "auto", x)[1] == avail[0]
    assert registry.resolve("auto", "auto", x)[0].name == [
        n for n in registry.PROX_AUTO_ORDER["numpy"]
        if registry.get_backend(n).unavailable_reason() is None][0]
