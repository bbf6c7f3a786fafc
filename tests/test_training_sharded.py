"""WeightSharingProx on sharded parameters: DTensors (distribute_tensor, Shard(0)) and FSDP2
(fully_shard) over gloo meshes of 2 and 4 CPU processes train to the weights of a single-process
run with the same seeds. With 9 rows over 4 ranks the shards are uneven (FSDP pads them)."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available():  # pragma: no cover
    pytest.skip("torch.distributed is not available", allow_module_level=True)

from wsrbench.bench import launch  # noqa: E402

from . import _training_dist_worker as worker  # noqa: E402

STEPS = 4
CASES = [("dtensor", "tensor"), ("dtensor", "joint"), ("dtensor", "row"), ("fsdp", "tensor")]


@pytest.mark.slow
@pytest.mark.parametrize("world", [3])  # uneven shards; one spawn of the ranks (seconds each)
def test_sharded_training_equals_one_process(world):
    per_rank = launch.run(worker.run_all, world, CASES, STEPS, timeout=400.0,
                          collective_timeout=120.0)
    eps = float(torch.finfo(worker.DTYPE).eps)
    for how, scope in CASES:
        ref = worker.single(scope, STEPS)
        # one prox is exact up to the rounding of block means (a few eps of the largest weight);
        # momentum carries each step's rounding into the next ones
        tol = 64 * eps * STEPS * max(float(r.abs().max()) for r in ref)
        for rank, res in enumerate(per_rank):
            got = [torch.from_numpy(a) for a in res[(how, scope)]]
            for g, r in zip(got, ref):
                torch.testing.assert_close(g, r, rtol=0, atol=tol, msg=f"{how} {scope} rank {rank}")
            w, r = got[0], ref[0]
            assert w.unique().numel() == r.unique().numel() < r.numel()  # the same sharing
