"""The bridge (common lower tangent) of two lower convex hulls separated in x
(docs/design.md#the-bridge-step and docs/design.md#hull_bridges).

``hull_bridges`` merges neighbouring lower hulls of the cumulative-sum diagram level by level; the
hull of a union is a prefix of the left hull, one bridge, and a suffix of the right hull. The bridge
is found by a simultaneous binary search on both hulls (Overmars and van Leeuwen, 1981): every step
probes the middle vertex of each remaining range and discards at least half of one range.

``bridge_step`` is that one decision, on O(1) scalars with only arithmetic and comparisons, so the
same function runs here (NumPy reference), under ``numba.njit`` and as a numba_cuda
``device=True, inline=True`` function, and the distributed prox drives it with vertices fetched
from other ranks. ``bridge`` is the loop around it.

Notation. Left hull vertices l_0..l_{a-1}, right hull vertices r_0..r_{b-1}, each (x, S) with x
strictly increasing and edge slopes strictly increasing (no three collinear vertices). The bridge is
the pair (i*, j*) such that the line through l_{i*} and r_{j*} has every vertex of both hulls on or
above it; among collinear candidates, the smallest i* and the largest j* (the outermost vertices),
so the merged hull l_0..l_{i*}, r_{j*}..r_{b-1} again has no three collinear vertices and its edges
are the maximal blocks of the canonical partition (docs/design.md#the-canonical-partition).

Every slope is a difference of S over a difference of x, then one division, and every decision is a
comparison of two such quotients (or, in the one case that needs it, of two quotients of slope
differences). There is no product that a compiler could fuse into an FMA, so all backends round
identically; and when the inputs are exact (integer data), correctly rounded division keeps equal
slopes equal, so exact ties are decided as ties (docs/design.md#hull_bridges-precision).
"""
from __future__ import annotations

import numpy as np


def bridge_probe(il, ih, jl, jh):
    """The vertices a step probes: i = (il + ih) // 2 on the left, j = (jl + jh) // 2 on the right."""
    return (il + ih) // 2, (jl + jh) // 2


def bridge_step(il, ih, jl, jh,
                xl0, sl0, xl1, sl1, xl2, sl2,
                xr0, sr0, xr1, sr1, xr2, sr2,
                split):
    """One decision of the simultaneous binary search for the lower bridge.

    Parameters
    ----------
    il, ih, jl, jh : int
        The candidate ranges: i* is in [il, ih] and j* in [jl, jh] (inclusive). Start with
        [0, a-1] and [0, b-1]; iterate while ``il < ih or jl < jh``.
    xl0, sl0, xl1, sl1, xl2, sl2 : float64
        Left vertices l_{i-1}, l_i, l_{i+1} with i = (il + ih) // 2. l_{i-1} is read only when
        i > il and l_{i+1} only when i < ih; otherwise pass anything finite (e.g. l_i again).
    xr0, sr0, xr1, sr1, xr2, sr2 : float64
        Right vertices r_{j-1}, r_j, r_{j+1} with j = (jl + jh) // 2, under the same rule.
    split : float64
        Any x strictly between the last left vertex and the first right vertex,
        x(l_{a-1}) < split < x(r_0); the midpoint gives the most slack (see below).

    Returns
    -------
    il, ih, jl, jh : int
        The new ranges, never empty, with floor(log2(ih-il+1)) + floor(log2(jh-jl+1)) smaller by at
        least one. Hence at most floor(log2 a) + floor(log2 b) steps reach il == ih and jl == jh,
        and then (i*, j*) = (il, jl).

    Notes
    -----
    With m = slope(l_i, r_j), the left probe is *left* if slope(l_{i-1}, l_i) >= m (l_{i-1} on or
    below the line: i* < i, a tie goes left because the outermost vertex wins), *right* if
    slope(l_i, l_{i+1}) < m, else *tangent*; the right probe mirrors it (*right* if
    slope(r_j, r_{j+1}) <= m: j* > j; *left* if slope(r_{j-1}, r_j) > m). A probe whose range is a
    single vertex is tangent by definition (it is i* or j*), so rounding can never empty a range.

    - left on the left:  ih = i - 1;  right on the right: jl = j + 1 (both may apply at once).
    - tangent and tangent: the line supports both hulls, (i, j) is the bridge.
    - tangent and left:    jh = j - 1;  right and tangent: il = i + 1.
    - right and left: the edge lines A (through l_i, l_{i+1}, slope p) and C (through r_{j-1},
      r_j, slope q > p) meet at z with z.x = x(l_i) + (x(r_j) - x(l_i)) t, t = (q - m)/(q - p).
      If z.x >= x(r_0), C supports both hulls and j* < j; if z.x <= x(l_{a-1}), A does and
      i* > i. Between the hulls both hold, so comparing z.x with ``split`` is always valid and
      only needs z.x to within the distance from ``split`` to the hulls.

    The proofs are in docs/design.md#why-the-tangent-search-is-correct.
    """
    i = (il + ih) // 2
    j = (jl + jh) // 2
    m = (sr1 - sl1) / (xr1 - xl1)
    # A neighbour outside the range is never read (nor divided by: it may equal the probe).
    go_left = False
    if i > il:
        go_left = (sl1 - sl0) / (xl1 - xl0) >= m
    go_right = False
    if j < jh:
        go_right = (sr2 - sr1) / (xr2 - xr1) <= m
    if go_left or go_right:
        if go_left:
            ih = i - 1
        if go_right:
            jl = j + 1
        return il, ih, jl, jh
    p = m
    left_below = False  # l_{i+1} strictly below the line: the left probe is "right"
    if i < ih:
        p = (sl2 - sl1) / (xl2 - xl1)
        left_below = p < m
    q = m
    right_below = False  # r_{j-1} strictly below the line: the right probe is "left"
    if j > jl:
        q = (sr1 - sr0) / (xr1 - xr0)
        right_below = q > m
    if not left_below and not right_below:
        return i, i, j, j
    if not left_below:
        return il, ih, jl, j - 1
    if not right_below:
        return i + 1, ih, jl, jh
    # p < m < q here, so q - p > 0 and 0 < t < 1.
    t = (q - m) / (q - p)
    u = (split - xl1) / (xr1 - xl1)
    if t > u:
        return il, ih, jl, j - 1
    return i + 1, ih, jl, jh


def junction_is_bridge(has_left, xl0, sl0, xl1, sl1, xr1, sr1, has_right, xr2, sr2):
    """True when the last left vertex l_{a-1} and the first right vertex r_0 form the bridge.

    (xl0, sl0) = l_{a-2} (read only if has_left, i.e. a > 1), (xl1, sl1) = l_{a-1},
    (xr1, sr1) = r_0, (xr2, sr2) = r_1 (read only if has_right, i.e. b > 1). The line l_{a-1} r_0
    is the bridge iff the left hull's last edge is strictly less steep and the right hull's first
    edge strictly steeper (section 13.2, case 2: both probes tangent, with the same tie rule and the
    same arithmetic as ``bridge_step``). Merging neighbours whose union is already convex at the
    junction (most pairs of typical data) then costs O(1) instead of a search; hull_bridges tests
    this before searching, in every backend.
    """
    m = (sr1 - sl1) / (xr1 - xl1)
    if has_left and (sl1 - sl0) / (xl1 - xl0) >= m:
        return False
    if has_right and (sr2 - sr1) / (xr2 - xr1) <= m:
        return False
    return True


def bridge(kl, sl, kr, sr):
    """Common lower tangent of two lower convex hulls separated in x.

    Parameters
    ----------
    kl, sl : array_like of float64, length a >= 1
        Left hull vertices (x, S): x strictly increasing, edge slopes strictly increasing. Best in
        coordinates local to the split (x - mid, S - S(mid)), so that slopes are well scaled.
    kr, sr : array_like of float64, length b >= 1
        Right hull vertices, same conditions, with kr[0] > kl[-1] (strictly: hulls that share a
        point pass it on one side only).

    Returns
    -------
    i, j, steps : int
        The bridge touches l_i and r_j; the lower hull of the union is kl[:i+1] + kr[j:]. Collinear
        ties go to the outermost vertices (smallest i, largest j), so the merged blocks are maximal
        as in the canonical partition (docs/design.md#the-canonical-partition). ``steps`` is the number of
        ``bridge_step`` calls, at most floor(log2 a) + floor(log2 b).
    """
    kl, sl, kr, sr = (np.asarray(v, dtype=np.float64) for v in (kl, sl, kr, sr))
    a, b = kl.shape[0], kr.shape[0]
    if a < 1 or b < 1 or sl.shape[0] != a or sr.shape[0] != b:
        raise ValueError(f"bridge needs non-empty hulls with matching x and S lengths; got "
                         f"len(kl)={a}, len(sl)={sl.shape[0]}, len(kr)={b}, len(sr)={sr.shape[0]}")
    if not kr[0] > kl[-1]:
        raise ValueError(f"bridge needs hulls separated in x: kr[0] = {kr[0]} must exceed "
                         f"kl[-1] = {kl[-1]}; pass a shared point with one of the hulls only")
    split = 0.5 * (kl[-1] + kr[0])
    il, ih, jl, jh = 0, a - 1, 0, b - 1
    steps = 0
    while il < ih or jl < jh:
        i, j = bridge_probe(il, ih, jl, jh)
        i0, i2 = max(i - 1, 0), min(i + 1, a - 1)
        j0, j2 = max(j - 1, 0), min(j + 1, b - 1)
        il, ih, jl, jh = bridge_step(il, ih, jl, jh,
                                     kl[i0], sl[i0], kl[i], sl[i], kl[i2], sl[i2],
                                     kr[j0], sr[j0], kr[j], sr[j], kr[j2], sr[j2], split)
        steps += 1
    return int(il), int(jl), steps
