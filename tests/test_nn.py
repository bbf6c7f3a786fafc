"""wsrbench.nn in training: the constraints hold after optimisation steps.

Ties stay tied to 1e-6 (exactly, for the parametrisation), affine constraints hold to a float32
tolerance, Hard Concrete gates of useless inputs reach exact zeros, soft sharing clusters weights.
"""
from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from wsrbench.core import registry  # noqa: E402
from wsrbench.ops.conv_ties import conv2d_ties  # noqa: E402

if any("torch" not in registry.OPERATIONS.get(op, {}) for op in ("project_ties", "hard_concrete")):
    pytest.skip("torch implementations are not registered", allow_module_level=True)
if registry.get_backend("torch").unavailable_reason() is not None:
    pytest.skip(registry.get_backend("torch").unavailable_reason(), allow_module_level=True)

import wsrbench.nn as wnn  # noqa: E402

EPS32 = float(torch.finfo(torch.float32).eps)


def group_spread(w: torch.Tensor, groups: np.ndarray) -> float:
    w = w.detach().cpu().numpy()
    return max(float(np.ptp(w[groups == g])) for g in np.unique(groups))


def regression(n_in, n_out, seed=0, n=256):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, n_in, generator=gen)
    W_true = torch.randn(n_out, n_in, generator=gen)
    return X, X @ W_true.T


def test_import_without_torch_says_pip_install(monkeypatch):
    for name in [m for m in sys.modules if m == "wsrbench.nn" or m.startswith("wsrbench.nn.")
                 or m.startswith("wsrbench.backends.torch")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="pip install torch"):
        importlib.import_module("wsrbench.nn")
    monkeypatch.delitem(sys.modules, "wsrbench.nn", raising=False)


@pytest.mark.slow
def test_tied_parametrization_trains_and_stays_tied():
    torch.manual_seed(0)
    lin = nn.Linear(6, 4)
    groups = np.random.default_rng(0).choice([-5, 2, 9, 100], size=(4, 6))
    p = wnn.tie_parameter(lin, "weight", groups)
    assert p.n_free == np.unique(groups).size
    assert lin.parametrizations.weight.original.numel() == p.n_free  # the free parameters only
    assert group_spread(lin.weight, groups) == 0.0  # the initial weight was projected
    X, Y = regression(6, 4)
    opt = torch.optim.Adam(lin.parameters(), lr=0.05)
    first = None
    for _ in range(60):
        opt.zero_grad()
        loss = ((lin(X) - Y) ** 2).mean()
        first = first if first is not None else float(loss.detach())
        loss.backward()
        opt.step()
    assert float(loss.detach()) < first
    assert group_spread(lin.weight, groups) <= 1e-6
    # assigning a weight projects it (right_inverse = group means)
    with torch.no_grad():
        lin.weight = torch.randn(4, 6)
    assert group_spread(lin.weight, groups) == 0.0


@pytest.mark.slow
def test_conv_as_tied_fc_trains_to_the_conv():
    """A FC layer tied like a 3x3 conv (with its zero mask) learns a target conv exactly in form."""
    F = torch.nn.functional
    torch.manual_seed(1)
    c_in, h, w, c_out = 1, 5, 5, 2
    ties = conv2d_ties((c_in, h, w), (c_out, c_in, 3, 3), stride=1, padding=1)
    fc = nn.Linear(c_in * h * w, c_out * h * w, bias=False)
    wnn.tie_parameter(fc, "weight", ties.groups, mask=ties.mask)
    assert fc.parametrizations.weight.original.numel() == ties.n_free == 18
    K_true = torch.randn(c_out, c_in, 3, 3)
    X = torch.randn(128, c_in, h, w)
    Y = F.conv2d(X, K_true, padding=1).reshape(128, -1)
    opt = torch.optim.Adam(fc.parameters(), lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        loss = ((fc(X.reshape(128, -1)) - Y) ** 2).mean()
        loss.backward()
        opt.step()
    W = fc.weight.detach()
    assert torch.all(W[torch.as_tensor(~ties.mask)] == 0)  # structural zeros are exact
    for g in np.unique(ties.groups[ties.mask]):
        vals = W.numpy()[(ties.groups == g) & ties.mask]
        assert np.ptp(vals) <= 1e-6
    K = torch.as_tensor(ties.kernel(W.numpy()))
    # the tied FC layer is the conv with its own kernel, and that kernel approaches the target
    xt = torch.randn(3, c_in, h, w)
    np.testing.assert_allclose(fc(xt.reshape(3, -1)).detach().numpy(),
                               F.conv2d(xt, K, padding=1).reshape(3, -1).numpy(), atol=1e-5)
    assert float((K - K_true).abs().max()) < 0.05


def test_projected_gradient_hook_sgd_keeps_ties():
    torch.manual_seed(2)
    lin = nn.Linear(5, 3)
    groups = np.random.default_rng(1).integers(0, 4, size=(3, 5))
    handle = wnn.project_gradients(lin.weight, groups=groups)
    assert group_spread(lin.weight, groups) <= 1e-7
    X, Y = regression(5, 3, seed=1)
    opt = torch.optim.SGD(lin.parameters(), lr=0.05, momentum=0.9)
    for _ in range(50):
        opt.zero_grad()
        ((lin(X) - Y) ** 2).mean().backward()
        opt.step()
    assert group_spread(lin.weight, groups) <= 1e-6
    handle.remove()


def test_projected_optimizer_adam_affine():
    """Adam rescales coordinates (it would leave {A w = c}); projecting after each step keeps it."""
    torch.manual_seed(3)
    lin = nn.Linear(6, 1, bias=False)
    rng = np.random.default_rng(2)
    A = rng.normal(size=(2, 6))
    c = rng.normal(size=2)
    opt = wnn.ProjectedOptimizer(torch.optim.Adam(lin.parameters(), lr=0.05)).add(lin.weight, A=A, c=c)
    X, Y = regression(6, 1, seed=2)
    for _ in range(40):
        opt.zero_grad()
        ((lin(X) - Y) ** 2).mean().backward()
        opt.step()
    w = lin.weight.detach().double().numpy().reshape(-1)
    # float32 storage: each entry carries eps32 |w|; A maps that to ||A|| sqrt(n) eps32 ||w||
    tol = 4 * np.linalg.norm(A, 2) * np.sqrt(6) * EPS32 * (1 + np.linalg.norm(w))
    assert np.linalg.norm(A @ w - c) <= tol
    # ties through the wrapper as well, with a TieProjector
    lin2 = nn.Linear(4, 2)
    groups = np.array([[0, 0, 1, 1], [2, 2, 2, 3]])
    opt2 = wnn.ProjectedOptimizer(torch.optim.Adam(lin2.parameters(), lr=0.1)).add(lin2.weight, groups=groups)
    X2, Y2 = regression(4, 2, seed=3)
    for _ in range(20):
        opt2.zero_grad()
        ((lin2(X2) - Y2) ** 2).mean().backward()
        opt2.step()
    assert group_spread(lin2.weight, groups) <= 1e-6


def test_hard_concrete_gates_reach_exact_zeros():
    """Linear regression where only 3 of 10 inputs matter: L0 gates switch the others off exactly."""
    torch.manual_seed(4)
    n_in, useful = 10, [1, 4, 7]
    X = torch.randn(512, n_in)
    y = X[:, useful] @ torch.tensor([2.0, -3.0, 1.5])
    gate = wnn.HardConcreteGate(n_in, init_keep=0.9)
    lin = nn.Linear(n_in, 1, bias=False)
    opt = torch.optim.Adam(list(gate.parameters()) + list(lin.parameters()), lr=0.05)
    l0_start = float(gate.expected_l0().detach())
    for _ in range(400):
        opt.zero_grad()
        pred = lin(gate(X)).squeeze(1)
        loss = ((pred - y) ** 2).mean() + 0.05 * gate.expected_l0()
        loss.backward()
        opt.step()
    gate.eval()
    z = gate()
    assert torch.equal(z, gate())  # deterministic in eval
    off = [i for i in range(n_in) if i not in useful]
    assert torch.all(z[off] == 0.0), z  # exact zeros
    assert torch.all(z[useful] > 0.5), z
    assert float(gate.expected_l0().detach()) < l0_start
    gate.train()
    samples = torch.stack([gate() for _ in range(50)])
    assert torch.all((samples >= 0) & (samples <= 1))


@pytest.mark.slow
def test_soft_sharing_penalty_clusters_weights():
    """Weights pulled by a learnable 3-component mixture end near the means; quantizing them
    changes the layer's output little; the mixture stays a distribution."""
    torch.manual_seed(5)
    lin = nn.Linear(8, 4, bias=False)
    prior = wnn.SoftSharingPenalty(np.array([-0.5, 0.0, 0.5]), sigma=0.2)
    X, Y = regression(8, 4, seed=4)
    opt = torch.optim.Adam(list(lin.parameters()) + list(prior.parameters()), lr=0.02)
    start = float(prior(lin.weight).detach())
    for _ in range(300):
        opt.zero_grad()
        loss = ((lin(X) - Y) ** 2).mean() + 0.05 * prior(lin.weight)
        loss.backward()
        opt.step()
    pi, mu, sigma = (t.detach() for t in prior.mixture())
    assert abs(float(pi.sum()) - 1.0) <= 4 * 3 * EPS32
    assert float(prior(lin.weight).detach()) < start
    q = prior.quantize(lin.weight)
    assert q.shape == lin.weight.shape
    assert set(np.unique(q.numpy())) <= set(mu.numpy())
    dist = (lin.weight.detach() - q).abs().max()
    assert float(dist) <= 3 * float(sigma.max())
