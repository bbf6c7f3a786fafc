"""The exactness battery for a candidate prox (library of ``wsrbench validate``).

:func:`battery` yields the cases (every family of wsrbench.bench.cases, typical and worst, sizes from 1
up to ``max_d``, several lam per case, float32 and float64), :func:`check_case` runs the property
checks of :mod:`wsrbench.bench.properties` on one of them and grades it (EXACT; EXACT TO ROUNDING
with structural
findings; WRONG, raising :class:`CheckFailure` with a diagnosis), :func:`run_battery` tallies the
grades by dtype x family x check, and :func:`time_candidate` /
:func:`time_builtins` time the candidate and the built-ins against np.argsort (the plumbing of
:mod:`wsrbench.bench.benchtools`). What the battery checks and why is in the command's help,
:mod:`wsrbench.cli.validate`; the printing is there too.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ..core.numerics import EPS32, EPS64, value_tolerance
from . import cases, properties
from .benchtools import best_time, floor_seconds
from .properties import CheckFailure

SMALL_SIZES = [1, 2, 3, 4, 5, 7, 8, 16, 17, 33, 64, 100, 257, 1000]
INVARIANCE_MAX_D = 10_000
# The battery's own wide rows (besides the families of wsrbench.bench.cases): see wide_row.
WIDE_FAMILIES = ("wide_outlier", "wide_binades")
OPTION_SIZES = [1, 2, 3, 5, 8, 17, 64, 257]  # l1 / rho cases (every family, both dtypes)
ROWS_MAX_D = 1000  # row batches: sizes up to this


@dataclass
class Case:
    family: str
    d: int
    dtype: str
    lam_name: str
    lam: float
    seed: int = 0
    l1: float = 0.0
    rho: float = 0.0
    rows: int = 0  # > 0: a batch of that many rows (row_batch), checked row by row

    def describe(self) -> str:
        what = (f"rows={self.rows} ({self.family}: one row per family)" if self.rows
                else f"family={self.family}")
        more = "".join(f" {k}={v!r}" for k, v in (("l1", self.l1), ("rho", self.rho)) if v)
        return (f"{what} d={self.d} dtype={self.dtype} seed={self.seed} "
                f"lam={self.lam!r} ({self.lam_name}){more}")

    def kwargs(self) -> dict:
        """The keyword arguments beyond (x, lam) this case passes: l1 and rho when non-zero."""
        return {k: v for k, v in (("l1", self.l1), ("rho", self.rho)) if v}

    def reproduce(self) -> str:
        if self.rows:
            x = (f"x = wsrbench.bench.validate.row_batch({self.d}, seed={self.seed}, "
                 f"dtype=np.{self.dtype})")
        elif self.family in WIDE_FAMILIES:
            x = (f"x = wsrbench.bench.validate.wide_row({self.family!r}, {self.d}, "
                 f"seed={self.seed}, dtype=np.{self.dtype})")
        else:
            x = (f"x, _ = wsrbench.bench.cases.make({self.family!r}, {self.d}, seed={self.seed}, "
                 f"dtype=np.{self.dtype})")
        more = "".join(f"; {k} = {v!r}" for k, v in self.kwargs().items())
        return f"{x}; lam = {self.lam!r}{more}"

    def call(self, name: str, rows: bool = False) -> str:
        """How the candidate is called on this case, as a line of Python."""
        kw = "".join(f", {k}={k}" for k in self.kwargs())
        if rows and not self.rows:
            return f"w = {name}(x[None, :], lam{kw})[0]"
        return f"w = {name}(x, lam{kw})"


# ---------------------------------------------------------------------------------------------
# Loading the candidate

def load_candidate(spec: str):
    """MODULE:FUNCTION -> the function. MODULE may be a dotted name or a path to a .py file."""
    module, sep, func = spec.rpartition(":")
    if not sep or not module or not func:
        raise ValueError(f"candidate must be MODULE:FUNCTION (e.g. mypkg.prox:fast_prox or "
                         f"path/to/file.py:fast_prox), got {spec!r}")
    if module.endswith(".py") or os.sep in module:
        if not os.path.isfile(module):
            raise FileNotFoundError(f"no such file {module!r}")
        name = "_wsrbench_candidate_" + os.path.splitext(os.path.basename(module))[0]
        spec_ = importlib.util.spec_from_file_location(name, module)
        mod = importlib.util.module_from_spec(spec_)
        sys.modules[name] = mod
        try:
            spec_.loader.exec_module(mod)
        except Exception as exc:  # the candidate's own error, reported as one line
            raise ValueError(f"could not load {module}: {type(exc).__name__}: {exc}") from None
    else:
        if os.getcwd() not in sys.path and "" not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            mod = importlib.import_module(module)
        except Exception as exc:
            hint = (" (is it installed, or run from the directory that holds it? a file can be "
                    "given as path/to/file.py:FUNCTION)" if isinstance(exc, ImportError) else "")
            raise ValueError(f"could not import module {module!r}: {type(exc).__name__}: "
                             f"{exc}{hint}") from None
    fn = getattr(mod, func, None)
    if fn is None or not callable(fn):
        raise ValueError(f"{module} has no callable {func!r}")
    return fn


def candidate_options(fn) -> dict:
    """Which optional parameters the candidate offers, read from its signature: {"l1": bool,
    "rho": bool}. A parameter counts when it can be passed by keyword (``def f(x, lam, l1=0.0,
    rho=0.0)``); ``**kwargs`` alone does not declare anything."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin without a signature: (x, lam) only
        return {"l1": False, "rho": False}
    ok = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {k: k in params and params[k].kind in ok for k in ("l1", "rho")}


def torch_adapter(fn):
    """``fn`` as a function of NumPy arrays for a candidate that takes and returns torch tensors
    (``--array torch``): x goes in as a CPU tensor sharing x's memory (so an in-place change is
    seen by the mutation check), and the answer must be a torch.Tensor of x's dtype."""
    try:
        import torch
    except ImportError:
        raise RuntimeError("--array torch needs PyTorch, which is not installed here (pip install "
                           "torch); without it validate can only pass NumPy arrays") from None

    @functools.wraps(fn)
    def call(x, lam, **kw):
        t = torch.from_numpy(x)
        out = fn(t, lam, **kw)
        if not isinstance(out, torch.Tensor):
            raise CheckFailure("type", f"returned {type(out).__name__} for a torch.Tensor input, "
                                       f"expected a torch.Tensor (--array torch)")
        if out.dtype != t.dtype:
            raise CheckFailure("dtype", f"returned {out.dtype} for a {t.dtype} tensor (float32 in "
                                        f"must give float32 out, float64 in float64 out)")
        return out.detach().cpu().numpy()
    return call


def rows_adapter(fn):
    """``fn`` on 1-D x for a candidate that takes (n, d) rows (``--rows``): x goes in as the
    one-row view x[None, :] (an in-place change is seen by the mutation check), the answer must
    have shape (1, d)."""
    @functools.wraps(fn)
    def call(x, lam, **kw):
        out = fn(x[None, :], lam, **kw)
        shape = getattr(out, "shape", None)
        if shape != (1,) + x.shape:
            raise CheckFailure("shape", f"returned shape {shape} for a (1, {x.shape[0]}) input, "
                                        f"expected the input's shape (--rows: rows in, rows out)")
        return out[0]
    return call


def adapted(fn, *, rows: bool = False, array: str = "numpy"):
    """The candidate as a function of one 1-D NumPy row (what the battery and the timing call):
    through :func:`torch_adapter` for ``array="torch"``, :func:`rows_adapter` for ``rows``."""
    if array not in ("numpy", "torch"):
        raise ValueError(f"array must be 'numpy' or 'torch', got {array!r}")
    call = torch_adapter(fn) if array == "torch" else fn
    return rows_adapter(call) if rows else call


def wide_row(family: str, d: int, *, seed: int = 0, dtype=np.float64) -> np.ndarray:
    """A row of the battery's own wide families, with exact ties.

    ``wide_outlier``: quarter-integers (many ties) and one entry 2/eps times larger, the row
    where a sum over it loses everything below the outlier's ulp. ``wide_binades``: values of
    both signs spread uniformly over 2^-e .. 2^e (e = 250 in float64, 60 in float32, so squares
    stay finite in float64), a quarter of them repeated."""
    dt = np.dtype(dtype)
    rng = np.random.default_rng([seed, int(d), cases._stable_hash(family)])
    if family == "wide_outlier":
        x = np.round(rng.normal(size=d) * 4.0) / 4.0
        if d:
            x[rng.integers(d)] = 2.0 / float(np.finfo(dt).eps) * (1.0 if seed % 2 == 0 else -1.0)
    elif family == "wide_binades":
        e = 250 if dt == np.float64 else 60
        x = np.ldexp(rng.uniform(1.0, 2.0, size=d), rng.integers(-e, e + 1, size=d))
        x *= rng.choice([-1.0, 1.0], size=d)
        if d >= 4:
            k = d // 4
            x[rng.choice(d, size=k, replace=False)] = x[rng.choice(d, size=k)]
    else:
        raise ValueError(f"unknown wide family {family!r}; choose one of {WIDE_FAMILIES}")
    return x.astype(dt)


def make_row(family: str, d: int, *, seed: int = 0, dtype=np.float64):
    """(x, the family's lam) for a family of wsrbench.bench.cases or of :data:`WIDE_FAMILIES`."""
    if family in WIDE_FAMILIES:
        x = wide_row(family, d, seed=seed, dtype=dtype)
        # the median magnitude: about half the row's gaps are below it
        return x, float(np.median(np.abs(x.astype(np.float64)))) if d else 0.0
    return cases.make(family, d, seed=seed, dtype=np.dtype(dtype))


def all_families() -> list:
    return cases.names() + list(WIDE_FAMILIES)


def row_batch(d: int, *, seed: int = 0, dtype=np.float64) -> np.ndarray:
    """(n, d) rows for a rows candidate: one row of every family (:func:`all_families`), row i
    scaled by 2^(4 (i mod 5) - 8) (exact) and shifted by i (before rounding to dtype), so that
    rows differ in scale and place and a candidate that mixes them cannot pass."""
    dt = np.dtype(dtype)
    out = []
    for i, fam in enumerate(all_families()):
        x, _ = make_row(fam, d, seed=seed, dtype=dt)
        if fam not in WIDE_FAMILIES:  # the wide rows span their dtype's range already
            x = (np.ldexp(x.astype(np.float64), 4 * (i % 5) - 8) + float(i)).astype(dt)
        out.append(x)
    return np.asarray(out, dtype=dt).reshape(len(out), d)


# ---------------------------------------------------------------------------------------------
# The battery

def _lams(family: str, x: np.ndarray, fam_lam: float, full: bool):
    lc = cases.collapse_lam(x)
    out = [("family", fam_lam)]
    if full:
        out += [("zero", 0.0), ("small", fam_lam * 1e-3), ("half collapse", 0.5 * lc),
                ("collapse", lc), ("beyond collapse", 4.0 * lc + 1.0)]
        if x.size and (np.unique(x).size < x.size or family in WIDE_FAMILIES):
            # lam = ulp(max|x|)/4: every shift |v_k| <= lam is below the resolution of the
            # largest entries, so only exact sums decide; equal inputs must stay bitwise equal
            top = np.max(np.abs(x))
            out += [("below resolution", float(np.spacing(top)) / 4.0),
                    ("subnormal", 5e-324)]
    else:
        out += [("half collapse", 0.5 * lc)]
    seen, uniq = set(), []
    for name, lam in out:
        if lam not in seen:
            seen.add(lam)
            uniq.append((name, float(lam)))
    return uniq


def battery(max_d: int = 100_000, *, families=None, dtypes=("float64", "float32")):
    """Yield (Case, x) over the whole battery, smallest and most revealing cases first."""
    families = families or all_families()
    large = []
    d = 4096
    while d <= max_d:
        large.append(d)
        d = 10_000 if d == 4096 else d * 10
    sizes = sorted(set([d for d in SMALL_SIZES if d <= max_d] + large + [max_d]))
    for d in sizes:
        full = d <= SMALL_SIZES[-1]
        for dtype in dtypes:
            for family in families:
                seeds = (0, 1) if d <= 64 else (0,)
                for seed in seeds:
                    x, fam_lam = make_row(family, d, seed=seed, dtype=dtype)
                    lams = _lams(family, x, fam_lam, full) if d <= 10_000 else [("family", fam_lam)]
                    for lam_name, lam in lams:
                        yield Case(family, d, dtype, lam_name, lam, seed), x


def option_battery(max_d: int, *, l1: bool, rho: bool, families=None,
                   dtypes=("float64", "float32")):
    """Yield (Case, x) with l1 > 0 and/or rho in (0, 1], for a candidate that takes them: the
    sizes :data:`OPTION_SIZES` up to ``max_d``, every family, the family's lam and half the
    collapsing lam (not the collapsing lam itself, where rho's answer jumps:
    docs/design.md#the-rho-discontinuity).
    l1 is a fraction of max|x| (0.1: a few entries zeroed; 0.6: most of them)."""
    families = families or all_families()
    sizes = [d for d in OPTION_SIZES if d <= max_d]
    for d in sizes:
        for dtype in dtypes:
            for family in families:
                x, fam_lam = make_row(family, d, seed=0, dtype=dtype)
                top = float(np.max(np.abs(x.astype(np.float64)))) if d else 1.0
                combos = []
                if l1:
                    combos += [(0.1 * top, 0.0), (0.6 * top, 0.0)]
                if rho:
                    combos += [(0.0, 0.5), (0.0, 1.0)]
                if l1 and rho:
                    combos += [(0.1 * top, 1.0)]
                lc = cases.collapse_lam(x)
                lams = [("family", fam_lam)] + ([("half collapse", 0.5 * lc)] if lc > 0 else [])
                for lam_name, lam in lams:
                    for a, r in combos:
                        yield Case(family, d, dtype, lam_name, float(lam), 0, float(a), r), x


def rows_battery(max_d: int, *, l1: bool = False, rho: bool = False,
                 dtypes=("float64", "float32")):
    """Yield (Case, X) of row batches (:func:`row_batch`) for a rows candidate, at every small
    size up to :data:`ROWS_MAX_D`: lam = 0, a small lam and one that collapses the unit-scale
    rows, plus l1 / rho when the candidate takes them."""
    sizes = [d for d in SMALL_SIZES if d <= min(max_d, ROWS_MAX_D)]
    for d in sizes:
        for dtype in dtypes:
            X = row_batch(d, seed=0, dtype=dtype)
            for lam_name, lam in (("zero", 0.0), ("small", 0.01), ("large", 4.0)):
                combos = [(0.0, 0.0)] + ([(0.05, 0.0)] if l1 else []) + ([(0.0, 0.5)] if rho else [])
                for a, r in combos:
                    yield Case("row_batch", d, dtype, lam_name, lam, 0, a, r, rows=X.shape[0]), X


def _tol(x, w, d):
    """(value tolerance, scale s = max|x| + max|w|, eps of x's dtype) of a case (as certify)."""
    eps_out = float(np.finfo(x.dtype).eps)
    s = float(np.max(np.abs(x)) + np.max(np.abs(w))) if d else 0.0
    return value_tolerance(d, x.dtype, s), s, eps_out


def _reference(x, lam, l1=0.0, rho=0.0):
    from ..api import prox
    return prox(x, lam, backend="numpy", algorithm="pava", l1=l1, rho=rho)


# The checks live in wsrbench.bench.properties (shared with the tests); the old private names stay.
_call = properties.call
_contract = properties.check_contract
_check_structure = properties.check_structure
_check_perturbation = properties.check_perturbation


def _check_invariances(fn, x, w, lam, tol, rng):
    properties.check_invariances(fn, x, w, lam, tol, rng,
                                 note="p a random permutation, seed 12345")


# ---------------------------------------------------------------------------------------------
# Graded verdicts (docs/design.md#graded-verdicts-in-wsrbench-validate)

EXACT, ROUNDING, WRONG = "EXACT", "EXACT TO ROUNDING", "WRONG"


@dataclass
class Finding:
    """A structural defect that is not a wrong answer: values right to rounding, but equal weights
    not bitwise equal (which weight sharing needs). ``ulps``: the largest spread, in units in the
    last place of the dtype at the value."""
    check: str  # "ties" (equal inputs) or "clusters" (one cluster of the prox)
    detail: str
    ulps: float


def ulp_spread(values: np.ndarray) -> float:
    """(max - min) of values that should be equal, in ulps of their dtype at the largest |value|."""
    hi, lo = float(np.max(values)), float(np.min(values))
    unit = float(np.spacing(values.dtype.type(max(abs(hi), abs(lo)))))
    return (hi - lo) / unit if unit > 0 else 0.0


def _tie_findings(x, w, tol, where: str = "") -> list[Finding]:
    """Equal inputs graded: bitwise equal outputs, nothing; within ``tol``, a Finding with the
    spread in ulps; beyond, the CheckFailure of properties.check_ties (a wrong answer)."""
    try:
        properties.check_ties(x, w)
    except CheckFailure:
        properties.check_ties(x, w, tol)  # values further apart than rounding: wrong
        order = np.argsort(x, kind="stable")
        xs, ws = x[order], w[order]
        starts = np.flatnonzero(np.concatenate([[True], xs[1:] != xs[:-1]]))
        spread, at = max((ulp_spread(g), i) for i, g in zip(starts, np.split(ws, starts[1:])))
        return [Finding("ties", f"{where}equal inputs (x = {float(xs[at])!r}) got values up to "
                                f"{spread:.0f} ulps apart", spread)]
    return []


def _structure_findings(x, w, ref, lam, tol) -> list[Finding]:
    """Structural checks graded: a split within the value tolerance is a Finding, beyond it a
    CheckFailure (a wrong answer)."""
    found = _tie_findings(x, w, tol)
    try:
        properties.check_clusters(x, w, ref, lam, tol)
    except CheckFailure as exc:
        order = np.argsort(x, kind="stable")
        rs, ws = ref[order], w[order]
        starts = np.flatnonzero(np.concatenate([[True], rs[1:] != rs[:-1]]))
        groups = np.split(ws.astype(np.float64), starts[1:])
        if max(float(np.max(g) - np.min(g)) for g in groups) > 2.0 * tol:
            raise exc
        spread = max(ulp_spread(g.astype(w.dtype)) for g in groups)
        found.append(Finding("clusters", f"a cluster of the prox holds values up to {spread:.0f} "
                                         f"ulps apart (rounding noise, not a split)", spread))
    return found


def _group_spread(x, w, ref) -> float:
    """The largest (max - min) of w over a group that must be one value: equal inputs, or one
    cluster of the reference."""
    w64 = np.asarray(w, dtype=np.float64)
    out = 0.0
    for keys in (np.asarray(x), np.asarray(ref)):
        _, inv = np.unique(keys, return_inverse=True)
        inv = inv.reshape(-1)
        hi = np.full(inv.max() + 1, -np.inf)
        lo = np.full(inv.max() + 1, np.inf)
        np.maximum.at(hi, inv, w64)
        np.minimum.at(lo, inv, w64)
        out = max(out, float(np.max(hi - lo)))
    return out


def structural_difference(x, w, ref, tol: float) -> str | None:
    """Where w's clusters differ from the canonical partition of the reference ``ref``, beyond
    rounding: a boundary (in sorted order) where w steps by more than 2 tol and ref does not is a
    split, the converse a merge. None when the partitions agree."""
    order = np.argsort(x, kind="stable")
    xs = np.asarray(x)[order]
    ws = np.asarray(w, dtype=np.float64)[order]
    rs = np.asarray(ref, dtype=np.float64)[order]
    w_step = np.abs(np.diff(ws)) > 2.0 * tol
    r_step = np.diff(rs) != 0
    split = np.flatnonzero(w_step & ~r_step)
    merge = np.flatnonzero(r_step & ~w_step & (np.diff(rs) > 2.0 * tol))
    if split.size:
        ties = split[xs[split] == xs[split + 1]]
        if ties.size:  # equal inputs on both sides: no rounding of any sum can explain it
            k = int(ties[0])
            return (f"structural: a run of equal inputs (x = {float(xs[k])!r}) is split across "
                    f"two clusters ({ties.size} such splits of equal inputs, {split.size} "
                    f"split boundaries in all)")
        k = int(split[0])
        return (f"structural: a cluster of the prox is split between x = {float(xs[k])!r} and "
                f"x = {float(xs[k + 1])!r} ({split.size} such boundaries)")
    if merge.size:
        k = int(merge[0])
        return (f"structural: two clusters of the prox are merged between x = {float(xs[k])!r} "
                f"and x = {float(xs[k + 1])!r} ({merge.size} such boundaries)")
    return None


def precision_class(err: float, d: int, scale: float) -> str | None:
    """The arithmetic whose rounding explains an error ``err`` at value scale ``scale``: the
    narrowest of float64, float32, bfloat16 whose tolerance (sums of d terms, then a rounding,
    numerics.value_tolerance with that epsilon for every operation) covers it; None if none does."""
    for name, e in (("float64", EPS64), ("float32", EPS32), ("float16/bfloat16", 2.0 ** -7)):
        if err <= scale * 4.0 * (d + 2) * e:
            return name
    return None


def diagnose(failure: CheckFailure, x, w, ref, lam) -> str:
    """One sentence on the typical cause of a wrong answer (precision class, translation, ...)."""
    if failure.check == "translation":
        return ("translation-dependent: the answer changes with a constant shift of x, as when "
                "sums are formed without centring x (docs/design.md#float64-inside-centring-at-the-median)")
    if failure.check in ("certificate", "reference") and w is not None:
        d = x.shape[0]
        w64 = np.asarray(w, dtype=np.float64)
        err = float(np.max(np.abs(w64 - ref))) if d else 0.0
        vscale = float(np.max(np.abs(x)) + np.max(np.abs(ref)))
        scale = vscale + lam
        tol = value_tolerance(d, x.dtype, vscale, lam)
        # structure first: a split or merged cluster is not a precision class
        where = structural_difference(x, w64, ref, tol)
        if where is not None:
            return where
        cls = precision_class(err, d, scale)
        if cls is not None and cls != "float64":
            return (f"precision lost (the clusters are right, their values are off): error "
                    f"{err:.2g} against a {x.dtype} tolerance of {tol:.2g}, consistent with "
                    f"{cls} arithmetic")
        if cls is None:
            return (f"not a rounding error: off by {err:.2g} at scale {scale:.2g} (a wrong "
                    f"cluster, shift or sum)")
        if cls == "float64" and lam > vscale:
            # float64 rounding at the scale of lam, far above x's: x + v summed as one
            return (f"precision lost to lam: error {err:.2g} is float64 rounding at the scale of "
                    f"lam = {lam:.3g}, but the values are at most {vscale:.3g} (the shifts "
                    f"were added to x before summing; sum x and the shifts apart: "
                    f"docs/design.md#closed-form-shift-sums)")
    if failure.check == "ties":
        return "equal inputs get different outputs beyond rounding (ties broken by position?)"
    return ""


def _check_option_case(fn, case: Case, x: np.ndarray) -> list[Finding]:
    """A case with l1 and/or rho: the contract, then the reference with the same l1 and rho
    (with rho alone, either reading of a merge point, properties.check_rho), then equal inputs
    bitwise equal. A candidate that ignores the parameter gets the answer without it, and the
    diagnosis says so."""
    w = properties.check_contract(functools.partial(fn, **case.kwargs()), x, case.lam)
    d = case.d
    if d == 0:
        return []
    ref = _reference(x, case.lam, case.l1, case.rho).astype(np.float64)
    tol, _, _ = _tol(x, ref, d)
    tol += value_tolerance(d, x.dtype, case.l1) if case.l1 else 0.0
    try:
        if case.rho and not case.l1:
            properties.check_rho(x, w, case.lam, case.rho, 2.0 * tol)
        else:
            if case.l1 and not case.rho:
                properties.check_certificate(x, w, case.lam, l1=case.l1)
            properties.check_reference(w, ref, 2.0 * tol)
        found = _tie_findings(x, w, 2.0 * tol)
    except CheckFailure as exc:
        w64 = np.asarray(w, dtype=np.float64)
        for name in case.kwargs():
            kw = {k: v for k, v in case.kwargs().items() if k != name}
            without = _reference(x, case.lam, **kw).astype(np.float64)
            if np.max(np.abs(w64 - without)) <= 2.0 * tol < np.max(np.abs(ref - without)):
                exc.diagnosis = (f"ignores {name}: the answer is the prox without {name} = "
                                 f"{case.kwargs()[name]!r}, though the candidate takes it")
                break
        else:
            exc.diagnosis = diagnose(exc, x, w, ref, case.lam) if not case.rho else ""
        raise
    return found


def _check_rows_case(fn, case: Case, X: np.ndarray) -> list[Finding]:
    """A batch of rows: the contract on the whole (n, d) array, then every row against the
    reference of that row alone (with the case's l1 and rho), and equal inputs within a row
    bitwise equal. A row that matches the reference of the rows solved together (or of another
    row) is diagnosed as mixing rows."""
    W = properties.check_contract(functools.partial(fn, **case.kwargs()), X, case.lam)
    found = []
    for i in range(X.shape[0]):
        x, w = X[i], W[i]
        ref = _reference(x, case.lam, case.l1, case.rho).astype(np.float64)
        tol, _, _ = _tol(x, ref, case.d)
        tol += value_tolerance(case.d, x.dtype, case.l1) if case.l1 else 0.0
        try:
            if case.rho and not case.l1:
                properties.check_rho(x, w, case.lam, case.rho, 2.0 * tol)
            else:
                properties.check_reference(w, ref, 2.0 * tol)
            found += _tie_findings(x, w, 2.0 * tol, where=f"row {i}: ")
        except CheckFailure as exc:
            exc.detail = f"row {i} (of {X.shape[0]}): {exc.detail}"
            exc.args = (f"{exc.check}: {exc.detail}",)
            together = _reference(X.reshape(-1), case.lam, case.l1, case.rho).reshape(X.shape)
            if np.allclose(W.astype(np.float64), together, rtol=0, atol=2.0 * tol):
                exc.diagnosis = ("rows mixed: the answer is the prox of all rows as one vector, "
                                 "not of each row on its own")
            else:
                exc.diagnosis = ("rows mixed or wrong: row " + str(i) + " is not the prox of "
                                 "that row on its own (the other rows pass or fail on their own)")
            raise
    return found


def check_case(fn, case: Case, x: np.ndarray, rng) -> list[Finding]:
    """Grade one case: raise :class:`CheckFailure` (WRONG) for the first failing check, else return
    the structural findings (empty: EXACT; non-empty: EXACT TO ROUNDING)."""
    if case.rows:
        return _check_rows_case(fn, case, x)
    if case.l1 or case.rho:
        return _check_option_case(fn, case, x)
    w = properties.check_contract(fn, x, case.lam)
    d = case.d
    if d == 0:
        return []
    ref = _reference(x, case.lam)
    tol, s, eps_out = _tol(x, ref, d)
    try:
        properties.check_certificate(x, w, case.lam)
        properties.check_reference(w, ref, 2.0 * tol)
        findings = _structure_findings(x, w, ref, case.lam, tol)
        if d <= INVARIANCE_MAX_D:
            _check_invariances(fn, x, w, case.lam, tol, rng)
            properties.check_perturbation(x, w, case.lam, rng, s, eps_out,
                                          _group_spread(x, w, ref) if findings else 0.0)
    except CheckFailure as exc:
        why = diagnose(exc, x, w, ref.astype(np.float64), case.lam)
        if why:
            exc.diagnosis = why
        raise
    return findings


@dataclass
class BatteryResult:
    """What the battery found. ``failures``: (Case, CheckFailure) of WRONG cases; ``findings``:
    (Case, Finding) of EXACT TO ROUNDING ones; ``tally``: (dtype, family, check) -> cases, with
    check "ok" for exact cases; ``stopped``: dtypes whose run stopped at their first WRONG."""
    passed: int
    failures: list
    seconds: float
    findings: list = field(default_factory=list)
    tally: dict = field(default_factory=dict)
    stopped: tuple = ()
    exercised: tuple = ()  # what the battery passed beyond (x, lam): "l1", "rho", "rows", "torch"

    def grade(self, dtype: str | None = None) -> str:
        """The worst grade over the cases (of one dtype if given)."""
        def mine(items):
            return [c for c, _ in items if dtype is None or c.dtype == dtype]
        if mine(self.failures):
            return WRONG
        return ROUNDING if mine(self.findings) else EXACT


def run_battery(fn, *, max_d=100_000, families=None, keep_going=False, progress=None,
                dtypes=("float64", "float32"), rows: bool = False, array: str = "numpy",
                options: dict | None = None) -> BatteryResult:
    """Run the battery. Without ``keep_going`` each dtype stops at its first WRONG case (so a
    float64 failure does not hide how float32 fares); with it every case runs and is tallied.

    What the candidate offers is exercised too (docs/design.md#graded-verdicts-in-wsrbench-validate):
    ``l1`` / ``rho`` keyword parameters in its signature (:func:`candidate_options`, or
    ``options`` to override) add :func:`option_battery`; ``rows=True`` declares that it takes
    (n, d) rows (every case goes in as one row, and :func:`rows_battery` adds batches checked row
    by row); ``array="torch"`` passes torch tensors and requires tensors of x's dtype back."""
    opts = candidate_options(fn) if options is None else {"l1": False, "rho": False, **options}
    one = adapted(fn, rows=rows, array=array)
    call = adapted(fn, array=array)  # the row batches go in whole
    cases_ = [battery(max_d, families=families, dtypes=dtypes)]
    if opts["l1"] or opts["rho"]:
        cases_.append(option_battery(max_d, l1=opts["l1"], rho=opts["rho"], families=families,
                                     dtypes=dtypes))
    if rows:
        cases_.append(rows_battery(max_d, l1=opts["l1"], rho=opts["rho"], dtypes=dtypes))
    t0 = time.perf_counter()
    res = BatteryResult(0, [], 0.0)
    res.exercised = tuple([k for k in ("l1", "rho") if opts[k]] + (["rows"] if rows else [])
                          + (["torch"] if array == "torch" else []))
    stopped: set = set()
    for case, x in (c for gen in cases_ for c in gen):
        if case.dtype in stopped:
            continue
        rng = np.random.default_rng(12345)
        if progress is not None:
            progress(case)
        try:
            found = check_case(call if case.rows else one, case, x, rng)
        except CheckFailure as f:
            res.failures.append((case, f))
            key = (case.dtype, case.family, f.check)
            if not keep_going:
                stopped.add(case.dtype)
        else:
            res.passed += 1
            res.findings += [(case, g) for g in found]
            key = (case.dtype, case.family, f"{found[0].check} (rounding)" if found else "ok")
        res.tally[key] = res.tally.get(key, 0) + 1
    res.seconds = time.perf_counter() - t0
    res.stopped = tuple(sorted(stopped))
    return res


# ---------------------------------------------------------------------------------------------
# Timing

def timing_sizes(max_d: int) -> list[int]:
    out, d = [], 1_000
    while d <= max_d:
        out.append(d)
        d *= 10
    return out or [max_d]


def time_candidate(fn, sizes, budget, *, family="gaussian", repeats=3):
    """[(d, seconds, argsort seconds)] for the candidate, increasing d while the budget lasts."""
    out, t_start = [], time.perf_counter()
    for d in sizes:
        x, lam = cases.make(family, d)
        t = best_time(lambda: fn(x, lam), repeats)
        floor, _ = floor_seconds(x, "cpu", repeats)
        out.append((d, t, floor))
        spent = time.perf_counter() - t_start
        if spent + 12 * t > budget:  # the next size costs about 10x this one (and repeats)
            break
    return out


def time_builtins(sizes, budget, *, family="gaussian", repeats=3):
    """{(backend, algorithm): [(d, seconds, floor)]} within the budget, under compare's caps."""
    from ..core import registry
    from .compare import make_plan, measure

    backends = [b.name for b in registry.backends() if b.available]
    algorithms = [a.name for a in registry.algorithms()]
    plan = make_plan(backends, algorithms, [family], sizes)
    out, t_start, floor_cache = {}, time.perf_counter(), {}
    for b, a, f, d in plan.cells:
        if time.perf_counter() - t_start > budget:
            break
        r = measure(b, a, f, d, repeats=repeats, floor_cache=floor_cache)
        if r.status == "ok":
            out.setdefault((b, a), []).append((d, r.seconds, r.floor_seconds))
    return out
