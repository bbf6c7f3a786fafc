"""wsrbench: exact operators for structured weights, interchangeable backends, honest benchmarks.

Public names (kept stable, see DESIGN.md section 3):
    prox, prox_info, penalty, certify, backends, algorithms, cases,
    project_ties, project_affine, hard_concrete, hard_concrete_l0, hard_concrete_gate,
    soft_sharing_penalty (and their helpers below). PyTorch modules live in wsrbench.nn.
"""
from . import backends, cases  # the backends package is callable: wsrbench.backends()
from .api import ProxInfo, penalty, prox, prox_info
from .certificate import Certificate, certify
from .conv_ties import ConvTies, conv2d_ties
from .gates import (hard_concrete, hard_concrete_gate, hard_concrete_l0, hard_concrete_p0,
                    hard_concrete_p1)
from .projection import (AffineProjector, TieProjector, null_space, project_affine,
                         project_gradient, project_ties, reparameterize)
from .registry import algorithms
from .soft_sharing import quantize, soft_sharing_grad, soft_sharing_penalty
from .warm_start import ProxState

__all__ = ["prox", "prox_info", "penalty", "certify", "Certificate", "ProxInfo",
           "backends", "algorithms", "cases",
           "project_ties", "project_affine", "project_gradient", "null_space", "reparameterize",
           "TieProjector", "AffineProjector", "hard_concrete", "hard_concrete_gate",
           "hard_concrete_l0", "hard_concrete_p0", "hard_concrete_p1", "soft_sharing_penalty",
           "soft_sharing_grad", "quantize", "conv2d_ties", "ConvTies", "ProxState"]
__version__ = "0.1.0"
