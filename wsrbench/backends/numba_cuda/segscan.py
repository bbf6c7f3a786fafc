"""Segmented sums over a batch of rows in O(n d) global-memory traffic
(docs/design.md#a-work-efficient-segmented-scan).

The scan under the finishing step's block sums and imminent_collisions' run merges. Element k of
row r carries a value (0 where the caller's ``valid`` mask says so) and may start a segment
(``head``; column 0 always does, so segments never cross rows); the scan gives every element the
sum of its segment up to and including it and the column of the segment's head.

No shared memory and no block barrier (the simulator runs those ~1000x slower, 14.3): every thread
folds CHUNK consecutive elements, in order, into one triple (sum, has_head, head column).

* ``reduce_rows`` (level 0, read from the caller's arrays) and ``reduce_level`` (level >= 1)
  build level L + 1, of ceil(size_L / CHUNK) triples, until a level has at most CHUNK triples;
* ``down_level``, from that level down to level 1, turns each triple into the exclusive prefix of
  its level (in place), a thread starting from its parent's prefix (the carry in);
* the caller's own level-0 kernel (finish's ``values_down`` and ``labels_down``,
  imminent_collisions' ``merge_down``) re-reads its CHUNK elements from level 1's prefix on, and
  writes what it needs.

With R reduce levels a scan is 2 R + 1 launches, R = ceil(log_CHUNK(n d)) - 1 (4 + 4 + 1 at
n d = 1e7, CHUNK 32); the data are read twice and every level above holds 1/CHUNK of the one below:
O(n d) bytes, where the Hillis-Steele scan it replaces moved O(n d log d). A thread's loop reads
consecutive elements (independent loads), so its CHUNK steps lengthen the critical path (``loop``
in the cost counters) but are not dependent memory round trips.

Order of the additions: left to right within a thread; a carry is a sum of whole chunks' sums.
A segment sum is thus an ordered tree of partial sums of depth <= (R + 1) CHUNK, deterministic
(no atomics), and its rounding error <= (R + 1) CHUNK eps64 x the sum of magnitudes of its
elements: local to the segment, whatever its position in the row (docs/design.md#numerics-and-range).
"""
from __future__ import annotations

from numba import cuda

from .launch import SIMULATOR, grid

#: Elements folded by one thread: 32 float64 = two 128-byte lines; the simulator uses 4 so that
#: the tiny test rows span several levels. Read at each call (tests may change it).
GPU_CHUNK = 32
CHUNK = 4 if SIMULATOR else GPU_CHUNK


@cuda.jit(device=True, inline=True)
def element(heads, heads2, valid, V, C, centred, masked, use_heads, r, col):
    """(value, is_head) of element (r, col): V[r, col] (minus the row's C[r] if ``centred``: the
    sorted keys read as centred float64, finish.centred), or 0 where ``masked`` and not ``valid``;
    a head at column 0, and where both ``heads`` and ``heads2`` are set if ``use_heads`` (else a
    row is one segment: a plain per-row scan)."""
    ok = masked == 0 or valid[r, col] != 0
    v = 0.0
    if ok:
        v = float(V[r, col]) - C[r] if centred else float(V[r, col])
    return v, col == 0 or (use_heads != 0 and heads[r, col] != 0 and heads2[r, col] != 0)


@cuda.jit(device=True, inline=True)
def combine(s, a, v, head, at):
    """(running sum, its head) after one more element of value v: a head restarts the sum (the
    scan's operator, docs/design.md#a-work-efficient-segmented-scan)."""
    if head:
        return v, at
    return s + v, a


@cuda.jit(device=True, inline=True)
def carry_in(PS, PA, has_parent, t):
    """The (sum, head) that chunk t starts from: its parent level's exclusive prefix, or none."""
    if has_parent:
        return PS[t], PA[t]
    return 0.0, -1


@cuda.jit(cache=True)
def reduce_rows(heads, heads2, valid, V, C, centred, masked, use_heads, chunk, S, F, A):
    """Level 1 from the rows: (sum since the chunk's last head, has a head, that head's column)."""
    t = cuda.grid(1)
    n, d = V.shape
    lo = t * chunk
    if lo >= n * d:
        return
    s, a = 0.0, -1
    f = False
    for k in range(lo, min(lo + chunk, n * d)):
        r = k // d
        col = k - r * d
        v, h = element(heads, heads2, valid, V, C, centred, masked, use_heads, r, col)
        s, a = combine(s, a, v, h, col)
        f = f or h
    S[t] = s
    F[t] = f
    A[t] = a


@cuda.jit(cache=True)
def reduce_level(S, F, A, chunk, S2, F2, A2):
    """Level L + 1 from level L: the fold of each chunk of triples."""
    t = cuda.grid(1)
    size = S.shape[0]
    lo = t * chunk
    if lo >= size:
        return
    s, a = 0.0, -1
    f = False
    for i in range(lo, min(lo + chunk, size)):
        s, a = combine(s, a, S[i], F[i] != 0, A[i])
        f = f or F[i] != 0
    S2[t] = s
    F2[t] = f
    A2[t] = a


@cuda.jit(cache=True)
def down_level(S, F, A, chunk, PS, PA, has_parent):
    """Level L's triples -> their exclusive prefixes (in place), carry in from the parent's."""
    t = cuda.grid(1)
    size = S.shape[0]
    lo = t * chunk
    if lo >= size:
        return
    s, a = carry_in(PS, PA, has_parent, t)
    for i in range(lo, min(lo + chunk, size)):
        si, ai = S[i], A[i]
        S[i], A[i] = s, a
        s, a = combine(s, a, si, F[i] != 0, ai)


class Scan:
    """The levels of one scan of a (n, d) batch: ``Scan(n, d, cost)``, ``.up(...)``, then the
    caller's level-0 kernel reads ``.carry_sum``, ``.carry_head``, ``.has_parent``, ``.chunk``.

    The level arrays are allocated once and reused by every scan of the same shape (a round of
    imminent_collisions runs one)."""

    def __init__(self, n: int, d: int, cost):
        self.chunk = int(CHUNK)
        if self.chunk < 2:
            raise ValueError(f"segscan.CHUNK must be >= 2 (got {CHUNK}): a chunk of one element "
                             "never shrinks a level")
        self.cost = cost
        self.levels = []  # (S, F, A) of levels 1, 2, ...
        size = n * d
        while size > self.chunk:
            size = -(-size // self.chunk)
            self.levels.append((cost.empty(size, "float64"), cost.empty(size, "int8"),
                                cost.empty(size, "int64")))
        self.has_parent = 1 if self.levels else 0
        if self.levels:
            self.carry_sum, _, self.carry_head = self.levels[0]
        else:  # one thread folds the whole batch: no carry (never read)
            self.carry_sum = cost.empty(1, "float64")
            self.carry_head = cost.empty(1, "int64")

    def launches(self) -> int:
        """Launches of ``up`` plus the caller's level-0 kernel."""
        return 2 * len(self.levels) + 1

    def up(self, heads, heads2, valid, V, masked: int, use_heads: int = 1, center=None) -> None:
        """Build every level, then turn levels >= 1 into exclusive prefixes (see module doc).

        The segment heads are column 0 and, if ``use_heads``, where ``heads`` and ``heads2`` are
        both set; the values are V (minus the row's ``center`` when given: sorted keys read as
        centred float64), or 0 where ``masked`` and ``valid`` is not set."""
        # without a centre, any float64 array stands in for C (never read): no allocation
        C, centred = (self.carry_sum[:1], 0) if center is None else (center, 1)
        cost, c = self.cost, self.chunk
        n, d = V.shape
        prev = None
        for S, F, A in self.levels:
            if prev is None:
                cost(reduce_rows, grid(S.shape[0]), full=True, loop=c)(
                    heads, heads2, valid, V, C, centred, masked, use_heads, c, S, F, A)
            else:
                cost(reduce_level, grid(S.shape[0]), full=True, loop=c)(*prev, c, S, F, A)
            prev = (S, F, A)
        parent = None
        for S, F, A in reversed(self.levels):
            threads = -(-S.shape[0] // c)
            PS, PA, hp = (S, A, 0) if parent is None else (parent[0], parent[2], 1)
            cost(down_level, grid(threads), full=True, loop=c)(S, F, A, c, PS, PA, hp)
            parent = (S, F, A)

    def threads(self, n: int, d: int) -> int:
        """Threads of the caller's level-0 kernel: one per chunk."""
        return -(-(n * d) // self.chunk)
