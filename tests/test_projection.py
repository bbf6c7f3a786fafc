"""Projections onto ties and affine constraints, on every backend registered in OPERATIONS.

Properties, not stored numbers: ties equal independently computed group means, projections are
idempotent, the residual w - P(w) is orthogonal to the subspace, A P(w) = c, and every backend agrees
with the NumPy reference to a tolerance derived from the dtype's eps and the data's magnitude.
"""
from __future__ import annotations

import numpy as np
import pytest

import wsrbench.ops.projection as P
from wsrbench.core import registry
from wsrbench.ops.conv_ties import conv2d_ties

from ._operations import EPS64, OpImpl, eps, op_impls

DTYPES = [np.float32, np.float64]
LABEL_SETS = [np.array([0, 1, 2]), np.array([-7, 3, 10**12, 42, 5])]


@pytest.fixture(scope="module", params=op_impls("project_ties", "project_affine"))
def impl(request) -> OpImpl:
    return OpImpl(request.param)


def brute_group_means(w, groups):
    out = np.empty(w.shape)
    for g in np.unique(groups):
        sel = groups == g
        out[sel] = np.mean(w[sel].astype(np.float64))
    return out


def tie_tol(w, dtype) -> float:
    """Each mean: a float64 sum of at most n terms ((n - 1) eps64 relative to sum |w|, divided
    by the count: at most n eps64 max|w|), then one rounding to dtype (eps/2 of |mean| <= max|w|)."""
    n = max(w.size, 1)
    return float(np.max(np.abs(w), initial=0.0)) * (eps(dtype) + 2 * n * EPS64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(13,), (3, 4, 5)])
@pytest.mark.parametrize("labels", LABEL_SETS, ids=["0..k-1", "arbitrary"])
@pytest.mark.parametrize("mag", [pytest.param(1e-3, marks=pytest.mark.slow), 1.0,
                                 pytest.param(1e6, marks=pytest.mark.slow)])
def test_ties_are_group_means(impl, dtype, shape, labels, mag):
    rng = np.random.default_rng(7)
    size = int(np.prod(shape))
    if impl.cap(size) < size:
        shape = (impl.cap(size),)
    w = (rng.normal(size=shape) * mag).astype(dtype)
    groups = rng.choice(labels, size=shape)
    w_dev, before = impl.put(w), w.copy()
    out_dev = P.project_ties(w_dev, groups, backend=impl.backend)
    assert type(out_dev) is type(w_dev)
    out = impl.get(out_dev)
    assert out.shape == w.shape and out.dtype == w.dtype
    np.testing.assert_array_equal(impl.get(w_dev), before)  # input not modified
    tol = tie_tol(w, dtype)
    np.testing.assert_allclose(out, brute_group_means(w, groups), rtol=0, atol=tol)
    # entries of one group are exactly equal (the same float64 mean, rounded once)
    for g in np.unique(groups):
        assert np.unique(out[groups == g]).size == 1
    # idempotent, and the residual sums to ~0 in each group (orthogonal to the tied subspace)
    again = impl.get(P.project_ties(out_dev, groups, backend=impl.backend))
    np.testing.assert_allclose(again, out, rtol=0, atol=2 * tol)
    res = w.astype(np.float64) - out
    for g in np.unique(groups):
        sel = groups == g
        assert abs(res[sel].sum()) <= sel.sum() * tol
    # the NumPy reference
    ref = P.project_ties(w, groups, backend="numpy")
    np.testing.assert_allclose(out, ref, rtol=0, atol=2 * tol)


def test_ties_empty_and_singletons(impl):
    w = np.arange(5, dtype=np.float64)
    out = impl.get(P.project_ties(impl.put(w), np.arange(5) * 3, backend=impl.backend))
    np.testing.assert_array_equal(out, w)  # every group a singleton: nothing moves
    assert impl.get(P.project_ties(impl.put(np.zeros(0)), np.zeros(0, int),
                                   backend=impl.backend)).shape == (0,)


def random_constraints(rng, m, n, rank):
    """A (m, n) of the given rank (rank < m: dependent rows) and a consistent c = A x0."""
    A = rng.normal(size=(m, rank)) @ rng.normal(size=(rank, n))
    x0 = rng.normal(size=n)
    return A, A @ x0


def affine_tol(A, w, w0, dtype) -> float:
    """Entry-wise: P(w) = w - V(V^T w - b) in float64 with r-term and n-term dot products
    (<= (n + r) eps64 relative to ||w|| + ||w0||), one rounding of the input and of the output to
    dtype (eps * (|w| + |P(w)|)); the SVD's own backward error adds ~ max(m, n) eps64 per unit."""
    m, n = A.shape
    scale = float(np.linalg.norm(w.astype(np.float64)) + np.linalg.norm(w0))
    return scale * (4 * eps(dtype) + 8 * (m + n) * EPS64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,rank", [(3, 12, 3), (5, 12, 2), (1, 7, 1)],
                         ids=["full-rank", "rank-deficient", "one-row"])
def test_affine_projection_properties(impl, dtype, m, n, rank):
    rng = np.random.default_rng(m * 100 + n)
    A, c = random_constraints(rng, m, n, rank)
    proj = P.AffineProjector(A, c)
    assert proj.rank == rank
    w = (rng.normal(size=n) * 3).astype(dtype)
    w_dev = impl.put(w)
    out_dev = proj.project(w_dev, backend=impl.backend)
    assert type(out_dev) is type(w_dev)
    out = impl.get(out_dev)
    assert out.dtype == w.dtype and out.shape == w.shape
    tol = affine_tol(A, w, proj.w0, dtype)
    a_norm = np.linalg.norm(A, 2)
    # feasible
    assert np.linalg.norm(A @ out.astype(np.float64) - c) <= a_norm * np.sqrt(n) * tol
    # idempotent
    again = impl.get(proj.project(out_dev, backend=impl.backend))
    np.testing.assert_allclose(again, out, rtol=0, atol=2 * tol)
    # residual orthogonal to null(A): no feasible direction reduces the distance
    B = proj.null_space()
    assert np.abs(B.T @ (w.astype(np.float64) - out)).max() <= np.sqrt(n) * 2 * tol
    # nearest point: not farther than random feasible points
    for v in rng.normal(size=(5, B.shape[1])):
        y = B @ v + proj.w0
        assert np.linalg.norm(w - out) <= np.linalg.norm(w - y) + np.sqrt(n) * tol
    # one-shot function and the NumPy reference agree
    np.testing.assert_allclose(impl.get(P.project_affine(w_dev, A, c, backend=impl.backend)), out,
                               rtol=0, atol=tol)
    np.testing.assert_allclose(out, P.project_affine(w, A, c, backend="numpy"), rtol=0, atol=2 * tol)


def test_affine_nd_weights_and_reuse(impl):
    """A weight matrix constrained through its C-order flattening; one projector, many calls."""
    rng = np.random.default_rng(3)
    A, c = random_constraints(rng, 2, 12, 2)
    proj = P.AffineProjector(A, c)
    for _ in range(3):
        W = rng.normal(size=(3, 4))
        out = impl.get(proj.project(impl.put(W), backend=impl.backend))
        assert out.shape == (3, 4)
        assert np.linalg.norm(A @ out.reshape(-1) - c) <= 1e3 * EPS64 * (1 + np.linalg.norm(W))


def test_reparameterize(impl):
    rng = np.random.default_rng(4)
    A, c = random_constraints(rng, 4, 9, 3)
    B, w0 = P.reparameterize(A, c)
    assert B.shape == (9, 6)
    np.testing.assert_allclose(B.T @ B, np.eye(6), atol=50 * EPS64)
    assert np.abs(A @ B).max() <= 50 * EPS64 * np.linalg.norm(A)
    assert np.linalg.norm(A @ w0 - c) <= 50 * EPS64 * (np.linalg.norm(A) * np.linalg.norm(w0) + np.linalg.norm(c))
    np.testing.assert_allclose(P.null_space(A), B)
    # every B v + w0 is a fixed point of the projection
    y = B @ rng.normal(size=6) + w0
    out = impl.get(P.project_affine(impl.put(y), A, c, backend=impl.backend))
    np.testing.assert_allclose(out, y, rtol=0, atol=100 * EPS64 * np.linalg.norm(y))


def test_projected_gradient_keeps_feasibility(impl):
    rng = np.random.default_rng(5)
    A, c = random_constraints(rng, 3, 10, 3)
    w = P.project_affine(rng.normal(size=10), A, c)
    g = rng.normal(size=10)
    pg = impl.get(P.project_gradient(impl.put(g), A=A, backend=impl.backend))
    assert np.abs(A @ pg).max() <= 100 * EPS64 * np.linalg.norm(A) * np.linalg.norm(g)
    # descent direction: <g, Pg> = ||Pg||^2 >= 0
    np.testing.assert_allclose(g @ pg, pg @ pg, rtol=1e-12)
    step = w - 0.1 * pg
    assert np.linalg.norm(A @ step - c) <= 1e3 * EPS64 * (1 + np.linalg.norm(w))
    # ties: the gradient projection is the group-mean map
    groups = rng.integers(0, 3, size=10)
    np.testing.assert_allclose(
        impl.get(P.project_gradient(impl.put(g), groups=groups, backend=impl.backend)),
        brute_group_means(g, groups), atol=tie_tol(g, np.float64))


def test_inconsistent_constraints_raise():
    A = np.array([[1.0, 1.0], [2.0, 2.0]])
    with pytest.raises(ValueError, match="inconsistent"):
        P.project_affine(np.zeros(2), A, np.array([1.0, 3.0]))
    # consistent up to rounding is fine
    c = A @ np.array([0.1, 0.7])
    out = P.project_affine(np.zeros(2), A, c)
    assert np.linalg.norm(A @ out - c) <= 1e-14


@pytest.mark.parametrize("call,exc,match", [
    (lambda: P.project_ties(np.zeros(4), np.zeros(3, int)), ValueError, "groups must have the shape of w"),
    (lambda: P.project_ties(np.zeros(4), np.zeros(4)), TypeError, "groups must be an integer array"),
    (lambda: P.project_ties(np.zeros(4), np.zeros(4, bool)), TypeError, "groups must be an integer"),
    (lambda: P.project_ties(np.array([0.0, np.nan]), np.zeros(2, int)), ValueError, "w contains NaN"),
    (lambda: P.project_ties(np.array(["a"]), np.zeros(1, int)), TypeError, "w must be"),
    (lambda: P.project_affine(np.zeros(3), np.ones((2, 4)), np.zeros(2)), ValueError, "w must have one entry per column"),
    (lambda: P.project_affine(np.zeros(4), np.ones((2, 4)), np.zeros(3)), ValueError, "c must have one entry per row"),
    (lambda: P.project_affine(np.zeros(4), np.ones(4), np.zeros(1)), ValueError, "A must be a 2-D"),
    (lambda: P.project_affine(np.zeros(4), np.full((1, 4), np.inf), np.zeros(1)), ValueError, "A contains Inf"),
    (lambda: P.project_affine(np.zeros(4), np.ones((1, 4)), np.array([np.nan])), ValueError, "c contains NaN"),
    (lambda: P.project_gradient(np.zeros(4)), ValueError, "exactly one of"),
    (lambda: P.project_gradient(np.zeros(4), groups=np.zeros(3, int)), ValueError, "shape of g"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_bad_input_torch():
    torch = pytest.importorskip("torch")
    if "torch" not in registry.OPERATIONS["project_ties"]:
        pytest.skip("no torch implementation registered")
    with pytest.raises(ValueError, match="w contains NaN"):
        P.project_ties(torch.tensor([1.0, float("nan")]), np.zeros(2, int))
    with pytest.raises(TypeError, match=r"w has dtype torch\.float16"):
        P.project_ties(torch.zeros(2, dtype=torch.float16), np.zeros(2, int))
    with pytest.raises(TypeError, match="groups must be an integer"):
        P.project_ties(torch.zeros(2), torch.zeros(2))


# ------------------------------------------------------------------------------------------------
# A convolution is a fully connected layer with tied, mostly-zero weights.

CONV_SETTINGS = [
    dict(stride=1, padding=0),
    dict(stride=2, padding=1),
    dict(stride=(2, 1), padding=(0, 2), dilation=(1, 2)),
]


@pytest.mark.parametrize("kw", CONV_SETTINGS, ids=["s1p0", "s2p1", "s21p02d12"])
def test_conv_as_tied_fc_matches_conv2d(kw):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    gen = torch.Generator().manual_seed(0)
    c_in, h, w, c_out = 2, 6, 7, 3
    ties = conv2d_ties((c_in, h, w), (c_out, c_in, 3, 3), **kw)
    K = torch.randn(c_out, c_in, 3, 3, generator=gen, dtype=torch.float64)
    bias = torch.randn(c_out, generator=gen, dtype=torch.float64)
    x = torch.randn(4, c_in, h, w, generator=gen, dtype=torch.float64)
    y = F.conv2d(x, K, bias, **kw)
    assert tuple(y.shape[1:]) == ties.out_shape
    M = ties.fc_weight(K)
    y_fc = x.reshape(4, -1) @ M.T + bias[torch.as_tensor(ties.bias_groups)]
    tol = 4 * c_in * 9 * EPS64 * float(x.abs().max() * K.abs().max() + bias.abs().max())
    assert float((y_fc - y.reshape(4, -1)).abs().max()) <= tol
    # counts: every tap is used here; each output sees only the taps landing inside the input
    assert ties.n_free == K.numel()
    assert ties.n_total == ties.groups.shape[0] * ties.groups.shape[1] == y[0].numel() * x[0].numel()
    ones = F.conv2d(torch.ones(1, c_in, h, w, dtype=torch.float64),
                    torch.ones(c_out, c_in, 3, 3, dtype=torch.float64), **kw)
    assert ties.n_nonzero == int(ones.sum())  # sum over outputs of the taps that meet real input
    # projecting any FC matrix gives the FC matrix of its kernel; the kernel round-trips
    Wr = np.random.default_rng(1).normal(size=ties.groups.shape)
    proj = ties.project(Wr)
    np.testing.assert_allclose(proj, ties.fc_weight(ties.kernel(Wr)), atol=1e-14)
    np.testing.assert_allclose(ties.kernel(M.numpy()), K.numpy(), atol=1e-15)
    assert np.all(proj[~ties.mask] == 0)


def test_conv_ties_bad_input():
    with pytest.raises(ValueError, match="input channels"):
        conv2d_ties((2, 5, 5), (3, 1, 3, 3))
    with pytest.raises(ValueError, match="does not fit"):
        conv2d_ties((1, 2, 2), (1, 1, 3, 3))
    with pytest.raises(TypeError, match="stride"):
        conv2d_ties((1, 5, 5), (1, 1, 3, 3), stride=1.5)


# ------------------------------------------------------------------------------------------------
# Randomised properties on the reference (hypothesis): any labels, sizes and magnitudes.

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(st.integers(1, 40), st.integers(1, 6), st.sampled_from([1e-200, 1e-6, 1.0, 1e6, 1e200]),
       st.integers(0, 2**31 - 1))
def test_ties_properties_random(d, n_labels, mag, seed):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=d) * mag
    groups = rng.integers(-(2**40), 2**40, size=n_labels)[rng.integers(0, n_labels, size=d)]
    out = P.project_ties(w, groups, backend="numpy")
    tol = tie_tol(w, np.float64)
    np.testing.assert_allclose(out, brute_group_means(w, groups), rtol=0, atol=tol)
    # sums per group are preserved (the residual is orthogonal to every group indicator)
    for g in np.unique(groups):
        sel = groups == g
        assert abs(out[sel].sum() - w[sel].sum()) <= sel.sum() * tol
    # idempotent up to rounding: the mean of m equal floats, m x / m, can move by an ulp
    np.testing.assert_allclose(P.project_ties(out, groups, backend="numpy"), out, rtol=0, atol=tol)
