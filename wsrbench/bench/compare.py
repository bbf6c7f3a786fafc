"""Time prox algorithms x backends x input families x sizes against the sort floor (library).

Every answer is certified (wsrbench.certify, the optimality conditions) before its time counts.
Each time is the minimum over ``repeats`` calls after one untimed warm-up call (JIT compilation
never counts); the floor is np.argsort of the same input (torch.sort on the same GPU for GPU
backends). :func:`make_plan` lists the (backend, algorithm, family, d) cells to run under the cap
table of :mod:`wsrbench.bench.benchtools`, :func:`measure` runs one cell into a :class:`Record`, and
:func:`summarize` reduces records to one row per (backend, algorithm, family): the time per size,
the scaling exponent fitted by least squares to log t = a + p log d (over d >= 1e4 when two such
sizes were measured, so that fixed per-call overheads do not flatten it) and the ratio to the
floor at the largest size.

No printing and no argument parsing here: the tables and files are written by
:mod:`wsrbench.bench.report`, the command line (``wsrbench compare``) is :mod:`wsrbench.cli.compare`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core import registry
from . import cases
from .benchtools import (  # noqa: F401
    CAPS,
    REPEAT_BUDGET_S,
    Cap,
    cap_for,
    device_of,
    fit_exponent,
    floor_seconds,
    sync,
    time_calls,
)

DEFAULT_SIZES = [1_000, 10_000, 100_000, 1_000_000]
QUICK_SIZES = [1_000, 10_000, 100_000]
DEFAULT_FAMILIES = ["gaussian", "quantized", "nearly_sorted", "worst_pava",
                    "worst_imminent_collisions", "worst_end_collisions"]
QUICK_FAMILIES = ["gaussian", "worst_imminent_collisions", "worst_end_collisions"]


# ---------------------------------------------------------------------------------------------
# Measuring

@dataclass
class Record:
    backend: str
    algorithm: str
    family: str
    regime: str
    d: int
    dtype: str
    status: str  # "ok", "failed" (certificate), "error" (raised)
    seconds: float = math.nan  # min over repeats
    repeats: int = 0
    floor: str = ""
    floor_seconds: float = math.nan
    ratio_to_floor: float = math.nan
    rounds: int = -1
    clusters: int = -1
    depth: int = -1  # parallel depth (docs/design.md#parallel-depth); -1 where it is not counted
    certified: bool = False
    violation: float = math.nan
    message: str = ""


def check_answer(x: np.ndarray, w: np.ndarray, lam: float) -> tuple[bool, float, str]:
    """(ok, violation, message): is w the prox of x? Decided by wsrbench.certify alone."""
    from ..core.certificate import certify

    cert = certify(x, w, lam)
    return bool(cert.ok), float(cert.violation), "" if cert.ok else cert.message


def measure(backend: str, algorithm: str, family: str, d: int, *, dtype=np.float64, repeats=3,
            seed=0, floor_cache=None) -> Record:
    """Build the input, warm up, certify the answer, time it and its floor; one Record."""
    from ..api import prox_info

    fam = {f.name: f for f in cases.families()}[family]
    x, lam = cases.make(family, d, seed=seed, dtype=dtype)
    rec = Record(backend, algorithm, family, fam.regime, d, np.dtype(dtype).name, "ok")
    try:
        mod = registry.get_backend(backend).load()
        xb = mod.from_numpy(x)
        w, info = prox_info(xb, lam, algorithm=algorithm, backend=backend)  # warm-up (JIT)
        sync(w)
        ok, violation, message = check_answer(x, mod.to_numpy(w), lam)
        rec.rounds, rec.clusters = int(info.rounds), int(info.clusters)
        rec.depth = -1 if getattr(info, "depth", None) is None else int(info.depth)
        rec.certified, rec.violation, rec.message = ok, violation, message
        if not ok:
            rec.status = "failed"

        def run():
            sync(prox_info(xb, lam, algorithm=algorithm, backend=backend)[0])
        ts = time_calls(run, repeats)
        rec.seconds, rec.repeats = min(ts), len(ts)
        device = device_of(xb)
    except Exception as exc:  # report and go on: one broken backend must not hide the others
        rec.status, rec.message = "error", f"{type(exc).__name__}: {exc}"
        return rec
    key = (family, d, rec.dtype, device, seed)
    if floor_cache is not None and key in floor_cache:
        rec.floor_seconds, rec.floor = floor_cache[key]
    else:
        rec.floor_seconds, rec.floor = floor_seconds(x, device, repeats)
        if floor_cache is not None:
            floor_cache[key] = (rec.floor_seconds, rec.floor)
    rec.ratio_to_floor = rec.seconds / rec.floor_seconds if rec.floor_seconds > 0 else math.nan
    return rec


# ---------------------------------------------------------------------------------------------
# Planning

@dataclass
class Plan:
    cells: list = field(default_factory=list)  # (backend, algorithm, family, d)
    capped: list = field(default_factory=list)  # (backend, algorithm, family, [d...], Cap)
    skipped_backends: list = field(default_factory=list)  # (name, reason)


def _device_of_backend(backend: str) -> tuple[str, bool]:
    """(device, simulated): where the backend's arrays live, and whether it runs in a simulator
    (its module sets SIMULATOR, as the numba-cuda backend does under NUMBA_ENABLE_CUDASIM=1)."""
    mod = registry.get_backend(backend).load()
    return device_of(mod.from_numpy(np.zeros(2))), bool(getattr(mod, "SIMULATOR", False))


def make_plan(backends, algorithms, families, sizes, *, use_caps=True) -> Plan:
    plan = Plan()
    infos = {b.name: b for b in registry.backends()}
    for b in backends:
        info = infos[b]
        if not info.available:
            plan.skipped_backends.append((b, info.reason))
            continue
        be = registry.get_backend(b)
        device, simulated = _device_of_backend(b)
        for a in algorithms:
            if a not in be.algorithms:
                continue
            for f in families:
                cap = cap_for(b, a, f, device) if use_caps else None
                if simulated:  # only the sizes its tests use
                    sim = Cap(b, "*", "*", be.max_test_d or 0, "runs in a slow simulator here")
                    cap = sim if cap is None or sim.max_d < cap.max_d else cap
                over = [d for d in sizes if cap is not None and d > cap.max_d]
                if over:
                    plan.capped.append((b, a, f, over, cap))
                plan.cells.extend((b, a, f, d) for d in sizes if d not in over)
    return plan


def summarize(records) -> list[dict]:
    """One row per (backend, algorithm, family): times per d, exponent, ratio at the largest d."""
    rows: dict = {}
    for r in records:
        rows.setdefault((r.backend, r.algorithm, r.family), []).append(r)
    out = []
    for (b, a, f), rs in rows.items():
        ok = [r for r in rs if r.status == "ok"]
        p, n = fit_exponent([r.d for r in ok], [r.seconds for r in ok])
        last = max(ok, key=lambda r: r.d) if ok else None
        out.append({
            "backend": b, "algorithm": a, "family": f, "regime": rs[0].regime,
            "times": {r.d: (r.seconds if r.status == "ok" else r.status) for r in rs},
            "exponent": p, "fit_points": n,
            "ratio_to_floor": last.ratio_to_floor if last else math.nan,
            "ratio_d": last.d if last else None,
            "floor": last.floor if last else "",
            "certified": all(r.certified for r in rs),
        })
    return out


# ---------------------------------------------------------------------------------------------
# Names

def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_sizes(text: str) -> list[int]:
    """'1e3,1e4,20000' -> [1000, 10000, 20000] (each a positive integer)."""
    out = []
    for tok in _csv_list(text):
        try:
            v = float(tok)
        except ValueError:
            raise ValueError(f"--sizes: {tok!r} is not a number") from None
        if v < 1 or v != int(v):
            raise ValueError(f"--sizes: {tok!r} is not a positive integer")
        out.append(int(v))
    if not out:
        raise ValueError("--sizes is empty")
    return sorted(set(out))


def resolve_families(text: str | None, default) -> list[str]:
    if text is None:
        return list(default)
    names = []
    for tok in _csv_list(text):
        if tok in ("all", "typical", "worst"):
            names += cases.names(None if tok == "all" else tok)
        elif tok in cases.names():
            names.append(tok)
        else:
            raise ValueError(f"--families: unknown family {tok!r}; choose from {cases.names()} "
                             f"or all/typical/worst")
    return list(dict.fromkeys(names))


def resolve_backends(text: str | None) -> list[str]:
    infos = registry.backends()
    if text is None:
        return [b.name for b in infos]  # unavailable ones are reported as skipped
    names = _csv_list(text)
    for n in names:
        registry.get_backend(n)  # ValueError naming the known ones
    return names


def resolve_algorithms(text: str | None) -> list[str]:
    if text is None:
        return [a.name for a in registry.algorithms()]
    names = _csv_list(text)
    for n in names:
        registry.get_algorithm(n)
    return names
