"""wsrbench: exact operators for structured weights, interchangeable backends, honest benchmarks.

Public names (kept stable, see DESIGN.md section 3):
    prox, prox_info, penalty, certify, backends, algorithms, cases
"""
from . import backends, cases  # the backends package is callable: wsrbench.backends()
from .api import ProxInfo, penalty, prox, prox_info
from .certificate import Certificate, certify
from .registry import algorithms

__all__ = ["prox", "prox_info", "penalty", "certify", "Certificate", "ProxInfo",
           "backends", "algorithms", "cases"]
__version__ = "0.1.0"
