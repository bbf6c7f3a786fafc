r"""Optimality certificate: is w the prox of x? Decided from the KKT conditions, without re-solving.

In sorted coordinates (x ascending, y_k = x_(k) + v_k) the problem is
min_w 1/2 ||w - y||^2 + mu ||w||_1 subject to w_0 <= ... <= w_{d-1}. Its KKT conditions, grouped by
the clusters of w (maximal runs of equal value), read:

1. order:     w is non-decreasing along the sorted x (checked against the running maximum).
2. constant:  w is constant on each cluster (its value m).
3. balance:   for a cluster [a, b) with m != 0 the residuals r_k = y_k - m - mu sign(m) have
              every prefix sum >= 0 and total 0 (every suffix sum <= 0). A prefix with negative
              sum means the cluster should split there; a non-zero total means m is not the
              cluster's value.
              For the cluster at m = 0 (only with mu > 0) the subgradient of |.| is free in
              [-1, 1], so r_k may be anything in [y_k - mu, y_k + mu]: such a choice exists iff
              every prefix sum of y + mu is >= 0 and every suffix sum of y - mu is <= 0.
Strict increase between clusters is by construction. Because the fit is unique these conditions are
also sufficient: a w that meets them is the prox.

Tolerance. Let s = max|x| + max|w| + mu (bounds every value) and eps_out the machine epsilon of
the output dtype. Each value is trusted to tol = ``numerics.value_tolerance(d, eps_out, s, lam)``
(= s (2 eps_out + 4 (d+1) eps64) + lam 4 (d+1) eps64, derived in docs/design.md#numerics-and-range), and a
sum of n residuals to n tol. (The reference does better: its shift sums are closed forms.)
Every condition is reported in value units divided by s + lam: ``violation`` <= ``tolerance``
means ok. Prefix/suffix sums use the closed-form shift sums, so the certificate itself loses no
precision to a huge lam.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .checks import as_float_array, as_rows, check_scalar
from .numerics import range_exponents, shift_sum, value_tolerance


@dataclass
class Certificate:
    ok: bool
    violation: float  # worst violated condition, in value units / scale
    tolerance: float  # violation above this fails
    condition: str | None = None  # "order", "constant", "split", "balance" or None
    row: int | None = None
    index: int | None = None  # position in x (within the row) where the worst violation sits
    message: str = ""

    def __bool__(self) -> bool:
        return self.ok


CONDITIONS = ("constant", "split", "balance")


def _cluster_violations(xs, ws, starts, lam, mu, tol):
    """Per-element violations (value units) of the KKT conditions for the clustering ``starts``.

    Rows of the result: "constant" (|w - cluster value|), "split" (a partial prefix sum of the
    residuals is negative, or a partial suffix sum positive, as a mean over its terms) and
    "balance" (the same for the whole cluster: its value is not the mean of its shifted inputs).
    A cluster whose value is within tol of 0 (with mu > 0) has two readings, the zero cluster and
    a small nonzero value (both can be right to rounding, e.g. at subnormal scale where tol is the
    absolute floor); it is judged by the better one.
    """
    d = xs.shape[0]
    ends = np.append(starts[1:], d)
    sizes = ends - starts
    gid = np.repeat(np.arange(starts.shape[0]), sizes)
    near_zero = (np.abs(np.add.reduceat(ws, starts) / sizes) <= tol) & (mu > 0.0)
    as_zero = _violations_reading(xs, ws, starts, ends, sizes, gid, lam, mu, near_zero)
    if not near_zero.any():
        return as_zero
    as_value = _violations_reading(xs, ws, starts, ends, sizes, gid, lam, mu,
                                   np.zeros_like(near_zero))
    better = np.maximum.reduceat(as_value.max(axis=0), starts) < \
        np.maximum.reduceat(as_zero.max(axis=0), starts)
    return np.where(better[gid][None, :], as_value, as_zero)


def _violations_reading(xs, ws, starts, ends, sizes, gid, lam, mu, zero):
    """:func:`_cluster_violations` for one reading: ``zero`` marks the clusters taken as 0."""
    d = xs.shape[0]
    m = np.add.reduceat(ws, starts) / sizes
    constant = np.abs(ws - m[gid])
    m = np.where(zero, 0.0, m)
    pos = np.arange(d)
    # r_k without its shift; the shift enters through closed-form sums.
    base = xs - m[gid] - mu * np.sign(m[gid])
    hi = np.where(zero[gid], xs + mu, base)
    lo = np.where(zero[gid], xs - mu, base)
    # prefix sums within each cluster, over [a, k] for k = a..b-1 (>= 0 required)
    cs = np.cumsum(hi)
    before = np.where(starts > 0, cs[starts - 1], 0.0)
    prefix = cs - before[gid] + shift_sum(starts[gid], pos + 1, d, lam)
    prefix_v = -prefix / (pos - starts[gid] + 1)
    # suffix sums within each cluster, over [k, b) (<= 0 required)
    cs_rev = np.cumsum(lo[::-1])[::-1]
    after = np.where(ends < d, cs_rev[np.minimum(ends, d - 1)], 0.0)
    suffix = cs_rev - after[gid] + shift_sum(pos, ends[gid], d, lam)
    suffix_v = suffix / (ends[gid] - pos)
    # The whole-cluster sums test the cluster's value; the partial ones whether it should split.
    whole_pre = pos == ends[gid] - 1
    whole_suf = pos == starts[gid]
    split = np.maximum(np.where(whole_pre, -np.inf, prefix_v), np.where(whole_suf, -np.inf, suffix_v))
    balance = np.maximum(np.where(whole_pre, prefix_v, -np.inf), np.where(whole_suf, suffix_v, -np.inf))
    return np.stack([constant, split, balance])


def _row_certificate(x: np.ndarray, w: np.ndarray, lam: float, mu: float, eps_out: float):
    """(violation, tolerance, condition, index) for one row, violation relative to the scale.

    The clusters of w are read off w itself. Values more than tol apart are distinct clusters for
    sure; inside a chain of values closer than that, two readings are legitimate and the chain
    passes if either does: one cluster carrying rounding noise (an implementation that rounds
    element by element), or its runs of exactly equal values as separate clusters whose values
    happen to be closer than rounding (distinct true clusters with a near tie).
    """
    d = x.shape[0]
    if d == 0:
        return 0.0, 0.0, None, None
    order = np.argsort(x, kind="stable")
    xs = x[order].astype(np.float64)
    ws = w[order].astype(np.float64)
    # Near the top of the range the sums below would overflow: judge x 2^-k, w 2^-k with lam 2^-k
    # and mu 2^-k instead (the conditions are positively homogeneous;
    # docs/design.md#a-proven-safe-range-power-of-two-scaling-beyond-it).
    # Violation and tolerance are reported relative to the scale, so they are unchanged by it.
    k = int(range_exponents(max(np.max(np.abs(xs)), np.max(np.abs(ws))), lam, mu, d))
    if k:
        xs, ws = np.ldexp(xs, -k), np.ldexp(ws, -k)
        lam, mu = math.ldexp(lam, -k), math.ldexp(mu, -k)
    values = float(np.max(np.abs(xs)) + np.max(np.abs(ws)) + mu)
    scale = values + lam
    if scale == 0.0:
        return 0.0, 0.0, None, None
    tol = value_tolerance(d, eps_out, values, lam)

    # Order: w must not fall below anything before it (a running maximum, so a slow staircase of
    # sub-tolerance drops cannot add up).
    order_v = np.maximum.accumulate(ws) - ws

    gaps = np.diff(ws)
    chains = np.flatnonzero(np.concatenate([[True], gaps > tol]))
    runs = np.flatnonzero(np.concatenate([[True], gaps != 0.0]))
    as_one = _cluster_violations(xs, ws, chains, lam, mu, tol)
    as_runs = _cluster_violations(xs, ws, runs, lam, mu, tol)
    worst_one = np.maximum.reduceat(as_one.max(axis=0), chains)
    worst_runs = np.maximum.reduceat(as_runs.max(axis=0), chains)
    use_runs = np.repeat(worst_runs < worst_one, np.diff(np.append(chains, d)))
    chosen = np.where(use_runs, as_runs, as_one)

    table = np.vstack([order_v, chosen])
    names = ("order",) + CONDITIONS
    c, k = np.unravel_index(int(np.argmax(table)), table.shape)
    violation = float(table[c, k])
    if violation <= 0.0:
        return 0.0, tol / scale, None, None
    return violation / scale, tol / scale, names[c], int(order[k])


def certify(x, w, lam, *, l1=0.0) -> Certificate:
    """Check that ``w`` is prox_{lam R + l1 ||.||_1}(x) (row by row for 2-D input).

    Works from the optimality conditions alone in O(d log d) (one sort), so it validates any
    algorithm without trusting another. Returns a :class:`Certificate`; it is truthy when ok, and
    otherwise names the failed condition, the row and the index in x where it is worst.
    """
    lam = check_scalar(lam, "lam")
    mu = check_scalar(l1, "l1")
    xa = as_float_array(x, "x")
    wa = as_float_array(w, "w")
    if xa.shape != wa.shape:
        raise ValueError(f"w must have the shape of x: x has {xa.shape}, w has {wa.shape}")
    eps_out = float(max(np.finfo(xa.dtype).eps, np.finfo(wa.dtype).eps))
    X, W = as_rows(xa), as_rows(wa)
    best = (0.0, 0.0, None, None, None)
    tolerance = 0.0
    for i in range(X.shape[0]):
        v, t, cond, idx = _row_certificate(X[i], W[i], lam, mu, eps_out)
        tolerance = max(tolerance, t)
        if cond is not None and v - t > best[0] - best[1]:
            best = (v, t, cond, i, idx)
    v, t, cond, row, idx = best
    ok = cond is None or v <= t
    if ok:
        return Certificate(True, v, tolerance, None, None, None, "w satisfies the optimality conditions")
    where = f"index {idx}" if xa.ndim == 1 else f"row {row}, index {idx}"
    explain = {
        "order": "w is not ordered like x",
        "constant": "w is not constant on a cluster",
        "split": "a cluster should split (a prefix has a lower mean than the cluster)",
        "balance": "a cluster's value is not the mean of its shifted inputs",
    }[cond]
    return Certificate(False, v, t, cond, row if xa.ndim == 2 else None, idx,
                       f"{explain} at {where}: violation {v:.3e} > tolerance {t:.3e} (relative to scale)")
