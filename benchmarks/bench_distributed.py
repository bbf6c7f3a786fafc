"""Communication of the sharded prox (wsrbench.distributed): bytes, collectives, rounds.

Counts, not times: on one machine the p gloo processes share the cores, so wall time says little,
while the bytes each rank moves, its collective calls and the merge's bridge steps are what a
cluster pays for, and they do not depend on the machine. ``setup_cache`` spawns one group of p
local gloo processes per world size and measures every (d, dtype) once
(wsrbench.bench.sharded.measure); the ``track_`` methods read the result. The baseline
column (``track_baseline_bytes_rank0``) is the gather-to-rank-0 prox: d - d/p values through rank 0
each way. Skips (NotImplementedError) where torch.distributed is absent, and on commits that
predate wsrbench.distributed.
"""
from __future__ import annotations

WORLDS = [2, 4]
SIZES = [10_000, 100_000, 1_000_000]
DTYPES = ["float32", "float64"]


def _available():
    try:
        import torch.distributed as dist

        from wsrbench.bench import sharded  # noqa: F401
    except ImportError as exc:
        return f"needs torch.distributed and wsrbench.distributed: {exc}"
    if not dist.is_available():
        return "this torch build has no torch.distributed"
    return None


class Communication:
    """Per-rank maximum over the ranks of one call, family gaussian, even shards."""
    params = [WORLDS, SIZES, DTYPES]
    param_names = ["p", "d", "dtype"]
    timeout = 1800

    def setup_cache(self):
        reason = _available()
        if reason is not None:
            return {"unavailable": reason}  # never None: asv passes a None cache to no one
        from wsrbench.bench.sharded import summarize, table

        return summarize(table(WORLDS, SIZES, DTYPES))

    def setup(self, cache, p, d, dtype):
        if "unavailable" in cache:
            raise NotImplementedError(cache["unavailable"])

    def track_bytes_sent(self, cache, p, d, dtype):
        return cache[(p, d, dtype)]["sent"]

    track_bytes_sent.unit = "bytes"

    def track_bytes_received(self, cache, p, d, dtype):
        return cache[(p, d, dtype)]["received"]

    track_bytes_received.unit = "bytes"

    def track_small_message_bytes(self, cache, p, d, dtype):
        return cache[(p, d, dtype)]["small"]

    track_small_message_bytes.unit = "bytes"

    def track_collectives(self, cache, p, d, dtype):
        return cache[(p, d, dtype)]["collectives"]

    track_collectives.unit = "calls"

    def track_merge_rounds(self, cache, p, d, dtype):
        return cache[(p, d, dtype)]["rounds"]

    track_merge_rounds.unit = "rounds"

    def track_baseline_bytes_rank0(self, cache, p, d, dtype):
        return cache[(p, d, dtype)]["baseline_rank0"]

    track_baseline_bytes_rank0.unit = "bytes"
