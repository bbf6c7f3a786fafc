"""Cost of a training iteration with and without the weight-sharing prox (CPU; CUDA when present).

Nets: the paper's MNIST MLP (784-150-10, batch 512) and a larger one (784-1000-1000-10), on fixed
random data (seeded: the same on every machine). ``prox``: "none" (plain SGD iteration), "wrapper"
(``wsrbench.nn.WeightSharingProx`` on the first layer's weight and bias, one pool each, as the
paper), "bare" (the same prox calls made by hand with ``ProxState``: what the wrapper must not
exceed). The README figure and the one-off d = 5e7 / 8e7 measurements are in
scripts/training_bench.py (docs/design.md#training).
"""
from __future__ import annotations

NETS = {"784-150-10": (784, 150, 10), "784-1000-1000-10": (784, 1000, 1000, 10),
        "tiny": (20, 8, 4)}  # "tiny": only for tests/test_training.py (the suites cannot rot)
BATCH = 512
LR, LAM = 0.01, 0.05
SEED = 0


def _devices():
    try:
        import torch
    except ImportError:
        return ["cpu"]
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


class TrainingStep:
    """One SGD iteration (forward, backward, step) plus the prox step as ``prox`` says."""
    params = [["784-150-10", "784-1000-1000-10"], ["none", "wrapper", "bare"], _devices()]
    param_names = ["net", "prox", "device"]
    timeout = 300

    def setup(self, net, prox, device):
        try:
            import torch
        except ImportError:
            raise NotImplementedError("torch is not installed") from None
        from wsrbench.core.warm_start import ProxState
        from wsrbench.nn import WeightSharingProx

        torch.manual_seed(SEED)
        sizes = NETS[net]
        layers = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
        self.model = torch.nn.Sequential(*layers[:-1]).to(device)
        g = torch.Generator().manual_seed(SEED)
        self.x = torch.randn(BATCH, sizes[0], generator=g).to(device)
        self.y = torch.randint(0, sizes[-1], (BATCH,), generator=g).to(device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR)
        first = self.model[0]
        self.prox = prox
        if prox == "wrapper":
            self.opt = WeightSharingProx(self.opt, [first.weight, first.bias], lam=LAM)
        elif prox == "bare":
            self.states = [(first.weight, ProxState()), (first.bias, ProxState())]
        self.sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        for _ in range(2):  # JIT compilation and the warm-start hints, outside the timing
            self.time_iteration(net, prox, device)

    def time_iteration(self, net, prox, device):
        import torch

        self.opt.zero_grad()
        torch.nn.functional.cross_entropy(self.model(self.x), self.y).backward()
        self.opt.step()
        if self.prox == "bare":
            with torch.no_grad():
                for p, st in self.states:
                    p.copy_(st.prox(p.detach().reshape(1, -1), LR * LAM).reshape(p.shape))
        self.sync()
