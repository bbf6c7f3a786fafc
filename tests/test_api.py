"""Registry behaviour, bad input, and the penalty."""
from __future__ import annotations

import itertools
import math
import re
import types
from fractions import Fraction

import numpy as np
import pytest

import wsrbench
from wsrbench.core import registry

# -------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("x, exc, name", [
    (np.array([1.0, np.nan]), ValueError, "x contains NaN"),
    (np.array([[1.0, 2.0], [np.inf, 0.0]]), ValueError, "x contains Inf"),
    (np.zeros((2, 2, 2)), ValueError, "x must be at most 2-D"),
    (np.array(["a", "b"]), TypeError, "x must be a real numeric array"),
    ("abc", TypeError, "x must be a numeric array"),
    (np.array([1 + 2j]), TypeError, "x must be a real numeric array"),
    (np.array([object(), object()]), TypeError, "x must be a real numeric array"),
    (np.array([1.0], dtype=np.float16), TypeError, "float32 and float64"),
    (np.float64(3.0), ValueError, "got a scalar"),
])
def test_bad_x(impl, x, exc, name):
    try:
        x_in = impl.entry.load().from_numpy(x)
    except Exception:
        pytest.skip(f"{impl.backend} arrays cannot hold this input")
    with pytest.raises(exc, match=re.escape(name)):
        wsrbench.prox(x_in, 0.1, backend=impl.backend, algorithm=impl.algorithm)


def _check_verdict(x):
    """(flag, None) from checks.as_prox_rows, or (None, the error's type and message)."""
    from wsrbench.core.checks import as_prox_rows

    try:
        return as_prox_rows(x, "x")[2], None
    except (TypeError, ValueError) as exc:
        return None, (type(exc), str(exc))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_pass_check_agrees_across_kinds(dtype):
    """A prox input's finiteness test and safe-bound flag (docs/design.md#the-whole-floating-point-range and docs/design.md#the-torch-backends-imminent_collisions-and-the-papers-torch-code) come from one
    pass per kind (torch: one aminmax); a tensor gets the NumPy array's verdict and message."""
    torch = pytest.importorskip("torch")
    from wsrbench.core.numerics import safe_bound

    d = 5
    bound = safe_bound(d)
    top = float(np.finfo(dtype).max)
    edge = min(bound, top)  # float32 data always lie within the bound
    above = min(float(np.nextafter(bound, np.inf)), top)
    rows = [[0.0, 1.0, -2.0, 3.0, 4.0], [edge, -edge, 0.0, 1.0, 2.0],
            [0.0, above, 1.0, 2.0, 3.0], [-above, 0.0, 1.0, 2.0, 3.0], [top, -top, 0, 1, 2],
            [1.0, np.inf, np.nan, 0.0, 0.0], [np.nan, -np.inf, 0.0, 0.0, 0.0],
            [-np.inf, top, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, np.nan]]
    for row in rows:
        for x in (np.array(row, dtype=dtype), np.array([[0.0] * d, row], dtype=dtype)):
            before = x.copy()
            flag, err = _check_verdict(x)
            if np.all(np.isfinite(x)):
                assert err is None and flag == bool(np.all(np.abs(x) <= bound)), row
            else:
                assert flag is None and "x contains" in err[1], (row, err)
            t = torch.from_numpy(x.copy())
            assert _check_verdict(t) == (flag, err), row
            assert np.array_equal(t.numpy(), before, equal_nan=True)  # never written


def test_as_float_returns_the_range_flag_only_when_asked():
    from wsrbench.core.checks import as_float
    from wsrbench.core.numerics import safe_bound

    d = 4
    for dtype in (np.float32, np.float64):
        big = min(float(np.nextafter(safe_bound(d), np.inf)), float(np.finfo(dtype).max))
        for row in ([0.0, 1.0, 2.0, 3.0], [0.0, big, 1.0, 2.0]):
            x = np.array(row, dtype=dtype)
            arr = as_float(x)
            assert isinstance(arr, np.ndarray) and arr.dtype == dtype
            arr2, inside = as_float(x, in_range=True)
            assert arr2.dtype == dtype and inside == bool(np.all(np.abs(x) <= safe_bound(d)))


def test_prox_is_prox_info_without_the_info():
    """prox skips building ProxInfo; the weights are prox_info's, bit for bit, on every kind."""
    rng = np.random.default_rng(3)
    for be in ("numpy", "torch"):
        mod = registry.get_backend(be)
        if mod.unavailable_reason() is not None:
            continue
        for x in (rng.normal(size=40), rng.normal(size=(3, 40)).astype(np.float32)):
            xin = mod.load().from_numpy(x)
            w = wsrbench.prox(xin, 0.3, l1=0.01, backend=be, algorithm="imminent_collisions")
            w_info, info = wsrbench.prox_info(xin, 0.3, l1=0.01, backend=be,
                                              algorithm="imminent_collisions")
            assert type(w) is type(w_info) and tuple(w.shape) == x.shape
            assert np.array_equal(mod.load().to_numpy(w), mod.load().to_numpy(w_info))


@pytest.mark.parametrize("kw, exc, msg", [
    ({"lam": -0.1}, ValueError, "lam must be >= 0"),
    ({"lam": np.nan}, ValueError, "lam must be finite"),
    ({"lam": "1"}, TypeError, "lam must be a real number"),
    ({"lam": [1.0]}, TypeError, "lam must be a real number"),
    ({"lam": True}, TypeError, "lam must be a real number"),
    ({"lam": 0.1, "rho": 1.5}, ValueError, "rho must be in [0.0, 1.0]"),
    ({"lam": 0.1, "rho": -0.01}, ValueError, "rho must be in [0.0, 1.0]"),
    ({"lam": 0.1, "l1": -1.0}, ValueError, "l1 must be >= 0"),
    ({"lam": 0.1, "l1": np.inf}, ValueError, "l1 must be finite"),
])
def test_bad_parameters(impl, kw, exc, msg):
    x = impl.entry.load().from_numpy(np.array([0.0, 1.0, 2.0]))
    with pytest.raises(exc, match=re.escape(msg)):
        wsrbench.prox(x, backend=impl.backend, algorithm=impl.algorithm, **kw)


def test_numpy_scalar_parameters_accepted():
    w = wsrbench.prox(np.array([0.0, 1.0]), np.float32(0.25), l1=np.int64(0), backend="numpy")
    np.testing.assert_allclose(w, [0.25, 0.75])


def test_unknown_names_list_what_exists():
    with pytest.raises(ValueError, match=r"choose one of .*pava"):
        wsrbench.prox([0.0, 1.0], 0.1, algorithm="bogosort")
    with pytest.raises(ValueError, match=r"choose one of .*numpy"):
        wsrbench.prox([0.0, 1.0], 0.1, backend="abacus")


def test_missing_algorithm_is_an_error_not_a_substitute(monkeypatch):
    toy = registry.Backend("toy", "wsrbench.backends.numpy", "pava only", algorithms=("pava",))
    monkeypatch.setitem(registry._BACKENDS, "toy", toy)
    with pytest.raises(ValueError, match=r"does not implement algorithm 'search_collisions'.*\['pava'\]"):
        wsrbench.prox([0.0, 1.0], 0.1, algorithm="search_collisions", backend="toy")
    w, info = wsrbench.prox_info([0.0, 1.0], 0.1, backend="toy")
    assert info.algorithm == "pava" and info.backend == "toy"


def test_unavailable_backend_raises_with_reason(monkeypatch):
    ghost = registry.Backend("ghost", "wsrbench.backends.numpy", "needs a missing module",
                             algorithms=("pava",), requires=("no_such_module_xyz",),
                             install_hint="pip install no-such-module")
    monkeypatch.setitem(registry._BACKENDS, "ghost", ghost)
    info = {b.name: b for b in wsrbench.list_backends()}["ghost"]
    assert not info.available and "no_such_module_xyz" in info.reason
    with pytest.raises(RuntimeError, match=r"ghost.*unavailable.*pip install no-such-module"):
        wsrbench.prox([0.0, 1.0], 0.1, backend="ghost")


def test_registry_lists_every_algorithm_with_a_backend():
    algs = {a.name: a for a in wsrbench.list_algorithms()}
    assert {"pava", "end_collisions", "imminent_collisions", "search_collisions"} <= set(algs)
    for a in algs.values():
        assert "numpy" in a.backends  # the reference implements everything
        if a.worst_case is not None:
            assert a.worst_case in wsrbench.bench.cases.names()
    bes = {b.name: b for b in wsrbench.list_backends()}
    assert bes["numpy"].available and bes["numpy"].reason is None


def test_auto_picks_backend_default():
    b = registry.resolve("auto", "auto", np.zeros(3))[0]
    assert b.name == next(n for n in registry.AUTO_ORDER["numpy"]
                          if n in registry._BACKENDS and registry._BACKENDS[n].unavailable_reason() is None)
    _, info = wsrbench.prox_info(np.zeros(3), 0.1)
    assert info.algorithm == registry.get_backend(info.backend).default_algorithm


class _TorchOn:
    """Looks like a torch tensor on a device to the registry (no CUDA needed to test routing)."""
    __module__ = "torch"

    def __init__(self, device):
        self.device = types.SimpleNamespace(type=device)


def test_auto_sends_cuda_tensors_to_numba_cuda(monkeypatch):
    """backend="auto": a GPU tensor goes to numba_cuda's default (hull_bridges), zero-copy; a CPU
    tensor never does; without numba-cuda the GPU tensor stays on torch (docs/design.md#array-kinds-and-the-auto-rules)."""
    cuda_t, cpu_t = _TorchOn("cuda"), _TorchOn("cpu")
    nc = registry.get_backend("numba_cuda")
    if nc.unavailable_reason() is None:
        be, alg = registry.resolve("auto", "auto", cuda_t)
        assert (be.name, alg) == ("numba_cuda", "hull_bridges")
        assert registry.resolve("numba_cuda", "pava", cuda_t)[0].name == "numba_cuda"
        # a backend that runs here but does not take x: a TypeError naming the kind it takes
        with pytest.raises(TypeError, match=r"torch tensors on a CUDA device.*device 'cpu'"):
            registry.resolve("numba_cuda", "auto", cpu_t)
    if registry.get_backend("torch").unavailable_reason() is None:
        be, alg = registry.resolve("auto", "auto", cpu_t)
        assert (be.name, alg) == ("torch", "pava")
        monkeypatch.setattr(nc, "probe", lambda: "no GPU here")
        be, alg = registry.resolve("auto", "auto", cuda_t)
        assert (be.name, alg) == ("torch", "search_collisions")
    # a backend that cannot run here at all says why, whatever x is (no GPU is not an array problem)
    monkeypatch.setattr(nc, "probe", lambda: "no GPU here")
    with pytest.raises(RuntimeError, match="numba_cuda' is not available here: no GPU here"):
        registry.resolve("numba_cuda", "auto", cpu_t)
    # the operations keep torch for every tensor (its gates need autograd)
    assert registry.AUTO_ORDER["torch"] == ("torch",)


def test_importing_wsrbench_loads_no_backend():
    """Import compiles nothing and touches no GPU; listing backends loads none of their modules
    (an availability probe may import numba to ask it whether CUDA is usable)."""
    import subprocess
    import sys

    code = ("import sys, wsrbench; "
            "print(any(m.startswith(('numba', 'torch')) for m in sys.modules)); "
            "wsrbench.list_backends(); wsrbench.list_algorithms(); "
            "print(any(m.startswith('wsrbench.backends.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="nope"):
        wsrbench.nope  # noqa: B018


def test_public_namespace_is_what_all_says():
    import types

    public = {n for n in dir(wsrbench) if not n.startswith("_")}
    modules = {n for n in public if isinstance(getattr(wsrbench, n), types.ModuleType)}
    assert public - modules == set(wsrbench.__all__) - {"cases"}
    for name in wsrbench.__all__:
        assert getattr(wsrbench, name).__doc__, name


# -------------------------------------------------------------------------------- penalty

def test_penalty_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    for d in [0, 1, 2, 3, 10, 57]:
        x = np.round(rng.normal(size=d) * 3) / 3
        expect = (sum(abs(a - b) for a, b in itertools.combinations(x, 2)) / (d - 1)) if d > 1 else 0.0
        assert abs(wsrbench.penalty(x) - expect) <= 8 * d * np.finfo(float).eps * max(1.0, expect)


def test_penalty_rows_dtype_and_invariances():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4, 50)).astype(np.float32)
    r = wsrbench.penalty(X)
    assert r.shape == (4,) and r.dtype == np.float32
    for i in range(4):
        assert r[i] == wsrbench.penalty(X[i])
    x = X[0].astype(np.float64)
    p = rng.permutation(50)
    assert np.isclose(wsrbench.penalty(x[p]), wsrbench.penalty(x), rtol=1e-14)
    assert np.isclose(wsrbench.penalty(x + 1e3), wsrbench.penalty(x), rtol=1e-9)
    assert np.isclose(wsrbench.penalty(2.5 * x), 2.5 * wsrbench.penalty(x), rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_penalty_finite_wherever_the_true_value_is(dtype):
    """Near the float maximum (one weight at 0.9 max, d = 2000 others far smaller) the weighted
    gap sum k (d-k) gaps exceeds the range although R does not: R within (d + 3) eps64 (a sum of
    d - 1 non-negative terms, the weights and the division) plus one rounding to the dtype of the
    exact rational value; a true R beyond the range is +inf, and tiny rows keep their bits."""
    rng = np.random.default_rng(7)
    big = 0.9 * float(np.finfo(dtype).max)
    d = 2000
    x = (rng.uniform(-1.0, 1.0, d) * big * 1e-6).astype(dtype)
    x[5] = big
    X = np.stack([x, np.ldexp(x.astype(np.float64), -1100).astype(dtype)])  # tiny: subnormals
    xs = sorted(Fraction(float(v)) for v in x)
    exact = sum((xs[k] - xs[k - 1]) * k * (d - k) for k in range(1, d)) / (d - 1)
    got = wsrbench.penalty(X)
    tol = exact * Fraction((d + 3) * np.finfo(np.float64).eps + np.finfo(dtype).eps)
    assert math.isfinite(got[0]) and abs(Fraction(float(got[0])) - exact) <= tol
    assert math.isfinite(got[1]) and got[1] >= 0
    two = np.array([big, -big], dtype=dtype)  # R = 1.8 max: beyond the range
    assert wsrbench.penalty(two) == np.inf


def test_penalty_bad_input():
    with pytest.raises(ValueError, match="x contains NaN"):
        wsrbench.penalty([1.0, np.nan])
    with pytest.raises(TypeError, match="x must be"):
        wsrbench.penalty(["a"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("at", [0, 17, 39])
def test_non_finite_numpy_entry_named_at_its_index(dtype, bad, at):
    # the check reads min and max first; the entry it names must still be the first bad one
    x = np.random.default_rng(at).standard_normal(40).astype(dtype)
    x[at] = bad
    x[-1] = np.nan if at != 39 else x[-1]  # a later NaN does not hide the first bad entry
    word = "NaN" if np.isnan(bad) else "Inf"
    with pytest.raises(ValueError, match=f"x contains {word} at index {at};"):
        wsrbench.prox(x, 0.1, backend="numpy")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_largest_finite_entries_pass_the_check(dtype):
    fin = np.finfo(dtype)
    x = np.array([fin.max, -fin.max, 0.0, 1.0], dtype=dtype)
    w = wsrbench.prox(x, 0.0, backend="numpy")  # no ValueError: min and max are finite
    assert w.dtype == x.dtype and np.all(np.isfinite(w))
