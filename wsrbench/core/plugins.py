"""Outside packages add prox algorithms through the ``wsrbench.algorithms`` entry-point group.

A registered algorithm is an ordinary registry entry: it appears in ``wsrbench backends``,
``wsrbench compare``, the registry-parametrised tests and the asv suite, and
``wsrbench.prox(x, lam, algorithm=NAME, backend=BACKEND)`` runs it.

Declaring a plugin (in the outside package's pyproject.toml)::

    [project.entry-points."wsrbench.algorithms"]
    reverse_pava = "my_package:register"

The entry point loads to either

* a :class:`Plugin` (or a list of them), or
* a callable taking no arguments; it may return a :class:`Plugin` / a list of them, or call
  :func:`register` (or ``wsrbench.core.registry.register_backend`` for a whole new backend) itself and
  return None.

Two ways to implement an algorithm:

* ``partition(xs, lam) -> (starts, rounds, stats)`` for the ``numpy`` backend, the natural unit: xs is
  the sorted, median-centred row in float64; return the int64 start index of every cluster of the
  non-decreasing fit of y_k = xs_k + lam (d-1-2k)/(d-1) (starts[0] == 0, increasing), the number
  of rounds or steps it took, and a dict of counters. The backend does the sort, the cluster
  values (from sums of the original data, docs/design.md#numerics-and-range), L1, rho and the
  un-sort, exactly as for
  the built-in algorithms (see ``wsrbench.backends.numpy``).
* ``prox_rows(X, lam, *, l1, rho, algorithm) -> RowsResult`` for any backend: the whole backend
  contract (``wsrbench.core.contract``; X 2-D in the backend's array kind, already checked).

Plugins load once, lazily, on the first registry query (never at ``import wsrbench``). A plugin
that fails to load is reported with a warning and listed by :func:`failures`; it never breaks
wsrbench. Set ``WSRBENCH_DISABLE_PLUGINS=1`` to skip loading them.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

from . import registry
from .registry import Algorithm

GROUP = "wsrbench.algorithms"

_FAILURES: list[tuple[str, str]] = []  # (entry point "name = value", error)
_LOADED: list[str] = []  # entry point names that loaded
_REGISTERED: dict[str, tuple[str, str]] = {}  # algorithm -> (backend, how) registered by plugins


@dataclass(frozen=True)
class Plugin:
    """One algorithm implemented for one backend (exactly one of partition / prox_rows)."""
    algorithm: Algorithm
    backend: str = "numpy"
    partition: Callable | None = None
    prox_rows: Callable | None = None


def register(algorithm: Algorithm | str, backend: str = "numpy", *, partition: Callable | None = None,
             prox_rows: Callable | None = None) -> None:
    """Register ``algorithm`` for ``backend``, implemented by ``partition`` or ``prox_rows``.

    ``algorithm`` is an :class:`~wsrbench.core.registry.Algorithm` (a new one is registered) or the name
    of a registered algorithm (to add a backend implementation of an existing algorithm). A backend
    that already implements the algorithm is an error: a plugin never replaces a built-in silently.
    """
    if (partition is None) == (prox_rows is None):
        raise ValueError("give exactly one of partition= (numpy backend) or prox_rows= (any backend)")
    if isinstance(algorithm, str):
        alg = registry.get_algorithm(algorithm)
    elif isinstance(algorithm, Algorithm):
        alg = algorithm
        known = registry.find_algorithm(alg.name)
        if known is not None and known != alg:
            raise ValueError(f"algorithm {alg.name!r} is already registered with a different "
                             f"description; pass its name to add a backend implementation")
    else:
        raise TypeError(f"algorithm must be a wsrbench.core.registry.Algorithm or a name, got "
                        f"{type(algorithm).__name__}")
    be = registry.get_backend(backend)
    if alg.name in be.algorithms:
        raise ValueError(f"backend {backend!r} already implements {alg.name!r}")
    if partition is not None and not callable(partition):
        raise TypeError("partition must be callable: partition(xs, lam) -> (starts, rounds, stats)")
    if prox_rows is not None and not callable(prox_rows):
        raise TypeError("prox_rows must be callable: prox_rows(X, lam, *, l1, rho, algorithm)")
    if partition is not None and backend != "numpy":
        raise ValueError(f"partition= plugs into the numpy reference backend only; for backend "
                         f"{backend!r} give prox_rows= (the backend contract, wsrbench.core.registry)")
    if registry.find_algorithm(alg.name) is None:
        registry.register_algorithm(alg)
    if partition is not None:
        # The numpy backend runs any partitioner in its ALGORITHMS table through the same
        # sort / centre / finish / un-sort pipeline as the built-ins.
        registry.backend_module("numpy").ALGORITHMS[alg.name] = partition
        registry.add_backend_algorithm(backend, alg.name)
        how = "partition"
    else:
        registry.register_implementation(backend, alg.name, prox_rows)
        how = "prox_rows"
    _REGISTERED[alg.name] = (backend, how)


def unregister(name: str) -> None:
    """Remove an algorithm that a plugin registered (tests use it to leave the registry clean)."""
    if name not in _REGISTERED:
        raise ValueError(f"{name!r} was not registered by a plugin")
    backend, how = _REGISTERED.pop(name)
    if how == "partition":
        registry.backend_module("numpy").ALGORITHMS.pop(name, None)
        registry.remove_backend_algorithm(backend, name)
    else:
        registry.remove_implementation(backend, name)
    if not any(name in b.algorithms for b in registry.backends()):
        registry.unregister_algorithm(name)


def registered() -> dict[str, tuple[str, str]]:
    """Algorithms registered by plugins: name -> (backend, "partition" or "prox_rows")."""
    return dict(_REGISTERED)


def failures() -> list[tuple[str, str]]:
    """Entry points that failed to load: ("name = value", error message)."""
    return list(_FAILURES)


def _entry_points():
    return list(metadata.entry_points(group=GROUP))


def load_entry_points(entry_points=None) -> list[str]:
    """Load every ``wsrbench.algorithms`` entry point (or the given ones); return the names loaded.

    The registry runs this once, before its first query (``registry.add_loader``, at the end of
    this module). Errors are caught per entry point, recorded in
    :func:`failures` and reported with a warning, so one broken plugin cannot break wsrbench.
    """
    if entry_points is None:
        if os.environ.get("WSRBENCH_DISABLE_PLUGINS", "") not in ("", "0"):
            return []
        try:
            entry_points = _entry_points()
        except Exception as exc:  # a broken installed distribution's metadata
            warnings.warn(f"wsrbench: could not list {GROUP} entry points: {exc}", RuntimeWarning,
                          stacklevel=2)
            return []
    loaded = []
    for ep in entry_points:
        label = f"{ep.name} = {ep.value}"
        try:
            _apply(ep.load())
        except Exception as exc:
            _FAILURES.append((label, f"{type(exc).__name__}: {exc}"))
            warnings.warn(f"wsrbench plugin {label!r} failed to load and is ignored: "
                          f"{type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)
            continue
        _LOADED.append(ep.name)
        loaded.append(ep.name)
    return loaded


def _apply(obj) -> None:
    if isinstance(obj, Plugin):
        register(obj.algorithm, obj.backend, partition=obj.partition, prox_rows=obj.prox_rows)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _apply(item)
    elif callable(obj):
        result = obj()
        if result is not None:
            _apply(result)
    else:
        raise TypeError(f"an entry point of {GROUP} must load to a wsrbench.core.plugins.Plugin, a list "
                        f"of them, or a callable; got {type(obj).__name__}")


registry.add_loader(load_entry_points)
