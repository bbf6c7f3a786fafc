r"""Proximal training with weight sharing in PyTorch (docs/design.md#training).

After each optimiser step, every parameter given to :class:`WeightSharingProx` is replaced by

.. math::
    w \leftarrow \operatorname{prox}_{\eta_t\lambda R + \eta_t\mu\|\cdot\|_1}(w)
    \quad\text{with rho}_t,

where :math:`\eta_t` is the current learning rate of the parameter's optimiser group, read from the
live param groups at every step (so LR schedulers and ``load_state_dict`` just work),
:math:`\lambda` the weight of R (per parameter group, PyTorch style), :math:`\mu` an optional L1
weight and rho_t a constant or a schedule (``wsrbench.prox``'s rho: each cluster moves only
(1 - rho) of the way, which weights merge is decided by the full strength). This is proximal
gradient descent on loss + lam R(w) + l1 |w|_1 (the paper's algorithm), exact in each step: the step
is ``wsrbench.prox`` itself (tested bit for bit).

Scope of sharing, per group: ``"tensor"`` (the whole tensor flattened is one pool of values: the
paper's default), ``"row"`` (each output unit, ``w[i]``, shares separately) or ``"joint"`` (all
tensors of the group share one pool, e.g. a layer's weight and bias together).

Cost: tensors of one group with the same size, dtype, device and learning rate go to the prox as
rows of one call (rows run in parallel on the Numba backend). CPU tensors go through ``ProxState``
(warm start: the previous step's sort order is the hint of the next) on the tensor's memory; CUDA
tensors stay on the device (``wsrbench.prox`` on them picks a GPU backend; no host round trip).
Sharded parameters (DTensor, FSDP2, or a ``process_group``) go through
:func:`wsrbench.distributed.prox`: the pool is the union of every rank's shard.
"""
from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.warm_start import ProxState
from .optim_wrapper import OptimizerWrapper

__all__ = ["WeightSharingProx", "weight_sharing_penalty"]  # freeze_sharing: wsrbench.nn

SCOPES = ("tensor", "row", "joint")
_DEFAULTS: dict[str, Any] = {"lam": None, "l1": 0.0, "rho": 0.0, "scope": "tensor",
                             "l1_scaled": True, "trick": False, "process_group": None}

Scalar = float | int | np.number | torch.Tensor
RhoSchedule = Callable[[int], Any]
ParamsArg = nn.Module | Iterable[Any]
"""A module (its ``named_parameters()``), or an iterable of tensors, of ``(name, tensor)`` pairs
or of param-group dicts ``{"params": ..., "lam": ..., ...}``."""


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
    shape: tuple  # at construction: a freeze (set_ to the cluster values) changes it
    labels: torch.Tensor | None = None  # cluster of each weight at the last step (x's shape)
    # partition blocks at the last step: an int, or the prox's per-row counts to be summed (kept
    # as they come: the sum is paid by metrics(), not by every step)
    clusters: Any = None
    sharded: bool = False  # the pool spans every rank of a process group
    dtensor: bool = False  # read and write its local shard

    def local(self) -> torch.Tensor:
        return self.tensor.to_local() if self.dtensor else self.tensor  # type: ignore[attr-defined]


@dataclass
class _Batch:
    """Rows of one prox call: members' tensors viewed as (rows, d), stacked in order."""
    group: dict
    opt_index: int  # the optimiser param group giving the learning rate (looked up every step)
    members: list  # of (_Param, rows)
    d: int
    process_group: Any = None  # sharded batches: the group the pool is spread over
    state: ProxState = field(default_factory=ProxState)


class WeightSharingProx(OptimizerWrapper):
    """A ``torch.optim.Optimizer``: the wrapped optimiser's step, then the proximal weight-sharing
    step (see the module docstring).

    It is an Optimizer subclass that delegates (param groups, state, ``zero_grad`` are the wrapped
    optimiser's), so LR schedulers, ``isinstance`` checks and checkpoints take it as it is:
    ``state_dict()`` is the wrapped optimiser's plus the prox's step counter and settings (key
    ``"weight_sharing_prox"``), and after ``load_state_dict`` a run continues bit for bit like an
    uninterrupted one (docs/design.md#the-optimiser-it-is).

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        Its ``step()`` runs first; each parameter's learning rate is read from its live param group
        at every step.
    params : module or iterable
        A module (its ``named_parameters()``), tensors (``model.parameters()``), ``(name, tensor)``
        pairs (``model.named_parameters()``), or dicts in the PyTorch param-group style,
        ``{"params": [...], "lam": ..., "l1": ..., ...}``, whose keys override the defaults below
        for that group. Every tensor must also be optimised by ``optimizer``.
    lam : real >= 0
        Weight of R; the prox strength of a step is ``lr_t * lam``. Python, NumPy or 0-d tensor
        scalars (as for ``l1`` and ``rho``).
    l1 : real >= 0
        Weight of an L1 term: ``lr_t * l1`` per step, or ``l1`` itself with ``l1_scaled=False``
        (the paper's ``lasso_lr``, a fixed threshold per step).
    rho : real in [0, 1] or callable ``step -> rho``
        Damping of the movement (see ``wsrbench.prox``); a schedule is called with the step index
        (0, 1, ...; restored by ``load_state_dict``) and checked to stay in [0, 1].
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
        ``wsrbench.nn.freeze_sharing``); a scatter of d int64 per step. Not for sharded pools.
    skip_no_grad : bool
        True (default): a parameter whose ``.grad`` is None at the step (the optimiser skipped it)
        is not proxed either; a "joint" pool is proxed when any of its tensors has a grad.
        False: every parameter is proxed at every step.
    process_group : torch.distributed ProcessGroup or None
        The parameters are this rank's shards of pools spread over the group (a collective
        :func:`wsrbench.distributed.prox` per pool; every rank steps together). DTensor
        parameters (``distribute_tensor``, FSDP2's ``fully_shard``) need nothing: the group is
        their 1-D device mesh's, and their local shards (without FSDP's padding) are proxed.
    threads : int or None
        How many CPU pools of one row each (scope "tensor" or "joint") are proxed at once, each
        on its own thread (the Numba kernels release the GIL); None: Numba's thread count. A
        training step with one torch thread leaves the other cores idle, and the pools of a step
        are independent, so the answer is the same bit for bit (docs/design.md#training).
        Pools of several rows already run their rows in parallel.

    Examples
    --------
    >>> opt = WeightSharingProx(torch.optim.SGD(model.parameters(), lr=0.1), model[0], lam=1e-3)
    >>> sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    >>> loss.backward(); opt.step(); opt.zero_grad(); sched.step()
    >>> torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, "ckpt.pt")
    """

    STATE_KEY = "weight_sharing_prox"

    def __init__(self, optimizer: torch.optim.Optimizer, params: ParamsArg, *, lam: Scalar,
                 l1: Scalar = 0.0, rho: Scalar | RhoSchedule = 0.0, scope: str = "tensor",
                 trick: bool = False, l1_scaled: bool = True, labels: bool = False,
                 skip_no_grad: bool = True, process_group: Any = None,
                 threads: int | None = None) -> None:
        super().__init__(optimizer)
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                    or threads < 1):
            raise ValueError(f"threads must be None (Numba's thread count) or an int >= 1, got "
                             f"{threads!r}")
        self.threads = threads
        self.record_labels = bool(labels)
        self.skip_no_grad = bool(skip_no_grad)
        self.steps = 0
        self.frozen_by: str | None = None
        defaults = {"lam": lam, "l1": l1, "rho": rho, "scope": scope, "l1_scaled": l1_scaled,
                    "trick": trick, "process_group": process_group}
        opt_index = {id(p): i for i, g in enumerate(optimizer.param_groups) for p in g["params"]}
        self.params: list[_Param] = []
        self._by_id: dict[int, _Param] = {}
        self.groups: list[dict[str, Any]] = []
        for gi, spec in enumerate(_as_groups(params)):
            group = dict(defaults)
            group.update({k: v for k, v in spec.items() if k != "params"})
            unknown = set(group) - set(_DEFAULTS)
            if unknown:
                raise ValueError(f"param group {gi}: unknown settings {sorted(unknown)}; "
                                 f"known: {sorted(_DEFAULTS)}")
            _check_group(group, f"param group {gi}")
            members = []
            for pi, item in enumerate(spec["params"]):
                name, t = item if isinstance(item, tuple) else (f"group {gi} param {pi}", item)
                _check_param(t, name, self._by_id, opt_index)
                p = _Param(t, name, group, tuple(t.shape))
                p.sharded = _sharded(t, group, name, self.record_labels)
                p.dtensor = _as_dtensor(t) is not None
                self._by_id[id(t)] = p
                members.append(p)
            group["params"] = members
            self.groups.append(group)
            self.params.extend(members)
        self._batches = self._plan(opt_index)

    # -- planning: which tensors go to the prox together ----------------------------------
    def _plan(self, opt_index: dict[int, int]) -> list[_Batch]:
        batches: dict[tuple, _Batch] = {}
        for gi, group in enumerate(self.groups):
            # an empty tensor has nothing to share; an empty shard still takes part in the
            # collective of its pool
            members = [p for p in group["params"] if p.sharded or p.local().numel() > 0]
            if not members:
                continue
            if group["scope"] == "joint":
                t0 = members[0].tensor
                for p in members[1:]:
                    if p.tensor.dtype != t0.dtype or p.tensor.device != t0.device:
                        raise ValueError(f"{p.name}: scope 'joint' needs one dtype and device "
                                         f"in the group ({t0.dtype} on {t0.device} first)")
                    if opt_index[id(p.tensor)] != opt_index[id(t0)]:
                        raise ValueError(f"{p.name}: scope 'joint' needs one learning rate "
                                         f"(one optimiser group) for the group's tensors")
                    if p.sharded != members[0].sharded:
                        raise ValueError(f"{p.name}: scope 'joint' cannot mix sharded and "
                                         f"local tensors")
                batches[("joint", gi)] = _Batch(
                    group, opt_index[id(t0)], [(p, 1) for p in members],
                    sum(p.tensor.numel() for p in members), _process_group(members[0]))
                continue
            for p in members:
                t = p.local()  # a DTensor's rows are whole on each rank here (Shard(0))
                oi = opt_index[id(p.tensor)]
                if p.sharded:  # one collective per pool
                    batches[("sharded", id(p.tensor))] = _Batch(group, oi, [(p, 1)], t.numel(),
                                                         _process_group(p))
                    continue
                rows = t.shape[0] if (group["scope"] == "row" and t.ndim >= 1) else 1
                d = t.numel() // rows
                key = (gi, oi, d, t.dtype, t.device)
                if key not in batches:
                    batches[key] = _Batch(group, oi, [], d)
                batches[key].members.append((p, rows))
        return list(batches.values())

    # -- stepping ----------------------------------------------------------------------------
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """``optimizer.step(closure)``, then the prox step on the parameters; returns the loss.

        Every check (a freeze, the settings, the rho schedule, the learning rates) runs before
        any parameter is touched: a step is applied whole or not at all."""
        strengths = self._strengths_of_step()
        loss = self.optimizer.step(closure)
        self._apply(strengths)
        return loss

    def prox_step(self) -> None:
        """Only the prox step (after an ``optimizer.step()`` the caller made itself)."""
        self._apply(self._strengths_of_step())

    def _strengths_of_step(self) -> list[tuple[float, float, float]]:
        if self.frozen_by is not None:
            raise RuntimeError(
                f"this WeightSharingProx's parameters were tied by wsrbench.nn.{self.frozen_by}: "
                f"they now hold one value per cluster, and a prox on them would be a different "
                f"penalty; fine-tune with a new optimiser over model.parameters() (no prox)")
        for p in self.params:
            if p.tensor.shape != p.shape:
                raise RuntimeError(
                    f"{p.name} changed shape from {p.shape} to {tuple(p.tensor.shape)} since "
                    f"the WeightSharingProx was built (a parametrisation such as "
                    f"wsrbench.nn.freeze_sharing's swaps its values); build a new optimiser")
        groups = self.optimizer.param_groups
        return [self.strengths(b.group, float(groups[b.opt_index]["lr"])) for b in self._batches]

    def _apply(self, strengths: list[tuple[float, float, float]]) -> None:
        local: list[tuple] = []
        with torch.no_grad():
            for b, (lam, l1, rho) in zip(self._batches, strengths):
                if lam == 0.0 and l1 == 0.0:
                    continue
                members = b.members
                if self.skip_no_grad and not _all_have_grad(members):
                    has = [p.tensor.grad is not None for p, _ in members]
                    if b.group["scope"] == "joint":
                        if not any(has):
                            continue
                    else:
                        members = [m for m, h in zip(members, has) if h]
                        if not members:
                            continue
                if b.process_group is not None:
                    self._prox_sharded(b, members, lam, l1, rho)
                else:
                    local.append((b, members, lam, l1, rho))
            self._prox_local(local)
        self.steps += 1

    def _prox_local(self, work: list[tuple]) -> None:
        """The local batches' proxes: those of one CPU row on up to ``threads`` threads at once
        (this one included), the others (several rows: parallel inside; CUDA) here first."""
        single = [w for w in work if _one_cpu_row(w[0], w[1])]
        workers = min(len(single), self.threads or _numba_threads())
        if workers < 2:
            for w in work:
                self._prox_batch(*w)
            return
        for w in work:
            if not _one_cpu_row(w[0], w[1]):
                self._prox_batch(*w)
        pool = _thread_pool(workers - 1)
        torch_threads = torch.get_num_threads()  # the caller's (OpenMP's count is per thread)
        futures = [pool.submit(self._prox_batch_in_worker, torch_threads, w) for w in single[1:]]
        try:
            self._prox_batch(*single[0])
        finally:
            for f in futures:
                f.result()  # re-raises a worker's exception, after every batch has finished

    def _prox_batch_in_worker(self, torch_threads: int, args: tuple) -> None:
        # Grad mode is per thread, and so is OpenMP's thread count: without the caller's count,
        # torch's copies here would start an OpenMP team of the default size, whose idle workers
        # spin on the cores the caller's threads need.
        torch.set_num_threads(torch_threads)
        with torch.no_grad():
            self._prox_batch(*args)

    def strengths(self, group: dict, lr: float) -> tuple[float, float, float]:
        """(lam, l1, rho) passed to the prox this step for ``group`` at learning rate ``lr``."""
        rho = group["rho"]
        if callable(rho):
            rho = _scalar(rho(self.steps), "rho", f"rho schedule of the group of "
                          f"{group['params'][0].name} at step {self.steps}", high=1.0)
        lam, l1 = group["lam"], group["l1"]
        if not 0.0 <= lr < math.inf:
            raise ValueError(f"the learning rate of the group of {group['params'][0].name} is "
                             f"{lr}; it must be finite and >= 0")
        if group["l1_scaled"]:
            l1 = l1 * lr
        if group["trick"]:
            if not lr <= 1.0:
                raise ValueError(f"trick=True needs a learning rate in [0, 1] (it moves each "
                                 f"cluster lr (1 - rho) of the way), got lr={lr} for the group "
                                 f"of {group['params'][0].name}")
            return lam, l1, 1.0 - lr * (1.0 - rho)
        return lr * lam, l1, rho

    def _prox_batch(self, b: _Batch, members: list, lam: float, l1: float, rho: float) -> None:
        """The prox of one batch in place: its members' tensors as rows of one call (scope
        "joint": side by side in one row). The one place a prox is computed on local tensors."""
        # a subset of the batch (parameters without grad) would spoil the hint of the whole
        state = b.state if members is b.members else ProxState()
        if len(members) == 1 and not self.record_labels:  # the common case, kept lean
            p, rows = members[0]
            t = p.tensor.to_local() if p.dtensor else p.tensor
            if t.device.type == "cpu" and t.is_contiguous() and t.dtype in (torch.float32,
                                                                          torch.float64):
                # written into the parameter itself: no result tensor, no copy back
                p.clusters = state._prox_in_place(t.detach().view(rows, -1), lam, l1, rho).clusters
                return
            W, info = state.prox_info(t.detach().reshape(rows, -1), lam, l1=l1, rho=rho)
            p.clusters = info.clusters
            t.copy_(W.reshape(t.shape))
            return
        joint = b.group["scope"] == "joint"
        ts = [p.local() for p, _ in members]
        views = [t.detach().reshape(1 if joint else rows, -1) for t, (_, rows) in zip(ts, members)]
        X = views[0] if len(views) == 1 else torch.cat(views, dim=1 if joint else 0)
        W, info = state.prox_info(X, lam, l1=l1, rho=rho, labels=self.record_labels)
        clusters = np.atleast_1d(info.clusters)  # one count per row
        r = c = 0
        for (p, rows), v, t in zip(members, views, ts):
            if joint:
                sl: tuple = (slice(None), slice(c, c + v.shape[1]))
                c += v.shape[1]
                p.clusters = int(clusters[0])
            else:
                sl = (slice(r, r + rows), slice(None))
                p.clusters = int(clusters[r:r + rows].sum())
                r += rows
            out = W if len(views) == 1 else W[sl]
            t.copy_(out.reshape(t.shape))
            if self.record_labels:
                p.labels = _row_labels(info.labels[sl], b.group["scope"]).reshape(t.shape)

    def _prox_sharded(self, b: _Batch, members: list, lam: float, l1: float,
                      rho: float) -> None:
        """The prox of a pool spread over ``b.process_group``: this rank's shards, one collective
        (every rank of the group calls it, in the same plan order)."""
        from .. import distributed

        locs = [_local(p.tensor) for p, _ in members]
        x = locs[0].reshape(-1) if len(locs) == 1 else torch.cat([t.reshape(-1) for t in locs])
        w, info = distributed.prox_info(x, lam, l1=l1, rho=rho, group=b.process_group)
        off = 0
        for (p, _), t in zip(members, locs):
            t.copy_(w[off:off + t.numel()].reshape(t.shape))
            off += t.numel()
            p.clusters = int(info.clusters)

    # -- checkpoints ---------------------------------------------------------------------------
    def _extra_state(self) -> dict[str, Any]:
        return {"steps": self.steps,
                "groups": [{"lam": g["lam"], "l1": g["l1"], "l1_scaled": g["l1_scaled"],
                            "trick": g["trick"], "scope": g["scope"],
                            "rho": None if callable(g["rho"]) else g["rho"],
                            "shapes": [list(p.shape) for p in g["params"]]}
                           for g in self.groups]}

    def _check_extra_state(self, extra: dict[str, Any] | None) -> None:
        if extra is None:
            return
        saved = extra.get("groups", [])
        if len(saved) != len(self.groups):
            raise ValueError(f"the checkpoint's WeightSharingProx has {len(saved)} param groups, "
                             f"this one {len(self.groups)}: build it with the same params")
        for gi, (s, g) in enumerate(zip(saved, self.groups)):
            shapes = [list(p.shape) for p in g["params"]]
            if s["shapes"] != shapes or s["scope"] != g["scope"]:
                raise ValueError(f"param group {gi}: the checkpoint has scope {s['scope']!r} and "
                                 f"shapes {s['shapes']}, this WeightSharingProx {g['scope']!r} "
                                 f"and {shapes}: build it with the same params and scope")
            if s["rho"] is None and not callable(g["rho"]):
                raise ValueError(f"param group {gi}: the checkpoint used a rho schedule; pass "
                                 f"the same schedule (rho=callable) to resume it")
            _check_group({**g, **{k: s[k] for k in ("lam", "l1", "trick", "l1_scaled")},
                          "rho": g["rho"] if s["rho"] is None else s["rho"]},
                         f"param group {gi} of the checkpoint")

    def _load_extra_state(self, extra: dict[str, Any] | None) -> None:
        if extra is None:
            warnings.warn("the state dict has no WeightSharingProx state (a bare optimiser's?): "
                          "the prox keeps its step counter and settings", stacklevel=3)
            return
        self.steps = int(extra["steps"])
        for s, g in zip(extra["groups"], self.groups):
            for k in ("lam", "l1", "trick", "l1_scaled"):
                g[k] = s[k]
            if s["rho"] is not None:
                g["rho"] = s["rho"]

    # -- what the last step did --------------------------------------------------------------
    def _find(self, param: torch.Tensor) -> _Param:
        p = self._by_id.get(id(param))
        if p is None or p.tensor is not param:
            raise ValueError("this tensor is not one of the WeightSharingProx's parameters")
        return p

    def labels_of(self, param: torch.Tensor) -> torch.Tensor:
        """Cluster labels (param's shape, int64) of the last step: equal label = shared value.

        Under scope "row" the ids are offset per row so that rows never share; under "joint" the
        ids are common to the group's tensors. Needs ``labels=True``."""
        p = self._find(param)
        if p.labels is None:
            if p.tensor.numel() == 0:
                return torch.zeros(p.shape, dtype=torch.int64, device=p.tensor.device)
            raise RuntimeError("no labels recorded: construct WeightSharingProx(..., labels=True) "
                               "and take a step first")
        return p.labels

    def metrics(self) -> dict[str, dict[str, int]]:
        """Per parameter name (for a sharded parameter: of this rank's shard, but ``clusters``):

        - ``size``: weights; ``zeros``: weights exactly 0;
        - ``distinct``: distinct values in the whole tensor;
        - ``clusters``: blocks of the partition the last prox computed (weights that share one
          value by the prox, before L1), summed over the rows under scope "row", of the whole
          pool under "joint" (the same number for each tensor of the group). Before the first
          step: the groups of equal values of the same pools;
        - ``largest_cluster``: weights in the largest block (from the labels when recorded, else
          from equal values).

        ``distinct`` <= ``clusters`` after a step: L1 sets several clusters to the same 0, rho or
        rounding can make two clusters' values equal, and under "row" two rows may hold one
        value while their clusters are counted apart.
        """
        out = {}
        for p in self.params:
            t = _local(p.tensor).detach()
            n = t.numel()
            _, counts = torch.unique(t, return_counts=True)
            if p.labels is not None:
                largest = int(torch.bincount(p.labels.reshape(-1)).max()) if n else 0
            else:
                largest = int(counts.max()) if n else 0
            clusters = int(np.sum(p.clusters)) if p.clusters is not None else \
                self._equal_groups(p)
            out[p.name] = {"distinct": int(counts.numel()), "zeros": int((t == 0).sum()),
                           "clusters": clusters, "largest_cluster": largest, "size": int(n)}
        return out

    def _equal_groups(self, p: _Param) -> int:
        t = _local(p.tensor).detach()
        if t.numel() == 0:
            return 0
        scope = p.group["scope"]
        if scope == "joint":
            pool = torch.cat([_local(q.tensor).detach().reshape(-1) for q in p.group["params"]])
            return int(torch.unique(pool).numel())
        if scope == "row" and t.ndim >= 1:
            rows = t.reshape(t.shape[0], -1)
            return int(sum(torch.unique(r).numel() for r in rows))
        return int(torch.unique(t).numel())


def _one_cpu_row(b: _Batch, members: list) -> bool:
    """The batch's prox is one row on the CPU (a single-row ProxState call: serial, GIL-free)."""
    rows = 1 if b.group["scope"] == "joint" else sum(r for _, r in members)
    return rows == 1 and members[0][0].local().device.type == "cpu"


def _numba_threads() -> int:
    try:
        import numba
    except ImportError:  # ProxState will say what is missing
        return 1
    return int(numba.get_num_threads())


_POOL: tuple[int, int, Any] | None = None  # (pid, workers, ThreadPoolExecutor)


def _thread_pool(workers: int) -> Any:
    """A process-wide pool of ``workers`` threads (made again in a forked child, whose copy has
    no threads)."""
    global _POOL
    import os
    from concurrent.futures import ThreadPoolExecutor

    if _POOL is None or _POOL[0] != os.getpid() or _POOL[1] != workers:
        if _POOL is not None and _POOL[0] == os.getpid():
            _POOL[2].shutdown(wait=False)
        _POOL = (os.getpid(), workers,
                 ThreadPoolExecutor(workers, thread_name_prefix="wsrbench-prox"))
    return _POOL[2]


def _all_have_grad(members: list) -> bool:
    for p, _ in members:
        if p.tensor.grad is None:
            return False
    return True


def _row_labels(L: torch.Tensor, scope: str) -> torch.Tensor:
    """Labels of one member's rows; under "row" offset so that every row's ids are its own."""
    if scope != "row" or L.shape[0] <= 1:
        return L
    width = L.shape[1]
    return L + torch.arange(L.shape[0], device=L.device, dtype=L.dtype)[:, None] * width


def _as_groups(params: ParamsArg) -> list[dict[str, Any]]:
    if isinstance(params, nn.Module):
        params = list(params.named_parameters())
    if isinstance(params, torch.Tensor):
        raise TypeError("params must be a module or an iterable of tensors or param groups, got "
                        "a tensor; wrap it in a list: [tensor]")
    items = list(params)
    if not items:
        raise ValueError("params is empty: give the tensors to share weights in")
    if all(isinstance(i, dict) for i in items):
        groups = []
        for gi, g in enumerate(items):
            if "params" not in g:
                raise ValueError(f"param group {gi} has no 'params' entry")
            ps = g["params"]
            if isinstance(ps, nn.Module):
                ps = list(ps.named_parameters())
            ps = [ps] if isinstance(ps, torch.Tensor) else list(ps)
            if not ps:
                raise ValueError(f"param group {gi} has no parameters")
            groups.append({**g, "params": ps})
        return groups
    if any(isinstance(i, dict) for i in items):
        raise TypeError("params mixes dicts (param groups) and tensors; use one or the other")
    return [{"params": items}]


def _scalar(v: Any, key: str, where: str, *, high: float = math.inf) -> float:
    """A Python, NumPy or 0-d tensor real as a float in [0, high], or a clear error."""
    if isinstance(v, torch.Tensor) or isinstance(v, np.ndarray):
        if v.ndim != 0:
            raise ValueError(f"{where}: {key} must be a scalar, got a {type(v).__name__} of "
                             f"shape {tuple(v.shape)}")
        v = v.item()
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"{where}: {key} must be a real number (Python, NumPy or 0-d tensor), "
                        f"got {type(v).__name__}")
    f = float(v)
    if not (math.isfinite(f) and 0.0 <= f <= high):
        bound = ">= 0" if high == math.inf else f"in [0, {high:g}]"
        raise ValueError(f"{where}: {key} must be a finite number {bound}, got {v!r}")
    return f


def _check_group(group: dict[str, Any], where: str) -> None:
    if group["lam"] is None:
        raise ValueError(f"{where}: lam is required")
    for key in ("lam", "l1"):
        group[key] = _scalar(group[key], key, where)
    if not callable(group["rho"]):
        if isinstance(group["rho"], (bool, np.bool_)) or not isinstance(
                group["rho"], (numbers.Real, torch.Tensor, np.ndarray)):
            raise TypeError(f"{where}: rho must be in [0, 1] or a schedule step -> rho, got "
                            f"{group['rho']!r}")
        try:
            group["rho"] = _scalar(group["rho"], "rho", where, high=1.0)
        except ValueError:
            raise ValueError(f"{where}: rho must be in [0, 1] or a schedule step -> rho, got "
                             f"{group['rho']!r}") from None
    if group["scope"] not in SCOPES:
        raise ValueError(f"{where}: scope must be one of {SCOPES}, got {group['scope']!r}")
    for key in ("trick", "l1_scaled"):
        if not isinstance(group[key], (bool, np.bool_)):
            raise TypeError(f"{where}: {key} must be True or False, got {group[key]!r}")
        group[key] = bool(group[key])


def _check_param(t: Any, name: str, seen: dict[int, _Param], opt_index: dict[int, int]) -> None:
    if isinstance(t, tuple) or not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor (a parameter), got {type(t).__name__}")
    if id(t) in seen:
        raise ValueError(f"{name} is the same tensor as {seen[id(t)].name}: give each parameter "
                         f"once (use scope='joint' for tensors that share one pool)")
    if t.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{name} has dtype {t.dtype}; the prox takes float32 or float64 "
                        f"parameters")
    if id(t) not in opt_index:
        raise ValueError(f"{name} is not optimised by the optimizer: add it to the optimizer's "
                         f"parameters (its learning rate scales the prox)")


# -- sharded parameters ------------------------------------------------------------------------

def _as_dtensor(t: torch.Tensor) -> Any:
    """``t`` if it is a DTensor (FSDP2's parameters are), else None."""
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover - torch without distributed
        return None
    return t if isinstance(t, DTensor) else None


def _local(t: torch.Tensor) -> torch.Tensor:
    """The tensor whose memory the prox reads and writes: a DTensor's local shard (FSDP2's
    padding is not part of it), else the tensor itself."""
    dt = _as_dtensor(t)
    return t if dt is None else dt.to_local()


def _sharded(t: torch.Tensor, group: dict[str, Any], name: str, labels: bool) -> bool:
    """Whether ``t``'s pool spans ranks; checks what the sharded path supports."""
    dt = _as_dtensor(t)
    if dt is not None:
        mesh, placements = dt.device_mesh, dt.placements
        if mesh.ndim != 1:
            raise ValueError(f"{name}: a DTensor on a {mesh.ndim}-D device mesh; the prox takes "
                             f"1-D meshes (one process group)")
        if not placements[0].is_shard():
            return False  # replicated: every rank holds the whole tensor, the prox is local
        if group["scope"] == "row" and placements[0].dim != 0:
            raise ValueError(f"{name}: scope 'row' needs whole rows on each rank (Shard(0)), got "
                             f"{placements[0]}")
        sharded = group["scope"] != "row"  # Shard(0) keeps rows whole: a local prox per row
    else:
        sharded = group["process_group"] is not None and group["scope"] != "row"
    if sharded and labels:
        raise ValueError(f"{name}: labels=True is not available for sharded parameters "
                         f"(wsrbench.distributed.prox returns no labels)")
    if sharded:
        import torch.distributed as dist

        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError(f"{name}: a sharded parameter needs torch.distributed "
                               f"initialised (init_process_group)")
    return sharded


def _process_group(p: _Param) -> Any:
    if not p.sharded:
        return None
    dt = _as_dtensor(p.tensor)
    if dt is not None:
        return dt.device_mesh.get_group()
    return p.group["process_group"]
