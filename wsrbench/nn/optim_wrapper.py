"""Delegation to a wrapped ``torch.optim.Optimizer``, shared by the optimiser wrappers
(``wsrbench.nn.ProjectedOptimizer``, ``wsrbench.nn.training.WeightSharingProx``)."""
from __future__ import annotations


class OptimizerWrapper:
    """Everything not defined by the subclass (``param_groups``, ``state_dict``, ...) is the
    wrapped optimiser's (``self.optimizer``), so the wrapper can replace it in a training loop."""

    def zero_grad(self, set_to_none: bool = True):
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def __getattr__(self, name):
        if name == "optimizer":  # not set yet (copy/pickle): avoid recursing into ourselves
            raise AttributeError(name)
        return getattr(self.optimizer, name)
