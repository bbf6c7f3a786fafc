"""PyTorch integration: tied parameters, projected gradients, Hard Concrete gates, soft sharing.

* :class:`Tied` / :func:`tie_parameter`: a ``torch.nn.utils.parametrize`` parametrisation that stores
  one value per tie group (the free parameters) and expands them to the full weight; ``right_inverse``
  is the orthogonal projection (group means), so assigning a weight projects it. An optional mask
  pins entries to exactly 0 (a convolution as a FC layer: :mod:`wsrbench.ops.conv_ties`).
* :func:`project_gradients` (a gradient hook) and :class:`ProjectedOptimizer` (projects the
  parameters after every step): projected gradient descent on ties or on {w : A w = c}. The hook keeps
  plain SGD feasible; the wrapper keeps any optimiser feasible (Adam's per-coordinate scaling would
  leave an affine subspace).
* :class:`HardConcreteGate`: L0 gates with reparameterised sampling in training, the deterministic
  gate in eval, and the expected-L0 penalty (sum of P(z != 0)) (:mod:`wsrbench.ops.gates`).
* :class:`WeightSharingProx`, :func:`freeze_sharing`, :func:`bake_sharing`,
  :func:`weight_sharing_penalty`: proximal training with weight sharing
  (:mod:`wsrbench.nn.training`, docs/design.md#training).
* :class:`SoftSharingPenalty`: a Gaussian mixture prior with learnable weights (softmax logits),
  means and standard deviations (log-parametrised) (:mod:`wsrbench.ops.soft_sharing`).

Importing this module without torch raises ImportError with the install command.
"""
from __future__ import annotations

import math

try:
    import torch
    from torch import nn
    from torch.nn.utils import parametrize
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError("wsrbench.nn needs PyTorch; install it with `pip install torch` "
                      "(or `pip install wsrbench[torch]`)") from exc

import numpy as np

from ..core import arrays, checks, registry
from ..ops.gates import check_gate_params
from ..ops.projection import AffineProjector, TieProjector
from .optim_wrapper import OptimizerWrapper

__all__ = ["Tied", "tie_parameter", "project_gradients", "ProjectedOptimizer",
           "HardConcreteGate", "SoftSharingPenalty", "WeightSharingProx", "freeze_sharing",
           "bake_sharing", "weight_sharing_penalty"]


def _torch_op(op: str, x):
    """The torch backend's ``op`` (its autograd-aware implementation), through the registry."""
    return registry.operation(op, "torch", x)[0]


class Tied(nn.Module):
    """Parametrisation w = expand(values): weight entries with equal labels share one value.

    groups: integer labels of the weight's shape (any integer values). mask (optional, bool, same
    shape): False entries are exactly 0 and their labels are ignored. The stored parameter has one
    entry per distinct label among the unmasked entries (``n_free``); ``right_inverse(w)`` returns
    the group means of w, the orthogonal projection's free values, so the forward of the right
    inverse is the nearest tied weight.
    """

    def __init__(self, groups, mask=None):
        super().__init__()
        labels = checks.as_labels(groups, "groups")
        self.shape = tuple(labels.shape)
        flat = labels.reshape(-1)
        if mask is None:
            keep = np.ones(flat.shape[0], dtype=bool)
        else:
            m = np.asarray(arrays.to_host(mask))
            if m.dtype != np.bool_:
                raise TypeError(f"mask must be a boolean array, got dtype {m.dtype}")
            checks.check_same_shape(labels, "groups", m, "mask")
            keep = m.reshape(-1)
        uniq, inverse, counts = np.unique(flat[keep], return_inverse=True, return_counts=True)
        self.n_free = int(uniq.shape[0])
        # index[i] = the free value of entry i, or n_free (an appended 0) for masked-out entries
        index = np.full(flat.shape[0], self.n_free, dtype=np.int64)
        index[keep] = inverse.reshape(-1)
        self.register_buffer("index", torch.as_tensor(index))
        self.register_buffer("keep", torch.as_tensor(np.nonzero(keep)[0]))
        self.register_buffer("group_of_kept", torch.as_tensor(inverse.reshape(-1).astype(np.int64)))
        self.register_buffer("counts", torch.as_tensor(counts.astype(np.float64)))

    def forward(self, values):
        ext = torch.cat([values, values.new_zeros(1)])
        return ext[self.index].reshape(self.shape)

    def right_inverse(self, weight):
        if tuple(weight.shape) != self.shape:
            raise ValueError(f"weight must have the shape of groups {self.shape}, got "
                             f"{tuple(weight.shape)}")
        kept = weight.reshape(-1)[self.keep].to(torch.float64)
        sums = torch.zeros(self.n_free, dtype=torch.float64, device=weight.device)
        sums = sums.index_add(0, self.group_of_kept, kept)
        return (sums / self.counts).to(weight.dtype)


def tie_parameter(module: nn.Module, name: str, groups, mask=None) -> Tied:
    """Tie ``module.<name>`` by ``groups`` (and pin ``mask == False`` entries to 0), in place.

    The current value is projected (group means); afterwards ``module.<name>`` is always tied and
    the optimiser sees ``module.parametrizations.<name>.original`` with one entry per group.
    """
    p = Tied(groups, mask).to(getattr(module, name).device)
    parametrize.register_parametrization(module, name, p)
    return p


def _projector(param, groups, A, c):
    if (groups is None) == (A is None):
        raise ValueError("give exactly one of groups= (ties) or A= (with c=, affine constraints)")
    if groups is not None:
        proj = TieProjector(groups)
        if proj.shape != tuple(param.shape):
            raise ValueError(f"groups must have the parameter's shape {tuple(param.shape)}, got "
                             f"{proj.shape}")
        return proj
    return AffineProjector(A, c)


def project_gradients(param: nn.Parameter, *, groups=None, A=None, c=None):
    """Projected gradient descent through a gradient hook: every gradient of ``param`` is projected.

    The parameter is projected once now (so it starts feasible); then each backward pass delivers the
    projected gradient (group means for ties, the null(A) component for A w = c), so an SGD step
    (momentum and weight decay included, both linear) stays in the constraint set up to rounding.
    Returns the hook handle (``.remove()`` to undo). Use :class:`ProjectedOptimizer` with Adam & co.
    """
    proj = _projector(param, groups, A, c)
    with torch.no_grad():
        param.copy_(proj.project(param.detach()))
    return param.register_hook(lambda g: proj.project_gradient(g, check=False))


class ProjectedOptimizer(OptimizerWrapper):
    """Wrap an optimiser so that each ``step()`` ends with a projection of the constrained params.

    constraints: list of ``(param, projector)`` with a :class:`~wsrbench.ops.projection.TieProjector`
    or :class:`~wsrbench.ops.projection.AffineProjector`, or use :meth:`add`. Exact for any optimiser
    (projected iterates); everything else is delegated to the wrapped optimiser.
    """

    def __init__(self, optimizer, constraints=()):
        super().__init__(optimizer)
        self.constraints = []
        for param, proj in constraints:
            self._append(param, proj)

    def _append(self, param, proj):
        self.constraints.append((param, proj))
        with torch.no_grad():
            param.copy_(proj.project(param.detach()))

    def add(self, param, *, groups=None, A=None, c=None):
        self._append(param, _projector(param, groups, A, c))
        return self

    def step(self, closure=None):
        loss = self.optimizer.step(closure)
        with torch.no_grad():
            for param, proj in self.constraints:
                param.copy_(proj.project(param, check=False))
        return loss



class HardConcreteGate(nn.Module):
    """L0 gates z in [0, 1] (exact 0 and 1 possible) with a learnable log_alpha per gate.

    forward(x=None): training mode samples z from fresh uniform noise (reparameterised: gradients
    reach log_alpha); eval mode uses the deterministic gate clip(sigmoid(log_alpha)(zeta - gamma)
    + gamma, 0, 1). Returns z, or x * z (broadcast) when x is given. ``expected_l0()`` is the
    differentiable penalty sum_i P(z_i != 0).

    init_keep: initial P(z != 0) of every gate (log_alpha is set to match it).
    """

    def __init__(self, shape, *, init_keep: float = 0.9, beta: float = 2 / 3, gamma: float = -0.1,
                 zeta: float = 1.1, dtype=None, device=None):
        super().__init__()
        self.beta, self.gamma, self.zeta = check_gate_params(beta, gamma, zeta)
        if not 0.0 < init_keep < 1.0:
            raise ValueError(f"init_keep must be in (0, 1), got {init_keep}")
        self._l0_offset = -self.beta * math.log(-self.gamma / self.zeta)
        # P(z != 0) = sigmoid(log_alpha + offset) = init_keep
        la0 = math.log(init_keep / (1.0 - init_keep)) - self._l0_offset
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.log_alpha = nn.Parameter(torch.full(shape, la0, dtype=dtype, device=device))

    def forward(self, x=None):
        la = self.log_alpha
        if self.training:
            # u in (0, 1): rand is in [0, 1); clamping away the exact 0 keeps log u finite.
            u = torch.rand_like(la).clamp_min(torch.finfo(la.dtype).tiny)
            z = _torch_op("hard_concrete", la)(la, u, self.beta, self.gamma, self.zeta)
        else:
            z = _torch_op("hard_concrete_gate", la)(la, self.gamma, self.zeta)
        return z if x is None else x * z

    def expected_l0(self):
        """E[number of nonzero gates] = sum of P(z != 0) (differentiable)."""
        return _torch_op("hard_concrete_prob", self.log_alpha)(
            self.log_alpha, 1.0, self._l0_offset).sum()

    def extra_repr(self):
        return (f"shape={tuple(self.log_alpha.shape)}, beta={self.beta:g}, gamma={self.gamma:g}, "
                f"zeta={self.zeta:g}")


class SoftSharingPenalty(nn.Module):
    """Gaussian-mixture prior penalty over weights with learnable pi (softmax), mu and sigma.

    forward(*tensors): -sum log sum_j pi_j N(w; mu_j, sigma_j^2) over every entry of the tensors
    (differentiable with respect to the tensors and the mixture). ``quantize(t)`` maps each entry
    to the mean of its most responsible component.

    mu: initial means (n_components values, e.g. np.linspace(-1, 1, 16)); sigma: initial standard
    deviation (scalar or per component); pi: initial weights (default uniform).
    """

    def __init__(self, mu, *, sigma=0.25, pi=None, learn_pi=True, learn_mu=True,
                 learn_sigma=True, dtype=torch.float32):
        super().__init__()
        mu = torch.as_tensor(np.asarray(arrays.to_host(mu), dtype=np.float64)).reshape(-1)
        k = mu.shape[0]
        if k == 0:
            raise ValueError("mu must have at least one component")
        sigma = torch.as_tensor(sigma, dtype=torch.float64).expand(k).clone()
        if not bool(torch.all(sigma > 0)):
            raise ValueError(f"sigma must be > 0, got {sigma.tolist()}")
        pi = torch.full((k,), 1.0 / k, dtype=torch.float64) if pi is None else \
            torch.as_tensor(pi, dtype=torch.float64).reshape(-1)
        if pi.shape[0] != k or not bool(torch.all(pi > 0)):
            raise ValueError("pi must have one positive entry per component")
        self.logits = nn.Parameter(torch.log(pi / pi.sum()).to(dtype), requires_grad=learn_pi)
        self.mu = nn.Parameter(mu.to(dtype), requires_grad=learn_mu)
        self.log_sigma = nn.Parameter(torch.log(sigma).to(dtype), requires_grad=learn_sigma)

    def mixture(self):
        """(pi, mu, sigma) as tensors (pi = softmax(logits), sigma = exp(log_sigma))."""
        return torch.softmax(self.logits, dim=0), self.mu, torch.exp(self.log_sigma)

    def forward(self, *tensors):
        w = torch.cat([t.reshape(-1) for t in tensors])
        pi, mu, sigma = self.mixture()
        return _torch_op("soft_sharing_penalty", w)(w, pi, mu, sigma)

    @torch.no_grad()
    def quantize(self, tensor):
        pi, mu, sigma = self.mixture()
        q, _ = _torch_op("quantize", tensor)(tensor.reshape(-1), pi, mu, sigma)
        return q.reshape(tensor.shape)


# Proximal training lives in its own module (wsrbench.nn.training); the bridge from its clusters to
# tied parameters is here, next to tie_parameter.
from .training import WeightSharingProx, weight_sharing_penalty  # noqa: E402


def freeze_sharing(model: nn.Module, prox: WeightSharingProx, *,
                   pin_zeros: bool = True) -> list[nn.Parameter]:
    """Tie every parameter of ``prox`` (a :class:`WeightSharingProx`) by its clusters, in place.

    Afterwards each such ``module.<name>`` is a ``Tied`` parametrisation: one free value per
    cluster, so fine-tuning (with any optimiser, no prox) keeps the sharing exactly; with
    ``pin_zeros`` the clusters that are exactly 0 (L1) stay 0 (``Tied``'s mask). Clusters come
    from the last step's labels when ``prox`` records them, else from equal values (what the prox
    leaves equal). A group of scope "joint" is tied per tensor (a tie across tensors is not a
    parametrisation of one tensor).

    torch keeps each Parameter object and swaps the free values into it (``set_``), so the old
    optimiser still holds the objects, now of another shape: its state (momentum, Adam moments)
    no longer fits, and a prox on them would be a different penalty (cluster sizes ignored).
    ``prox`` is therefore marked frozen (its ``step`` raises, naming this function): build a new
    optimiser over ``model.parameters()``. The state dict keys become
    ``<module>.parametrizations.<name>.original``; :func:`bake_sharing` makes the ties permanent
    for export (a plain state dict). Returns the free parameters.
    """
    owners = {}
    for module in model.modules():
        for pname, par in module.named_parameters(recurse=False):
            owners[id(par)] = (module, pname)
    for p in prox.params:  # every check before the first tie: all or nothing
        if id(p.tensor) not in owners:
            raise ValueError(f"{p.name} is not a parameter of the model")
        if p.sharded:
            raise ValueError(f"{p.name} is sharded across ranks; freeze_sharing ties local "
                             f"parameters")
    out = []
    for p in prox.params:
        module, pname = owners[id(p.tensor)]
        w = p.tensor.detach()
        if p.labels is not None:
            groups = p.labels.cpu().numpy()
        else:
            _, inv = torch.unique(w.reshape(-1), return_inverse=True)
            groups = inv.reshape(w.shape).cpu().numpy()
        mask = (w != 0).cpu().numpy() if pin_zeros else None
        if mask is not None and not mask.any():
            mask = None  # an all-zero tensor: nothing free; keep one tied zero instead
        tie_parameter(module, pname, np.asarray(groups, dtype=np.int64), mask)
        out.append(module.parametrizations[pname].original)
    prox.frozen_by = "freeze_sharing"
    return out


def bake_sharing(model: nn.Module) -> nn.Module:
    """Make every :class:`Tied` parametrisation of ``model`` permanent, in place; returns model.

    Each tied ``module.<name>`` becomes a plain Parameter holding the expanded (tied) weight
    (``torch.nn.utils.parametrize.remove_parametrizations(..., leave_parametrized=True)``), so
    ``model.state_dict()`` has the keys and shapes of the same architecture never tied and
    loads into it (``load_state_dict(strict=True)``). The ties are no longer enforced afterwards:
    bake a ``copy.deepcopy(model)`` to keep fine-tuning the original.
    """
    for module in list(model.modules()):
        if not parametrize.is_parametrized(module):
            continue
        for name in list(module.parametrizations.keys()):
            if any(isinstance(f, Tied) for f in module.parametrizations[name]):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return model
