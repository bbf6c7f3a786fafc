"""GPU cost counted without a GPU (docs/design.md#cost-counted-without-a-gpu): asv ``track_``
records, no timing.

For the numba_cuda backend x algorithm (every registered one, and the pipeline without a
partition, docs/design.md#the-pipelines-own-floor) x sort (its radix sort, torch.sort) on a typical
and a worst
family over d, the exact counts
of one prox call from a dry run (``numba_cuda.count_call``: the backend's own host code with
nothing launched or allocated; imminent_collisions' rounds scripted by the NumPy reference) and
the modelled H100 time (``wsrbench.bench.gpu_model``, a model). A change that adds launches, host
syncs, memory traffic or dependent steps (global or shared memory) shows up here on any machine.
torch's counts (a dispatch-mode count of a CPU call) are in ``python -m wsrbench.bench.gpu_model``.
"""
from __future__ import annotations

import numpy as np

from wsrbench import cases
from wsrbench.bench.gpu_model import PIPELINE
from wsrbench.core import registry

ALGORITHMS = [*registry.get_backend("numba_cuda").algorithms, PIPELINE]
SORTS = ["radix", "torch"]
FAMILIES = ["gaussian", "worst_imminent_collisions"]
SIZES = [10**3, 10**5, 10**7]


class NumbaCudaCounts:
    params = [ALGORITHMS, SORTS, FAMILIES, SIZES]
    param_names = ["algorithm", "sort", "family", "d"]
    timeout = 600

    def setup(self, algorithm, sort, family, d):
        try:
            from wsrbench.backends import numba_cuda  # noqa: F401  (importable without a GPU)
            from wsrbench.bench import gpu_model
        except ImportError:
            raise NotImplementedError("numba-cuda is not installed") from None
        if algorithm == PIPELINE:
            self.c = gpu_model.pipeline_counts(1, d, sort_method=sort)
            self.model_ms = gpu_model.modelled_seconds(self.c) * 1e3
            return
        x, lam = cases.make(family, d, seed=0, dtype=np.float32)
        viol = None
        if algorithm == "imminent_collisions":
            viol = gpu_model.imminent_violations(x, lam, max_rounds=20000)
            if viol is None:
                raise NotImplementedError("more than 2e4 rounds")
        self.c = gpu_model.numba_cuda_counts(x, lam, algorithm, dtype=np.float32,
                                             sort_method=sort, violations=viol)
        self.model_ms = gpu_model.modelled_seconds(self.c) * 1e3

    def track_launches(self, algorithm, sort, family, d):
        return self.c["launches"]

    def track_syncs(self, algorithm, sort, family, d):
        return self.c["syncs"]

    def track_megabytes(self, algorithm, sort, family, d):
        return self.c["bytes"] / 1e6

    def track_serial_steps(self, algorithm, sort, family, d):
        return self.c["serial_steps"]

    def track_shared_steps(self, algorithm, sort, family, d):
        return self.c["shared_steps"]

    def track_modelled_h100_ms(self, algorithm, sort, family, d):
        return self.model_ms

    track_launches.unit = "launches"
    track_syncs.unit = "syncs"
    track_megabytes.unit = "MB"
    track_serial_steps.unit = "dependent global-memory steps"
    track_shared_steps.unit = "dependent shared-memory steps"
    track_modelled_h100_ms.unit = "ms (model)"
