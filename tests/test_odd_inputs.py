"""Array kinds and odd dtypes, for every registered (backend, algorithm): docs/design.md#unusual-arrays-and-parameters.

Each case is an input that some real pipeline produces (``np.load`` of big-endian data, a lazily
negated torch view, a lam that is a tensor requiring grad, an int too large for a float): accepted
and answered like its plain equivalent, or refused with an error that names the parameter.
"""
from __future__ import annotations

import numpy as np
import pytest

import wsrbench

X = np.array([3.0, -1.0, 2.0, 2.0, 0.5, -4.0])


def plain(impl, x, lam, **kw):
    return impl.prox(np.asarray(x, dtype=np.float64), lam, **kw)


@pytest.mark.parametrize("order", [">", "<"])
@pytest.mark.parametrize("base", ["f8", "f4", "i4", "i8"])
def test_either_byte_order(impl, order, base):
    """Data of either byte order give the answer of the native array (floats keep their width)."""
    if "numpy" not in impl.entry.kinds:
        pytest.skip(f"{impl.backend} takes no NumPy arrays")
    x = X[: impl.cap(X.size)]
    odd = (x if base[0] == "f" else np.round(x)).astype(order + base)
    w = wsrbench.prox(odd, 0.7, backend=impl.backend, algorithm=impl.algorithm)
    want = np.dtype(base) if base[0] == "f" else np.dtype(np.float64)
    assert w.dtype == want and w.dtype.isnative
    ref = wsrbench.prox(odd.astype(want), 0.7, backend=impl.backend, algorithm=impl.algorithm)
    np.testing.assert_array_equal(w, ref)


def test_negative_bit_tensor(impl):
    """A float64 tensor with the negative bit set (``z.conj().imag``) is answered like its copy."""
    torch = pytest.importorskip("torch")
    if "torch" not in impl.entry.kinds:
        pytest.skip(f"{impl.backend} takes no torch tensors")
    x = X[: impl.cap(X.size)]
    z = torch.complex(torch.zeros(x.size, dtype=torch.float64), -torch.as_tensor(x)).conj().imag
    assert z.is_neg()
    w = wsrbench.prox(z, 0.7, backend=impl.backend, algorithm=impl.algorithm)
    ref = wsrbench.prox(z.clone().resolve_neg(), 0.7, backend=impl.backend, algorithm=impl.algorithm)
    assert torch.equal(w, ref)


@pytest.mark.parametrize("param", ["lam", "l1", "rho"])
def test_scalar_parameters_as_tensors_and_arrays(impl, param):
    """0-d tensors (even requiring grad) and 0-d arrays are numbers; anything else names the
    parameter."""
    torch = pytest.importorskip("torch")
    x = X[: impl.cap(X.size)]
    kw = {"lam": 0.5, "l1": 0.1, "rho": 0.25}
    want = plain(impl, x, kw.pop("lam"), **kw)
    for value in (torch.tensor(kw.get(param, 0.5), dtype=torch.float64, requires_grad=True),
                  np.asarray(kw.get(param, 0.5))):
        args = {"lam": 0.5, "l1": 0.1, "rho": 0.25, param: value}
        lam = args.pop("lam")
        np.testing.assert_array_equal(plain(impl, x, lam, **args), want)
    for bad in (torch.ones(2, requires_grad=True), np.ones(3), "0.5", None, 10 ** 400, -(10 ** 400)):
        args = {"lam": 0.5, "l1": 0.1, "rho": 0.25, param: bad}
        lam = args.pop("lam")
        with pytest.raises((TypeError, ValueError)) as err:
            plain(impl, x, lam, **args)
        assert str(err.value).startswith(param), str(err.value)
