"""Collectives of the sharded prox, counted: bytes sent and received per rank, calls per kind.

Every collective of ``wsrbench.distributed`` goes through :class:`Comm`, so the counters are the
whole truth about a call's communication. Bytes are counted as a direct exchange would move them
(docs/design.md#crossing-blocks-values-the-way-back-the-communication-bound):

* ``all_to_all``: exactly the payload this rank sends to / receives from other ranks (what stays
  on the rank is not counted);
* ``all_gather`` of k bytes per rank: k (p-1) sent and received (every rank's piece reaches every
  other rank);
* ``all_reduce`` and ``broadcast`` of k bytes: k (p-1) each way at most (a ring all-reduce moves
  2 k (p-1)/p; the count is the larger, direct-exchange figure).

The small collectives (``all_gather``, ``all_reduce``, ``broadcast``) carry O(p) numbers each.
"""
from __future__ import annotations

from collections import Counter

import torch
import torch.distributed as dist


class Comm:
    """One process group, its device, and the counters of the current call."""

    def __init__(self, group=None):
        if not dist.is_available() or not dist.is_initialized():
            raise RuntimeError(
                "wsrbench.distributed needs an initialised torch.distributed process group: call "
                "torch.distributed.init_process_group(...) first (or run under torchrun)")
        self.group = group
        self.rank = dist.get_rank(group)
        self.size = dist.get_world_size(group)
        self.backend = str(dist.get_backend(group))
        # NCCL moves CUDA tensors only; gloo moves CPU tensors (and CUDA ones through the host).
        if self.backend == "nccl":
            self.device = torch.device("cuda", torch.cuda.current_device())
        else:
            self.device = torch.device("cpu")
        self.bytes_sent = 0
        self.bytes_received = 0
        self.calls = Counter()
        self.sent_by_kind = Counter()  # bytes sent, per kind of collective

    @property
    def collectives(self) -> int:
        return sum(self.calls.values())

    def global_rank(self, group_rank: int) -> int:
        return group_rank if self.group is None else dist.get_global_rank(self.group, group_rank)

    def _small(self, nbytes: int, kind: str) -> None:
        self.calls[kind] += 1
        self.sent_by_kind[kind] += nbytes * (self.size - 1)
        self.bytes_sent += nbytes * (self.size - 1)
        self.bytes_received += nbytes * (self.size - 1)

    def all_gather(self, t: torch.Tensor) -> torch.Tensor:
        """(p, *t.shape): row q is rank q's t (t must have the same shape on every rank)."""
        t = t.to(self.device).contiguous()
        out = [torch.empty_like(t) for _ in range(self.size)]
        dist.all_gather(out, t, group=self.group)
        self._small(t.numel() * t.element_size(), "all_gather")
        return torch.stack(out)

    def all_reduce(self, t: torch.Tensor, op=dist.ReduceOp.SUM) -> torch.Tensor:
        t = t.to(self.device).contiguous().clone()
        dist.all_reduce(t, op=op, group=self.group)
        self._small(t.numel() * t.element_size(), "all_reduce")
        return t

    def broadcast(self, t: torch.Tensor, src: int) -> torch.Tensor:
        """t from group rank ``src`` (every rank passes a tensor of the same shape)."""
        t = t.to(self.device).contiguous().clone()
        dist.broadcast(t, src=self.global_rank(src), group=self.group)
        self._small(t.numel() * t.element_size(), "broadcast")
        return t

    def all_to_all(self, send: torch.Tensor, send_counts: list[int],
                   recv_counts: list[int]) -> torch.Tensor:
        """Rows of ``send`` split by ``send_counts`` (one count per rank, in rank order); returns
        the rows received, from rank 0 first. Rows may be records of several bytes each."""
        send = send.to(self.device).contiguous()
        row_bytes = send.element_size() * (send[0].numel() if send.dim() > 1 else 1)
        out = torch.empty((sum(recv_counts),) + tuple(send.shape[1:]), dtype=send.dtype,
                          device=self.device)
        dist.all_to_all_single(out, send, output_split_sizes=list(recv_counts),
                               input_split_sizes=list(send_counts), group=self.group)
        self.calls["all_to_all"] += 1
        self.sent_by_kind["all_to_all"] += row_bytes * (sum(send_counts) - send_counts[self.rank])
        self.bytes_sent += row_bytes * (sum(send_counts) - send_counts[self.rank])
        self.bytes_received += row_bytes * (sum(recv_counts) - recv_counts[self.rank])
        return out

    def all_gather_object(self, obj) -> list:
        """Python objects (error messages only: this path runs when a call is about to fail)."""
        out = [None] * self.size
        dist.all_gather_object(out, obj, group=self.group)
        self.calls["all_gather_object"] += 1
        return out

    def counters(self) -> dict:
        return {"bytes_sent": self.bytes_sent, "bytes_received": self.bytes_received,
                "collectives": self.collectives, "calls": dict(self.calls),
                "sent_by_kind": dict(self.sent_by_kind)}
