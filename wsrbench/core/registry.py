"""The one registry of prox algorithms and backends (docs/design.md#the-backend-contract-and-the-registry).

Tests, benchmarks and the CLI iterate over this registry, so registering a backend or an algorithm
is all it takes for it to be tested, benchmarked and compared.

A backend is a module under ``wsrbench.backends`` imported lazily (importing wsrbench imports no
backend, compiles nothing and touches no GPU). Its module implements the backend contract,
``wsrbench.core.contract.ProxBackend``: a table ``ALGORITHMS`` of the algorithms listed here for it,
``prox_rows(X, lam, *, l1, rho, algorithm, labels=False) -> RowsResult`` on 2-D input of its own
array kind (already checked by ``wsrbench.core.checks``; ``labels=True`` fills ``RowsResult.labels``),
and ``from_numpy`` / ``to_numpy``.

Operations other than the prox (projections, gates, ...) are listed in ``OPERATIONS``: operation
name -> {backend: "module:function"}; ``operation()`` picks and imports the implementation.

Extension points (``wsrbench.core.plugins`` uses only these): ``register_algorithm`` /
``unregister_algorithm``, ``register_backend``, ``add_backend_algorithm`` /
``remove_backend_algorithm``, ``register_implementation`` / ``remove_implementation``, and
``add_loader`` (a function run once, before the first registry query: how plugins load lazily
without this module importing them).
"""
from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, NamedTuple

from . import arrays
from .arrays import array_kind
from .contract import ProxVector, RowsResult, WarmStart


@dataclass(frozen=True)
class Algorithm:
    name: str
    summary: str
    work: str
    depth: str
    worst_case: str | None = None  # the wsrbench.bench.cases family that drives it to its worst case


@dataclass
class Backend:
    name: str
    module: str
    summary: str
    algorithms: tuple[str, ...]
    kinds: tuple[str, ...] = ("numpy",)  # array kinds it accepts (see array_kind)
    requires: tuple[str, ...] = ()  # importable modules it needs
    install_hint: str = ""
    probe: Callable[[], str | None] | None = None  # extra check: None if usable, else why not
    max_test_d: int | None = None  # cap on vector sizes in the generic tests (e.g. a slow simulator)
    # algorithm="auto" for a given input when the default depends on it (e.g. the device of a
    # tensor); None: the first listed algorithm
    auto_algorithm: Callable[[object], str] | None = None
    # inputs it takes beyond ``kinds`` (e.g. numba_cuda: torch tensors on a CUDA device, through
    # __cuda_array_interface__); None: only its kinds
    also_takes: Callable[[object], bool] | None = None
    also_takes_note: str = ""  # those inputs in words, for error messages
    # module implementing wsrbench.core.contract.ArrayPrimitives for its kinds (the CUDA backend:
    # how wsrbench.core.arrays and .checks handle CUDA arrays without importing a backend)
    array_primitives: str | None = None
    # optional capabilities its module implements (keys of CAPABILITIES)
    capabilities: tuple[str, ...] = ()
    _module: object = field(default=None, repr=False)

    @property
    def default_algorithm(self) -> str:
        return self.algorithms[0]

    def takes(self, x: Any, kind: str | None = None, *, also: bool = True) -> bool:
        """Whether this backend accepts the array x (its kind, or, with ``also``, ``also_takes``)."""
        return ((kind or array_kind(x)) in self.kinds
                or (also and self.also_takes is not None and self.also_takes(x)))

    def unavailable_reason(self) -> str | None:
        for mod in self.requires:
            if importlib.util.find_spec(mod) is None:
                hint = f"; {self.install_hint}" if self.install_hint else ""
                return f"module {mod!r} is not installed{hint}"
        if self.probe is not None:
            return self.probe()
        return None

    def load(self) -> Any:
        if self._module is None:
            reason = self.unavailable_reason()
            if reason is not None:
                raise RuntimeError(f"backend {self.name!r} is unavailable here: {reason}")
            self._module = importlib.import_module(self.module)
        impls = _IMPLEMENTATIONS.get(self.name)  # plugin algorithms (wsrbench.core.plugins)
        return _PluginDispatch(self._module, impls) if impls else self._module


class BackendInfo(NamedTuple):
    name: str
    available: bool
    reason: str | None
    algorithms: tuple[str, ...]
    kinds: tuple[str, ...]
    summary: str


class AlgorithmInfo(NamedTuple):
    name: str
    summary: str
    work: str
    depth: str
    worst_case: str | None
    backends: tuple[str, ...]  # every registered backend implementing it
    available_backends: tuple[str, ...]  # those usable on this machine


# Optional capabilities a backend may declare, each a Protocol of wsrbench.core.contract.
CAPABILITIES: dict[str, type] = {"warm_start": WarmStart, "prox_vector": ProxVector}

_ALGORITHMS: dict[str, Algorithm] = {}
_BACKENDS: dict[str, Backend] = {}

# backend="auto" picks, for an array of each kind, the first available backend in this order.
AUTO_ORDER = {
    "numpy": ("numba", "numpy"),
    "torch": ("torch",),
    "cuda": ("numba_cuda",),
}
# The prox's own order: a torch tensor on a CUDA device goes to numba_cuda's kernels (zero-copy,
# its default algorithm hull_bridges: by the GPU cost model the fastest with a bounded worst case,
# docs/design.md#array-kinds-and-the-auto-rules and docs/design.md#the-pipelines-own-floor); a
# backend is skipped for an array it does not take (numba_cuda
# takes no CPU tensor). The operations keep AUTO_ORDER: torch's gates need autograd.
PROX_AUTO_ORDER = dict(AUTO_ORDER, torch=("numba_cuda", "torch"))


def register_algorithm(alg: Algorithm) -> None:
    _ALGORITHMS[alg.name] = alg


def find_algorithm(name: str) -> Algorithm | None:
    """The registered algorithm of that name, or None (no plugin loading, no error)."""
    return _ALGORITHMS.get(name)


def unregister_algorithm(name: str) -> None:
    """Forget an algorithm that no backend implements any more."""
    if any(name in b.algorithms for b in _BACKENDS.values()):
        raise ValueError(f"algorithm {name!r} is still implemented by a backend")
    _ALGORITHMS.pop(name, None)


def add_backend_algorithm(backend: str, algorithm: str) -> None:
    """List ``algorithm`` (registered) under ``backend``, whose module implements it already."""
    be = _backend_entry(backend)
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"algorithm {algorithm!r} is not registered; register_algorithm() it first")
    if algorithm in be.algorithms:
        raise ValueError(f"backend {backend!r} already implements {algorithm!r}")
    be.algorithms = be.algorithms + (algorithm,)


def remove_backend_algorithm(backend: str, algorithm: str) -> None:
    be = _backend_entry(backend)
    be.algorithms = tuple(a for a in be.algorithms if a != algorithm)


def backend_names() -> list[str]:
    """Names of the registered backends (available or not)."""
    return list(_BACKENDS)


def backend_module(name: str, submodule: str = "") -> ModuleType:
    """Import a backend's module (or one of its submodules) by its registry entry, without the
    availability check of :meth:`Backend.load`: for tools that inspect or count a backend without
    running it (the GPU cost model counts numba_cuda's launches on a machine without a GPU)."""
    mod = get_backend(name).module
    return importlib.import_module(f"{mod}.{submodule}" if submodule else mod)


def _backend_entry(name: str) -> Backend:
    be = _BACKENDS.get(name)
    if be is None:
        raise ValueError(f"unknown backend {name!r}; choose one of {sorted(_BACKENDS)}")
    return be


def register_backend(backend: Backend) -> None:
    unknown = [a for a in backend.algorithms if a not in _ALGORITHMS]
    if unknown:
        raise ValueError(f"backend {backend.name!r} lists unregistered algorithms {unknown}")
    _BACKENDS[backend.name] = backend


def backends() -> list[BackendInfo]:
    """Every registered backend, whether it is usable here, and why not when it is not."""
    _load_plugins()
    out = []
    for b in _BACKENDS.values():
        reason = b.unavailable_reason()
        out.append(BackendInfo(b.name, reason is None, reason, b.algorithms, b.kinds, b.summary))
    return out


def algorithms() -> list[AlgorithmInfo]:
    """Every registered algorithm with the backends that implement it (and those usable here)."""
    _load_plugins()
    avail = {b.name for b in backends() if b.available}
    out = []
    for a in _ALGORITHMS.values():
        impl = tuple(b.name for b in _BACKENDS.values() if a.name in b.algorithms)
        out.append(AlgorithmInfo(a.name, a.summary, a.work, a.depth, a.worst_case, impl,
                                 tuple(n for n in impl if n in avail)))
    return out


def _lookup(table: dict[str, Any], what: str, name: str) -> Any:
    _load_plugins()
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}; choose one of {sorted(table)}") from None


def get_algorithm(name: str) -> Algorithm:
    return _lookup(_ALGORITHMS, "algorithm", name)


def get_backend(name: str) -> Backend:
    return _lookup(_BACKENDS, "backend", name)


# Plugin implementations (see wsrbench.core.plugins): backend name -> {algorithm: prox_rows function}.
# Backend.load() wraps the backend module so that its prox_rows dispatches these algorithms to them.
_IMPLEMENTATIONS: dict[str, dict[str, Callable]] = {}
_PLUGINS_LOADED = False


def register_implementation(backend: str, algorithm: str, prox_rows: Callable) -> None:
    """Add ``algorithm`` (already registered) to ``backend`` with its own prox_rows function.

    ``prox_rows(X, lam, *, l1, rho, algorithm) -> RowsResult`` follows the backend contract
    (``wsrbench.core.contract.ProxRows``).
    Refuses to replace an algorithm the backend already implements: never substitute silently.
    """
    add_backend_algorithm(backend, algorithm)
    _IMPLEMENTATIONS.setdefault(backend, {})[algorithm] = prox_rows


def remove_implementation(backend: str, algorithm: str) -> None:
    """Undo :func:`register_implementation`."""
    impls = _IMPLEMENTATIONS.get(backend, {})
    impls.pop(algorithm, None)
    if not impls:
        _IMPLEMENTATIONS.pop(backend, None)
    remove_backend_algorithm(backend, algorithm)


class _PluginDispatch:
    """A backend module seen through its plugin algorithms: prox_rows dispatches by algorithm name."""

    def __init__(self, module: Any, impls: dict[str, Callable[..., Any]]) -> None:
        self._wrapped, self._impls = module, impls

    def __getattr__(self, name: str) -> Any:
        return getattr(self._wrapped, name)

    def prox_rows(self, X: Any, lam: float, *, l1: float, rho: float, algorithm: str,
                  labels: bool = False) -> RowsResult:
        fn = self._impls.get(algorithm)
        if fn is None:
            return self._wrapped.prox_rows(X, lam, l1=l1, rho=rho, algorithm=algorithm,
                                           labels=labels)
        if not labels:  # plugins written before labels existed keep working
            return fn(X, lam, l1=l1, rho=rho, algorithm=algorithm)
        import inspect

        if "labels" not in inspect.signature(fn).parameters:
            raise ValueError(f"the plugin implementation of {algorithm!r} does not return "
                             f"cluster labels; give its prox_rows a labels=False keyword that "
                             f"fills RowsResult.labels (wsrbench.core.contract)")
        return fn(X, lam, l1=l1, rho=rho, algorithm=algorithm, labels=True)


_LOADERS: list[Callable[[], None]] = []


def add_loader(fn: Callable[[], None]) -> None:
    """Run ``fn`` before the first registry query (how plugins load lazily: wsrbench.core.plugins)."""
    global _PLUGINS_LOADED
    _LOADERS.append(fn)
    _PLUGINS_LOADED = False


def _load_plugins() -> None:
    """Run the pending loaders once, on the first registry query (never at import time)."""
    global _PLUGINS_LOADED
    if _PLUGINS_LOADED:
        return
    _PLUGINS_LOADED = True  # before loading: a loader that queries the registry must not recurse
    for fn in list(_LOADERS):
        fn()


# Non-prox operations: op name -> {backend name: "module.path:function"}, imported on first use.
OPERATIONS: dict[str, dict[str, str]] = {}


def choose(backend: str, x: Any, *, order: dict[str, tuple[str, ...]], what: str,
           offers: Callable[[Backend], bool] | None = None, offered: str = "",
           also: bool = True) -> Backend:
    """The backend that runs ``what`` on x: the one rule behind :func:`resolve`, :func:`operation`
    and :func:`capable`.

    backend="auto": the first backend of ``order[array_kind(x)]`` that is registered, ``offers``
    what is asked, takes x (its ``kinds``; with ``also``, its ``also_takes``) and is available here;
    none is a RuntimeError. An explicit backend: unknown, ValueError naming the known ones; not
    offering it, ValueError naming those that do (``offered``); not taking x, TypeError, unless it
    cannot run here at all: then a RuntimeError saying why (numba_cuda without a GPU is not a
    NumPy-array problem). Never substitutes silently; an explicit backend that takes x is not
    checked for availability here (loading it says why it is unusable).
    """
    kind = array_kind(x)
    if backend == "auto":
        for name in order.get(kind, ()):
            be = _BACKENDS.get(name)
            if (be is not None and (offers is None or offers(be)) and be.takes(x, kind, also=also)
                    and be.unavailable_reason() is None):
                return be
        hint = offered or "see wsrbench.list_backends() for what is installed"
        raise RuntimeError(f"no available backend {what} for {kind} arrays here; {hint}")
    be = get_backend(backend)
    if offers is not None and not offers(be):
        raise ValueError(f"backend {be.name!r} does not implement {what.removeprefix('implements ')}"
                         f"; {offered}")
    if not be.takes(x, kind, also=also):
        reason = be.unavailable_reason()
        if reason is not None:  # what stops it first: it cannot run here (numba_cuda, no GPU)
            raise RuntimeError(f"backend {be.name!r} is not available here: {reason}")
        note = f" (and {be.also_takes_note})" if also and be.also_takes_note else ""
        raise TypeError(f"backend {be.name!r} takes {', '.join(be.kinds)} arrays{note}, got "
                        f"{_describe(x, kind)}; pass backend='auto' or convert the input")
    return be


def operation(op: str, backend: str, x: Any) -> tuple[Callable[..., Any], str]:
    """The function that runs operation ``op`` on x, and the backend chosen.

    backend="auto": the first available implementation in AUTO_ORDER for x's array kind
    (:func:`choose`). An explicit backend that lacks ``op`` is a ValueError naming those that have
    it; an unavailable one is a RuntimeError saying why.
    """
    have = OPERATIONS.get(op, {})
    be = choose(backend, x, order=AUTO_ORDER, what=f"implements {op}",
                offers=lambda b: b.name in have, also=False,
                offered=(f"implementations: {sorted(have)}" if backend == "auto"
                         else f"backends that do: {sorted(have)}"))
    if backend != "auto":
        be.load()  # raises RuntimeError with the reason when unavailable
    module, _, func = have[be.name].partition(":")
    return getattr(importlib.import_module(module), func), be.name


_PRIMITIVES: dict[str, object] = {}


def _primitives(kind: str) -> Any:
    """The ArrayPrimitives module of the first registered backend that declares them for ``kind``."""
    if kind in _PRIMITIVES:  # every check of a CUDA array asks: probe the backend once
        return _PRIMITIVES[kind]
    for be in _BACKENDS.values():
        if be.array_primitives and kind in be.kinds:
            reason = be.unavailable_reason()
            if reason is not None:
                raise RuntimeError(f"{kind} arrays need backend {be.name!r}, unavailable here: "
                                   f"{reason}")
            mod = _PRIMITIVES[kind] = importlib.import_module(be.array_primitives)
            return mod
    raise RuntimeError(f"no registered backend provides array primitives for {kind} arrays")


arrays.set_primitives_loader(_primitives)


def _describe(x: Any, kind: str) -> str:
    dev = getattr(getattr(x, "device", None), "type", None) if kind == "torch" else None
    return f"a {kind} array" + (f" on device {dev!r}" if dev else "")


def resolve(backend: str, algorithm: str, x: Any) -> tuple[Backend, str]:
    """Pick the backend and algorithm for a call; never substitutes silently.

    backend="auto": the first available backend of PROX_AUTO_ORDER that takes x (:func:`choose`;
    NumPy input: numba if installed, else numpy; a torch tensor on a CUDA device: numba_cuda if
    installed, else torch). algorithm="auto": that backend's ``auto_algorithm(x)``, else its first
    listed algorithm. An explicit algorithm the backend lacks is a ValueError naming what it has.
    """
    _load_plugins()
    be = choose(backend, x, order=PROX_AUTO_ORDER, what="handles")
    if algorithm == "auto":
        return be, (be.auto_algorithm(x) if be.auto_algorithm else be.default_algorithm)
    get_algorithm(algorithm)
    if algorithm not in be.algorithms:
        raise ValueError(f"backend {be.name!r} does not implement algorithm {algorithm!r}; "
                         f"it implements {list(be.algorithms)}")
    return be, algorithm


def capable(capability: str, x: Any, backend: str = "auto") -> tuple[Any, str]:
    """(loaded backend module, name) of the backend that has ``capability`` for x (one of
    :data:`CAPABILITIES`, declared by the backend entry's ``capabilities``): :func:`choose` over
    PROX_AUTO_ORDER. The module implements the capability's Protocol (wsrbench.core.contract)."""
    _load_plugins()
    protocol = CAPABILITIES[capability]
    have = sorted(b.name for b in _BACKENDS.values() if capability in b.capabilities)
    be = choose(backend, x, order=PROX_AUTO_ORDER, what=f"implements {capability}",
                offers=lambda b: capability in b.capabilities,
                offered=f"backends that do: {have}")
    mod = be.load()
    # isinstance with a runtime-checkable Protocol looks up every member (tens of microseconds,
    # felt by a training step's prox call): checked once per loaded module
    if (id(mod), capability) not in _CONFORMING:
        if not isinstance(mod, protocol):
            raise RuntimeError(f"backend {be.name!r} declares {capability} but its module lacks "
                               f"{protocol.__name__}'s functions (wsrbench.core.contract)")
        _CONFORMING.add((id(mod), capability))
    return mod, be.name


def vector_kernel(be: Backend, algorithm: str) -> Callable[..., Any] | None:
    """The ``prox_vector`` of backend be (capability "prox_vector") for algorithm, or None where
    it has none or a plugin implements that algorithm there (the plugin answers)."""
    if "prox_vector" not in be.capabilities or algorithm in _IMPLEMENTATIONS.get(be.name, ()):
        return None
    return be.load().prox_vector


#: (id of a loaded backend module, capability) pairs that passed the Protocol check
_CONFORMING: set[tuple[int, str]] = set()


# ---------------------------------------------------------------------------------------------
# The built-in algorithms (docs/design.md#the-algorithms) and backends.

register_algorithm(Algorithm(
    "pava", "sort, shift, stack-based pool-adjacent-violators, un-sort",
    work="O(d log d)", depth="sequential", worst_case="worst_pava"))
register_algorithm(Algorithm(
    "end_collisions", "repeatedly take the prefix of smallest mean as the next final cluster",
    work="O(d^2) worst", depth="one prefix scan per cluster", worst_case="worst_end_collisions"))
register_algorithm(Algorithm(
    "imminent_collisions", "each round merge every run of neighbours about to collide",
    work="O(d) per round", depth="Theta(d) rounds worst", worst_case="worst_imminent_collisions"))
register_algorithm(Algorithm(
    "search_collisions", "merge resolved halves bottom-up; binary-search the one crossing cluster",
    work="O(d log^2 d)", depth="O(log^3 d)", worst_case=None))
register_algorithm(Algorithm(
    "hull_bridges", "merge lower convex hulls of the cumulative sums bottom-up by their bridges",
    work="O(d log d)", depth="O(log^2 d)", worst_case="worst_hull_bridges"))

register_backend(Backend(
    "numpy", "wsrbench.backends.numpy",
    "NumPy reference: readable, exact; the parallel algorithms vectorised per round",
    algorithms=("pava", "end_collisions", "imminent_collisions", "search_collisions",
                "hull_bridges")))


# Projection, gates and soft sharing (docs/design.md#the-other-operators): one implementation per backend.
def _ops(module: str, func: str,
         backends: tuple[str, ...] = ("numpy", "numba", "numba_cuda", "torch")) -> dict[str, str]:
    return {b: f"wsrbench.backends.{b}.{module}:{func}" for b in backends}


for _op in ("project_ties", "project_affine"):
    OPERATIONS[_op] = _ops("projection", _op)
for _op in ("hard_concrete", "hard_concrete_gate", "hard_concrete_prob"):
    OPERATIONS[_op] = _ops("gates", _op)
for _op in ("soft_sharing_penalty", "soft_sharing_grad", "quantize"):
    OPERATIONS[_op] = _ops("soft_sharing", _op, ("numpy", "numba", "torch"))
del _op

def _torch_auto(x: Any) -> str:
    """CPU tensors: ``pava`` (the Numba kernel on the tensor's memory; the parallel algorithms'
    tensor ops cost ~100x more per call on a CPU); GPU tensors: ``search_collisions`` (no host
    syncs, bounded cost on every input). Reached for a GPU tensor only with backend="torch" or
    without numba-cuda: backend="auto" sends GPU tensors to numba_cuda.
    docs/design.md#auto-algorithm-and-proxstate-kinds."""
    dev = getattr(x, "device", None)
    return "pava" if getattr(dev, "type", "cpu") == "cpu" else "search_collisions"


register_backend(Backend(
    "torch", "wsrbench.backends.torch",
    "PyTorch tensor ops, batched rows, CPU or CUDA tensors (same code); data stay on the device",
    algorithms=("search_collisions", "imminent_collisions", "pava", "hull_bridges"),
    kinds=("torch",), requires=("torch",), install_hint="pip install torch",
    auto_algorithm=_torch_auto))


def _numba_cuda_probe() -> str | None:
    """None when numba.cuda can run kernels here (a GPU, or the simulator), else how to enable it.

    Runs only when backends() is asked, never at import time. numba.cuda.is_available() is true
    under NUMBA_ENABLE_CUDASIM=1 without touching a driver; with a real driver it initialises
    CUDA once.
    """
    try:
        from numba import cuda
        if cuda.is_available():
            return None
    except Exception as exc:  # a broken driver or toolkit install
        return (f"numba.cuda failed to initialise ({exc}); install an NVIDIA driver, or set "
                f"NUMBA_ENABLE_CUDASIM=1 before importing numba to use the CUDA simulator")
    return ("no CUDA GPU found by numba.cuda; install an NVIDIA GPU driver, or set "
            "NUMBA_ENABLE_CUDASIM=1 before importing numba to run the kernels in the CUDA "
            "simulator (slow: small sizes only)")


def _torch_on_cuda(x: Any) -> bool:
    """A torch tensor on a CUDA device (numba_cuda reads it through __cuda_array_interface__)."""
    return (type(x).__module__.split(".")[0] == "torch"
            and getattr(getattr(x, "device", None), "type", None) == "cuda")


# hull_bridges first: by the GPU cost model (docs/design.md#the-pipelines-own-floor) the fastest
# algorithm whose cost
# does not depend on the data (imminent_collisions is faster on typical rows but takes a launch
# and a host sync per round, up to d - 1 rounds).
register_backend(Backend(
    "numba_cuda", "wsrbench.backends.numba_cuda",
    "CUDA kernels written with numba-cuda (CI: the CUDA simulator on small sizes)",
    algorithms=("hull_bridges", "search_collisions", "imminent_collisions", "pava"),
    kinds=("cuda",), requires=("numba_cuda",), install_hint="pip install numba-cuda",
    probe=_numba_cuda_probe, max_test_d=32, also_takes=_torch_on_cuda,
    also_takes_note="torch tensors on a CUDA device",
    array_primitives="wsrbench.backends.numba_cuda.device"))

register_backend(Backend(
    "numba", "wsrbench.backends.numba",
    "Numba CPU: nopython kernels, radix argsort on float-bit keys, rows in parallel, warm start",
    algorithms=("pava", "imminent_collisions", "search_collisions", "end_collisions",
                "hull_bridges"),
    requires=("numba",), install_hint="pip install numba", capabilities=("warm_start", "prox_vector")))
