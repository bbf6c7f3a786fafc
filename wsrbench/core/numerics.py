r"""The numerics every backend shares: shift sums, block means, epsilons and tolerances.

One formula per idea (docs/design.md#numerics-and-range). The vectorised functions take NumPy arrays or
torch tensors; the ``*_scalar`` functions use only arithmetic and comparisons on scalars, so the
Numba backend compiles them with ``njit`` and the numba_cuda backend as inline device functions
(``backends/numba/numerics.py``, ``backends/numba_cuda/numerics.py``): every backend evaluates the
same operations in the same order.

Shift sums. With v_k = lam (d-1-2k)/(d-1) for rank k = 0..d-1,

    sum_{k=a}^{b-1} v_k = lam (b-a)(d-a-b) / (d-1),

evaluated as ``c * float(P)`` with c = lam / (d-1) (``shift_unit``, once per row: hot loops pay a
multiplication, not a division) and the integer product P = (b-a)(d-a-b) exact (|P| <= d^2/4 <
2^53 for every d that fits in memory). c P overflows only where the true sum does. The sum over
the whole row is exactly 0, so a collapsing lam of 1e30 still returns mean(x).

Tolerances. A careful solver rounds each value once to the output dtype (eps_out/2 relative)
after float64 sums of at most d terms ((d-1) eps64 relative, worst case); a check that re-sums
adds the same again. So a value of magnitude ``scale`` is trusted to

    value_tolerance = scale (2 eps_out + 4 (d+1) eps64) + lam 4 (d+1) eps64

(the lam term covers solvers that form y_k = x_k + v_k element by element). The certificate,
``wsrbench validate`` and the tests all use this one formula.
"""
from __future__ import annotations

import math
import types

import numpy as np

#: Machine epsilons (spacing of floats at 1.0).
EPS64 = float(np.finfo(np.float64).eps)
EPS32 = float(np.finfo(np.float32).eps)
#: Smallest positive subnormals (the spacing of each dtype's absolute grid near 0).
TINY64 = float(np.finfo(np.float64).smallest_subnormal)
TINY32 = float(np.finfo(np.float32).smallest_subnormal)


def eps(dtype) -> float:
    """Machine epsilon of a float dtype (NumPy dtype, torch dtype or their names)."""
    if type(dtype).__module__.split(".")[0] == "torch":
        dtype = str(dtype).replace("torch.", "")
    return float(np.finfo(np.dtype(dtype)).eps)


def value_tolerance(d: int, dtype, scale: float, lam: float = 0.0) -> float:
    """How far a correctly computed prox value of magnitude ``scale`` may be from the exact one.

    Parameters
    ----------
    d : int
        Length of the row (the number of terms a value's sums may hold).
    dtype : dtype or float
        The output dtype, or its machine epsilon directly.
    scale : float
        Bound on the magnitudes involved (e.g. max|x| + max|w| + l1).
    lam : float, optional
        Shift strength; adds the rounding of per-element shifts (module docstring).

    Returns
    -------
    float
        ``scale (2 eps_out + 4 (d+1) eps64) + lam 4 (d+1) eps64 + 2 tiny_out + 4 (d+1) tiny64``.

    Notes
    -----
    The relative terms vanish with the scale; below the normal range every operation rounds to
    an absolute grid instead. With tiny = the smallest positive subnormal (the spacing of that
    grid), each float64 addition, multiplication (c P) or division (by the block size) errs by at
    most tiny64 / 2; a block mean carries at most d of them from its x-sum and d from its shift sum
    (c errs by tiny64 / 2 and P / (b - a) = d - a - b <= d), the checker's own sums as many again,
    and the two roundings to the output dtype tiny_out / 2 each: the absolute floor
    ``2 tiny_out + 4 (d+1) tiny64`` (docs/design.md#the-certificates-absolute-floor). When the
    output dtype is given
    as its epsilon (a float), tiny_out is taken as float32's if eps_out is float32's, else float64's.
    """
    eps_out = float(dtype) if isinstance(dtype, float) else eps(dtype)
    tiny_out = TINY32 if eps_out >= EPS32 else TINY64
    return (scale * (2.0 * eps_out + 4.0 * (d + 1) * EPS64) + lam * 4.0 * (d + 1) * EPS64
            + 2.0 * tiny_out + 4.0 * (d + 1) * TINY64)


def shift_unit(lam, d):
    """c = lam / (d - 1), the factor of every shift sum of a row (0.0 when d <= 1)."""
    if d <= 1:
        return 0.0
    return lam / (d - 1)


def mul_rn_scalar(x, y):
    """x * y, rounded on its own: never fused with a following addition into an FMA.

    Python, NumPy and Numba on the CPU never contract; NVVM does by default, which would round
    xsum + c P once instead of twice and could flip a merge decision on a tie at rounding level
    (docs/design.md#no-fused-multiply-add-in-a-decision). The numba-cuda backend compiles this one
    as ``libdevice.dmul_rn``."""
    return x * y


def shift_sum_scalar(a, b, d, c):
    """sum of v_k over [a, b) for scalars: c (b-a)(d-a-b) with c = shift_unit(lam, d).

    Compiled as-is by Numba and numba-cuda (only arithmetic), so all backends share the order.
    """
    return mul_rn_scalar(c, float((b - a) * (d - a - b)))


def block_mean_scalar(xsum, a, b, d, c):
    """Mean of y = x + v over the block [a, b) given the sum of x over it; c = shift_unit(lam, d)."""
    return (xsum + shift_sum_scalar(a, b, d, c)) / float(b - a)


SCALARS = ("shift_unit", "mul_rn_scalar", "shift_sum_scalar", "block_mean_scalar")


def compile_functions(namespace: dict, names, decorator, primitives=None) -> dict:
    """``names`` (callees first) from ``namespace`` compiled by ``decorator``, each rebuilt with
    its calls to the others bound to their compiled versions (a compiled function cannot call a
    plain Python one); ``primitives`` maps a name to a compiled replacement of the same meaning.
    Returns {name: compiled function}."""
    out = {}
    env = dict(namespace)
    for name in names:
        if primitives and name in primitives:
            env[name] = out[name] = primitives[name]
            continue
        f = namespace[name]
        clone = types.FunctionType(f.__code__, env, f.__name__, f.__defaults__, f.__closure__)
        clone.__module__, clone.__qualname__, clone.__doc__ = f.__module__, f.__qualname__, f.__doc__
        env[name] = out[name] = decorator(clone)
    return out


def compile_scalars(decorator, primitives=None) -> types.SimpleNamespace:
    """The ``*_scalar`` functions compiled by ``decorator`` (``njit`` or a CUDA device jit), so
    the backends compile this module's source and never restate a formula
    (``compile_functions``). ``primitives`` maps a scalar's name to a compiled replacement with
    the same meaning (the device's unfusable multiply for ``mul_rn_scalar``). Returns a namespace
    without the ``_scalar`` suffix: ``compile_scalars(njit).shift_sum``.
    """
    out = compile_functions(globals(), SCALARS, decorator, primitives)
    return types.SimpleNamespace(**{k.removesuffix("_scalar"): v for k, v in out.items()})


def shift_sum(a, b, d: int, lam: float):
    """Vectorised :func:`shift_sum_scalar` over NumPy arrays or torch tensors (float64 result).

    a and b broadcast; the integer product is formed in int64 (exact), then multiplied by
    c = shift_unit(lam, d): the same float operations as the scalar version.
    """
    c = shift_unit(lam, d)
    if _is_torch(a) or _is_torch(b):
        import torch

        a_t = a if _is_torch(a) else torch.as_tensor(a, device=b.device)
        return c * ((b - a_t) * (d - a_t - b)).to(torch.float64)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    return c * ((b - a) * (d - a - b)).astype(np.float64)


def block_means(xsum, a, b, d: int, lam: float):
    """Mean of y over blocks [a, b) given the sums of x over them (vectorised, float64)."""
    return (xsum + shift_sum(a, b, d, lam)) / (b - a)


def _is_torch(x) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


# ---------------------------------------------------------------------------------------------
# The whole floating-point range (docs/design.md#the-whole-floating-point-range).

#: Largest finite float64 exponent: every internal quantity must stay below 2**1024.
_EXP_MAX = 1023


def safe_bound(d: int) -> float:
    r"""Magnitude up to which a row of length ``d`` is solved without scaling: 2^(1020 - 2 bits(d)).

    Proof that nothing overflows below it (float64, every backend). Let M >= max|x| and M >= lam,
    l1, and B = 2^(1020 - 2 b) with b = bit_length(d) (so d <= 2^b and 4 d^2 B <= 2^1022):

    - centring: |x_k - c| <= 2M;
    - block sums of centred x: at most d terms, <= 2 d M;
    - shift sums: c P with c = lam / (d-1) and |P| <= d^2/4 gives <= lam d^2 / (4 (d-1)) <= lam d;
    - y sums (x-sum plus shift sum) <= 3 d M, block means <= 3 M; differences of means <= 6 M;
      L1 and rho add at most 2 M more;

    each is below 4 d^2 M <= 2^1022 (rounding cannot carry a finite value past 2^1024 from
    below 2^1023). The bound depends only on d, so ordinary data never take the scaled path.
    """
    return math.ldexp(1.0, 1020 - 2 * max(int(d), 1).bit_length())


def range_exponents(row_max, lam: float, l1: float, d: int):
    """Per row, the power of two k with which the row is solved: x 2^-k, lam 2^-k, l1 2^-k.

    ``row_max`` holds max|x| of each row (float64). k = 0 (solved as it is) when the row, lam and l1
    are all at most :func:`safe_bound` (d); otherwise k is the exponent of M = max(max|x|, lam, l1)
    (M = f 2^k, 1/2 <= f < 1), so the scaled row has magnitudes below 1. Multiplying by 2^-k is
    exact except for entries that fall into the subnormal range, i.e. below M 2^-1021: their error
    is under M 2^-1074 in original units, far below the rounding of the answer (eps64 M).

    The prox is positively homogeneous (docs/design.md#a-proven-safe-range-power-of-two-scaling-beyond-it):
    prox_{lam R + l1|.|}(x) = s prox_{(lam/s) R + (l1/s)|.|}(x / s) for s > 0, and rho is
    unitless, so solving the scaled row and multiplying back by 2^k gives the same answer.
    """
    row_max = np.asarray(row_max, dtype=np.float64)
    m = np.maximum(row_max, max(lam, l1))
    _, k = np.frexp(m)
    return np.where(m > safe_bound(d), k, 0).astype(np.int64)


def add_exact_zero(t, s):
    """t + s, except that a zero s returns t itself: IEEE gives -0.0 + 0.0 = +0.0, and
    lam = l1 = 0 must return x bit for bit, -0.0 included (docs/design.md#ties)."""
    return np.where(s == 0.0, t, t + s)


def block_outputs(centroid, value, l1: float, rho: float, center: float = 0.0):
    """Output value per block from its x-centroid and prox value (both translated by -center):
    soft-threshold by l1, then the rho interpolation; blocks that L1 zeroes stay exactly zero.
    A block whose value equals its centroid (lam = 0) keeps it bit for bit, -0.0 included."""
    if np.any(center != 0.0):
        centroid, value = centroid + center, value + center
    if l1 > 0.0:
        value = soft_threshold(value, l1)
    if rho > 0.0:
        moved = centroid + (1.0 - rho) * (value - centroid)
        # value == centroid: moved is value mathematically, and value keeps the sign of a zero
        value = np.where((value == 0.0) & (l1 > 0.0), 0.0, np.where(value == centroid, value, moved))
    return value


def soft_threshold(p: np.ndarray, mu: float) -> np.ndarray:
    return np.sign(p) * np.maximum(np.abs(p) - mu, 0.0)


def tied_block_values(lo, hi, a, b, d: int, lam: float, l1: float, rho: float):
    """Per block [a, b) of a sorted row of length d with smallest value lo and largest hi: its
    value computed unscaled when the block holds equal values t (lo == hi, singletons included):
    t + shift_sum / size, then L1 and rho, as ``sorted_space.block_values`` does. Returns
    (value, keep): keep marks the tied blocks whose value is finite.

    A solve on x 2^-k read t as t 2^-k, which loses bits (or all of t) below 2^(k - 1074): a
    block of one small value next to a huge one must still get its exactly rounded value, and
    lam = l1 = 0 must return x (docs/design.md#ties). Shared by the scaled single-process path
    and the sharded prox (blocks there may cross ranks: a and b are global positions)."""
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    # lam / (d-1) * (d - a - b) = shift_sum / size: |.| <= lam, but for lam near the float max
    # the rounded product may pass the top; such a block is not finite and keeps its scaled value
    with np.errstate(over="ignore", invalid="ignore"):
        shift = shift_unit(lam, d) * (d - a - b).astype(np.float64) if d > 1 else np.zeros(lo.shape)
        value = block_outputs(lo, add_exact_zero(lo, shift), l1, rho)
    return value, (lo == hi) & np.isfinite(value)


def scale_back(ws, lo: float, hi: float, lam_s: float, k: int):
    """ws 2^k for prox values ws of a row solved as x 2^-k (float64), the row's scaled values in
    [lo, hi]. Every prox value lies in [min x - lam, max x + lam] (the hull of y = x + v; L1 only
    shrinks towards 0): clipping to it undoes a last-ulp rounding past max|x| that would otherwise
    overflow to inf when multiplied back near the top of the range."""
    ws = np.clip(np.asarray(ws, dtype=np.float64), lo - lam_s, hi + lam_s)
    with np.errstate(over="ignore"):  # a true value beyond the dtype's range is inf
        return np.ldexp(ws, int(k))


def _tie_blocks_unscaled(x, w, lab, lam: float, l1: float, rho: float) -> None:
    """Redo the value of every block of equal values on the unscaled row x (labels ``lab``,
    blocks numbered in increasing value): :func:`tied_block_values`. w (float64) is updated in
    place."""
    d = x.shape[0]
    nblk = int(lab.max(initial=-1)) + 1
    if nblk == 0:
        return
    xf = x.astype(np.float64)
    sizes = np.bincount(lab, minlength=nblk)
    lo = np.full(nblk, np.inf)
    hi = np.full(nblk, -np.inf)
    np.minimum.at(lo, lab, xf)
    np.maximum.at(hi, lab, xf)
    if not (lo == hi).any():
        return
    a = np.cumsum(sizes) - sizes  # first ranks
    value, keep = tied_block_values(lo, hi, a, a + sizes, d, lam, l1, rho)
    w[keep[lab]] = value[lab][keep[lab]]


def prox_rows_in_range(mod, X, lam: float, *, l1: float, rho: float, algorithm: str,
                       in_range: bool | None = None, labels: bool = False):
    """``mod.prox_rows`` made safe for every finite input by power-of-two scaling of the rows.

    ``mod`` is a loaded backend (``prox_rows``, ``from_numpy``, ``to_numpy``) and X its 2-D input.
    When the rows, lam and l1 are all within :func:`safe_bound` (``in_range``, from
    ``checks.as_prox_rows``; computed here when None) this is exactly ``mod.prox_rows``: ordinary
    data never pay for the scaling. Otherwise each group of rows with the same exponent k
    (:func:`range_exponents`) is solved in float64 as x 2^-k with lam 2^-k, l1 2^-k, and the
    answer multiplied by 2^k (exact), then rounded once to X's dtype. The rows travel through the
    host on this path (inputs near the float64 limits are rare; correctness comes first).
    """
    d = int(X.shape[1])
    bound = safe_bound(d)
    if in_range is None:
        from .arrays import to_host

        in_range = bool(np.all(np.abs(to_host(X)) <= bound))
    if in_range and lam <= bound and l1 <= bound:
        # labels only when asked: plugins written before labels existed take no such argument
        if labels:
            return mod.prox_rows(X, lam, l1=l1, rho=rho, algorithm=algorithm, labels=True)
        return mod.prox_rows(X, lam, l1=l1, rho=rho, algorithm=algorithm)
    # imported here, off the hot path above (a small torch call feels every microsecond)
    from .arrays import like, match_kind, to_host
    from .contract import RowsResult

    host = to_host(X)
    n = host.shape[0]
    row_max = np.abs(host).max(axis=1, initial=0.0).astype(np.float64)
    k = range_exponents(row_max, lam, l1, d)
    W = np.empty(host.shape, dtype=host.dtype)
    rounds = np.zeros(n, dtype=np.int64)
    clusters = np.zeros(n, dtype=np.int64)
    stats: list = [{} for _ in range(n)]
    depth = None
    counters: dict = {}
    lab = np.zeros(host.shape, dtype=np.int64) if labels else None
    for kk in np.unique(k):
        rows = np.flatnonzero(k == kk)
        part = np.ldexp(host[rows].astype(np.float64), -int(kk))
        # labels always: blocks of equal values are recomputed unscaled (below)
        res = mod.prox_rows(mod.from_numpy(part), math.ldexp(lam, -int(kk)),
                            l1=math.ldexp(l1, -int(kk)), rho=rho, algorithm=algorithm,
                            labels=True)
        res_lab = np.asarray(to_host(res.labels))
        if labels:
            lab[rows] = res_lab
        ws = scale_back(mod.to_numpy(res.W), part.min(axis=1, initial=0.0)[:, None],
                        part.max(axis=1, initial=0.0)[:, None], math.ldexp(lam, -int(kk)), kk)
        for i, r in enumerate(rows):
            _tie_blocks_unscaled(host[r], ws[i], res_lab[i], lam, l1, rho)
        W[rows] = ws
        rounds[rows], clusters[rows] = res.rounds, res.clusters
        for r, st in zip(rows, res.stats):
            stats[r] = st
        if res.depth is not None:
            depth = np.zeros(n, dtype=np.int64) if depth is None else depth
            depth[rows] = res.depth
        for key, val in res.counters.items():
            counters[key] = counters.get(key, 0) + val
    if lam == 0.0:
        # The fit is x itself; the scaled solve merged values that 2^-k rounded together.
        xf = host.astype(np.float64)
        W[...] = block_outputs(xf, xf, l1, rho)
        for r in range(n):
            ranks = np.unique(host[r], return_inverse=True)[1].reshape(-1)
            clusters[r] = int(ranks.max(initial=-1)) + 1
            if labels:
                lab[r] = ranks
    if labels:
        lab = match_kind(like(lab, X), X)
    return RowsResult(match_kind(like(W, X), X), rounds, clusters, stats, depth, counters, lab)


# ---------------------------------------------------------------------------------------------
# Soft sharing far from every component: the limits every backend's gradient takes there

def _soft_sharing_slopes(w, mu, sigma):
    """g_ij = (w_i - mu_j) / sigma_j^2, with w - mu formed on w 2^-k, mu 2^-k where it overflows
    (2^(k-1) <= max(|w_i|, max|mu|) < 2^k): inf only where the true slope is beyond the range."""
    with np.errstate(over="ignore", invalid="ignore"):
        diff = w[:, None] - mu[None, :]
        g = diff / sigma[None, :] / sigma[None, :]
        _, k = np.frexp(np.maximum(np.abs(w), np.abs(mu).max()))
        kk = k[:, None]
        scaled = np.ldexp((np.ldexp(w, -k)[:, None] - np.ldexp(mu[None, :], -kk))
                          / sigma[None, :] / sigma[None, :], kk)
    return np.where(np.isfinite(diff), g, scaled)


def far_rows(w, pi, mu, sigma):
    """Soft sharing: the responsibilities and density ratios of weights where every log-joint term is -inf
    ((w - mu_j)^2 / sigma_j^2 overflows for every j): their limits, from the exact ordering of
    the terms. There log pi_j - (w - mu_j)^2 / (2 sigma_j^2) - log sigma_j is dominated by the
    quadratic, so all responsibility goes to the components with the smallest |w - mu_j| / sigma_j
    (compared as log|w - mu_j| - log sigma_j, formed without overflow) among those with pi_j > 0,
    split among them in proportion to pi_j / sigma_j (their quadratics are equal).

    Returns (r, ratio, g): r_ij, N_ij / p(w_i) (inf for a pi_j = 0 component closer than every
    other) and the slopes (w_i - mu_j) / sigma_j^2 (docs/design.md#the-other-operators-over-the-whole-range).
    """
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        _, k = np.frexp(np.maximum(np.abs(w), np.abs(mu).max()))
        diff = w[:, None] - mu[None, :]
        near = np.abs(np.ldexp(w, -k)[:, None] - np.ldexp(mu[None, :], -k[:, None]))
        log_dist = np.where(np.isfinite(diff), np.log(np.abs(diff)),
                            np.log(near) + k[:, None] * np.log(2.0)) - np.log(sigma)[None, :]
        live = pi > 0
        best = np.where(live[None, :], log_dist, np.inf).min(axis=1, keepdims=True)
        top = log_dist == best
        c = np.log(pi) - np.log(sigma)  # -inf where pi_j = 0
        c_top = np.where(top & live[None, :], c[None, :], -np.inf)
        cm = c_top.max(axis=1, keepdims=True)
        norm = cm + np.log(np.exp(c_top - cm).sum(axis=1, keepdims=True))
        r = np.exp(c_top - norm)
        ratio = np.where(top, np.exp(-np.log(sigma)[None, :] - norm),
                         np.where(log_dist < best, np.inf, 0.0))
    return r, ratio, _soft_sharing_slopes(w, mu, sigma)


def far_grad(w, pi, mu, sigma):
    """Gradient parts of far weights (rows of :func:`far_rows`): (d/dw per row, then d/dpi,
    d/dmu, d/dsigma summed over the rows); a component with r_ij = 0 adds nothing (not 0 * inf).
    Every soft-sharing backend hands such rows (rare: |w - mu_j| > 1e154 sigma_j for every j) here."""
    r, ratio, g = far_rows(w, pi, mu, sigma)
    with np.errstate(invalid="ignore", over="ignore"):
        dz = (w[:, None] - mu[None, :]) / sigma[None, :]
        rdz = np.where(r > 0, r * g, 0.0)
        rsig = np.where(r > 0, r * (1.0 - dz * dz), 0.0)
        return rdz.sum(axis=1), -ratio.sum(axis=0), -rdz.sum(axis=0), rsig.sum(axis=0) / sigma
