"""Candidate prox functions for the validate tests: one correct, several deliberately broken.

Each broken one is a realistic mistake: validate must reject every one of them.
"""
from __future__ import annotations

import numpy as np

import wsrbench


def correct(x, lam):
    """The reference itself (exact by construction)."""
    return wsrbench.prox(x, lam, backend="numpy", algorithm="pava")


def _pava(y):
    """Plain unweighted isotonic (non-decreasing) fit of y by pool-adjacent-violators, float64."""
    sums, sizes = [], []
    for v in y.tolist():
        sums.append(v)
        sizes.append(1)
        while len(sums) > 1 and sums[-2] / sizes[-2] >= sums[-1] / sizes[-1]:
            s, n = sums.pop(), sizes.pop()
            sums[-1] += s
            sizes[-1] += n
    return np.repeat(np.array(sums) / np.array(sizes), sizes)


def _sorted_prox(x, lam, sign=1.0):
    d = x.shape[0]
    if d <= 1:
        return x.copy()
    order = np.argsort(x, kind="stable")
    k = np.arange(d)
    y = x[order].astype(np.float64) + sign * lam * (d - 1 - 2 * k) / (d - 1)
    w = np.empty(d)
    w[order] = _pava(y)
    return w.astype(x.dtype)


def wrong_shift_sign(x, lam):
    """Isotonic fit of x - v instead of x + v."""
    return _sorted_prox(x, lam, sign=-1.0)


def one_round_early(x, lam):
    """Imminent collisions, but the loop stops one round before no violator is left."""
    d = x.shape[0]
    if d <= 1:
        return x.copy()
    order = np.argsort(x, kind="stable")
    xs = x[order].astype(np.float64)
    k = np.arange(d)
    y = xs + lam * (d - 1 - 2 * k) / (d - 1)
    starts, sums = np.arange(d), y.copy()
    history = [(starts, sums)]
    while starts.size > 1:
        sizes = np.diff(np.append(starts, d))
        means = sums / sizes
        viol = means[:-1] >= means[1:]
        if not viol.any():
            break
        keep = np.flatnonzero(np.concatenate(([True], ~viol)))
        sums, starts = np.add.reduceat(sums, keep), starts[keep]
        history.append((starts, sums))
    starts, sums = history[-2] if len(history) > 1 else history[-1]  # the bug
    sizes = np.diff(np.append(starts, d))
    w = np.empty(d)
    w[order] = np.repeat(sums / sizes, sizes)
    return w.astype(x.dtype)


def ignores_ties(x, lam):
    """Works on the distinct values only (np.unique) as if they were the whole vector."""
    u, inv = np.unique(x, return_inverse=True)
    return correct(u, lam)[inv].astype(x.dtype)


def float64_only(x, lam):
    """Accumulates in the input dtype: right for float64, wrong for float32."""
    if x.dtype == np.float64:
        return correct(x, lam)
    d = x.shape[0]
    if d <= 1:
        return x.copy()
    order = np.argsort(x, kind="stable")
    k = np.arange(d, dtype=np.float32)
    y = x[order] + np.float32(lam) * (np.float32(d - 1) - 2 * k) / np.float32(d - 1)
    sums, sizes = [], []
    for v in y:  # float32 scalars throughout
        sums.append(np.float32(v))
        sizes.append(1)
        while len(sums) > 1 and sums[-2] / np.float32(sizes[-2]) >= sums[-1] / np.float32(sizes[-1]):
            s, n = sums.pop(), sizes.pop()
            sums[-1] = np.float32(sums[-1] + s)
            sizes[-1] += n
    w = np.empty(d, dtype=np.float32)
    w[order] = np.repeat(np.array(sums, dtype=np.float32) / np.array(sizes, dtype=np.float32), sizes)
    return w


def off_by_tiny(x, lam):
    """Exact except one entry, off by 1e-10 of the scale."""
    w = correct(x, lam).copy()
    if w.size:
        i = w.size // 2
        w[i] += 1e-10 * (1.0 + abs(float(w[i])))
    return w


def mutates_input(x, lam):
    """Centres x in place (and never restores it)."""
    c = np.median(x) if x.size else 0.0
    x -= c
    return (correct(x, lam) + c).astype(x.dtype)


def wrong_dtype(x, lam):
    """Always returns float64."""
    return correct(x, lam).astype(np.float64)


def scipy_isotonic(x, lam):
    """SciPy's isotonic regression of the sorted, shifted x, un-sorted: right to rounding, but its
    pooled means are not bitwise equal across a run of equal inputs (EXACT TO ROUNDING)."""
    from scipy.optimize import isotonic_regression

    d = x.shape[0]
    if d <= 1:
        return x.copy()
    order = np.argsort(x, kind="stable")
    v = lam * (d - 1 - 2 * np.arange(d)) / (d - 1)
    w = np.empty(d)
    w[order] = isotonic_regression(x[order].astype(np.float64) + v).x
    return w.astype(x.dtype)


def float32_shifts(x, lam):
    """Shifts formed in float32 even for float64 input (as torch code does with a float32 default
    dtype): float64 answers carry float32-sized errors."""
    d = x.shape[0]
    if d <= 1:
        return x.copy()
    order = np.argsort(x, kind="stable")
    v = (np.float32(lam) * (d - 1 - 2 * np.arange(d, dtype=np.float32)) / np.float32(d - 1))
    w = np.empty(d)
    w[order] = _pava(x[order].astype(np.float64) + v.astype(np.float64))
    return w.astype(x.dtype)


def tie_spread_1ulp(x, lam):
    """The right answer with one copy of every repeated input moved by 1 ulp: a rounding-level
    tie spread (EXACT TO ROUNDING, in float32 as in float64)."""
    w = correct(x, lam)
    _, first, counts = np.unique(x, return_index=True, return_counts=True)
    for i in first[counts > 1]:
        w[i] = np.nextafter(w[i], np.inf)
    return w


def splits_one_cluster(x, lam):
    """float64 arithmetic, but the largest cluster is cut in two (its left half forced to stop
    at the cut): a structural error at any precision."""
    w = correct(x, lam).astype(np.float64)
    vals, inv, counts = np.unique(w, return_inverse=True, return_counts=True)
    big = int(np.argmax(counts))
    if counts[big] < 4:
        return w.astype(x.dtype)
    members = np.flatnonzero(inv.reshape(-1) == big)
    part = members[np.argsort(x[members], kind="stable")][: counts[big] // 2]
    w[part] = np.mean(x[part].astype(np.float64))  # the left half's own centroid
    return w.astype(x.dtype)


def with_l1_rho(x, lam, l1=0.0, rho=0.0):
    """The reference with L1 and rho: validate reads l1 and rho in the signature and tests them."""
    return wsrbench.prox(x, lam, backend="numpy", algorithm="pava", l1=l1, rho=rho)


def ignores_l1_rho(x, lam, l1=0.0, rho=0.0):
    """Takes l1 and rho but ignores them: right for (x, lam) alone, WRONG once they are tested."""
    return correct(x, lam)


def rows_correct(X, lam):
    """(n, d) rows in, each row's prox out (validate --rows)."""
    return wsrbench.prox(X, lam, backend="numpy", algorithm="pava")


def rows_mixed(X, lam):
    """Solves all rows as one vector: right for a single row, WRONG for a batch."""
    return wsrbench.prox(X.reshape(-1), lam, backend="numpy", algorithm="pava").reshape(X.shape)


def torch_correct(x, lam):
    """Tensors in, tensors out (validate --array torch)."""
    return wsrbench.prox(x, lam, backend="torch")


def torch_returns_numpy(x, lam):
    """A tensor in, a NumPy array out: breaks the --array torch contract."""
    return correct(x.numpy(), lam)


def splits_tie_runs(x, lam):
    """Breaks ties by position: the last copy of every run of equal inputs gets the value of the
    neighbouring cluster, so the run is split across two clusters (a structural error)."""
    w = correct(x, lam)
    order = np.argsort(x, kind="stable")
    xs, ws = x[order], w[order]
    vals = np.unique(ws)
    for k in np.flatnonzero(xs[1:] == xs[:-1]) + 1:
        if k + 1 == xs.size or xs[k + 1] != xs[k]:  # the run's last copy
            i = int(np.searchsorted(vals, ws[k]))
            if vals.size > 1:
                ws[k] = vals[i + 1] if i + 1 < vals.size else vals[i - 1]
    out = np.empty_like(w)
    out[order] = ws
    return out
