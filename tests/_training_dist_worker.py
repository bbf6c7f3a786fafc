"""Training with sharded parameters, run in the gloo processes tests/test_training_sharded.py
spawns (wsrbench.bench.launch): the same seeded model, data and settings as the single-process
run of the test, with the first layer's weight and bias as DTensors or under FSDP2."""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

LR, MOMENTUM = 0.1, 0.9
SETTINGS = {"lam": 0.5, "l1": 0.01}
DTYPE = torch.float64


def model_and_batches(steps):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 9), nn.ReLU(), nn.Linear(9, 4)).to(DTYPE)
    g = torch.Generator().manual_seed(1)
    data = [(torch.randn(32, 12, generator=g).to(DTYPE), torch.randint(0, 4, (32,), generator=g))
            for _ in range(steps)]
    return model, data


def _loss(model, x, y):
    return nn.functional.cross_entropy(model(x), y)


def single(scope, steps):
    """The reference: one process, plain tensors."""
    from wsrbench.nn import WeightSharingProx

    model, data = model_and_batches(steps)
    sgd = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    opt = WeightSharingProx(sgd, [{"params": [model[0].weight, model[0].bias], "scope": scope}],
                            **SETTINGS)
    for x, y in data:
        opt.zero_grad()
        _loss(model, x, y).backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


def dtensor(scope, steps):
    """The first layer's weight and bias as Shard(0) DTensors over a 1-D mesh of every rank; the
    gradients come from a replica of the whole model (each rank the same), scattered."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    from wsrbench.nn import WeightSharingProx

    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    model, data = model_and_batches(steps)
    first = [model[0].weight, model[0].bias]
    shards = [nn.Parameter(distribute_tensor(p.detach().clone(), mesh, [Shard(0)]))
              for p in first]
    rest = list(model[2].parameters())
    sgd = torch.optim.SGD(shards + rest, lr=LR, momentum=MOMENTUM)
    opt = WeightSharingProx(sgd, [{"params": shards, "scope": scope}], **SETTINGS)
    for x, y in data:
        with torch.no_grad():
            for p, s in zip(first, shards):
                p.copy_(s.full_tensor())
        opt.zero_grad()
        model.zero_grad()
        _loss(model, x, y).backward()
        for p, s in zip(first, shards):
            s.grad = distribute_tensor(p.grad, mesh, [Shard(0)])
        opt.step()
    return [s.detach().full_tensor() for s in shards] + [p.detach().clone() for p in rest]


def fsdp(scope, steps):
    """FSDP2: fully_shard on the first layer and the whole model, every rank the same batch."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from wsrbench.nn import WeightSharingProx

    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    model, data = model_and_batches(steps)
    fully_shard(model[0], mesh=mesh)
    fully_shard(model, mesh=mesh)
    sgd = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    opt = WeightSharingProx(sgd, [{"params": [model[0].weight, model[0].bias], "scope": scope}],
                            **SETTINGS)
    for x, y in data:
        opt.zero_grad()
        _loss(model, x, y).backward()
        opt.step()
    return [p.detach().full_tensor() for p in model.parameters()]


def run_all(cases, steps):
    """{(how, scope): the model's parameters after training, as NumPy arrays} for every case, in
    one group of processes (an error on any rank fails launch.run with every rank's message)."""
    out = {}
    for how, scope in cases:
        res = {"dtensor": dtensor, "fsdp": fsdp}[how](scope, steps)
        # NumPy: tensors would travel as shared memory that dies with this process
        out[(how, scope)] = [t.detach().numpy().copy() for t in res]
    return out
