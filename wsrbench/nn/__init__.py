"""PyTorch integration: tied and gated modules, soft sharing, the proximal optimizer and the
paper reproductions (docs/design.md#layout). Importing it imports torch."""
from .modules import (
    HardConcreteGate,
    ProjectedOptimizer,
    SoftSharingPenalty,
    Tied,
    bake_sharing,
    freeze_sharing,
    project_gradients,
    tie_parameter,
)
from .training import WeightSharingProx, weight_sharing_penalty

__all__ = ["Tied", "tie_parameter", "project_gradients", "ProjectedOptimizer",
           "HardConcreteGate", "SoftSharingPenalty", "WeightSharingProx", "freeze_sharing",
           "bake_sharing", "weight_sharing_penalty"]
