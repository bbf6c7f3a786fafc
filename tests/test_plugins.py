"""Plugins: entry points of the group wsrbench.algorithms register algorithms for a backend."""
from __future__ import annotations

import os
import sys
import warnings
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest

import wsrbench
from wsrbench import cases
from wsrbench.core import plugins, registry
from wsrbench.core.registry import Algorithm

EXAMPLE = os.path.join(os.path.dirname(__file__), os.pardir, "examples", "plugin_example")


@pytest.fixture
def example_on_path(monkeypatch):
    monkeypatch.syspath_prepend(os.path.abspath(EXAMPLE))
    yield
    sys.modules.pop("wsrbench_reverse_pava", None)


def _ep(name, value):
    return EntryPoint(name=name, value=value, group=plugins.GROUP)


def test_example_plugin_registers_through_its_entry_point(example_on_path):
    # the entry point exactly as examples/plugin_example/pyproject.toml declares it
    loaded = plugins.load_entry_points([_ep("reverse_pava", "wsrbench_reverse_pava:plugin")])
    try:
        assert loaded == ["reverse_pava"]
        assert "reverse_pava" in registry.get_backend("numpy").algorithms
        info = {a.name: a for a in wsrbench.list_algorithms()}["reverse_pava"]
        assert info.backends == ("numpy",)
        for fam in cases.names():
            x, lam = cases.make(fam, 300, dtype=np.float32)
            w, pinfo = wsrbench.prox_info(x, lam, algorithm="reverse_pava", backend="numpy")
            assert w.dtype == np.float32 and wsrbench.certify(x, w, lam).ok
            ref = wsrbench.prox(x, lam, algorithm="pava", backend="numpy")
            np.testing.assert_array_equal(w, ref)
            assert pinfo.rounds >= 300
        # 2-D rows, L1 and rho come from the backend pipeline for free
        X = np.random.default_rng(0).standard_normal((3, 50))
        np.testing.assert_array_equal(
            wsrbench.prox(X, 0.3, l1=0.1, rho=0.5, algorithm="reverse_pava", backend="numpy"),
            wsrbench.prox(X, 0.3, l1=0.1, rho=0.5, algorithm="pava", backend="numpy"))
    finally:
        plugins.unregister("reverse_pava")
    assert "reverse_pava" not in registry.get_backend("numpy").algorithms
    assert "reverse_pava" not in {a.name for a in wsrbench.list_algorithms()}


def test_example_pyproject_declares_the_entry_point():
    text = Path(EXAMPLE, "pyproject.toml").read_text()
    assert '[project.entry-points."wsrbench.algorithms"]' in text
    assert 'reverse_pava = "wsrbench_reverse_pava:plugin"' in text


@pytest.mark.slow
def test_registered_plugin_appears_in_compare_and_validate(example_on_path):
    from wsrbench.bench import compare, validate

    plugins.load_entry_points([_ep("reverse_pava", "wsrbench_reverse_pava:plugin")])
    try:
        plan = compare.make_plan(["numpy"], compare.resolve_algorithms(None), ["gaussian"], [100])
        assert ("numpy", "reverse_pava", "gaussian", 100) in plan.cells
        fn = lambda x, lam: wsrbench.prox(x, lam, algorithm="reverse_pava", backend="numpy")  # noqa: E731
        assert validate.run_battery(fn, max_d=64).failures == []
    finally:
        plugins.unregister("reverse_pava")


def test_prox_rows_plugin_for_any_backend():
    """A full prox_rows implementation plugs into an existing backend without touching it."""
    calls = []

    def prox_rows(X, lam, *, l1, rho, algorithm):
        calls.append(algorithm)
        be = registry.get_backend("numpy").load()
        return be.prox_rows(X, lam, l1=l1, rho=rho, algorithm="search_collisions")

    alg = Algorithm("delegating", "delegates to search_collisions", "O(d log^2 d)", "O(log^3 d)")
    plugins.register(alg, "numpy", prox_rows=prox_rows)
    try:
        x, lam = cases.make("quantized", 200)
        w = wsrbench.prox(x, lam, algorithm="delegating", backend="numpy")
        assert calls == ["delegating"] and wsrbench.certify(x, w, lam).ok
        # built-in algorithms of the same backend still go to the backend module itself
        wsrbench.prox(x, lam, algorithm="pava", backend="numpy")
        assert calls == ["delegating"]
        assert registry.get_backend("numpy").load().from_numpy is not None  # passthrough
    finally:
        plugins.unregister("delegating")
    assert registry.get_backend("numpy").load() is __import__("wsrbench.backends.numpy",
                                                               fromlist=["_"])


def test_plugin_cannot_replace_a_builtin_or_be_ambiguous():
    with pytest.raises(ValueError, match="already implements"):
        plugins.register("pava", "numpy", partition=lambda xs, lam: None)
    with pytest.raises(ValueError, match="exactly one"):
        plugins.register(Algorithm("x", "", "", ""), "numpy")
    with pytest.raises(ValueError, match="numpy reference backend only"):
        plugins.register(Algorithm("y", "", "", ""), "numba", partition=lambda xs, lam: None)
    with pytest.raises(ValueError, match="unknown backend"):
        plugins.register(Algorithm("z", "", "", ""), "nope", prox_rows=lambda *a, **k: None)
    assert "x" not in registry._ALGORITHMS and "y" not in registry._ALGORITHMS


def test_broken_plugin_warns_and_is_listed(example_on_path):
    eps = [_ep("missing", "no_such_module_xyz:plugin"), _ep("bad", "math:pi"),
           _ep("good", "wsrbench_reverse_pava:plugin")]
    before = len(plugins.failures())
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        loaded = plugins.load_entry_points(eps)
    try:
        assert loaded == ["good"]
        assert len(plugins.failures()) == before + 2
        assert sum("failed to load" in str(w.message) for w in rec) == 2
    finally:
        plugins.unregister("reverse_pava")


def test_registry_loads_entry_points_once_and_lazily(monkeypatch, example_on_path):
    seen = []

    def fake_entry_points():
        seen.append(1)
        return [_ep("reverse_pava", "wsrbench_reverse_pava:plugin")]

    monkeypatch.setattr(plugins, "_entry_points", fake_entry_points)
    monkeypatch.setattr(registry, "_PLUGINS_LOADED", False)
    monkeypatch.delenv("WSRBENCH_DISABLE_PLUGINS", raising=False)
    try:
        names = [a.name for a in registry.algorithms()]  # first query loads the plugins
        registry.backends()
        registry.resolve("numpy", "reverse_pava", np.zeros(3))
        assert "reverse_pava" in names and seen == [1]
    finally:
        plugins.unregister("reverse_pava")


def test_plugins_can_be_disabled(monkeypatch):
    monkeypatch.setenv("WSRBENCH_DISABLE_PLUGINS", "1")
    monkeypatch.setattr(plugins, "_entry_points", lambda: pytest.fail("must not list entry points"))
    assert plugins.load_entry_points() == []


def test_callable_entry_point_may_register_itself():
    def register_me():
        plugins.register(Algorithm("self_registered", "pava again", "O(d)", "sequential"),
                         "numpy", partition=__import__(
                             "wsrbench.backends.numpy.pava", fromlist=["_"]).partition)

    class FakeEP:
        name, value = "self_registered", "inline"

        def load(self):
            return register_me

    try:
        assert plugins.load_entry_points([FakeEP()]) == ["self_registered"]
        assert plugins.registered()["self_registered"] == ("numpy", "partition")
    finally:
        plugins.unregister("self_registered")
