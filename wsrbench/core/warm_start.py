"""Warm-started prox for training: reuse the previous call's sort order and partition as a hint.

Proximal training calls the prox on nearly the same vector every step, and the sort is most of the
prox's cost. ``ProxState`` keeps, per row, the order of the previous call and, when the prox tied
the weights into at most d/3 blocks, where those blocks start (docs/design.md#numba-cpu):

* **By cluster.** A training step gives each member of a tied block its own gradient, which
  scrambles the members' order (thousands of inversions per weight) but keeps a block between its
  neighbours. The next call reads the new values block by block, merges blocks whose ranges now
  overlap, proves with a histogram that the middle of each group pools into one block whatever its
  inner order (peeling off and sorting the extreme values that do not), and runs PAVA over these
  units: a few sequential passes over the row instead of a sort. A row whose partition was one
  block (a collapsed layer), or one block beside at most d/64 outliers (a trained first layer),
  skips even the reading along the hint: the histogram of x itself proves the block, and one pass
  finds the outliers.
* **By order.** Without a kept partition (the weights are not tied), the row is insertion-sorted
  along the previous order, O(d + I) for I inversions, under a budget of moves per element: a
  sampled estimate first, then the running count.

When neither pays (a fresh input, a step that reshuffled many blocks or weights) the row is
sorted from scratch, and a useless hint costs a few percent of a cold call. The answer is the exact
prox either way: the hint only decides where the work goes (the sums of a block pooled as one
unit are added in another order, so its value can differ from a cold call's in the last bits,
within the same tolerance of the exact prox). ``scripts/training_bench.py`` measures it in a
training iteration (docs/figures/training_bench.md).

Usage::

    state = ProxState()
    for step in range(steps):
        w = w - lr * grad(w)
        w = state.prox(w, lr * lam)         # same arguments and result as wsrbench.prox
    state.last_moves                        # per row: the hint's leftover work (-1: no hint used)

A known order can also be passed in: ``ProxState(order=np.argsort(x_prev))`` (a permutation per
row; for 2-D input an (n, d) array).

Runs on the backend that declares the ``warm_start`` capability (``contract.WarmStart``: numba).
The result has the input's kind, device and dtype, as ``wsrbench.prox`` (docs/design.md#proxstate): a
CPU torch tensor is read and written through its NumPy view (no copy) and comes back a tensor;
GPU arrays (CUDA tensors, numba device arrays) have no warm start (the hint is a host-side
insertion sort) and go to ``wsrbench.prox_info`` with ``algorithm="auto"`` on their own device, so
a training loop written with ``ProxState`` runs unchanged on a GPU.
"""
from __future__ import annotations

import numpy as np

from . import registry
from .checks import as_prox_rows
from .numerics import prox_rows_in_range, safe_bound
from .solve import check_params, result_and_info, solve

#: Insertion moves allowed per element before the hint is dropped: the break-even against the
#: radix sort measured on a 2-core machine (scripts/numba_speed.py). With the hint exact (0 moves) the
#: hinted sort costs about 0.25x the float64 radix sort and 0.4-0.6x the float32 one; at about 2.3
#: moves per element it is even with the float64 radix sort and 1.3-2x slower than the float32 one
#: (insertion pays a mispredicted branch or two per element however few the moves).
MOVES_PER_ELEMENT = {np.dtype(np.float64): 2.0, np.dtype(np.float32): 1.0}


class ProxState:
    """Prox with a warm start: keeps the sort order between calls (see the module docstring).

    Parameters
    ----------
    order : optional int array, (d,) or (n, d)
        An initial hint: for each row a permutation that (nearly) sorts the next input.
    moves_per_element : optional float
        Budget of the adaptive sort (default: MOVES_PER_ELEMENT for the input's dtype).

    Attributes
    ----------
    last_moves : int64 array or None
        Per row of the last call: the work the hint left, or -1 where the row was sorted from
        scratch (no hint yet, wrong shape, or over budget): insertion moves (by order), or the
        values that had to be sorted (by cluster; the row's stats then have fewer ``pushes``
        than values).
    calls, hinted_rows : counters of calls and of rows sorted along the hint.
    """

    def __init__(self, order=None, *, moves_per_element: float | None = None):
        self._recs = None  # (n, 2d) uint64 sort records of the last call (index slots = hint)
        self._flags = None  # (n, d) uint8: 1 where the last call's blocks start in that order
        # (warm.keep_partition; flags[i, 0] = 0: none kept)
        self._have_hint = False
        self._work = None
        self.moves_per_element = moves_per_element
        self.last_moves = None
        self.calls = 0
        self.hinted_rows = 0
        if order is not None:
            self.set_order(order)

    def set_order(self, order) -> None:
        """Use ``order`` (a permutation per row) as the hint of the next call."""
        o = np.asarray(order)
        if o.dtype.kind not in "iu":
            raise TypeError(f"order must be an integer array, got dtype {o.dtype}")
        o2 = o.reshape(1, -1) if o.ndim == 1 else o
        if o2.ndim != 2:
            raise ValueError(f"order must be 1-D or 2-D, got shape {o.shape}")
        n, d = o2.shape
        expect = np.arange(d)
        for i in range(n):
            if not np.array_equal(np.sort(o2[i]), expect):
                raise ValueError(f"order row {i} is not a permutation of 0..{d - 1}")
        self._recs = np.zeros((n, 2 * d), dtype=np.uint64)
        self._recs[:, 1::2] = o2
        self._flags = np.zeros((n, d), dtype=np.uint8)  # no partition known (flags[:, 0] = 0)
        self._have_hint = True

    @property
    def order(self):
        """The order the next call starts from (int64, per row): the sorted order of the input
        of the last call that ordered the row (a row kept as one block holds the index order), or
        None before the first call."""
        if self._recs is None or not self._have_hint:
            return None
        return self._recs[:, 1::2].astype(np.int64)

    def copy(self) -> ProxState:
        """An independent state with this one's hint (e.g. to try a step and keep the hint)."""
        other = ProxState(moves_per_element=self.moves_per_element)
        if self._recs is not None:
            other._recs = self._recs.copy()
            other._flags = None if self._flags is None else self._flags.copy()
        other._have_hint = self._have_hint
        return other

    def reset(self) -> None:
        """Forget the hint (the next call sorts from scratch)."""
        self._recs = None
        self._flags = None
        self._have_hint = False
        self._work = None

    def prox(self, x, lam, *, l1=0.0, rho=0.0):
        """Same as ``wsrbench.prox(x, lam, l1=l1, rho=rho, algorithm="pava", backend="numba")``
        for NumPy arrays and CPU tensors (the result has x's kind, device and dtype)."""
        return self.prox_info(x, lam, l1=l1, rho=rho)[0]

    def prox_info(self, x, lam, *, l1=0.0, rho=0.0, labels=False):
        """Like :meth:`prox`, also returning a ``ProxInfo`` (stats carry ``hint_moves``;
        ``labels=True`` fills ``info.labels`` as :func:`wsrbench.prox_info` does)."""
        lam, l1, rho = check_params(lam, l1, rho)
        kind = registry.array_kind(x)
        if kind == "torch" and x.device.type == "cpu":
            import torch

            if x.dtype not in (torch.float32, torch.float64):
                x = x.to(torch.float64)  # integers and booleans, as wsrbench.prox does
            # the NumPy view shares the tensor's memory; _numpy_info checks it (float, finite,
            # at most 2-D) with wsrbench.core.checks' messages
            W, info = self._numpy_info(x.detach().numpy(), lam, l1, rho, labels)
            if info.labels is not None:
                info.labels = torch.from_numpy(info.labels)
            return torch.from_numpy(W), info
        if kind != "numpy":
            arr, res, alg, name = solve(x, lam, l1, rho, "auto", "auto", labels)
            return result_and_info(arr, res, alg, name)
        return self._numpy_info(x, lam, l1, rho, labels)

    def _prox_in_place(self, t, lam, l1, rho):
        """The prox of a C-contiguous 2-D float CPU tensor written into the tensor itself (a
        training step's parameter: no result array and no copy back); returns the ProxInfo."""
        lam, l1, rho = check_params(lam, l1, rho)
        a = t.numpy()  # shares the tensor's memory
        W, info = self._numpy_info(a, lam, l1, rho, False, out=a)
        if W is not a:  # the scaled path of the extreme range computed it elsewhere
            a[...] = W
        return info

    def _numpy_info(self, x, lam, l1, rho, labels, out=None):
        # the backend declaring the warm-start capability (contract.WarmStart): numba; a
        # RuntimeError saying why when none is available
        mod, name = registry.capable("warm_start", x)
        # (x is a NumPy array or anything np.asarray takes: one check pass, not two)
        arr, X, in_range = as_prox_rows(x, "x")
        X = mod.prepare_rows(X)
        n, d = X.shape
        bound = safe_bound(d)
        if not (in_range and lam <= bound and l1 <= bound):
            # magnitudes near the float limits: the scaled path of wsrbench.prox
            # (docs/design.md#the-whole-floating-point-range), cold; the hint is dropped, since this
            # call leaves no order behind
            res = prox_rows_in_range(mod, X, lam, l1=l1, rho=rho, algorithm="pava",
                                     in_range=in_range, labels=labels)
            self.reset()
            self.last_moves = np.full(n, -1, dtype=np.int64)
            self.calls += 1
            return result_and_info(arr, res, "pava", name)
        if self._recs is None or self._recs.shape != (n, 2 * d):
            self._recs = np.empty((n, 2 * d), dtype=np.uint64)
            self._flags = np.zeros((n, d), dtype=np.uint8)
            self._have_hint = False
        budget = self.moves_per_element
        if budget is None:
            budget = MOVES_PER_ELEMENT[X.dtype]
        # labels travel as (n, d) int64, or (n, 0) when not asked: one compiled signature
        L = np.zeros((n, d if labels else 0), dtype=np.int64)
        if out is not None and (X.shape != out.shape or X.dtype != out.dtype
                                or not out.flags.c_contiguous):
            out = None  # (a view of the caller's that prepare_rows had to copy)
        res, moves, self._work = mod.warm_prox_rows(X, lam, l1, rho, self._recs, self._flags,
                                                    self._have_hint, float(budget), self._work, L,
                                                    out)
        if labels:
            res = res._replace(labels=L)
        self._have_hint = d > 0
        self.last_moves = moves
        self.calls += 1
        self.hinted_rows += int(np.count_nonzero(moves >= 0))
        return result_and_info(arr, res, "pava", name)
