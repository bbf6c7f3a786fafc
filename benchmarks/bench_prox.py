"""Time, memory and round counts of the prox: backend x algorithm x family x d.

Parameters come from the registry (every registered backend and algorithm, plugins included) and
from ``wsrbench.bench.cases`` (typical and worst-case families side by side). Combinations that do not
run here raise NotImplementedError in setup (asv shows them as n/a): a backend unavailable on this
machine (no GPU, torch not installed), an algorithm the backend lacks, or a size above the explicit
cap of ``_common.CAPS`` (the skip message names the cap and its reason).

``track_rounds`` / ``track_clusters`` / ``track_depth`` count parallel rounds (or sequential steps),
clusters and the parallel depth (one rule for every algorithm, docs/design.md#parallel-depth):
they do not depend on the machine, so a regression in an algorithm's depth shows even on a noisy
runner. The floor (a plain sort) is in bench_floor.py.
"""
from __future__ import annotations

import numpy as np

from wsrbench import cases, prox_info

from ._common import SIZES, algorithm_names, backend_names, prepare, sync

_PARAMS = [backend_names(), algorithm_names(), cases.names(), SIZES]
_NAMES = ["backend", "algorithm", "family", "d"]


class Prox:
    """Wall time of one prox call on a 1-D float64 vector (setup builds the input, warms up JIT)."""
    params = _PARAMS
    param_names = _NAMES
    timeout = 600  # setup at d=1e7 builds the input and a warm-up; one call may take seconds

    def setup(self, backend, algorithm, family, d):
        self.x, self.lam = prepare(backend, algorithm, family, d)

    def time_prox(self, backend, algorithm, family, d):
        w, _ = prox_info(self.x, self.lam, algorithm=algorithm, backend=backend)
        sync(w)


class ProxFloat32:
    """float32 input (float64 accumulation inside): the dtype most training runs use."""
    params = [backend_names(), algorithm_names(), ["gaussian", "worst_imminent_collisions"],
              [100_000, 1_000_000]]
    param_names = _NAMES
    timeout = 300

    def setup(self, backend, algorithm, family, d):
        self.x, self.lam = prepare(backend, algorithm, family, d, dtype=np.float32)

    def time_prox_float32(self, backend, algorithm, family, d):
        w, _ = prox_info(self.x, self.lam, algorithm=algorithm, backend=backend)
        sync(w)


class Counts:
    """Machine-independent counters: rounds (the parallel depth actually taken) and clusters."""
    params = [backend_names(), algorithm_names(), cases.names(), [1_000, 10_000, 100_000]]
    param_names = _NAMES
    timeout = 300

    def setup(self, backend, algorithm, family, d):
        self.x, self.lam = prepare(backend, algorithm, family, d)

    def _info(self, algorithm, backend):
        return prox_info(self.x, self.lam, algorithm=algorithm, backend=backend)[1]

    def track_rounds(self, backend, algorithm, family, d):
        return int(self._info(algorithm, backend).rounds)

    track_rounds.unit = "rounds"

    def track_clusters(self, backend, algorithm, family, d):
        return int(self._info(algorithm, backend).clusters)

    track_clusters.unit = "clusters"


class Depth:
    """Parallel depth (docs/design.md#parallel-depth): dependent steps with unlimited processors, one rule
    for every algorithm. Machine-independent; skipped where a backend does not count it."""
    params = [backend_names(), algorithm_names(), cases.names(), [1_000, 10_000, 100_000]]
    param_names = _NAMES
    timeout = 300

    def setup(self, backend, algorithm, family, d):
        x, lam = prepare(backend, algorithm, family, d)
        self.depth = getattr(prox_info(x, lam, algorithm=algorithm, backend=backend)[1], "depth",
                             None)
        if self.depth is None:
            raise NotImplementedError(f"backend {backend} does not count the depth of {algorithm}")

    def track_depth(self, backend, algorithm, family, d):
        return int(self.depth)

    track_depth.unit = "steps"


class Memory:
    """Peak resident memory of a process that runs one prox call (input and warm-up included)."""
    # Memory barely depends on the values, except through per-round work arrays: one typical
    # family and the worst cases.
    params = [backend_names(), algorithm_names(), ["gaussian"] + cases.names("worst"),
              [1_000_000, 10_000_000]]
    param_names = _NAMES
    timeout = 600

    def setup(self, backend, algorithm, family, d):
        self.x, self.lam = prepare(backend, algorithm, family, d)

    def peakmem_prox(self, backend, algorithm, family, d):
        w, _ = prox_info(self.x, self.lam, algorithm=algorithm, backend=backend)
        sync(w)
