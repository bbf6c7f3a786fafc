"""Input families shared by tests, benchmarks and the CLI: ``make(family, d) -> (x, lam)``.

Typical families model what the prox meets in training; worst-case families drive one algorithm to
its worst case and say so in ``Family.worst_for``. Every family is deterministic given (d, seed,
dtype) and returns x of the requested dtype (a float, never mutated later) and lam as a float.

The cascade behind the worst cases (docs/design.md#imminent_collisions and
docs/design.md#the-cascades-dynamic-range, and ``cascade_mass``):
in y-space an increasing arithmetic progression of step e below a heavy cluster of m tied inputs.
The heavy cluster swallows exactly one neighbour per round of ``imminent_collisions`` (d - m rounds
in all) as long as its momentum m * (its drop below the progression) exceeds e times the
progression's extent. One dropping particle (m = 1) needs lam/e ~ d^3, which float64 holds up to d
of about 1e5 only; a heavier cluster needs only d^3/m^2, so choosing the lightest m the dtype can
represent keeps Theta(d) rounds (d - m of them) far beyond that.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# The progression step e must exceed this many ulps of |x| <= lam: x is rounded to its dtype once
# (half an ulp) and y = x + v once more in float64; 16 leaves room for both and for the sums.
CASCADE_ULPS = 16.0


@dataclass(frozen=True)
class Family:
    """One input family of :func:`make`.

    Attributes
    ----------
    name : str
        The name ``make`` takes.
    regime : str
        "typical" (what the prox meets in training) or "worst" (drives one algorithm to its worst
        case). ("Kind" in wsrbench means only an array kind.)
    description : str
        One line: the distribution and lam, and for a worst case the mechanism.
    worst_for : str or None
        The algorithm this family is the worst case of (a registered algorithm name).
    """

    name: str
    regime: str  # "typical" or "worst"
    description: str
    worst_for: str | None
    _make: Callable[[int, np.random.Generator], tuple[np.ndarray, float]]


_FAMILIES: dict[str, Family] = {}


def _family(name, regime, description, worst_for=None):
    def deco(fn):
        _FAMILIES[name] = Family(name, regime, description, worst_for, fn)
        return fn
    return deco


def families(regime: str | None = None) -> list[Family]:
    """The registered input families, in a stable order (the order of definition).

    Parameters
    ----------
    regime : {"typical", "worst"} or None, default None
        Only the families of this regime; None for all.

    Returns
    -------
    list of Family
    """
    return [f for f in _FAMILIES.values() if regime is None or f.regime == regime]


def names(regime: str | None = None) -> list[str]:
    """The names of :func:`families` (same argument, same order): what :func:`make` accepts.

    Parameters
    ----------
    regime : {"typical", "worst"} or None, default None

    Returns
    -------
    list of str
    """
    return [f.name for f in families(regime)]


def make(family: str, d: int, *, seed: int = 0, dtype=np.float64) -> tuple[np.ndarray, float]:
    """Build the input ``(x, lam)`` of ``family`` with ``d`` weights.

    Deterministic: the random stream is seeded from (seed, d, family), so the same arguments give
    the same output on every machine, and two families or sizes never share a stream.

    Parameters
    ----------
    family : str
        One of :func:`names`.
    d : int
        Number of weights, >= 0.
    seed : int, default 0
    dtype : float32 or float64, default float64
        The dtype of x, rounded to once. Families whose construction depends on it use it:
        ``gaussian_collapse`` (lam from the rounded x), ``nearly_sorted`` and the cascades (the
        heavy cluster's mass, ``cascade_mass``).

    Returns
    -------
    x : ndarray of shape (d,) and ``dtype``
    lam : float

    Raises
    ------
    ValueError
        If family is unknown or d is not a non-negative integer.
    TypeError
        If dtype is not float32 or float64.
    """
    if family not in _FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose one of {names()}")
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 0:
        raise ValueError(f"d must be a non-negative integer, got {d!r}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    rng = np.random.default_rng([seed, int(d), _stable_hash(family)])
    x, lam = _FAMILIES[family]._make(int(d), rng, dtype)
    x = np.asarray(x, dtype=dtype)
    return x, float(lam)


def _stable_hash(name: str) -> int:
    return sum((i + 1) * ord(ch) for i, ch in enumerate(name))


def collapse_lam(x) -> float:
    r"""The smallest lam at which the prox of x is constant (= mean(x)).

    All of x collapses iff every prefix of the sorted y has mean >= mean(y)
    (docs/design.md#the-collapse-threshold), i.e. for k = 1..d-1:

    .. math:: \lambda^* = \max\Big(0,\ \max_{1 \le k < d} \frac{d-1}{d-k}
              \big(\bar x - \bar x_{(0..k-1)}\big)\Big)

    with x_(0..k-1) the k smallest entries.

    Parameters
    ----------
    x : array_like of float, 1-D

    Returns
    -------
    float
        lam*, in float64 (0 when d <= 1).
    """
    xs = np.sort(np.asarray(x, dtype=np.float64))
    d = xs.shape[0]
    if d <= 1:
        return 0.0
    k = np.arange(1, d)
    gap = xs.mean() - np.cumsum(xs)[:-1] / k
    return float(max(0.0, np.max(gap * (d - 1) / (d - k))))


# --------------------------------------------------------------------------------------------
# Typical families

@_family("gaussian", "typical", "N(0, 1) weights, small per-step lam = 0.01 (proximal SGD)")
def _gaussian(d, rng, dtype):
    return rng.standard_normal(d), 0.01


@_family("gaussian_collapse", "typical", "N(0, 1) weights, lam = 2x the smallest collapsing lam")
def _gaussian_collapse(d, rng, dtype):
    x = rng.standard_normal(d).astype(dtype)
    return x, 2.0 * collapse_lam(x) or 1.0


@_family("uniform", "typical", "U(-1, 1) weights, lam = 0.1")
def _uniform(d, rng, dtype):
    return rng.uniform(-1.0, 1.0, d), 0.1


@_family("heavy_tailed", "typical", "Student t (1.5 degrees of freedom), lam = 0.1")
def _heavy_tailed(d, rng, dtype):
    return rng.standard_t(1.5, d), 0.1


@_family("quantized", "typical",
         "N(0, 1) rounded to multiples of 1/16: many exact ties, lam = 0.01")
def _quantized(d, rng, dtype):
    return np.round(rng.standard_normal(d) * 16.0) / 16.0, 0.01


@_family("all_equal", "typical",
         "every weight 0.5, lam = 0.1: one cluster, the prox is the identity")
def _all_equal(d, rng, dtype):
    return np.full(d, 0.5), 0.1


@_family("nearly_sorted", "typical",
         "a previous prox output (N(0,1), lam = 1) plus N(0, 1e-4) noise, lam = 1: "
         "the order barely changes between two training steps")
def _nearly_sorted(d, rng, dtype):
    return nearly_sorted_pair(d, rng, dtype)[1:]


def nearly_sorted_pair(d, rng, dtype=np.float64):
    """(x_previous, x, lam): x = prox(x_previous, lam) + small noise, both of ``dtype``.

    For warm-start experiments: the order of x_previous is the hint for sorting x.
    """
    from ..api import prox

    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng([rng, int(d), _stable_hash("nearly_sorted")])
    lam = 1.0
    x_prev = rng.standard_normal(d).astype(dtype)
    x = prox(x_prev, lam) + 1e-4 * rng.standard_normal(d)
    return x_prev, x.astype(dtype), lam


@_family("trained_layer", "typical",
         "a trained 512-fan-in layer: N(0, 2/512) with 1% outliers at 10x, lam = 1e-3")
def _trained_layer(d, rng, dtype):
    std = np.sqrt(2.0 / 512)
    x = rng.standard_normal(d) * std
    outliers = rng.random(d) < 0.01
    x[outliers] *= 10.0
    return x, 1e-3


# --------------------------------------------------------------------------------------------
# Worst cases

def cascade(d: int, m: int, lam: float = 1.0):
    """Sorted x (float64) of the heavy-cluster cascade; returns (x, lam, e).

    Ranks 0..c-1 (c = d - m) carry y_k = k e; ranks c-1..d-1 share one x value (a tie of m + 1),
    so in y-space they form a decreasing run that merges in the first round into a block of mass m + 1.
    That block absorbs its left neighbour in each later round while its mean stays at or below the
    next y, which holds for all of them iff

        e <= lam m (m+1) / ((d-1) (c-1) (c/2 + m))

    (the worst constraint is the last absorption). We take half that e, so imminent_collisions
    takes exactly d - m rounds and ends with a single cluster.
    """
    c = d - m
    if d < 2 or c < 1:
        return np.zeros(d), lam, 1.0
    k = np.arange(d, dtype=np.float64)
    v = lam * (d - 1 - 2 * k) / (d - 1)
    e = cascade_step(d, m, lam)
    y = k * e
    x = y - v
    x[c:] = x[c - 1]
    return x, lam, e


def cascade_step(d: int, m: int, lam: float = 1.0) -> float:
    """The progression step e of :func:`cascade`: half the largest e that keeps one merge per
    round, ``0.5 lam m (m+1) / ((d-1) (c-1) (c/2 + m))`` with c = d - m (lam when c <= 1)."""
    c = d - m
    if c <= 1:
        return lam
    return 0.5 * lam * m * (m + 1) / ((d - 1) * (c - 1) * (c / 2 + m))


def cascade_mass(d: int, dtype=np.float64) -> int:
    """The lightest heavy cluster m >= 1 whose cascade ``dtype`` represents at size d.

    Representable means the progression step e is at least CASCADE_ULPS ulps of lam (|x| <= lam).
    m = 1 (exactly d - 1 rounds) up to the d where e(1) = 2 lam/d^3 reaches that floor; beyond it
    m grows like sqrt(d^3 / (2 CASCADE_ULPS / eps)), and the cascade still forces d - m rounds.
    """
    eps = float(np.finfo(np.dtype(dtype)).eps)
    floor = CASCADE_ULPS * eps
    if d < 3 or cascade_step(d, 1) >= floor:
        return 1
    lo, hi = 1, d - 1  # e(m) increases with m; find the smallest m with e(m) >= floor
    while lo < hi:
        mid = (lo + hi) // 2
        if cascade_step(d, mid) >= floor:
            hi = mid
        else:
            lo = mid + 1
    return lo


def cascade_limit(dtype=np.float64) -> int:
    """Largest d at which the single-particle cascade (m = 1, d - 1 rounds) is representable."""
    lo, hi = 2, 1 << 40
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if cascade_mass(mid, dtype) == 1:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _shuffled(x, rng):
    return x[rng.permutation(x.shape[0])]


@_family("worst_imminent_collisions", "worst",
         "heavy-cluster cascade: one merge per round, exactly d - m rounds, m = cascade_mass(d, "
         "dtype) (m = 1, d - 1 rounds, up to cascade_limit(dtype): 82570 in float64, 102 in "
         "float32)",
         worst_for="imminent_collisions")
def _worst_imminent(d, rng, dtype):
    x, lam, _ = cascade(d, cascade_mass(d, dtype))
    return _shuffled(x, rng), lam


@_family("worst_pava", "worst",
         "PAVA back-merging: the stack grows to d/2 singleton blocks, then a heavy tied cluster "
         "pools all of them back into one cluster (the cascade with m = d/2)",
         worst_for="pava")
def _worst_pava(d, rng, dtype):
    x, lam, _ = cascade(d, max(1, d // 2, cascade_mass(d, dtype)))
    return _shuffled(x, rng), lam


@_family("worst_end_collisions", "worst",
         "evenly spaced weights with lam small enough that nothing merges: d clusters, each "
         "found by its own O(d) scan (Theta(d^2) work)",
         worst_for="end_collisions")
def _worst_end(d, rng, dtype):
    x = np.linspace(-1.0, 1.0, d)
    # y-gaps are 2/(d-1) - 2 lam/(d-1) = 1/(d-1) > 0 with lam = 0.5: every y strictly increases.
    return _shuffled(x, rng), 0.5


@_family("worst_hull_bridges", "worst",
         "strictly increasing y with varying gaps: every point of the cumulative-sum diagram is a "
         "hull vertex at every level, so every bridge search runs its full "
         "floor(log2(h+1)) + floor(log2 h) steps (the largest depth hull_bridges can have)",
         worst_for="hull_bridges")
def _worst_hull(d, rng, dtype):
    t = np.linspace(-1.0, 1.0, d)
    # x-gaps >= 2/(d-1) (the derivative of t + t^3/2 is >= 1) exceed the shift gaps 2 lam/(d-1) =
    # 1/(d-1) with lam = 0.5, so y strictly increases and its cumulative sums are strictly convex.
    return _shuffled(t + 0.5 * t ** 3, rng), 0.5
