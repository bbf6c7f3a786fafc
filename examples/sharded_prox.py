"""The prox of a vector sharded over processes (wsrbench.distributed); run it with torchrun:

    torchrun --nproc-per-node 4 examples/sharded_prox.py                 # CPU, gloo
    torchrun --nproc-per-node 8 examples/sharded_prox.py --length 100000000   # one GPU per process, NCCL

Each process builds the same x from a seed (only to check the answer at the end: a real job would
hold its shard only), keeps its piece, and calls wsrbench.distributed.prox_info. Rank 0 then
compares its piece with the single-process wsrbench.prox on the whole x.
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import torch
import torch.distributed as dist

import wsrbench
from wsrbench import distributed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--length", type=int, default=1_000_000, help="d, the length of x")
    ap.add_argument("--lam", type=float, default=0.05)
    args = ap.parse_args()

    cuda = torch.cuda.is_available()
    if cuda:  # NCCL moves CUDA tensors: one GPU per process
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, p = dist.get_rank(), dist.get_world_size()

    x = torch.randn(args.length, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    lo, hi = args.length * rank // p, args.length * (rank + 1) // p
    shard = x[lo:hi].to("cuda" if cuda else "cpu")

    w, info = distributed.prox_info(shard, args.lam)  # every rank calls it: a collective

    print(f"rank {rank}/{p}: {hi - lo} weights, {info.clusters} clusters in all, sent "
          f"{info.bytes_sent} B, received {info.bytes_received} B in {info.collectives} "
          f"collectives ({info.rounds} bridge steps over {info.levels} levels)", flush=True)
    if rank == 0:
        ref = wsrbench.prox(x.numpy(), args.lam)[lo:hi]
        err = float(np.max(np.abs(w.cpu().numpy() - ref), initial=0.0))
        print(f"rank 0: max |w - wsrbench.prox(x)| over its piece = {err:.3g}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
