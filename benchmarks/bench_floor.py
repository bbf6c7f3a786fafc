"""The floor every prox is measured against: one sort of the same input (docs/design.md).

``np.argsort`` on the CPU; ``torch.sort`` on a CUDA device (skipped cleanly without torch or a
GPU) and on the CPU (the floor of the torch backend's CPU runs). Same families, sizes and seeds as
bench_prox.py, so a ratio prox / floor compares like with like.
"""
from __future__ import annotations

import numpy as np

from wsrbench import cases

from ._common import SIZES, make_input, sync


class NumpyArgsort:
    params = [cases.names(), SIZES]
    param_names = ["family", "d"]
    timeout = 300

    def setup(self, family, d):
        self.x, _ = make_input(family, d)

    def time_argsort(self, family, d):
        np.argsort(self.x)

    def time_argsort_stable(self, family, d):
        np.argsort(self.x, kind="stable")


class TorchSort:
    params = [["cpu", "cuda"], cases.names(), SIZES]
    param_names = ["device", "family", "d"]
    timeout = 300

    def setup(self, device, family, d):
        try:
            import torch
        except ImportError:
            raise NotImplementedError("torch is not installed") from None
        if device == "cuda" and not torch.cuda.is_available():
            raise NotImplementedError("no CUDA device")
        self.torch = torch
        x, _ = make_input(family, d)
        self.x = torch.tensor(x, device=device)
        torch.sort(self.x[:16])  # initialise the device / kernels before timing
        sync(self.x)

    def time_sort(self, device, family, d):
        self.torch.sort(self.x, stable=True)
        sync(self.x)
