"""wsrbench: exact operators for structured weights, interchangeable backends, honest benchmarks.

The public names (docs/design.md#the-backend-contract-and-the-registry) are those in ``__all__``;
PyTorch modules live in
``wsrbench.nn``. ``wsrbench.backends`` is the package holding the backend implementations; the
registry's listings are :func:`list_backends` and :func:`list_algorithms`.
"""
import warnings as _warnings

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

# Names that moved: still reachable, with a DeprecationWarning saying where they went.
_MOVED = {
    "algorithms": ("wsrbench.list_algorithms", "wsrbench.core.registry", "algorithms"),
    "null_space": ("wsrbench.ops.projection.null_space", "wsrbench.ops.projection", "null_space"),
    "hard_concrete_p0": ("wsrbench.ops.gates.hard_concrete_p0", "wsrbench.ops.gates", "hard_concrete_p0"),
    "hard_concrete_p1": ("wsrbench.ops.gates.hard_concrete_p1", "wsrbench.ops.gates", "hard_concrete_p1"),
    "ConvTies": ("wsrbench.ops.conv_ties.ConvTies", "wsrbench.ops.conv_ties", "ConvTies"),
}


def __getattr__(name):
    if name in _MOVED:
        new, module, attr = _MOVED[name]
        _warnings.warn(f"wsrbench.{name} is deprecated; use {new}", DeprecationWarning,
                       stacklevel=2)
        import importlib

        return getattr(importlib.import_module(module), attr)
    if name == "backends":  # the package, imported on first use (it is not loaded eagerly)
        import importlib

        return importlib.import_module("wsrbench.backends")
    raise AttributeError(f"module 'wsrbench' has no attribute {name!r}")
