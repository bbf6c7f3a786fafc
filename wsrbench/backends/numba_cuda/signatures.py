"""Every numba_cuda kernel and the argument signatures it is launched with
(docs/design.md#real-compilation-in-ci).

``python -m wsrbench.backends.numba_cuda.compile_check`` compiles every entry of ``SIGNATURES``
for real (NVVM to PTX, ptxas to SASS for sm_80 and sm_90) in a process without the simulator, and
fails for a kernel of ``wsrbench/backends/numba_cuda/`` that has no entry. The test suite records
the signature of every kernel launch the simulator runs and fails if one is missing here
(tests/conftest.py, tests/test_gpu_signatures.py), so the table is what the code launches.

Adding a kernel: run the tests; the failure message prints the missing line, e.g.
``"sort.radix_gather": ["float32[:, ::1], int64[:, ::1], float32[:, ::1]"],``: paste it here.
Keys are ``module.function`` relative to ``wsrbench.backends.numba_cuda`` (or a full dotted path
starting with ``wsrbench.`` for kernels and device functions kept elsewhere, such as the bridge
step of docs/design.md#the-bridge-step); entries of ``DEVICE`` are compiled as device functions. In a
signature, ``{F}`` stands for both float32 and float64 (the entry is expanded to both), ``[:, ::1]``
is a C-contiguous 2-D array, ``[::1, :]`` an F-contiguous one and ``[:, :]`` any layout.
"""
from __future__ import annotations

import importlib
import pkgutil

PACKAGE = "wsrbench.backends.numba_cuda"

_X = "{F}[:, ::1]"  # the input rows: any of the three layouts a 2-D device array can have
_XF = "{F}[::1, :]"
_XA = "{F}[:, :]"
# hull_bridges stores hulls as offsets in the narrowest of these
# (docs/design.md#hull_bridges-memory-traffic); a merge
# writes the same type or the next wider one
_HULLS = ("uint16", "int32")
_HULL_STEPS = [(a, b) for i, a in enumerate(_HULLS) for b in _HULLS[i:i + 2]]
_KEYS = (":, ::1",)  # the sorted keys and order: row-major from every sort (sort.py)
_INTS = ("int64", "int32", "int16", "int8", "uint8", "bool")  # integer input becomes float64

SIGNATURES: dict[str, list[str]] = {
    # ------------------------------------------------------------------ input checks and copies
    "device._copy_rows": ["{F}[:, :], {F}[:, ::1]", "{F}[::1, :], {F}[:, ::1]"]
    + [f"{i}[{lay}], float64[:, ::1]" for i in _INTS for lay in (":, ::1", "::1, :", ":, :")],
    "device._copy_1d": ["{F}[:], {F}[::1]"]
    + [f"{i}[{lay}], float64[::1]" for i in _INTS for lay in ("::1", ":")],
    "device._first_outside": ["{F}[::1], float64, float64, boolean, boolean, int64[::1]"],
    "_no_partition": ["int8[:, ::1], int64[::1]"],
    "_stack_rows": ["int64[::1], int64[::1], int64[::1], int64[::1], int64[::1], int64[:, ::1]"],
    # ------------------------------------------------------------------ sort
    "sort.rank_sort": [f"{x}, {{F}}[:, ::1], int64[:, ::1]" for x in (_X, _XF, _XA)],
    "sort.bitonic_init": [f"{x}, {{F}}[:, ::1], int64[:, ::1]" for x in (_X, _XF, _XA)],
    "sort.bitonic_stage": ["{F}[:, ::1], int64[:, ::1], int64, int64"],
    "sort.bitonic_unpad": ["{F}[:, ::1], int64[:, ::1], {F}[:, ::1], int64[:, ::1]"],
    "sort.radix_init": [f"{x}, {{F}}[:, ::1], int64[:, ::1]" for x in (_X, _XF, _XA)],
    "sort.radix_count": [f"{u}[:, ::1], int64, int64, int64, int32[:, ::1], int32[:, :, ::1]"
                         for u in ("uint32", "uint64")],
    "sort.radix_scan_tiles": ["int32[:, :, ::1], int32[:, ::1]"],
    "sort.radix_scan_digits": ["int32[:, ::1]"],
    "sort.radix_scatter": [f"{u}[:, ::1], int64[:, ::1], int32[:, ::1], int32[:, :, ::1], "
                           f"int32[:, ::1], int64, int64, int64, {u}[:, ::1], int64[:, ::1]"
                           for u in ("uint32", "uint64")],
    "sort.radix_gather": [f"{x}, int64[:, ::1], {{F}}[:, ::1]" for x in (_X, _XF, _XA)],
    # ------------------------------------------------------------------ shared finishing step
    "finish.fill1": ["int64[::1], int64"],
    "finish.fill2": ["int8[:, ::1], int64", "int64[:, ::1], int64"],
    "finish.row_centers": [f"{{F}}[{lay}], float64[::1]" for lay in _KEYS],
    "segscan.reduce_rows": [f"int8[:, ::1], int8[:, ::1], int8[:, ::1], {v}, float64[::1], "
                            "int64, int64, int64, int64, float64[::1], int8[::1], int64[::1]"
                            for v in ("float64[:, ::1]", "int8[:, ::1]", "float32[:, ::1]",
                                      "{F}[:, :]")],
    "segscan.reduce_level": ["float64[::1], int8[::1], int64[::1], int64, float64[::1], "
                             "int8[::1], int64[::1]"],
    "segscan.down_level": ["float64[::1], int8[::1], int64[::1], int64, float64[::1], "
                           "int64[::1], int64"],
    "finish.values_down": [f"int8[:, ::1], {{F}}[{lay}], int64[{lay}], int64, float64[::1], "
                           "int64[::1], int64, float64[::1], float64, float64, float64, "
                           "{F}[:, ::1], float64[::1], int64[::1]" for lay in _KEYS],
    "finish.pool_ties": [f"int8[:, ::1], {{F}}[{lay}], float64" for lay in _KEYS],
    "finish.values_tail": [f"int8[:, ::1], int64[{lay}], int64, int64[::1], int64, float64[::1], "
                           "{F}[:, ::1]" for lay in _KEYS],
    "finish.labels_down": [f"int8[:, ::1], int64[{lay}], int64, float64[::1], int64[::1], int64, "
                           "int64[:, ::1]" for lay in _KEYS],
    # ------------------------------------------------------------------ imminent_collisions
    # bend and bprev are int32 below 2^31 columns, int64 above (imminent_collisions.link_type)
    "imminent_collisions.init_blocks": [f"{{F}}[{lay}], float64[::1], int8[:, ::1], "
                                        f"float64[:, ::1], {i}[:, ::1], {i}[:, ::1]"
                                        for lay in _KEYS for i in ("int32", "int64")],
    "imminent_collisions.mark_first": [f"{{F}}[{lay}], float64[::1], int8[:, ::1], int64[::1], "
                                       "int64[::1], float64, int64[:, ::1]" for lay in _KEYS],
    "imminent_collisions.merge_first": [f"int8[:, ::1], {{F}}[{lay}], float64[::1], int64, "
                                        f"float64[::1], int64[::1], int64, int8[:, ::1], "
                                        f"float64[:, ::1], {i}[:, ::1], {i}[:, ::1]"
                                        for lay in _KEYS for i in ("int32", "int64")],
    "imminent_collisions.mark_keep": [f"int8[:, ::1], float64[:, ::1], {i}[:, ::1], "
                                      f"{i}[:, ::1], int8[:, ::1], int64[::1], int64[::1], "
                                      "int64, float64, int64[:, ::1], int64[::1], int64[::1], "
                                      "int64[::1]" for i in ("int32", "int64")],
    "imminent_collisions.close_last_round": ["int64[:, ::1], int64[::1], int64[::1], int64[::1], "
                                             "int64, int64"],
    "imminent_collisions.merge_runs": [f"int8[:, ::1], float64[:, ::1], {i}[:, ::1], "
                                       f"{i}[:, ::1], int8[:, ::1]" for i in ("int32", "int64")],
    "imminent_collisions.merge_down": [f"int8[:, ::1], int8[:, ::1], float64[:, ::1], "
                                       f"{i}[:, ::1], int64, float64[::1], int64[::1], int64, "
                                       f"float64[:, ::1], {i}[:, ::1], {i}[:, ::1]"
                                       for i in ("int32", "int64")],
    # ------------------------------------------------------------------ search_collisions
    "search_collisions.init_state": [f"{{F}}[{lay}], float64[::1], float64[:, ::1], "
                                     "float64[:, ::1], int64[:, ::1], int64[:, ::1]"
                                     for lay in _KEYS],
    "search_collisions.prefix_level": ["float64[:, ::1], float64[:, ::1], int64"],
    "search_collisions.suffix_level": ["float64[:, ::1], float64[:, ::1], int64"],
    "search_collisions.init_pairs": ["int64[:, ::1], int64[::1], int64[::1], int64[::1], "
                                     "float64[::1], int64[::1], int64, int64"],
    "search_collisions.probe_min": ["float64[:, ::1], float64[:, ::1], int64[:, ::1], "
                                    "int64[:, ::1], int64[::1], int64[::1], float64[::1], int64, "
                                    "int64, float64"],
    "search_collisions.probe_update": ["float64[:, ::1], float64[:, ::1], int64[:, ::1], int64[:, ::1], "
                                       "int64[::1], int64[::1], float64[::1], int64[::1], int64, "
                                       "int64, float64"],
    "search_collisions.argmin_means": ["float64[:, ::1], float64[:, ::1], int64[:, ::1], int64[:, ::1], "
                                       "int64[::1], float64[::1], float64[:, ::1], int64, int64, "
                                       "float64"],
    "search_collisions.argmin_last": ["float64[:, ::1], float64[::1], int64[::1], int64, int64"],
    "search_collisions.close_pairs": ["int64[:, ::1], int64[:, ::1], int64[::1], int64[::1], "
                                      "int64[::1], int64[::1], int64, int64"],
    "search_collisions.rebuild": ["int64[:, ::1], int64[:, ::1], int64[:, ::1], int64[:, ::1], "
                                  "int64[::1], int64[::1], int64, int64"],
    "search_collisions.add_rounds": ["int64[::1], int64[::1], int64[::1], int64, int64"],
    # ------------------------------------------------------------------ hull_bridges
    "hull_bridges.bridge_pairs": [
        f"{hull}[:, ::1], int32[::1], int32[::1], {{F}}[{lay}], float64[::1], float64[::1], "
        "float64[::1], float64[::1], int32[::1], int32[::1], int64[::1], int64[::1], int64[::1], "
        "int8[:, ::1], int32[::1], int32[::1], int32[::1], int64, int64, int64, int64, int64, "
        "float64, int32[::1], int64" for hull in _HULLS for lay in _KEYS],
    "hull_bridges.merge_copy": [
        f"{src}[:, ::1], {dst}[:, ::1], int32[::1], int32[::1], int32[::1], int32[::1], "
        "int32[::1], int32[::1], int32[::1], int64[::1], int64[::1], int64[::1], int8[:, ::1], "
        "int64, int64, int64, int64, int64, int64, int64, int64" for src, dst in _HULL_STEPS],
    "hull_tiles.tile_levels": [
        f"{{F}}[{lay}], float64[::1], {hull}[:, ::1], int32[::1], float64[::1], int32[::1], "
        "int64[::1], int64[::1], int64[::1], int8[:, ::1], int64, int64, float64"
        for hull in _HULLS[:1] for lay in _KEYS],  # tiles of <= 2^11 points: uint16 offsets
    "finish.mark_starts": ["int64[:, ::1], int64[:, ::1], int8[:, ::1]"],
    # ------------------------------------------------------------------ pava
    "pava.pava_rows": [f"{{F}}[{lay}], float64[::1], float64, int64[:, ::1], float64[:, ::1], "
                       "int8[:, ::1], int64[::1], int64[::1], int64[::1], int64[::1]"
                       for lay in _KEYS],
    # ------------------------------------------------------------------ projections, gates, checks
    "projection._zero": ["float64[::1]"],
    "projection._group_sums": ["{F}[::1], int64[::1], float64[::1], float64[::1], float64[::1]"],
    "projection._gather_means": ["int64[::1], float64[::1], float64[::1], float64[::1], "
                                 "float64[::1], {F}[::1]"],
    "projection._columns_dot": ["{F}[::1], float64[:, ::1], float64[::1], float64[::1]"],
    "projection._minus_Vz": ["{F}[::1], float64[:, ::1], float64[::1], {F}[::1]"],
    "gates._sample": ["{F}[::1], {F}[::1], float64, float64, float64, {F}[::1]"],
    "gates._gate": ["{F}[::1], float64, float64, {F}[::1]"],
    "gates._prob": ["{F}[::1], float64, float64, {F}[::1]"],
    # ------------------------------------------------------------------ the GPU calibration
    "wsrbench.bench.gpu_calibration.empty": ["int32[::1]"],
    "wsrbench.bench.gpu_calibration.chase_global": ["int32[::1], int64, int32[::1]"],
    "wsrbench.bench.gpu_calibration.chase_shared": ["int32[::1], int64, int32[::1]"],
}

# Device functions compiled on their own (besides inside the kernels that call them).
DEVICE: set[str] = set()


def expand(sig: str) -> list[str]:
    """The concrete signatures of one table entry ({F} -> float32 and float64)."""
    return [sig.replace("{F}", f) for f in ("float32", "float64")] if "{F}" in sig else [sig]


def table() -> dict[str, list[str]]:
    """Key -> sorted concrete signatures."""
    return {k: sorted({c for s in sigs for c in expand(s)}) for k, sigs in SIGNATURES.items()}


def key_of(module: str, name: str) -> str:
    prefix = PACKAGE + "."
    return module[len(prefix):] + "." + name if module.startswith(prefix) else (
        name if module == PACKAGE else module + "." + name)


def format_type(ty) -> str:
    """A numba type as written in the table (``float64[:, ::1]``, ``int64``)."""
    from numba.core import types

    if isinstance(ty, types.Array):
        dims = [":"] * ty.ndim
        if ty.ndim and ty.layout == "C":
            dims[-1] = "::1"
        elif ty.ndim and ty.layout == "F":
            dims[0] = "::1"
        dt = "bool" if ty.dtype == types.boolean else str(ty.dtype)
        return f"{dt}[{', '.join(dims)}]"
    if ty == types.boolean:
        return "boolean"
    return str(ty)


def parse(sig: str) -> tuple:
    """A concrete table signature as a tuple of numba types."""
    from numba.core import types

    ns = {name: getattr(types, name) for name in dir(types) if not name.startswith("_")}
    ns["bool"] = types.boolean
    out = eval(f"({sig},)", {"__builtins__": {}}, ns)
    return tuple(out)


def _is_dispatcher(obj) -> tuple[bool, bool]:
    """(is a numba-cuda jitted function, is it a device function), real or simulated."""
    try:
        from numba.cuda.dispatcher import CUDADispatcher
    except ImportError:  # pragma: no cover
        CUDADispatcher = ()
    if CUDADispatcher and isinstance(obj, CUDADispatcher):
        return True, bool(obj.targetoptions.get("device", False))
    try:
        from numba.cuda.simulator.kernel import FakeCUDAKernel
    except ImportError:  # pragma: no cover
        return False, False
    if isinstance(obj, FakeCUDAKernel):
        return True, bool(obj._device)
    return False, False


def discover() -> dict[str, tuple[object, bool]]:
    """Every jitted function defined in the package's modules: key -> (dispatcher, is_device)."""
    pkg = importlib.import_module(PACKAGE)
    modules = [pkg] + [importlib.import_module(f"{PACKAGE}.{m.name}")
                       for m in pkgutil.iter_modules(pkg.__path__)
                       if m.name not in ("compile_check",)]
    found = {}
    for mod in modules:
        for name, obj in vars(mod).items():
            ok, device = _is_dispatcher(obj)
            fn = getattr(obj, "py_func", None)
            if ok and fn is not None and fn.__module__ == mod.__name__:
                found[key_of(mod.__name__, name)] = (obj, device)
    return found


def resolve(key: str):
    """The dispatcher of a table key."""
    if key.startswith("wsrbench."):
        module, _, name = key.rpartition(".")
    else:
        module, _, name = (PACKAGE + "." + key).rpartition(".")
        if "." not in key:
            module = PACKAGE
    return getattr(importlib.import_module(module), name)
