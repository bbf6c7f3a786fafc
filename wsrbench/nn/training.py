r"""Proximal training with weight sharing in PyTorch (docs/design.md#training).

After each optimiser step, every parameter given to :class:`WeightSharingProx` is replaced by

.. math::
    w \leftarrow \operatorname{prox}_{\eta_t\lambda R + \eta_t\mu\|\cdot\|_1}(w)
    \quad\text{with rho}_t,

where :math:`\eta_t` is the current learning rate of the parameter's optimiser group (so LR
schedulers just work), :math:`\lambda` the weight of R (per parameter group, PyTorch style),
:math:`\mu` an optional L1 weight and rho_t a constant or a schedule (``wsrbench.prox``'s rho: each
cluster moves only (1 - rho) of the way, which weights merge is decided by the full strength).
This is proximal gradient descent on loss + lam R(w) + l1 |w|_1 (the paper's algorithm), exact in
each step: the step is ``wsrbench.prox`` itself (tested bit for bit).

Scope of sharing, per group: ``"tensor"`` (the whole tensor flattened is one pool of values: the
paper's default), ``"row"`` (each output unit, ``w[i]``, shares separately) or ``"joint"`` (all
tensors of the group share one pool, e.g. a layer's weight and bias together).

Cost: tensors of one group with the same size, dtype, device and learning rate go to the prox as
rows of one call (rows run in parallel on the Numba backend). CPU tensors go through ``ProxState``
(warm start: the previous step's sort order is the hint of the next) on the tensor's memory; CUDA
tensors stay on the device (``wsrbench.prox`` on them picks a GPU backend; no host round trip).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..core.warm_start import ProxState
from .optim_wrapper import OptimizerWrapper

__all__ = ["WeightSharingProx", "weight_sharing_penalty"]  # freeze_sharing: wsrbench.nn

SCOPES = ("tensor", "row", "joint")
_DEFAULTS = {"lam": None, "l1": 0.0, "rho": 0.0, "scope": "tensor", "l1_scaled": True,
             "trick": False}


def weight_sharing_penalty(w: torch.Tensor, *, dim: int | None = None) -> torch.Tensor:
    r"""Differentiable :math:`R(w) = \frac{1}{d-1}\sum_{i<j}|w_i - w_j|` in O(d log d).

    With :math:`w_{(0)} \le \dots \le w_{(d-1)}` sorted,
    :math:`\sum_{i<j}|w_i - w_j| = \sum_k (2k - d + 1)\, w_{(k)}`; autograd flows through the sort
    (its gradient is the coefficient of each weight's rank: the subgradient the paper's baseline
    uses). The coefficients and the sum are float64 (no cancellation between the large positive and
    negative halves in float32); the result has w's dtype.

    Parameters
    ----------
    w : tensor
        Flattened entirely (``dim=None``, a scalar result) or one R per slice along ``dim``.
    """
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"w must be a torch tensor, got {type(w).__name__}")
    if not w.dtype.is_floating_point:
        raise TypeError(f"w must be a float tensor, got dtype {w.dtype}")
    x = w.reshape(-1) if dim is None else w.movedim(dim, -1)
    d = x.shape[-1]
    if d <= 1:
        return (x.sum(-1) * 0).to(w.dtype)
    xs = torch.sort(x.to(torch.float64), dim=-1).values
    k = torch.arange(d, dtype=torch.float64, device=w.device)
    return ((xs * (2 * k - d + 1)).sum(-1) / (d - 1)).to(w.dtype)


@dataclass
class _Param:
    tensor: torch.Tensor
    name: str
    group: dict
    labels: torch.Tensor | None = None  # cluster of each weight at the last step (x's shape)
    clusters: int = 0  # partition blocks at the last step (summed over rows for scope "row")


@dataclass
class _Batch:
    """Rows of one prox call: members' tensors viewed as (rows, d), stacked in order."""
    group: dict
    opt_group: dict
    members: list  # of (_Param, rows)
    d: int
    state: ProxState = field(default_factory=ProxState)


class WeightSharingProx(OptimizerWrapper):
    """Proximal weight-sharing step after an optimiser's step (see the module docstring).

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        Its ``step()`` runs first; each parameter's learning rate is read from its group at every
        step. ``WeightSharingProx`` delegates everything else (``zero_grad``, ``param_groups``, ...)
        to it, so it can replace the optimiser in a training loop.
    params : iterable
        Tensors, ``(name, tensor)`` pairs (``model.named_parameters()``), or dicts in the PyTorch
        param-group style, ``{"params": [...], "lam": ..., "l1": ..., ...}``, whose keys override
        the defaults below for that group. Every tensor must also be optimised by ``optimizer``.
    lam : float >= 0
        Weight of R; the prox strength of a step is ``lr_t * lam``.
    l1 : float >= 0
        Weight of an L1 term: ``lr_t * l1`` per step, or ``l1`` itself with ``l1_scaled=False``
        (the paper's ``lasso_lr``, a fixed threshold per step).
    rho : float in [0, 1] or callable ``step -> float``
        Damping of the movement (see ``wsrbench.prox``); a schedule is called with the step index
        (0, 1, ...) and checked to stay in [0, 1].
    scope : "tensor", "row" or "joint"
        What shares one pool of values: the flattened tensor, each row ``w[i]``, or all tensors
        of the group together.
    trick : bool
        The paper's variant: which weights merge is decided by the unscaled ``lam``, while every
        cluster moves ``lr_t (1 - rho)`` of the way to its prox value (needs lr_t <= 1). It is
        ``prox(w, lam, l1=l1_t, rho=1 - lr_t (1 - rho))``, with l1_t as ``l1_scaled`` says (the
        paper pairs it with an unscaled threshold: ``l1_scaled=False``).
    labels : bool
        Record the cluster labels of every parameter at each step (``labels_of``, ``metrics``,
        ``wsrbench.nn.freeze_sharing``); a scatter of d int64 per step.

    Examples
    --------
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> opt = WeightSharingProx(opt, [model.fc1.weight], lam=1e-3)
    >>> loss.backward(); opt.step(); opt.zero_grad()
    """

    def __init__(self, optimizer, params, *, lam: float, l1: float = 0.0, rho=0.0,
                 scope: str = "tensor", trick: bool = False, l1_scaled: bool = True,
                 labels: bool = False):
        self.optimizer = optimizer
        self.record_labels = bool(labels)
        self.steps = 0
        defaults = {"lam": lam, "l1": l1, "rho": rho, "scope": scope, "l1_scaled": l1_scaled,
                    "trick": trick}
        opt_group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
        self.params: list[_Param] = []
        seen: dict[int, str] = {}
        self.groups = []
        for gi, spec in enumerate(_as_groups(params)):
            group = dict(defaults)
            group.update({k: v for k, v in spec.items() if k != "params"})
            unknown = set(group) - set(_DEFAULTS)
            if unknown:
                raise ValueError(f"param group {gi}: unknown settings {sorted(unknown)}; "
                                 f"known: {sorted(_DEFAULTS)}")
            _check_group(group, gi)
            members = []
            for pi, item in enumerate(spec["params"]):
                name, t = item if isinstance(item, tuple) else (f"group {gi} param {pi}", item)
                _check_param(t, name, seen, opt_group_of)
                seen[id(t)] = name
                members.append(_Param(t, name, group))
            group["params"] = members
            self.groups.append(group)
            self.params.extend(members)
        self._batches = self._plan(opt_group_of)

    # -- planning: which tensors go to the prox together ----------------------------------
    def _plan(self, opt_group_of):
        batches: dict[tuple, _Batch] = {}
        for gi, group in enumerate(self.groups):
            members = group["params"]
            if group["scope"] == "joint":
                d = sum(p.tensor.numel() for p in members)
                t0 = members[0].tensor
                key = ("joint", gi)
                batches[key] = _Batch(group, opt_group_of[id(t0)], [(p, 1) for p in members], d)
                for p in members[1:]:
                    if p.tensor.dtype != t0.dtype or p.tensor.device != t0.device:
                        raise ValueError(f"{p.name}: scope 'joint' needs one dtype and device "
                                         f"in the group ({t0.dtype} on {t0.device} first)")
                    if opt_group_of[id(p.tensor)] is not opt_group_of[id(t0)]:
                        raise ValueError(f"{p.name}: scope 'joint' needs one learning rate "
                                         f"(one optimiser group) for the group's tensors")
                continue
            for p in members:
                t = p.tensor
                rows = t.shape[0] if (group["scope"] == "row" and t.ndim >= 1) else 1
                d = t.numel() // rows if rows else 0
                og = opt_group_of[id(t)]
                key = (gi, id(og), d, t.dtype, t.device)
                if key not in batches:
                    batches[key] = _Batch(group, og, [], d)
                batches[key].members.append((p, rows))
        return list(batches.values())

    # -- stepping ----------------------------------------------------------------------------
    def step(self, closure=None):
        """``optimizer.step(closure)``, then the prox step on the parameters; returns the loss."""
        loss = self.optimizer.step(closure)
        self.prox_step()
        return loss

    @torch.no_grad()
    def prox_step(self):
        """Only the prox step (after an ``optimizer.step()`` the caller made itself)."""
        for b in self._batches:
            self._run(b)
        self.steps += 1

    def strengths(self, group: dict, lr: float) -> tuple[float, float, float]:
        """(lam, l1, rho) passed to the prox this step for ``group`` at learning rate ``lr``."""
        rho = group["rho"](self.steps) if callable(group["rho"]) else group["rho"]
        rho = float(rho)
        if not 0.0 <= rho <= 1.0 or math.isnan(rho):
            raise ValueError(f"rho schedule of the group of {group['params'][0].name} gave "
                             f"{rho} at step {self.steps}; it must stay in [0, 1]")
        l1 = group["l1"] * (lr if group["l1_scaled"] else 1.0)
        if group["trick"]:
            if not 0.0 <= lr <= 1.0:
                raise ValueError(f"trick=True needs a learning rate in [0, 1] (it moves each "
                                 f"cluster lr (1 - rho) of the way), got lr={lr}")
            return group["lam"], l1, 1.0 - lr * (1.0 - rho)
        return lr * group["lam"], l1, rho

    def _run(self, b: _Batch):
        lam, l1, rho = self.strengths(b.group, float(b.opt_group["lr"]))
        if lam == 0.0 and l1 == 0.0:
            return
        views = [p.tensor.detach().reshape(rows, -1) if b.group["scope"] != "joint"
                 else p.tensor.detach().reshape(1, -1) for p, rows in b.members]
        if len(views) == 1:
            X = views[0]
        elif b.group["scope"] == "joint":
            X = torch.cat(views, dim=1)
        else:
            X = torch.cat(views, dim=0)
        W, info = b.state.prox_info(X, lam, l1=l1, rho=rho, labels=self.record_labels)
        clusters = np.atleast_1d(info.clusters)
        r = c = 0
        for (p, rows), v in zip(b.members, views):
            if b.group["scope"] == "joint":
                sl = (slice(None), slice(c, c + v.shape[1]))
                c += v.shape[1]
                p.clusters = int(clusters[0])
            else:
                sl = (slice(r, r + rows), slice(None))
                p.clusters = int(clusters[r:r + rows].sum())
                r += rows
            p.tensor.copy_(W[sl].reshape(p.tensor.shape))
            if self.record_labels:
                p.labels = _row_labels(info.labels[sl], b.group["scope"]).reshape(p.tensor.shape)

    # -- what the last step did --------------------------------------------------------------
    def _find(self, param) -> _Param:
        for p in self.params:
            if p.tensor is param:
                return p
        raise ValueError("this tensor is not one of the WeightSharingProx's parameters")

    def labels_of(self, param) -> torch.Tensor:
        """Cluster labels (param's shape, int64) of the last step: equal label = shared value.

        Under scope "row" the ids are offset per row so that rows never share; under "joint" the
        ids are common to the group's tensors. Needs ``labels=True``."""
        p = self._find(param)
        if p.labels is None:
            raise RuntimeError("no labels recorded: construct WeightSharingProx(..., labels=True) "
                               "and take a step first")
        return p.labels

    def metrics(self) -> dict[str, dict]:
        """Per parameter name: ``distinct`` values, ``zeros``, ``clusters`` of the last prox
        (partition blocks, before L1) and ``largest_cluster`` (weights in the largest block; from
        the labels when recorded, else from equal values)."""
        out = {}
        for p in self.params:
            t = p.tensor.detach()
            _, counts = torch.unique(t, return_counts=True)
            if p.labels is not None:
                largest = int(torch.bincount(p.labels.reshape(-1)).max()) if t.numel() else 0
            else:
                largest = int(counts.max()) if t.numel() else 0
            out[p.name] = {"distinct": int(counts.numel()), "zeros": int((t == 0).sum()),
                           "clusters": p.clusters, "largest_cluster": largest,
                           "size": int(t.numel())}
        return out



def _row_labels(L, scope):
    """Labels of one member's rows; under "row" offset so that every row's ids are its own."""
    if scope != "row" or L.shape[0] <= 1:
        return L
    width = L.shape[1]
    return L + torch.arange(L.shape[0], device=L.device, dtype=L.dtype)[:, None] * width


def _as_groups(params):
    if isinstance(params, torch.Tensor):
        raise TypeError("params must be an iterable of tensors or param groups, got a tensor; "
                        "wrap it in a list: [tensor]")
    items = list(params)
    if not items:
        raise ValueError("params is empty: give the tensors to share weights in")
    if all(isinstance(i, dict) for i in items):
        groups = []
        for gi, g in enumerate(items):
            if "params" not in g:
                raise ValueError(f"param group {gi} has no 'params' entry")
            ps = g["params"]
            ps = [ps] if isinstance(ps, torch.Tensor) else list(ps)
            groups.append({**g, "params": ps})
        return groups
    if any(isinstance(i, dict) for i in items):
        raise TypeError("params mixes dicts (param groups) and tensors; use one or the other")
    return [{"params": items}]


def _check_group(group, gi):
    where = f"param group {gi}"
    if group["lam"] is None:
        raise ValueError(f"{where}: lam is required")
    for key in ("lam", "l1"):
        v = group[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"{where}: {key} must be a finite float >= 0, got {v!r}")
        group[key] = float(v)
    if not callable(group["rho"]):
        r = group["rho"]
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0.0 <= r <= 1.0:
            raise ValueError(f"{where}: rho must be in [0, 1] or a schedule step -> rho, got {r!r}")
    if group["scope"] not in SCOPES:
        raise ValueError(f"{where}: scope must be one of {SCOPES}, got {group['scope']!r}")


def _check_param(t, name, seen, opt_group_of):
    if isinstance(t, tuple) or not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor (a parameter), got {type(t).__name__}")
    if id(t) in seen:
        raise ValueError(f"{name} is the same tensor as {seen[id(t)]}: give each parameter once "
                         f"(use scope='joint' for tensors that share one pool)")
    if t.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name} has dtype {t.dtype}; the prox takes float32 or float64 "
                        f"parameters")
    if id(t) not in opt_group_of:
        raise ValueError(f"{name} is not optimised by the optimizer: add it to the optimizer's "
                         f"parameters (its learning rate scales the prox)")
