"""Run a function on p local gloo processes (tests, the benchmark script, asv; NCCL on a GPU
machine, one GPU per process): no torchrun needed.

``run(fn, p, *args, timeout=...)`` spawns p processes, joins them into one gloo group through a
file store (no port to find), calls ``fn(*args)`` in each and returns the p results in rank order.
A process that raises makes ``run`` raise RankFailed with every rank's error; one that does not
answer within ``timeout`` seconds is killed (the processes started here, by their ids), so a
collective that never completes fails the caller instead of hanging it.
"""
from __future__ import annotations

import datetime
import os
import queue as queue_mod
import tempfile
import time


class RankFailed(RuntimeError):
    """Some rank raised; ``errors`` maps rank -> (exception type name, message)."""

    def __init__(self, errors: dict, results: dict):
        self.errors = errors
        self.results = results
        lines = [f"rank {r}: {name}: {msg}" for r, (name, msg) in sorted(errors.items())]
        super().__init__("distributed run failed:\n" + "\n".join(lines))


def _child(rank, world, store_path, fn, args, out, collective_timeout, backend="gloo"):
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)  # p processes share the machine's cores
    try:
        if backend == "nccl":  # one GPU per rank, as NCCL requires
            torch.cuda.set_device(rank % torch.cuda.device_count())
        dist.init_process_group(backend, init_method=f"file://{store_path}", rank=rank,
                                world_size=world,
                                timeout=datetime.timedelta(seconds=collective_timeout))
        try:
            out.put((rank, True, fn(*args)))
        finally:
            dist.destroy_process_group()
    except BaseException as exc:  # report everything: the parent decides
        out.put((rank, False, (type(exc).__name__, str(exc))))


def run(fn, world: int, *args, timeout: float = 120.0, collective_timeout: float = 60.0,
        backend: str = "gloo"):
    """[fn(*args) on rank 0, ..., on rank world-1]; each process sees its rank through
    ``torch.distributed.get_rank()``. ``fn`` must be importable (a module-level function).
    ``backend``: the process group's, "gloo" or "nccl" (rank r then uses GPU r)."""
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend={backend!r}: choose 'gloo' or 'nccl'")
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    with tempfile.TemporaryDirectory() as tmp:
        store = os.path.join(tmp, "store")
        procs = [ctx.Process(target=_child, args=(r, world, store, fn, args, out,
                                                  collective_timeout, backend), daemon=True)
                 for r in range(world)]
        for pr in procs:
            pr.start()
        results, errors = {}, {}
        deadline = time.monotonic() + timeout
        try:
            while len(results) + len(errors) < world:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    rank, ok, value = out.get(timeout=min(left, 1.0))
                except queue_mod.Empty:
                    if all(not pr.is_alive() for pr in procs) and out.empty():
                        break
                    continue
                (results if ok else errors)[rank] = value
        finally:
            for pr in procs:
                pr.join(timeout=5.0)
                if pr.is_alive():
                    pr.kill()
                    pr.join()
    missing = [r for r in range(world) if r not in results and r not in errors]
    for r in missing:
        errors[r] = ("Timeout", f"no answer within {timeout} s (killed)")
    if errors:
        raise RankFailed(errors, results)
    return [results[r] for r in range(world)]
