"""The "prox_vector" capability: one NumPy vector in one call, the checks fused into the kernel.

Parametrised over the backends that declare it. Its answers are judged against the same backend's
``prox_rows`` (bit for bit), and every input the general path rejects or scales must be declined,
so that ``wsrbench.prox`` keeps its errors and its power-of-two scaling.
"""
from __future__ import annotations

import numpy as np
import pytest

import wsrbench
from wsrbench.bench import cases
from wsrbench.core import registry
from wsrbench.core.numerics import safe_bound


def _vector_backends():
    return [pytest.param(b.name, id=b.name,
                         marks=[] if b.available else [pytest.mark.skip(reason=f"{b.name}: {b.reason}")])
            for b in registry.backends()
            if "prox_vector" in registry.get_backend(b.name).capabilities]


@pytest.fixture(params=_vector_backends())
def vector_backend(request):
    be = registry.get_backend(request.param)
    return be, be.load()


def _same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(np.uint8),
                                                                        b.view(np.uint8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("family", cases.names())
def test_vector_path_is_the_rows_path(vector_backend, family, dtype):
    """Bit for bit the backend's prox_rows of the one-row matrix, over every family (constant rows,
    ties, the worst cases), sizes from one element up, and lam, l1, rho on and off; x untouched."""
    be, mod = vector_backend
    for d in (1, 2, 3, 33, 300):
        x, lam = cases.make(family, d, dtype=dtype)
        keep = x.copy()
        for lam_, l1, rho in ((lam, 0.0, 0.0), (lam, lam / 3, 0.0), (lam, 0.0, 0.4),
                              (lam, lam / 5, 1.0), (0.0, 0.0, 0.0), (0.0, lam / 2, 0.0)):
            w = mod.prox_vector(x, lam_, l1, rho, be.default_algorithm)
            assert w is not None, (family, d, "an ordinary vector must not be declined")
            ref = mod.prox_rows(x[None], lam_, l1=l1, rho=rho, algorithm=be.default_algorithm).W[0]
            assert _same_bits(w, ref), (family, d, lam_, l1, rho)
            assert _same_bits(x, keep)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_vector_path_declines_non_finite_entries(vector_backend, dtype, bad):
    be, mod = vector_backend
    for d, at in ((1, 0), (40, 0), (40, 17), (40, 39), (5000, 4999)):
        x = np.linspace(-1, 1, d).astype(dtype)
        x[at] = bad
        assert mod.prox_vector(x, 0.1, 0.0, 0.0, be.default_algorithm) is None, (d, at)
        x[:] = bad  # a constant row of them too
        assert mod.prox_vector(x, 0.1, 0.0, 0.0, be.default_algorithm) is None, d


def test_vector_path_declines_what_the_general_path_scales(vector_backend):
    """An entry, lam or l1 beyond numerics.safe_bound(d) goes to the scaled general path; the
    largest entries within it do not."""
    be, mod = vector_backend
    alg = be.default_algorithm
    d = 50
    bound = safe_bound(d)
    x = np.linspace(-1, 1, d)
    for at in (0, 25, 49):
        y = x.copy()
        y[at] = np.nextafter(bound, np.inf) * (-1 if at == 25 else 1)
        assert mod.prox_vector(y, 0.1, 0.0, 0.0, alg) is None
        y[at] = -bound if at == 25 else bound
        assert mod.prox_vector(y, 0.1, 0.0, 0.0, alg) is not None
    big = float(np.nextafter(bound, np.inf))
    assert mod.prox_vector(x, big, 0.0, 0.0, alg) is None
    assert mod.prox_vector(x, 0.1, big, 0.0, alg) is None
    assert mod.prox_vector(x, bound, bound, 0.0, alg) is not None
    # float32 entries are always within the bound: the largest finite ones pass
    top = np.float32(np.finfo(np.float32).max)
    assert mod.prox_vector(np.array([top, -top, 0], np.float32), 0.1, 0.0, 0.0, alg) is not None


def test_prox_answers_what_the_vector_path_declines():
    """wsrbench.prox of a vector the kernel declines: the general path's error or scaled answer."""
    d = 50
    x = np.linspace(-1, 1, d)
    x[7] = np.nan
    with pytest.raises(ValueError, match="x contains NaN at index 7"):
        wsrbench.prox(x, 0.1)
    x[7] = np.inf
    with pytest.raises(ValueError, match="x contains Inf at index 7"):
        wsrbench.prox(x, 0.1)
    x[7] = 2 * safe_bound(d)
    w, _ = wsrbench.prox_info(x, 0.1)
    assert _same_bits(wsrbench.prox(x, 0.1), w)


def test_prox_takes_the_vector_path_for_plain_vectors_only(vector_backend, monkeypatch):
    """wsrbench.prox sends a 1-D native float NumPy vector to prox_vector, and nothing else: not
    2-D input, lists, other byte orders or dtypes, subclasses, or prox_info (which needs counters)."""
    be, mod = vector_backend
    seen = []
    real = mod.prox_vector

    def spy(x, lam, l1, rho, algorithm):
        seen.append((x.shape, x.dtype))
        return real(x, lam, l1, rho, algorithm)

    monkeypatch.setattr(mod, "prox_vector", spy)
    x = np.random.default_rng(0).normal(size=64)
    for xin in (x, x.astype(np.float32)):
        w = wsrbench.prox(xin, 0.2, l1=0.01, backend=be.name)
        assert _same_bits(w, wsrbench.prox_info(xin, 0.2, l1=0.01, backend=be.name)[0])
    assert seen == [((64,), np.float64), ((64,), np.float32)]
    seen.clear()
    for xin in (x[None], list(x), x.astype(">f8"), x.astype(np.int64), x.view(np.matrix)[0]):
        wsrbench.prox(xin, 0.2, backend=be.name)
    wsrbench.prox_info(x, 0.2, backend=be.name)
    assert seen == []


def test_vector_path_declines_other_algorithms_and_layouts(vector_backend):
    be, mod = vector_backend
    x = np.random.default_rng(1).normal(size=64)
    others = [a for a in be.algorithms if a != be.default_algorithm]
    for alg in others:
        w = mod.prox_vector(x, 0.2, 0.0, 0.0, alg)
        if w is not None:  # a backend may take more algorithms; then it must answer as prox_rows
            assert _same_bits(w, mod.prox_rows(x[None], 0.2, l1=0.0, rho=0.0, algorithm=alg).W[0])
    strided = np.random.default_rng(2).normal(size=128)[::2]
    readonly = x.copy()
    readonly.flags.writeable = False
    for y in (strided, readonly):
        w = wsrbench.prox(y, 0.2, backend=be.name)
        assert _same_bits(w, wsrbench.prox_info(y, 0.2, backend=be.name)[0])
    assert mod.prox_vector(np.zeros(0), 0.2, 0.0, 0.0, be.default_algorithm) is None
