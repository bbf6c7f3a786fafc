"""Projection (tied weights, affine constraints) and Hard Concrete gates, per backend x d.

Backends are those the registry lists for each operation (``wsrbench.core.registry.OPERATIONS``). The
modules ``wsrbench.ops.projection`` / ``wsrbench.ops.gates`` are imported in setup; on a commit that lacks
them every benchmark here is skipped (NotImplementedError), so the suite runs on old commits too.
Timed calls use prepared projectors (``TieProjector`` / ``AffineProjector``: the per-step cost in
training); the one-shot ``project_ties`` including its label preparation is timed separately.
"""
from __future__ import annotations

import numpy as np

from wsrbench.core import registry

from ._common import backend_names, load_backend, simulated, sync

OP_SIZES = [1_000, 100_000, 1_000_000, 10_000_000]
AFFINE_ROWS = 16  # constraints in A (m x d); the SVD is done once in setup
AFFINE_MAX_D = 1_000_000  # cap: A at d=1e7 alone is 1.3 GB of float64


def _op_setup(op: str, backend: str, module: str):
    import importlib

    # wsrbench.ops.<module> since the package was grouped by role; wsrbench.<module> on older commits
    for name in (f"wsrbench.ops.{module}", f"wsrbench.{module}"):
        try:
            mod = importlib.import_module(name)
            break
        except ImportError as exc:
            err = exc
    else:
        raise NotImplementedError(f"wsrbench.ops.{module} is not importable here: {err}")
    if backend not in registry.OPERATIONS.get(op, {}):
        raise NotImplementedError(f"backend {backend} does not implement {op}")
    be = load_backend(backend)
    if simulated(be):
        raise NotImplementedError(f"backend {backend} runs in a slow simulator here")
    return mod, be


class TieProjection:
    params = [backend_names(), OP_SIZES]
    param_names = ["backend", "d"]
    timeout = 300

    def setup(self, backend, d):
        projection, be = _op_setup("project_ties", backend, "projection")
        rng = np.random.default_rng([0, d])
        groups = rng.integers(0, max(1, d // 10), d)  # about 10 weights per group
        self.groups = groups
        self.w = be.from_numpy(rng.standard_normal(d))
        self.projector = projection.TieProjector(groups)
        self.project_ties = projection.project_ties
        sync(self.projector.project(self.w, backend=backend))  # warm-up (JIT, device constants)

    def time_project(self, backend, d):
        sync(self.projector.project(self.w, backend=backend))

    def time_project_ties_one_shot(self, backend, d):
        sync(self.project_ties(self.w, self.groups, backend=backend))


class AffineProjection:
    params = [backend_names(), OP_SIZES]
    param_names = ["backend", "d"]
    timeout = 300

    def setup(self, backend, d):
        projection, be = _op_setup("project_affine", backend, "projection")
        if d > AFFINE_MAX_D:
            raise NotImplementedError(f"capped at d={AFFINE_MAX_D}: A ({AFFINE_ROWS} x d) and "
                                      f"its SVD factors do not fit a laptop at d={d}")
        rng = np.random.default_rng([1, d])
        A = rng.standard_normal((AFFINE_ROWS, d))
        c = A @ rng.standard_normal(d)
        self.projector = projection.AffineProjector(A, c)
        self.w = be.from_numpy(rng.standard_normal(d))
        sync(self.projector.project(self.w, backend=backend))

    def time_project(self, backend, d):
        sync(self.projector.project(self.w, backend=backend))


class HardConcrete:
    params = [backend_names(), OP_SIZES]
    param_names = ["backend", "d"]
    timeout = 300

    def setup(self, backend, d):
        gates, be = _op_setup("hard_concrete", backend, "gates")
        rng = np.random.default_rng([2, d])
        self.gates = gates
        self.log_alpha = be.from_numpy(rng.normal(0.0, 2.0, d))
        self.u = be.from_numpy(rng.uniform(1e-6, 1 - 1e-6, d))
        sync(gates.hard_concrete(self.log_alpha, self.u, backend=backend))
        sync(gates.hard_concrete_gate(self.log_alpha, backend=backend))

    def time_hard_concrete(self, backend, d):
        sync(self.gates.hard_concrete(self.log_alpha, self.u, backend=backend))

    def time_hard_concrete_gate(self, backend, d):
        sync(self.gates.hard_concrete_gate(self.log_alpha, backend=backend))
