r"""The weight-sharing prox of a vector sharded over ``torch.distributed`` ranks.

Every rank of a process group passes its contiguous piece (``shard``) of one flat vector; the
vector is the concatenation of the shards in group-rank order (pieces may differ in size, some may
be empty). Every rank gets back its piece of the prox of the whole vector, the same clusters as
:func:`wsrbench.prox` on the concatenation, without ever holding the whole vector:

1. sample sort (``_sort``): each rank ends with one contiguous range of the global order;
2. the local exact fit of the range (``_local``: PAVA with the global shifts);
3. the merge across ranks (``_merge``): ceil(log2 p) levels of bridge searches on the ranks'
   convex minorants, O(1) numbers per pair and step;
4. block sums of the clusters that cross ranks (one all_gather of 8 numbers per rank), the block
   values, and one all-to-all back to the original owners.

Per rank the values travel twice (there and back): 2 (d/p) itemsize bytes plus O(p log d) small
messages (docs/design.md#distributed). Works with gloo (CPU tensors or NumPy arrays) and NCCL (CUDA
tensors; untested here: no GPU in this project's CI).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core.checks import as_float, check_scalar
from ..core.numerics import range_exponents, scale_back, shift_sum, tied_block_values
from ..core.sorted_space import block_outputs, pool_ties

__all__ = ["ShardedProxInfo", "gather_prox", "gather_prox_info", "prox", "prox_info"]


@dataclass
class ShardedProxInfo:
    """What a sharded prox call did, seen from this rank.

    clusters: blocks of the isotonic fit of the whole vector (before L1); the same on every rank.
    rounds: bridge-search steps of the merge (step 3), summed over its levels; the same on every
        rank. levels: ceil(log2 p) merge levels.
    bytes_sent / bytes_received: this rank's payload to / from other ranks
    (docs/design.md#crossing-blocks-values-the-way-back-the-communication-bound).
    collectives: collective calls this rank made; ``calls`` splits them by kind, and
        ``sent_by_kind`` the bytes sent ("all_to_all" is the payload: values there and back, and
        the p send counts; the other kinds are the small messages).
    stats: range (this rank's share of the sorted order), local_blocks (its PAVA blocks before the
        merge), world_size, rank.
    """
    clusters: int
    rounds: int
    levels: int
    bytes_sent: int
    bytes_received: int
    collectives: int
    calls: dict
    sent_by_kind: dict
    algorithm: str = "sample_sort+pava+bridge"
    backend: str = ""
    stats: dict = field(default_factory=dict)


# ------------------------------------------------------------------------ input checks, collective

_DTYPE_CODES = {"float32": 1.0, "float64": 2.0}
_DTYPE_NAMES = {v: k for k, v in _DTYPE_CODES.items()}


def _local_check(shard, lam, l1, rho):
    """(tensor, kind, device, (lam, l1, rho), error): never raises, so that no rank leaves the
    collective that follows while the others wait in it."""
    import torch

    try:
        arr = as_float(shard, "shard", max_ndim=1)  # integers -> float64, NaN/Inf named
        if arr.ndim != 1:
            raise ValueError("shard must be 1-D (this rank's piece of one flat vector), got a "
                             "scalar; wrap it as [x]")
        if isinstance(arr, torch.Tensor):
            t, kind, device = arr.detach(), "torch", arr.device
        else:
            if not arr.flags.writeable or not arr.flags.c_contiguous:
                arr = np.array(arr, order="C")  # torch wraps writeable memory only; x is not mutated
            t, kind, device = torch.from_numpy(arr), "numpy", None
        params = (check_scalar(lam, "lam"), check_scalar(l1, "l1"),
                  check_scalar(rho, "rho", low=0.0, high=1.0))
        return t, kind, device, params, None
    except (TypeError, ValueError) as exc:
        return None, None, None, None, exc


def _check(comm, shard, lam, l1, rho):
    """Check every rank's arguments together: every rank raises the same error, or none does.

    One all_gather of (ok, dtype, n, lam, l1, rho, max|x|) per rank; a failing rank's message
    travels in a second collective (only on that path). Also returns the global max|x|, which
    decides the range scaling (docs/design.md#errors-devices-rounding).
    """
    import torch

    t, kind, device, params, exc = _local_check(shard, lam, l1, rho)
    row = torch.full((7,), float("nan"), dtype=torch.float64)
    row[0] = 0.0 if exc is None else 1.0
    if exc is None:
        row[1] = _DTYPE_CODES[str(t.dtype).replace("torch.", "")]
        row[2] = t.numel()
        row[3:6] = torch.tensor(params, dtype=torch.float64)
        row[6] = float(t.abs().max()) if t.numel() else 0.0
    table = comm.all_gather(row).cpu().numpy()
    if table[:, 0].any():
        msgs = comm.all_gather_object(None if exc is None else (type(exc).__name__, str(exc)))
        q = int(np.flatnonzero(table[:, 0])[0])
        name, msg = msgs[q]
        err = TypeError if name == "TypeError" else ValueError
        raise err(f"wsrbench.distributed: rank {q} of {comm.size}: {msg}")
    for col, what in ((1, "dtype"), (3, "lam"), (4, "l1"), (5, "rho")):
        vals = table[:, col]
        if not np.all(vals == vals[0]):
            q = int(np.flatnonzero(vals != vals[0])[0])
            show = (lambda v: _DTYPE_NAMES[v]) if col == 1 else (lambda v: repr(float(v)))
            raise ValueError(
                f"wsrbench.distributed: {what} differs across ranks (rank 0: {show(vals[0])}, "
                f"rank {q}: {show(vals[q])}); every rank must pass the same {what}"
                + (" (cast every shard to one dtype)" if col == 1 else ""))
    sizes = table[:, 2].astype(np.int64).tolist()
    return t, kind, device, params, sizes, float(table[:, 6].max())


def _as_output(w, kind, device):
    if kind == "numpy":
        return w.cpu().numpy()
    return w.to(device)


# ------------------------------------------------------------------------------------- the prox

def _values(sums, a, b, d, lam, l1, rho, center):
    """Block values from x sums over global blocks [a, b): wsrbench.core.sorted_space.finish's formula
    (closed-form shift mean, centre added back, then L1 and rho)."""
    sizes = (b - a).astype(np.float64)
    centroid = sums / sizes
    value = centroid + shift_sum(a, b, d, lam) / sizes
    return block_outputs(centroid, value, l1, rho, center)


def _crossing_blocks(comm, hull, xc, xo, offs, d, last_values):
    """The blocks that cross rank boundaries: (head, tail) of this rank as (start, end, x sum,
    first value, last value), the values unscaled (``xo``: a block of equal values is redone
    unscaled, docs/design.md#errors-devices-rounding).

    head: the block holding this rank's first element when it starts on an earlier rank (or the
    block covering the whole range when no vertex survived here); tail: the block starting at this
    rank's last vertex. One all_gather of 8 numbers per rank; every rank walks the same table.
    ``last_values``: each rank's last (largest) value, NaN for an empty range.
    """
    import torch

    o, n = offs[comm.rank], xc.shape[0]
    has = hull.count > 0
    first = int(hull.K[hull.lo]) if has else o + n
    last = int(hull.K[hull.hi - 1]) if has else o + n
    # the last value before the first vertex, the value at the last vertex (sorted: block ends)
    head_end = float(xo[first - o - 1]) if first > o else np.nan
    tail_start = float(xo[last - o]) if last < o + n else np.nan
    row = torch.tensor([float(has), float(np.sum(xc[: first - o])), float(np.sum(xc[last - o:])),
                        float(first), float(last), float(hull.count), head_end, tail_start],
                       dtype=torch.float64)
    table = comm.all_gather(row).cpu().numpy()
    head = tail = None
    cur = None  # [start, end, sum, first value, last value] of the block being walked
    for q in range(comm.size):
        if offs[q + 1] == offs[q]:
            continue
        has_q, head_q, tail_q, first_q, last_q, _, head_end_q, tail_start_q = table[q]
        if has_q:
            if cur is not None:
                cur[2] += head_q
                cur[1] = int(first_q)
                if first_q > offs[q]:
                    cur[4] = head_end_q
                if q == comm.rank and first_q > offs[q]:
                    head = cur
            cur = [int(last_q), d, tail_q, tail_start_q, float(last_values[q])]
            if q == comm.rank:
                tail = cur
        else:
            cur[2] += head_q  # the whole range lies inside the block
            cur[4] = head_end_q
            if q == comm.rank:
                head = cur
    return head, tail, int(table[:, 5].sum())


def _my_blocks(hull, sums, head, tail, o, xo):
    """The blocks meeting this rank's range [o, o + B) (B values ``xo``, sorted, unscaled), in
    order: (starts, ends, x sums) over the global positions, how many of this rank's elements each
    holds, and each block's first and last value. Between its surviving vertices they are the
    local PAVA blocks; the head and tail may cross to other ranks."""
    B = xo.shape[0]
    if hull.count == 0:  # the range lies inside one block (B > 0) or is empty
        parts = [(head, B)] if B else []
        K = np.zeros(0, dtype=np.int64)
    else:
        K = hull.K[hull.lo:hull.hi]
        parts = [(head, int(K[0]) - o)] if head is not None else []
    a = [blk[0] for blk, _ in parts]
    b = [blk[1] for blk, _ in parts]
    sx = [blk[2] for blk, _ in parts]
    sizes = [size for _, size in parts]
    lo = [blk[3] for blk, _ in parts]
    hi = [blk[4] for blk, _ in parts]
    if hull.count:
        a += K[:-1].tolist() + [tail[0]]
        b += K[1:].tolist() + [tail[1]]
        sx += sums[hull.lo:hull.hi - 1].tolist() + [tail[2]]
        sizes += np.diff(K).tolist() + [o + B - int(K[-1])]
        lo += xo[K[:-1] - o].tolist() + [tail[3]]
        hi += xo[K[1:] - 1 - o].tolist() + [tail[4]]
    return (np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64),
            np.asarray(sx, dtype=np.float64), np.asarray(sizes, dtype=np.int64),
            np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64))


def prox_info(shard, lam, *, l1=0.0, rho=0.0, group=None):
    r"""Like :func:`prox`, and also return a :class:`ShardedProxInfo`: ``(w_shard, info)``."""
    import torch

    from . import _local, _merge, _sort
    from ._comm import Comm

    comm = Comm(group)
    t, kind, device, (lam, l1, rho), sizes, xmax = _check(comm, shard, lam, l1, rho)
    d = int(sum(sizes))
    goff = int(sum(sizes[: comm.rank]))
    n = sizes[comm.rank]
    if d == 0:
        info = ShardedProxInfo(0, 0, 0, comm.bytes_sent, comm.bytes_received, comm.collectives,
                               dict(comm.calls), dict(comm.sent_by_kind), backend=comm.backend,
                               stats={"range": 0, "local_blocks": 0, "world_size": comm.size,
                                      "rank": comm.rank})
        return _as_output(t.clone(), kind, device), info
    x = t.to(comm.device)

    # 1. sample sort: my range of the global order, its offset, the median for centring.
    xs_t, back = _sort.sample_sort(comm, x, goff, d)
    counts = comm.all_gather(torch.tensor([xs_t.numel()], dtype=torch.int64)).reshape(-1).tolist()
    offs = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64).tolist()
    o = offs[comm.rank]
    q_med = int(np.searchsorted(offs, d // 2, side="right")) - 1
    med = torch.zeros(1, dtype=torch.float64)
    if comm.rank == q_med:
        med[0] = float(xs_t[d // 2 - o])  # exact: a float32 value is a float64 value
    center = float(comm.broadcast(med, q_med)[0])

    # The single-process range decision (docs/design.md#a-proven-safe-range-power-of-two-scaling-beyond-it)
    # on the global max: beyond safe_bound(d) everything is solved as x 2^-k, lam 2^-k, l1 2^-k
    # (exact powers of two; tie decisions stay on the unscaled data xo), and multiplied back.
    k = int(range_exponents(xmax, lam, l1, d))
    lam_u, l1_u = lam, l1
    lam, l1 = math.ldexp(lam, -k), math.ldexp(l1, -k)
    center = math.ldexp(center, -k)

    # 2. the local fit (host, float64: the prox commutes with translation; centring at the global
    # median keeps every sum small, as the reference does).
    xo = xs_t.cpu().numpy().astype(np.float64)
    xc = (np.ldexp(xo, -k) if k else xo) - center
    starts, sums = _local.local_fit(xc, o, d, lam)
    if xc.shape[0]:
        # Equal values share one block, decided on the data (docs/design.md#ties).
        pooled = pool_ties(xo, starts, lam)
        if pooled.shape != starts.shape or lam == 0.0:
            starts, sums = pooled, np.add.reduceat(xc, pooled)
    hull = _merge.RankHull(o, starts, xc)
    # with each range's total, its first and last value: a run of ties may cross ranks
    ends = [xo[0], xo[-1]] if xo.shape[0] else [0.0, 0.0]
    totals = comm.all_gather(torch.tensor([hull.prefix[-1], float(xo.shape[0] > 0)] + ends,
                                          dtype=torch.float64)).reshape(comm.size, 4).cpu().numpy()

    # 3. the merge across ranks.
    levels, steps = _merge.merge(comm, hull, offs, totals[:, 0].tolist(), d, lam)
    if lam == 0.0:  # the fit is x: its blocks are the runs of equal values, whatever rounding did
        hull.K, hull.lo, hull.hi = o + starts, 0, starts.shape[0]
    before = [q for q in range(comm.rank) if totals[q, 1]]
    if hull.count and hull.K[hull.lo] == o and before and totals[before[-1], 3] == xo[0]:
        hull.lo += 1  # this range starts inside a run of ties that began on an earlier rank

    # 4. block sums of the crossing clusters, block values, and back to the owners.
    head, tail, clusters = _crossing_blocks(comm, hull, xc, xo, offs, d, totals[:, 3])
    B = xc.shape[0]
    a, b, sums_x, sizes, lo, hi = _my_blocks(hull, sums, head, tail, o, xo)
    if lam_u == 0.0:  # exactly x (soft-thresholded), as every single-process path returns
        w_sorted = block_outputs(xo, xo, l1_u, rho)
    else:
        values = _values(sums_x, a, b, d, lam, l1, rho, center)
        if k:
            filled = totals[:, 1] > 0
            values = scale_back(values, math.ldexp(totals[filled, 2].min(), -k),
                                math.ldexp(totals[filled, 3].max(), -k), lam, k)
            value, keep = tied_block_values(lo, hi, a, b, d, lam_u, l1_u, rho)
            values[keep] = value[keep]
        w_sorted = np.repeat(values, sizes)
    w_sorted_t = torch.from_numpy(w_sorted).to(dtype=x.dtype, device=comm.device)
    w = _sort.send_back(comm, w_sorted_t, back, n)

    info = ShardedProxInfo(
        clusters=clusters, rounds=steps, levels=levels, bytes_sent=comm.bytes_sent,
        bytes_received=comm.bytes_received, collectives=comm.collectives, calls=dict(comm.calls),
        sent_by_kind=dict(comm.sent_by_kind), backend=comm.backend,
        stats={"range": B, "local_blocks": int(starts.shape[0]), "world_size": comm.size,
               "rank": comm.rank})
    return _as_output(w, kind, device), info


def prox(shard, lam, *, l1=0.0, rho=0.0, group=None):
    r"""This rank's piece of the weight-sharing prox of a vector sharded over a process group.

    .. math::
        w = \operatorname{prox}(x) = \arg\min_w \tfrac12\|w - x\|^2 + \lambda R(w) + \mu\|w\|_1,
        \qquad R(w) = \frac{1}{d-1}\sum_{i<j} |w_i - w_j|

    where x is the concatenation of every rank's ``shard`` in group-rank order (d elements in
    all). A collective: every rank of ``group`` must call it, with the same dtype, lam, l1 and rho.

    Parameters
    ----------
    shard : 1-D NumPy array or torch tensor
        This rank's contiguous piece of x (may be empty; sizes may differ between ranks). float32
        stays float32, float64 stays float64 (integers become float64). Never modified.
        Under NCCL pass CUDA tensors; under gloo CPU tensors or NumPy arrays.
    lam, l1, rho : float
        As in :func:`wsrbench.prox` (lam >= 0, l1 >= 0, rho in [0, 1]).
    group : torch.distributed ProcessGroup or None
        The group the vector is sharded over (None: the default group).

    Returns
    -------
    w_shard : this rank's piece of the prox: shard's shape, dtype and kind (and device).

    Raises
    ------
    TypeError, ValueError
        On every rank alike, when any rank's input is bad (float16 or another non-real dtype, not
        1-D, NaN or Inf) or the ranks disagree on dtype, lam, l1 or rho; the message names the
        rank and the fix.
    RuntimeError
        When torch.distributed is not initialised.

    Notes
    -----
    Exact: the same clusters as :func:`wsrbench.prox` on the concatenation (up to float rounding
    of exactly tied block means), values within the rounding tolerance of the reference.
    Communication per rank: 2 (d/p) itemsize bytes of values (there and back) plus O(p log d)
    small messages (docs/design.md#distributed).
    """
    return prox_info(shard, lam, l1=l1, rho=rho, group=group)[0]


# ------------------------------------------------------------------ the gather-to-one baseline

def gather_prox_info(shard, lam, *, l1=0.0, rho=0.0, group=None, backend="auto"):
    """The baseline: gather the whole vector on rank 0, prox it there, scatter it back.

    Same arguments, checks and counters as :func:`prox_info` (``backend`` picks rank 0's local
    prox); rank 0 moves d - n_0 values each way. Returns (w_shard, ShardedProxInfo).
    """
    import torch

    from .. import api
    from ._comm import Comm

    comm = Comm(group)
    t, kind, device, (lam, l1, rho), sizes, _ = _check(comm, shard, lam, l1, rho)
    p, r = comm.size, comm.rank
    x = t.to(comm.device)
    send = [sizes[r] if q == 0 else 0 for q in range(p)]
    recv = sizes if r == 0 else [0] * p
    whole = comm.all_to_all(x, send, recv)
    clusters = torch.zeros(1, dtype=torch.int64)
    if r == 0:
        w_all, pinfo = api.prox_info(whole.cpu().numpy(), lam, l1=l1, rho=rho, backend=backend)
        clusters[0] = pinfo.clusters
        w_all = torch.from_numpy(w_all).to(comm.device)
    else:
        w_all = whole
    w = comm.all_to_all(w_all, recv, send)
    clusters = int(comm.broadcast(clusters, 0)[0])
    info = ShardedProxInfo(clusters=clusters, rounds=0, levels=0, bytes_sent=comm.bytes_sent,
                           bytes_received=comm.bytes_received, collectives=comm.collectives,
                           calls=dict(comm.calls), sent_by_kind=dict(comm.sent_by_kind),
                           algorithm="gather_to_rank0",
                           backend=comm.backend, stats={"world_size": p, "rank": r})
    return _as_output(w, kind, device), info


def gather_prox(shard, lam, *, l1=0.0, rho=0.0, group=None, backend="auto"):
    """This rank's piece of the prox, computed by gathering the whole vector on rank 0."""
    return gather_prox_info(shard, lam, l1=l1, rho=rho, group=group, backend=backend)[0]
