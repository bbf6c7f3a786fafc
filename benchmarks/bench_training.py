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


OVERHEAD_SHAPES = {"4000": (40, 100), "117600": (150, 784), "tiny": (4, 5)}


class ProxOverhead:
    """The wrapper's own cost: ``WeightSharingProx.prox_step()`` ("wrapper") against the same
    prox calls made by hand with ``ProxState`` ("bare"), on one Linear layer's weight and bias
    (4,000 and 117,600 weights), the weights nudged between steps as training does. The figure is
    the ratio wrapper / bare of one run (target <= 1.2), not either time."""
    params = [["4000", "117600"], ["wrapper", "bare"]]
    param_names = ["weights", "mode"]
    timeout = 300

    def setup(self, weights, mode):
        try:
            import torch
        except ImportError:
            raise NotImplementedError("torch is not installed") from None
        from wsrbench.core.warm_start import ProxState
        from wsrbench.nn import WeightSharingProx

        torch.manual_seed(SEED)
        out_f, in_f = OVERHEAD_SHAPES[weights]
        self.layer = torch.nn.Linear(in_f, out_f)
        for p in self.layer.parameters():
            p.grad = torch.zeros_like(p)  # the optimiser's step is not part of the figure
        sgd = torch.optim.SGD(self.layer.parameters(), lr=LR)
        self.wrap = WeightSharingProx(sgd, [self.layer.weight, self.layer.bias], lam=LAM)
        self.states = [(self.layer.weight, ProxState()), (self.layer.bias, ProxState())]
        self.noise = 1e-3 * torch.randn(out_f, in_f, generator=torch.Generator().manual_seed(1))
        self.sign = 1.0
        for _ in range(2):  # JIT compilation and the warm-start hints, outside the timing
            self.time_prox_step(weights, mode)

    def time_prox_step(self, weights, mode):
        import torch

        with torch.no_grad():  # a gradient step's worth of movement, so the prox has work
            self.sign = -self.sign
            self.layer.weight.add_(self.noise, alpha=self.sign)
        if mode == "wrapper":
            self.wrap.prox_step()
        else:
            with torch.no_grad():
                for p, st in self.states:
                    p.copy_(st.prox(p.detach().reshape(1, -1), LR * LAM).reshape(p.shape))
