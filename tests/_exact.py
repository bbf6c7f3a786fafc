"""Exact rational answers and magnitudes over the whole floating-point range (docs/design.md#the-whole-floating-point-range).

``exact_prox`` solves the prox in rational arithmetic (``fractions.Fraction``): the sorted, shifted
vector's isotonic fit by pool-adjacent-violators with exact block means, then the exact
soft-threshold. ``round_to`` rounds a Fraction correctly to float32 or float64 (subnormals
included), so a test can hand the certificate an answer that is exactly right up to the output
dtype's own rounding. ``magnitudes`` draws scales over every exponent of a dtype, from the smallest
subnormal to the largest finite value.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
from hypothesis import strategies as st


def exact_prox(x, lam, l1=0.0) -> list[Fraction]:
    """prox_{lam R + l1 |.|_1}(x) exactly, in x's original order."""
    xs = [Fraction(float(v)) for v in np.asarray(x).reshape(-1)]
    d = len(xs)
    if d == 0:
        return []
    lam, l1 = Fraction(float(lam)), Fraction(float(l1))
    order = sorted(range(d), key=lambda i: xs[i])  # stable: ties keep their index order
    y = [xs[i] + (lam * (d - 1 - 2 * k) / (d - 1) if d > 1 else 0) for k, i in enumerate(order)]
    blocks: list[list] = []  # [sum, count]
    for v in y:
        blocks.append([v, 1])
        while len(blocks) > 1 and blocks[-2][0] * blocks[-1][1] >= blocks[-1][0] * blocks[-2][1]:
            s, n = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += n
    fit = []
    for s, n in blocks:
        m = s / n
        if l1:
            m = max(abs(m) - l1, Fraction(0)) * (1 if m > 0 else -1)
        fit.extend([m] * n)
    out = [Fraction(0)] * d
    for k, i in enumerate(order):
        out[i] = fit[k]
    return out


def round_to(value: Fraction, dtype) -> float:
    """The float of ``dtype`` nearest to ``value`` (ties to even); +-inf beyond the range."""
    f64 = float(value) if abs(value) < Fraction(2) ** 1024 else math.copysign(math.inf, value)
    if np.dtype(dtype) == np.float64:
        return f64
    with np.errstate(over="ignore"):
        c = np.float32(f64)
    if not np.isfinite(c):
        return float(c)
    best = None
    with np.errstate(over="ignore"):  # the neighbour of the largest float32 is inf: skipped
        cands = (np.nextafter(c, np.float32(-np.inf)), c, np.nextafter(c, np.float32(np.inf)))
    for cand in cands:
        if not np.isfinite(cand):
            continue
        err = abs(Fraction(float(cand)) - value)
        if best is None or err < best[0] or (err == best[0] and int(cand.view(np.int32)) % 2 == 0):
            best = (err, cand)
    return float(best[1])


def rounded_exact(x, lam, l1=0.0) -> np.ndarray:
    """:func:`exact_prox` rounded correctly to x's dtype."""
    x = np.asarray(x)
    return np.array([round_to(v, x.dtype) for v in exact_prox(x, lam, l1)],
                    dtype=x.dtype).reshape(x.shape)


def exponent_range(dtype) -> tuple[int, int]:
    """(emin, emax): 2^emin is the smallest subnormal of dtype, 2^emax <= its largest finite."""
    fi = np.finfo(dtype)
    return fi.minexp - fi.nmant, fi.maxexp - 1


@st.composite
def magnitudes(draw, dtype):
    """A positive scale 2^e m of dtype, e uniform over every exponent (subnormal to near-max),
    with the extreme ends drawn often: the smallest subnormals and the largest finite values."""
    lo, hi = exponent_range(dtype)
    fmax = float(np.finfo(dtype).max)
    kind = draw(st.sampled_from(["any", "any", "any", "tiny", "huge"]))
    if kind == "tiny":
        return float(np.finfo(dtype).smallest_subnormal) * draw(st.integers(1, 64))
    if kind == "huge":
        return fmax * draw(st.sampled_from([1.0, 0.75, 0.5, 0.25, 2.0 ** -8]))
    e = draw(st.integers(lo, hi))
    m = draw(st.floats(0.5, 1.0, exclude_max=True))
    return min(math.ldexp(m, e), fmax)


@st.composite
def full_range_problems(draw, max_d=24, dtypes=(np.float64, np.float32)):
    """(x, lam, l1): x of any dtype with magnitudes anywhere in its range, lam and l1 anywhere in
    float64's (a collapsing lam of 1e300 on float32 data included), ties often."""
    dtype = draw(st.sampled_from(dtypes))
    d = draw(st.integers(0, max_d))
    mag = draw(magnitudes(dtype))
    if draw(st.booleans()):
        pool = draw(st.lists(st.integers(-4, 4), min_size=1, max_size=4))
        base = np.array(draw(st.lists(st.sampled_from(pool), min_size=d, max_size=d)), float) / 4
    else:
        base = np.array(draw(st.lists(st.floats(-1.0, 1.0, allow_nan=False), min_size=d,
                                      max_size=d)), dtype=float)
    with np.errstate(under="ignore"):
        x = (base * mag).astype(dtype)
    how = draw(st.sampled_from(["zero", "relative", "relative", "anywhere"]))
    if how == "zero":
        lam = 0.0
    elif how == "relative":
        lam = min(mag * draw(st.sampled_from([1e-6, 1e-2, 0.3, 3.0, 1e6])), float(np.finfo(np.float64).max))
    else:
        lam = draw(magnitudes(np.float64))
    l1 = 0.0 if draw(st.booleans()) else min(float(np.max(np.abs(x), initial=0.0)) * draw(
        st.sampled_from([0.1, 0.5, 2.0])), float(np.finfo(np.float64).max))
    return x, lam, l1


@st.composite
def tie_problems(draw, max_d=24, dtypes=(np.float64, np.float32)):
    """(x, lam, l1, rho) made to split ties and to merge distinct values: rows drawn from a few
    values (long runs of exact ties, some values 1 ulp apart), rows with one outlier about 1/eps
    and beyond next to small values (wide rows), and lam in {0, the smallest subnormal, below the
    resolution of x, ordinary}."""
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    d = draw(st.integers(1, max_d))
    scale = draw(magnitudes(dtype)) if draw(st.booleans()) else 1.0
    with np.errstate(under="ignore", over="ignore"):
        pool = [dtype.type(v * scale) for v in draw(st.lists(
            st.floats(-4.0, 4.0, allow_nan=False, allow_subnormal=False), min_size=1, max_size=4))]
    pool = [v for v in pool if np.isfinite(v)] or [dtype.type(0)]
    pool += [np.nextafter(v, dtype.type(0)) for v in pool[:1] if v != 0]  # 1 ulp from a tie
    x = np.array(draw(st.lists(st.sampled_from(pool), min_size=d, max_size=d)), dtype=dtype)
    if d >= 3 and draw(st.booleans()):  # a wide row: one outlier at 1/eps of the rest and beyond
        fi = np.finfo(dtype)
        big = float(np.max(np.abs(x)) or 1.0) / float(fi.eps) * draw(st.sampled_from(
            [1.0, 4.0, 2.0 ** 20, 2.0 ** 200]))
        with np.errstate(over="ignore"):
            out = dtype.type(min(big, float(fi.max)) * draw(st.sampled_from([1, -1])))
        x[draw(st.integers(0, d - 1))] = out
    spread = float(np.max(x)) - float(np.min(x)) if d else 0.0
    lam = draw(st.sampled_from(["zero", "subnormal", "below", "ordinary"]))
    if lam == "zero":
        lam = 0.0
    elif lam == "subnormal":
        lam = float(np.finfo(np.float64).smallest_subnormal) * draw(st.integers(1, 8))
    elif lam == "below":  # smaller than any gap of x can show: ties must still pool
        lam = float(np.finfo(dtype).eps) * 2.0 ** -8 * float(np.min(np.abs(x[x != 0]), initial=1.0))
    else:
        lam = min(spread * draw(st.sampled_from([1e-3, 0.3, 3.0])), float(np.finfo(np.float64).max))
    l1 = 0.0 if draw(st.booleans()) else float(np.min(np.abs(x), initial=0.0)) * 0.5
    rho = draw(st.sampled_from([0.0, 0.0, 0.5]))
    return x, lam, l1, rho


def drawn(strategy, n: int) -> list:
    """n examples of a strategy, the same on every run: for properties checked where a @given
    test cannot run them one by one (the sharded prox, whose ranks are spawned once per world)."""
    from hypothesis import HealthCheck, Phase, given, settings

    out: list = []

    @settings(max_examples=n, derandomize=True, database=None, phases=[Phase.generate],
              deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(v):
        out.append(v)

    collect()
    return out


def tie_ranks(x) -> np.ndarray:
    """The index of each entry's value among the distinct values of x (the partition at lam = 0)."""
    return np.unique(np.asarray(x), return_inverse=True)[1].reshape(-1)
