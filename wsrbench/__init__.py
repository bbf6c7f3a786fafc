"""wsrbench: exact operators for structured weights, interchangeable backends, honest benchmarks.

The public names (docs/design.md#the-backend-contract-and-the-registry) are those in ``__all__``;
PyTorch modules live in
``wsrbench.nn``. ``wsrbench.backends`` is the package holding the backend implementations; the
registry's listings are :func:`list_backends` and :func:`list_algorithms`.
"""
from . import backends  # noqa: F401  (the package only: it imports no backend)
from .api import ProxInfo, penalty, prox, prox_info
from .bench import cases
from .core import plugins  # noqa: F401  (registers its lazy entry-point loader)
from .core.certificate import Certificate, certify
from .core.registry import algorithms as list_algorithms
from .core.registry import backends as list_backends
from .core.warm_start import ProxState
from .ops.conv_ties import conv2d_ties
from .ops.gates import hard_concrete, hard_concrete_gate, hard_concrete_l0
from .ops.projection import (
    AffineProjector,
    TieProjector,
    project_affine,
    project_gradient,
    project_ties,
    reparameterize,
)
from .ops.soft_sharing import quantize, soft_sharing_grad, soft_sharing_penalty

__all__ = ["prox", "prox_info", "penalty", "certify", "Certificate", "ProxInfo", "ProxState",
           "list_backends", "list_algorithms", "cases",
           "project_ties", "project_affine", "project_gradient", "reparameterize",
           "TieProjector", "AffineProjector", "conv2d_ties",
           "hard_concrete", "hard_concrete_gate", "hard_concrete_l0",
           "soft_sharing_penalty", "soft_sharing_grad", "quantize"]
__version__ = "0.1.0"
