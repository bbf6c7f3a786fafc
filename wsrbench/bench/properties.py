"""Property checks of a prox answer, shared by ``wsrbench validate`` and the test suite.

Like scikit-learn's ``check_estimator``, the same functions serve users (the candidate battery of
:mod:`wsrbench.bench.validate`) and the project's own tests (tests/test_prox.py and friends, once per
registered backend and algorithm). Each check is a plain function that returns nothing when the
property holds and raises :class:`CheckFailure` (an ``AssertionError``, so pytest reports it as a
failed assertion) naming the check and what was wrong, with indices and values.

Here prox(x) = argmin_w 1/2 ||w - x||^2 + lam R(w), R(w) = 1/(d-1) sum_{i<j} |w_i - w_j|
(docs/design.md). Tolerances are derived, never guessed: ``wsrbench.core.numerics.value_tolerance`` is
how far two correct answers may differ in value units (each side rounds once to its dtype after
float64 sums of at most d terms); callers pass the tolerance each check allows, so that a test and
the validator can each state the bound they derive.
"""
from __future__ import annotations

import numpy as np

from ..core.certificate import certify
from ..core.numerics import EPS64, shift_sum


class CheckFailure(AssertionError):
    """A property does not hold: ``check`` names it, ``detail`` says where and by how much."""

    def __init__(self, check: str, detail: str):
        super().__init__(f"{check}: {detail}")
        self.check, self.detail = check, detail
        self.diagnosis = ""  # the validator's reading of the typical cause, when it has one


def call(fn, x, lam, label="candidate"):
    """fn(x, lam); any exception becomes a CheckFailure("raised")."""
    try:
        return fn(x, lam)
    except CheckFailure:  # a contract check of an adapter around the candidate (validate)
        raise
    except Exception as exc:
        raise CheckFailure("raised", f"{label} raised {type(exc).__name__}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# The output contract

def check_output(x: np.ndarray, w) -> None:
    """w is a finite numpy.ndarray of x's shape and dtype (float32 in, float32 out)."""
    if not isinstance(w, np.ndarray):
        raise CheckFailure("type", f"returned {type(w).__name__}, expected a numpy.ndarray")
    if w.shape != x.shape:
        raise CheckFailure("shape", f"returned shape {w.shape}, expected {x.shape}")
    if w.dtype != x.dtype:
        raise CheckFailure("dtype", f"returned dtype {w.dtype} for {x.dtype} input (float32 in must "
                                    f"give float32 out, float64 in float64 out)")
    if w.size and not np.all(np.isfinite(w)):
        raise CheckFailure("finite", f"returned a non-finite value at index "
                                     f"{int(np.flatnonzero(~np.isfinite(w))[0])}")


def check_not_mutated(before: np.ndarray, after: np.ndarray) -> None:
    """The input is bitwise what it was before the call."""
    if not np.array_equal(after.view(np.uint8), before.view(np.uint8)):
        k = int(np.flatnonzero(after != before)[0]) if np.any(after != before) else 0
        raise CheckFailure("mutation", f"the candidate modified its input x (first change at "
                                       f"index {k})")


def check_contract(fn, x: np.ndarray, lam: float) -> np.ndarray:
    """Call fn on a copy of x; check the output contract and that x was not modified. Returns w."""
    x_in = x.copy()
    w = call(fn, x_in, lam)
    check_not_mutated(x, x_in)
    check_output(x, w)
    return w


# ---------------------------------------------------------------------------------------------
# Exactness

def check_certificate(x, w, lam: float, **kw) -> None:
    """wsrbench.certify accepts w as the prox of x (the optimality conditions, no re-solve)."""
    cert = certify(x, w, lam, **kw)
    if not cert.ok:
        raise CheckFailure("certificate", cert.message)


def check_reference(w, ref, tol: float, what: str = "the NumPy reference") -> None:
    """Every value of w within tol of ref (the reference answer)."""
    err = np.abs(np.asarray(w, dtype=np.float64) - np.asarray(ref, dtype=np.float64))
    if err.size and np.max(err) > tol:
        k = int(np.argmax(err))
        raise CheckFailure("reference", f"w[{k}] = {w[k]!r} but {what} gives {ref[k]!r} "
                                        f"(difference {err[k]:.3e} > tolerance {tol:.3e})")


def check_ties(x, w, tol: float = 0.0) -> None:
    """Equal inputs get equal outputs (bitwise with tol = 0, else within tol)."""
    d = x.shape[0]
    if d < 2:
        return
    order = np.argsort(x, kind="stable")
    xs, ws = x[order], np.asarray(w)[order]
    same_x = xs[1:] == xs[:-1]
    diff_w = (ws[1:] != ws[:-1]) if tol == 0.0 else \
        (np.abs(ws[1:].astype(np.float64) - ws[:-1]) > tol)
    bad = np.flatnonzero(same_x & diff_w)
    if bad.size:
        k = int(bad[0])
        i, j = int(order[k]), int(order[k + 1])
        raise CheckFailure("ties", f"x[{i}] == x[{j}] == {xs[k]!r} but w[{i}] = {ws[k]!r} != "
                                   f"w[{j}] = {ws[k + 1]!r} (equal inputs must get equal outputs)")


def check_clusters(x, w, ref, lam: float, tol: float) -> None:
    """A cluster of the reference is not split into different values of w unless the split point
    is a numerical tie of the fit: the prefix sum of the residuals y - m of the cluster vanishes
    there within (points so far) x 4 tol, with y the shifted sorted data and m the cluster value."""
    d = x.shape[0]
    if d < 2:
        return
    order = np.argsort(x, kind="stable")
    xs, ws, rs = x[order], w[order], ref[order]
    split = np.flatnonzero((rs[1:] == rs[:-1]) & (ws[1:] != ws[:-1]))
    if not split.size:
        return
    new = np.concatenate([[True], rs[1:] != rs[:-1]])
    starts = np.flatnonzero(new)
    gid = np.cumsum(new) - 1
    xs64 = xs.astype(np.float64)
    for k in split[:64]:  # a handful decide it; a broken algorithm fails at the first
        a = int(starts[gid[k]])
        end = int(np.append(starts[1:], d)[gid[k]])
        m = float(np.mean(xs64[a:end])) + float(shift_sum(a, end, d, lam)) / (end - a)
        pre = float(np.sum(xs64[a:k + 1]) - m * (k + 1 - a) + shift_sum(a, k + 1, d, lam))
        if abs(pre) > (k + 1 - a) * 4.0 * tol:
            i, j = int(order[k]), int(order[k + 1])
            raise CheckFailure("structure", f"w[{i}] = {ws[k]!r} and w[{j}] = {ws[k + 1]!r} differ "
                                            f"but belong to one cluster of the prox (its value is "
                                            f"{rs[k]!r}); the split is not a numerical tie of the fit")


def check_structure(x, w, ref, lam: float, tol: float) -> None:
    """:func:`check_ties` (bitwise) then :func:`check_clusters`."""
    check_ties(x, w)
    check_clusters(x, w, ref, lam, tol)


# ---------------------------------------------------------------------------------------------
# Invariances

def check_order(x, w, tol: float) -> None:
    """x_i < x_j implies w_i <= w_j + tol (the prox keeps the order of x)."""
    d = x.shape[0]
    if d < 2:
        return
    order = np.argsort(x, kind="stable")
    w64 = np.asarray(w, dtype=np.float64)
    drop = w64[order][:-1] - w64[order][1:]
    if np.max(drop) > tol:
        k = int(np.argmax(drop))
        raise CheckFailure("order", f"x[{order[k]}] <= x[{order[k + 1]}] but w[{order[k]}] = "
                                    f"{w[order[k]]!r} > w[{order[k + 1]}] = {w[order[k + 1]]!r}")


def check_mean(x, w, tol: float) -> None:
    """mean(w) = mean(x) within tol (the shifts sum to zero and clusters pool at their means)."""
    if x.shape[0] == 0:
        return
    dm = abs(float(np.mean(np.asarray(w, dtype=np.float64)))
             - float(np.mean(np.asarray(x, dtype=np.float64))))
    if dm > tol:
        raise CheckFailure("mean", f"mean(w) - mean(x) = {dm:.3e} exceeds the tolerance {tol:.3e}")


def check_permutation(fn, x, w, lam: float, tol: float, p, label="candidate",
                      note="p a random permutation") -> None:
    """prox(x[p]) = prox(x)[p] within tol for the permutation p."""
    wp = np.asarray(call(fn, x[p].copy(), lam, f"{label} (permuted input)"), dtype=np.float64)
    err = np.abs(wp - np.asarray(w, dtype=np.float64)[p])
    if err.size and np.max(err) > tol:
        k = int(np.argmax(err))
        raise CheckFailure("permutation", f"prox(x[p])[{k}] = {wp[k]!r} but prox(x)[p][{k}] = "
                                          f"{np.asarray(w, dtype=np.float64)[p][k]!r} "
                                          f"({note})")


def check_translation(fn, x, w, lam: float, c: float, tol: float, label="candidate") -> None:
    """prox(x + c) - c = prox(x) within tol, with x + c rounded to x's dtype."""
    xc = (np.asarray(x, dtype=np.float64) + c).astype(x.dtype)
    wc = np.asarray(call(fn, xc, lam, f"{label} (translated input)"), dtype=np.float64)
    err = np.abs((wc - c) - np.asarray(w, dtype=np.float64))
    if err.size and np.max(err) > tol:
        k = int(np.argmax(err))
        raise CheckFailure("translation", f"prox(x + c) - c differs from prox(x) by {err[k]:.3e} at "
                                          f"index {k} (c = {c!r}; tolerance {tol:.3e})")


def translation_tolerance(x, c: float, tol: float) -> float:
    """Bound for :func:`check_translation` from the value tolerance ``tol`` of prox(x).

    Both answers carry tol; x + c is rounded to the dtype and the prox is non-expansive in the max
    norm, so that rounding (half an ulp of |x| + c, times the two roundings of the data and of w)
    adds 4 eps (c + max|x|); the float64 sums of the translated data are at scale 3c.
    """
    d = x.shape[0]
    eps_out = float(np.finfo(x.dtype).eps)
    xmax = float(np.max(np.abs(np.asarray(x, dtype=np.float64))))
    return 2.0 * tol + 4.0 * eps_out * (c + xmax) + 4.0 * (d + 1) * EPS64 * 3.0 * c


def check_invariances(fn, x, w, lam: float, tol: float, rng,
                      note="p a random permutation") -> None:
    """Order, mean, permutation (a random p from rng, within 2 tol) and translation (by
    c = max|x| + 1) of the answer w = fn(x, lam), whose values are trusted to tol."""
    d = x.shape[0]
    if d == 0:
        return
    check_order(x, w, tol)
    check_mean(x, w, tol)
    check_permutation(fn, x, w, lam, 2.0 * tol, rng.permutation(d), note=note)
    c = float(np.max(np.abs(x.astype(np.float64)))) + 1.0
    check_translation(fn, x, w, lam, c, translation_tolerance(x, c, tol))


# ---------------------------------------------------------------------------------------------
# The objective

def objective(x, w, lam: float, l1: float = 0.0) -> float:
    """1/2 ||w - x||^2 + lam R(w) + l1 ||w||_1 in float64 (R from wsrbench.penalty)."""
    from ..api import penalty

    x64, w64 = np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64)
    f = 0.5 * float(np.sum((w64 - x64) ** 2)) + lam * float(penalty(w64))
    return f + l1 * float(np.sum(np.abs(w64))) if l1 else f


def check_perturbation(x, w, lam: float, rng, s: float, eps_out: float,
                       spread: float = 0.0) -> None:
    """F(w + t u) >= F(w) - ftol for random, coordinate and whole-cluster directions u
    (benchopt-style: no small move of the answer lowers the objective F).

    At the exact minimiser F(w* + t u) - F(w*) >= t^2 |u|^2 / 2 > 0 (strong convexity). The
    returned w is w* rounded to its dtype, each cluster moving as a whole (so its first-order
    change vanishes by the balance condition): F(w) - F(w*) <= d (eps_out s)^2 / 2. F is summed
    in float64 over d terms of size up to s^2 + lam s: 4 (d+1) eps_64 times that scale.
    ``s`` = max|x| + max|w|; ``eps_out`` the epsilon of w's dtype.

    ``spread``: the largest gap inside one cluster of w that should be one value (a tie spread at
    rounding level, which the caller has graded already). Moving part of such a cluster across
    the gap lowers F linearly until the parts meet, by at most spread (|w - x|_1 + 2 lam d): the
    kink of R that makes the move uphill at a merged cluster is not there yet.
    """
    d = x.shape[0]
    if d < 2 or s == 0.0:
        return
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    f0 = objective(x64, w64, lam)
    fscale = 0.5 * float(np.sum((w64 - x64) ** 2)) + lam * float(np.max(w64) - np.min(w64)) * d + s * s
    ftol = 0.5 * d * (eps_out * s) ** 2 + 8.0 * (d + 1) * EPS64 * fscale
    if spread > 0.0:
        ftol += spread * (float(np.sum(np.abs(w64 - x64))) + 2.0 * lam * d)
    dirs = [rng.standard_normal(d) for _ in range(3)]
    dirs += [np.eye(1, d, int(k)).ravel() for k in rng.choice(d, size=min(d, 3), replace=False)]
    vals, inv = np.unique(w64, return_inverse=True)
    for c in rng.choice(vals.size, size=min(vals.size, 3), replace=False):
        dirs.append((inv == c).astype(np.float64))
    moves = [(sign * t, u / np.max(np.abs(u))) for u in dirs
             for t in (1e-3 * s, 1e-6 * s) for sign in (1.0, -1.0)]
    # every moved w is one row of a batch: one penalty call (R per row) instead of one per move
    W = w64 + np.stack([step * u for step, u in moves])
    from ..api import penalty

    F = 0.5 * np.sum((W - x64) ** 2, axis=1) + lam * penalty(W)
    for (step, _), f1 in zip(moves, F.tolist()):
        if f1 < f0 - ftol:
            raise CheckFailure("perturbation", f"moving w by {step:.3g} along a test "
                                               f"direction lowers the objective from {f0!r} "
                                               f"to {f1!r} (beyond the evaluation error "
                                               f"{ftol:.3g})")


# ---------------------------------------------------------------------------------------------
# The rho variant at merge points

def rho_readings(x, lam: float, rho: float, tol: float):
    """The two legitimate rho answers where clusters are exactly about to merge: (merged, split).

    With rho > 0 a cluster [a, b) moves to c + (1 - rho)(m - c), c its x-centroid and m its prox
    value, so the answer jumps by O(|x|) when two clusters with equal m merge: rounding decides
    the clustering there (docs/design.md#the-rho-discontinuity). ``merged`` uses the canonical clusters of
    the reference; ``split`` splits each of them at every numerical tie of the fit (a proper
    prefix whose residual sum vanishes within its length x 4 tol). Both in x's order, float64.
    """
    from ..api import prox

    x = np.asarray(x)
    d = x.shape[0]
    if d == 0:
        return np.zeros(0), np.zeros(0)
    ref = prox(x, lam, backend="numpy", algorithm="pava").astype(np.float64)
    order = np.argsort(x, kind="stable")
    xs, rs = x[order].astype(np.float64), ref[order]
    canon = np.flatnonzero(np.concatenate([[True], rs[1:] != rs[:-1]]))
    ends = np.append(canon[1:], d)
    fine = []
    for a, b in zip(canon.tolist(), ends.tolist()):
        m = rs[a]
        fine.append(a)
        for k in range(a + 1, b):
            pre = float(np.sum(xs[a:k]) - m * (k - a) + shift_sum(a, k, d, lam))
            if abs(pre) <= (k - a) * 4.0 * tol:
                fine.append(k)
    out = []
    for starts in (canon, np.unique(np.asarray(fine, dtype=np.int64))):
        e = np.append(starts[1:], d)
        sizes = e - starts
        c = np.add.reduceat(xs, starts) / sizes
        moved = c + (1.0 - rho) * shift_sum(starts, e, d, lam) / sizes
        w = np.empty(d)
        w[order] = np.repeat(moved, sizes)
        out.append(w)
    return out[0], out[1]


def check_rho(x, w, lam: float, rho: float, tol: float) -> None:
    """w is a legitimate rho answer: on each canonical cluster it matches the merged or the split
    reading of :func:`rho_readings` within tol (both are right where rounding decides a merge)."""
    merged, split = rho_readings(x, lam, rho, tol)
    w64 = np.asarray(w, dtype=np.float64)
    ok = (np.abs(w64 - merged) <= tol) | (np.abs(w64 - split) <= tol)
    if not ok.all():
        k = int(np.flatnonzero(~ok)[0])
        raise CheckFailure("rho", f"w[{k}] = {w64[k]!r} matches neither reading: merged "
                                  f"{merged[k]!r}, split at the tie {split[k]!r} (tolerance {tol:.3e})")
